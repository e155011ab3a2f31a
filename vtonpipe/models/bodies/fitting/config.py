"""The fitting problem's settings, the fixed camera and the per-image checks that decide
whether an image can be fitted (params of the ``anny-fit`` and ``smpl-fit`` backends)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np

from ....converters.keypoints import COCO18


@dataclass(frozen=True)
class FitConfig:
    """Settings of :func:`fit_bodies` (the ``body`` backends' params). Sizes relative to the
    person's size ``S`` (the larger side of the detected keypoints' box)."""

    fov_y_deg: float = 20.0  # assumed vertical field of view of the photo (fashion photos: long lenses)
    max_iters: int = 300  # Adam steps of the full fit (and of the surface stage), at most
    rigid_iters: int = 40  # Adam steps of the rigid stage (both facings)
    lr: float = 0.05  # pose; other groups are scaled from it
    patience: int = 20
    rel_tol: float = 1e-3
    sigma: float = 0.1  # Geman-McClure scale
    pose_weight: float = 1e-4
    off_axis_weight: float = 20.0  # times pose_weight, on hinge joints' off-axis rotation
    hinge_weight: float = 1.0
    shape_weight: float = 1e-4
    min_keypoints: int = 6
    min_confidence: float = 0.05  # a keypoint counts as detected above this
    max_residual: float = 0.05  # fit_failed above this mean error (fraction of S)
    silhouette_weight: float = 0.0  # > 0: add the silhouette term against the person masks (0: keypoints only)
    off_mask: float = 0.01  # with the silhouette term, keypoints farther than this (fraction of S) outside the person mask are dropped (not the person's); < 0 keeps them
    silhouette_coverage: float = 1.0  # weight of its coverage part relative to its outside part
    silhouette_sigma: float = 0.05  # Geman-McClure scale of both parts (fraction of S), and of the parsing term
    parsing_weight: float = 0.0  # > 0: add the parsing term against the LIP parsings (bare arms, legs, face and shoes covered by their body parts)
    depth_weight: float = 0.0  # > 0: add the depth term against the joints' relative depths (the body backends' depth_cue)
    landmark_weight: float = 0.0  # > 0: add the landmark term against MediaPipe's hand and foot landmarks (MP33_FIT_LANDMARKS; anny only)
    hidden_weight: float = 0.0  # > 0: add MediaPipe's guesses of the wrists and ankles it reports unseen (behind the body) to the keypoint term at this confidence
    keypoint_weights: tuple[float, ...] | None = None  # 18 relative weights of the COCO-18 keypoints in the keypoint term (times their confidence); None: equal
    arm_twists: tuple[float, ...] = (0.0,)  # the upper arms' twists (rad, positive inwards: FitModel.arm_axes) the fit starts from; several: it runs from each, every image keeps its least loss

    def __post_init__(self):
        if self.keypoint_weights is not None:
            weights = tuple(float(w) for w in self.keypoint_weights)
            if len(weights) != len(COCO18) or min(weights) < 0 or max(weights) <= 0:
                raise ValueError(f"keypoint_weights: 18 non-negative weights (COCO-18 order), not all 0; got {self.keypoint_weights}")
            object.__setattr__(self, "keypoint_weights", weights)
        twists = tuple(float(t) for t in self.arm_twists)
        if not twists:
            raise ValueError("arm_twists: at least one start (0.0: the rest pose)")
        object.__setattr__(self, "arm_twists", twists)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> FitConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in params.items() if k in names})


def focal_length(height: int, fov_y_deg: float) -> float:
    """fx = fy (px) of a ``height``-pixel image with vertical field of view ``fov_y_deg``."""
    return 0.5 * height / math.tan(math.radians(fov_y_deg) / 2)


def camera_of(width: int, height: int, fov_y_deg: float) -> np.ndarray:
    """float32 (fx, fy, cx, cy) of the fitter's camera for a ``width x height`` image."""
    f = focal_length(height, fov_y_deg)
    return np.array([f, f, (width - 1) / 2, (height - 1) / 2], np.float32)


def keypoint_problem(keypoints: np.ndarray, min_keypoints: int, min_confidence: float) -> str | None:
    """Why (18, 3) COCO-18 keypoints cannot be fitted, or None: too few detected or no torso."""
    found = keypoints[:, 2] > min_confidence
    if found.sum() < min_keypoints:
        return f"{int(found.sum())} keypoints detected (< {min_keypoints})"
    if not (found[[COCO18.NECK, COCO18.RIGHT_SHOULDER, COCO18.LEFT_SHOULDER]].any() and found[[COCO18.RIGHT_HIP, COCO18.LEFT_HIP]].any()):
        return "no torso: a shoulder (or the neck) and a hip are needed"
    return None


def person_size(keypoints: np.ndarray, min_confidence: float) -> float:
    """S (px): the larger side of the detected keypoints' box."""
    xy = keypoints[keypoints[:, 2] > min_confidence, :2]
    return float(max(np.ptp(xy[:, 0]), np.ptp(xy[:, 1]), 1.0))
