"""Schema of the ``body`` annotation: a parametric 3D body fitted to the image (per person image).

Vertices are not stored: they are recomputed from the parameters with the model named in
``model`` (``vtonpipe.models.bodies.anny`` for anny, ``vtonpipe.models.bodies.smpl`` for SMPL), then mapped to the camera
frame by ``rotation``/``translation`` and projected with ``camera``.
"""

from ..core.schema import Field
from .annotations import annotation_schema

SCHEMA = annotation_schema(
    "body",
    1,
    "image",
    (
        Field("model", "string", doc="anny | smpl | smpl-male | smpl-female"),
        Field("pose", "float32", ("N", 3), doc="per-bone (anny, 104 in its bone order) or per-joint (SMPL body, 23) axis-angle, radians"),
        Field("shape", "float32", ("N",), doc="anny phenotype (6: gender, age, muscle, weight, height, proportions) or SMPL betas"),
        Field("rotation", "float32", (3,), doc="axis-angle of the body frame -> camera frame rotation"),
        Field("translation", "float32", (3,), doc="body frame -> camera frame translation, metres"),
        Field("camera", "float32", (4,), doc="fx, fy, cx, cy in pixels (docs/CONVENTIONS.md frame)"),
        Field("joints_2d", "float32", (18, 3), doc="the fitted body's OpenPose COCO-18 joints projected: x, y px, 1 (0 for joints the fit did not use)"),
        Field("residual_px", "float32", doc="confidence-weighted mean 2D keypoint error of the fit, pixels"),
        Field("iterations", "int32", doc="optimiser steps taken before stopping"),
    ),
    doc="A fitted 3D body per person image.",
)

#: what a ``body`` backend returns: the schema's own fields (:attr:`Schema.record_type`)
BodyRecord = SCHEMA.record_type
