"""``body``: a parametric 3D body fitted to each person image (the "SMPL regression" stage).

Backends (own modules): ``anny-fit`` (default; the Apache-2.0 anny model fitted to the
keypoints), ``smpl-fit`` (SMPL with the user's model file, ``vtonpipe.models.bodies.smpl``), ``frankmocap``.
"""

from __future__ import annotations

from ..core import AnnotatorSpec
from ..schemas.body import SCHEMA
from .registry import register_annotator

SPEC = register_annotator(
    AnnotatorSpec(
        name="body",
        level="image",
        schema=SCHEMA,
        default_backend="anny-fit",
        kinds=("person",),
        doc="Pose, shape and camera of a parametric body fitted to the image.",
    )
)
