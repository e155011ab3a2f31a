"""``smpl_flow``: per-pair flow and visibility between two fitted bodies (pair level).

For each target body pixel, the same surface point (triangle + barycentrics) on the source body,
projected into the source image, gives the flow (target -> source). Backend ``render`` (own
module) reads the ``body`` annotations of both images.
"""

from __future__ import annotations

from ..core import AnnotatorSpec
from ..schemas.smpl_flow import SCHEMA
from .registry import register_annotator

SPEC = register_annotator(
    AnnotatorSpec(
        name="smpl_flow",
        level="pair",
        schema=SCHEMA,
        default_backend="render",
        kinds=("person",),
        roles=("source", "target"),
        doc="Target -> source body flow and 3-state visibility.",
    )
)
