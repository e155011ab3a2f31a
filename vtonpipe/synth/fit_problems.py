"""Known-answer body-fitting problems: random bodies photographed by the fitter's camera, with
their exact keypoints (tests and benchmarks/bench_body_fit.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ..models.bodies.fitting import FitConfig, FitModel, facing_rotation, focal_length


@dataclass
class SyntheticBodies:
    """Bodies posed at random and photographed by the fitter's camera: ``pose`` (B, num_bones, 3),
    ``shape`` (B, num_shape), ``rotation`` (B, 3), ``translation`` (B, 3), ``keypoints`` (B, 18, 3)
    (x, y px with noise, confidence 1), ``clean`` (B, 18, 2) exact projections, ``sizes`` (W, H)."""

    pose: np.ndarray
    shape: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    keypoints: np.ndarray
    clean: np.ndarray
    sizes: list[tuple[int, int]]


def random_fit_pose(model: FitModel, rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, num_bones, 3) plausible random poses: each fitted bone turned with a spread that falls
    with its prior weight (0.1 / sqrt(w) rad per axis); hinges bent forward up to 1.4 rad (elbows)
    or 0.9 rad (knees: the axis along the body's left)."""
    pose = np.zeros((n, model.num_bones, 3))
    for bone, w in zip(model.fit_bones, model.bone_weights):
        pose[:, bone] = rng.normal(0.0, 0.1 / math.sqrt(w), (n, 3))
    left = np.asarray(model.left)
    for h in model.hinges:
        axis = np.asarray(h.axis)
        knee = abs(axis @ left) > 0.99
        pose[:, h.bone] = rng.uniform(0.0, 0.9 if knee else 1.4, (n, 1)) * axis + rng.normal(0.0, 0.03, (n, 3))
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
    up = np.asarray(model.up)
    rotations, translations, clean = [], [], []
    for b in range(n):
        yaw = Rotation.from_rotvec(math.radians(rng.uniform(-max_yaw_deg, max_yaw_deg)) * up).as_matrix()
        R = facing_rotation(model, back).numpy() @ yaw
        p = joints[b] @ R.T
        z = f * np.ptp(p[:, 1]) / (0.8 * height)
        centre = 0.5 * (p.min(0) + p.max(0))
        t_b = np.array([-centre[0], -centre[1], z - centre[2]])
        q = p + t_b
        rotations.append(Rotation.from_matrix(R).as_rotvec())
        translations.append(t_b)
        clean.append(f * q[:, :2] / q[:, 2:] + [(width - 1) / 2, (height - 1) / 2])
    clean = np.stack(clean)
    keypoints = np.concatenate([clean + rng.normal(0.0, noise_px, clean.shape), np.ones((n, 18, 1))], -1)
    return SyntheticBodies(
        pose.astype(np.float32), shape.cpu().numpy().astype(np.float32), np.stack(rotations).astype(np.float32),
        np.stack(translations).astype(np.float32), keypoints.astype(np.float32), clean.astype(np.float32), [size] * n,
    )  # fmt: skip
