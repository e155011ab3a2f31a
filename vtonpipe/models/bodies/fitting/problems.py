"""Known-answer body-fitting problems: random bodies photographed by the fitter's camera, with
their exact keypoints (the tests, benchmarks/bench_body_fit.py, and the depth lifter's training
set, :mod:`vtonpipe.models.bodies.lifting`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from .config import FitConfig, focal_length
from .models import FitModel
from .optimize import facing_rotation


@dataclass
class SyntheticBodies:
    """Bodies posed at random and photographed by the fitter's camera: ``pose`` (B, num_bones, 3),
    ``shape`` (B, num_shape), ``rotation`` (B, 3), ``translation`` (B, 3), ``keypoints`` (B, 18, 3)
    (x, y px with noise, confidence 1), ``clean`` (B, 18, 2) exact projections, ``joints`` (B, 18,
    3) the keypoints in the camera frame (m, +z away from the camera), ``sizes`` (W, H)."""

    pose: np.ndarray
    shape: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    keypoints: np.ndarray
    clean: np.ndarray
    joints: np.ndarray
    sizes: list[tuple[int, int]]


def random_fit_pose(
    model: FitModel,
    rng: np.random.Generator,
    n: int,
    limb_spread: float | None = None,
    elbow: tuple[float, float] = (0.0, 1.4),
    knee: tuple[float, float] = (0.0, 0.9),
    hinge_noise: float = 0.03,
) -> np.ndarray:
    """(n, num_bones, 3) plausible random poses: each fitted bone turned with a spread that falls
    with its prior weight (0.1 / sqrt(w) rad per axis; ``limb_spread`` rad instead for the bones
    whose weight is below 1: anny's limbs and head); hinges bent forward by a uniform angle in ``elbow`` or
    ``knee`` (rad; the knee's axis is the body's left) plus ``hinge_noise`` rad per axis."""
    pose = np.zeros((n, model.num_bones, 3))
    for bone, w in zip(model.fit_bones, model.bone_weights):
        spread = limb_spread if limb_spread is not None and w < 1 else 0.1 / math.sqrt(w)
        pose[:, bone] = rng.normal(0.0, spread, (n, 3))
    left = np.asarray(model.left)
    for h in model.hinges:
        axis = np.asarray(h.axis)
        low, high = knee if abs(axis @ left) > 0.99 else elbow
        pose[:, h.bone] = rng.uniform(low, high, (n, 1)) * axis + rng.normal(0.0, hinge_noise, (n, 3))
    return pose


def synthetic_bodies(
    model: FitModel,
    n: int,
    seed: int,
    size: tuple[int, int] = (192, 256),
    noise_px: float = 0.0,
    back: bool = False,
    fov_y_deg: float = FitConfig.fov_y_deg,
    max_yaw_deg: float = 40.0,
    pose: np.ndarray | None = None,
) -> SyntheticBodies:
    """``n`` random bodies (random pose unless ``pose`` (n, num_bones, 3) is given, random shape,
    turned up to ``max_yaw_deg`` about the vertical, seen from the back when ``back``) framed so
    their keypoints span 80 % of the image height of a ``size`` (W, H) image, with Gaussian noise
    of ``noise_px`` on the keypoints."""
    rng = np.random.default_rng(seed)
    width, height = size
    pose = random_fit_pose(model, rng, n) if pose is None else np.asarray(pose, np.float64)
    free = rng.normal(0.0, 0.8, (n, model.num_shape))
    t = {"dtype": model.dtype, "device": model.device}
    with torch.no_grad():
        shape = model.shape_from_free(torch.as_tensor(free, **t))
        joints = model.keypoints(torch.as_tensor(pose, **t), shape).double().cpu().numpy()
    f = focal_length(height, fov_y_deg)
    yaw = np.radians(rng.uniform(-max_yaw_deg, max_yaw_deg, n))[:, None] * np.asarray(model.up)
    R = facing_rotation(model, back).numpy() @ Rotation.from_rotvec(yaw).as_matrix()  # (n, 3, 3) body -> camera
    p = np.einsum("nij,nkj->nki", R, joints)
    z = f * np.ptp(p[..., 1], axis=1) / (0.8 * height)
    centre = 0.5 * (p.min(1) + p.max(1))
    translation = np.stack([-centre[:, 0], -centre[:, 1], z - centre[:, 2]], 1)
    q = p + translation[:, None]
    clean = f * q[..., :2] / q[..., 2:] + [(width - 1) / 2, (height - 1) / 2]
    keypoints = np.concatenate([clean + rng.normal(0.0, noise_px, clean.shape), np.ones((n, 18, 1))], -1)
    return SyntheticBodies(
        pose.astype(np.float32), shape.cpu().numpy().astype(np.float32), Rotation.from_matrix(R).as_rotvec().astype(np.float32),
        translation.astype(np.float32), keypoints.astype(np.float32), clean.astype(np.float32), q.astype(np.float32), [size] * n,
    )  # fmt: skip
