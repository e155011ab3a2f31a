"""Fitting a parametric body (anny or SMPL) to OpenPose COCO-18 keypoints, many images as one
problem (design, losses and measurements: docs/BODY_FIT.md).

Per image: the rotations of the model's major bones, its shape and the body -> camera rigid
transform are fitted to the detected keypoints (Geman-McClure data term in units of the person's
size, per-bone and hinge pose priors, shape prior, optional silhouette, parsing and depth terms
against a person mask, a LIP parsing and the joints' relative depths: MediaPipe's, a learnt lifter's or both), with a fixed pinhole camera of the assumed vertical field of view
(:func:`~vtonpipe.models.bodies.fitting.config.camera_of`). :func:`fit_bodies` fits a batch as one
Adam problem with early stopping per image.
"""

from .config import FitConfig, camera_of, focal_length, keypoint_problem, person_size
from .models import (
    ANNY_MP33_VERTICES,
    MP33_FIT_LANDMARKS,
    SURFACE_SPACING,
    AnnyFitModel,
    FitModel,
    Hinge,
    SMPLFitModel,
    spread_vertices,
)
from .optimize import (
    EDGE_POINTS,
    SILHOUETTE_LR,
    TORSO_AND_FACE,
    FitResult,
    facing_rotation,
    fit_bodies,
)

__all__ = [
    "ANNY_MP33_VERTICES",
    "EDGE_POINTS",
    "MP33_FIT_LANDMARKS",
    "SILHOUETTE_LR",
    "SURFACE_SPACING",
    "TORSO_AND_FACE",
    "AnnyFitModel",
    "FitConfig",
    "FitModel",
    "FitResult",
    "Hinge",
    "SMPLFitModel",
    "camera_of",
    "facing_rotation",
    "fit_bodies",
    "focal_length",
    "keypoint_problem",
    "person_size",
    "spread_vertices",
]
