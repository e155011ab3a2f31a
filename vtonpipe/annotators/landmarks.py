"""``landmarks``: the 32 garment landmarks of SAL-VTON, on garment images and on the person
wearing the garment (points of the person's own garment for person images).

Backends: ``groundtruth`` (the embedded sample's exact landmarks). A learned estimator (SAL-VTON's
landmark HRNet) belongs with the training stage.
"""

from __future__ import annotations

from ..core import AnnotatorSpec
from ..schemas.landmarks import SCHEMA
from .registry import register_annotator

SPEC = register_annotator(
    AnnotatorSpec(
        name="landmarks",
        level="image",
        schema=SCHEMA,
        default_backend="groundtruth",
        kinds=("person", "garment"),
        doc="32 garment landmarks (x, y, visible/occluded/absent).",
    )
)
