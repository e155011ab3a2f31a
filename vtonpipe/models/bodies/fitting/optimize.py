"""The batched fit itself: initialisation, the rigid stage, the losses and Adam with early
stopping per image or per person (design and measurements: docs/BODY_FIT.md)."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ....converters.keypoints import COCO18
from ....converters.labels import LIP
from ..anny import rotvec_to_rotmat
from .config import FitConfig, camera_of, keypoint_problem, person_size
from .models import MP33_FIT_LANDMARKS, FitModel

NECK, R_SHOULDER, L_SHOULDER, R_HIP, L_HIP = COCO18.NECK, COCO18.RIGHT_SHOULDER, COCO18.LEFT_SHOULDER, COCO18.RIGHT_HIP, COCO18.LEFT_HIP
#: points the rigid stage fits: nose, neck, shoulders, hips, eyes, ears (the body at rest fits them)
TORSO_AND_FACE = (0, 1, 2, 5, 8, 11, 14, 15, 16, 17)


@dataclass
class FitResult:
    """Fits of a batch (numpy, float32): ``pose`` (B, num_bones, 3), ``shape`` (B, num_shape),
    ``rotation`` (B, 3) axis-angle and ``translation`` (B, 3) m (body -> camera), ``camera``
    (B, 4) fx, fy, cx, cy, ``joints_2d`` (B, 18, 3) x, y px and 1 where the keypoint was used,
    ``residual_px`` (B,), ``iterations`` (B,) int32 (of the start kept, :attr:`FitConfig.arm_twists`),
    ``loss`` (B,) the objective at the fit (0 where none was fitted), ``failure`` per image: None or
    (reason, message)."""

    model: str
    pose: np.ndarray
    shape: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    camera: np.ndarray
    joints_2d: np.ndarray
    residual_px: np.ndarray
    iterations: np.ndarray
    loss: np.ndarray
    failure: list[tuple[str, str] | None] = field(default_factory=list)

    def record(self, b: int) -> dict[str, Any]:
        """The ``body`` schema fields of image ``b``."""
        return {
            "model": self.model, "pose": self.pose[b], "shape": self.shape[b], "rotation": self.rotation[b],
            "translation": self.translation[b], "camera": self.camera[b], "joints_2d": self.joints_2d[b],
            "residual_px": float(self.residual_px[b]), "iterations": int(self.iterations[b]),
        }  # fmt: skip


def _basis(model: FitModel) -> torch.Tensor:
    """(3, 3) columns: the body frame's left, up, front."""
    return torch.tensor([model.left, model.up, model.front], dtype=torch.float64).T


def facing_rotation(model: FitModel, back: bool) -> torch.Tensor:
    """(3, 3) float64 body -> camera rotation of an upright person facing the camera (their left
    on the image's right) or, ``back``, facing away (their left on the image's left)."""
    s = -1.0 if back else 1.0
    camera = torch.diag(torch.tensor([s, -1.0, -s], dtype=torch.float64))  # columns: images of left, up, front
    return camera @ _basis(model).T


def _torso(kp: np.ndarray, found: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image neck (or shoulders' midpoint) and mid-hip (or the one hip detected), px."""
    neck = kp[NECK, :2] if found[NECK] else kp[[R_SHOULDER, L_SHOULDER]][found[[R_SHOULDER, L_SHOULDER]], :2].mean(0)
    hip = kp[[R_HIP, L_HIP]][found[[R_HIP, L_HIP]], :2].mean(0)
    return neck, hip


class _Batch:
    """Per-image constants of a fitting batch, as tensors."""

    def __init__(
        self, model: FitModel, keypoints: np.ndarray, sizes: Sequence[tuple[int, int]], config: FitConfig, depths: np.ndarray | None = None, hidden: np.ndarray | None = None
    ):
        """``hidden`` (B, 18, 3): guesses of undetected joints (confidence > 0 where guessed), in
        the keypoint term at ``config.hidden_weight``; the detected keypoints alone set the
        confidences, the person sizes and the residual."""
        t = {"dtype": model.dtype, "device": model.device}
        self.n = len(keypoints)
        found = keypoints[:, :, 2] > config.min_confidence
        self.found = found
        conf = np.where(found, keypoints[:, :, 2], 0.0)
        self.conf = torch.as_tensor(conf, **t)
        target, weight = keypoints[:, :, :2], conf
        if hidden is not None:
            guessed = ~found & (hidden[:, :, 2] > 0)
            target = np.where(guessed[..., None], hidden[:, :, :2], target)
            weight = np.where(guessed, config.hidden_weight, weight)
        self.target = torch.as_tensor(target, **t)
        self.weight = torch.as_tensor(weight, **t)
        if config.keypoint_weights is not None:
            self.weight = self.weight * torch.as_tensor(config.keypoint_weights, **t)
        if depths is not None:  # (B, 18) px, NaN unknown: the depth term's targets and weights
            known = np.isfinite(depths)
            self.depth = torch.as_tensor(np.where(known, depths, 0.0), **t)
            self.depth_conf = torch.as_tensor(np.where(found & known, keypoints[:, :, 2], 0.0), **t)
        self.scale = torch.as_tensor([person_size(k, config.min_confidence) for k in keypoints], **t)
        cams = np.stack([camera_of(w, h, config.fov_y_deg) for w, h in sizes])
        self.f = torch.as_tensor(cams[:, 0], **t)
        self.c = torch.as_tensor(cams[:, 2:], **t)

    def project(self, points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Pixels (b, P, 2) of camera-frame points (b, P, 3) of images ``idx``."""
        z = points[..., 2:].clamp_min(1e-3)
        return self.f[idx, None, None] * points[..., :2] / z + self.c[idx, None]


def _gm(r2: torch.Tensor, sigma: float) -> torch.Tensor:
    """Geman-McClure of squared residuals: sigma^2 r^2 / (sigma^2 + r^2)."""
    return sigma**2 * r2 / (sigma**2 + r2)


def _weighted_rho(r2: torch.Tensor, w: torch.Tensor, sigma: float) -> torch.Tensor:
    """(b,) the ``w``-weighted mean over the last axis of Geman-McClure of ``r2`` (b, P); 0 where all ``w`` are 0."""
    return (w * _gm(r2, sigma)).sum(-1) / w.sum(-1).clamp_min(1e-9)


def _data_term(pixels: torch.Tensor, batch: _Batch, idx: torch.Tensor, sigma: float, weights: torch.Tensor | None = None) -> torch.Tensor:
    r2 = ((pixels - batch.target[idx]) ** 2).sum(-1) / batch.scale[idx, None] ** 2
    return _weighted_rho(r2, batch.weight[idx] if weights is None else batch.weight[idx] * weights, sigma)


def _depth_term(joints: torch.Tensor, batch: _Batch, idx: torch.Tensor, config: FitConfig) -> torch.Tensor:
    """(b,) depth term of images ``idx`` whose camera-frame joints are ``joints`` (b, 18, 3) m:
    the confidence-weighted mean over the detected joints with a depth of ``rho`` (Geman-McClure,
    ``sigma``) of ``(d_k - t_k) / S``, ``d_k = f (Z_k - Z_hips) / Z_hips`` the joint's depth
    relative to the hips' midpoint in px at the body's distance, ``t_k`` its target (``depths``)."""
    z = joints[..., 2]
    z_hips = 0.5 * (z[:, R_HIP] + z[:, L_HIP])
    relative = batch.f[idx, None] * (z - z_hips[:, None]) / z_hips[:, None]
    r2 = ((relative - batch.depth[idx]) / batch.scale[idx, None]) ** 2
    return _weighted_rho(r2, batch.depth_conf[idx], config.sigma)


#: mask contour points per image of the silhouette term's coverage part
EDGE_POINTS = 160
#: learning rate of the surface stage (silhouette and parsing terms), times ``FitConfig.lr``: it refines a converged keypoint
#: fit (at the full rate Adam's first steps throw the fit off and early stopping ends the stage)
SILHOUETTE_LR = 0.1


class _Silhouettes:
    """The person masks of a batch, ready for the silhouette term (:meth:`loss`).

    ``distance`` (B, 1, Hc, Wc) float: each mask's distance transform (px from each pixel centre to
    the nearest mask pixel centre, 0 on the mask) on a canvas that extends the image by ``margin``
    px on every side with the mask's border pixels replicated (a person cut by the frame goes on
    past it); image pixel ``(x, y)`` is canvas pixel ``(x + margin, y + margin)``. ``edge`` (B, P, 2)
    px: up to ``EDGE_POINTS`` points evenly spaced along the mask's contours (outer and holes),
    leaving out the image border (where the frame, not the person, ends the mask); ``edge_weight``
    (B, P): 1 / the number of points, 0 for padding. ``margin`` is a quarter of the batch's
    largest image side, so ``distance`` takes 0.5 MB per 256 x 192 image, 8 MB per 1024 x 768.
    """

    def __init__(self, masks: Sequence[np.ndarray], model: FitModel):
        heights, widths = zip(*(m.shape for m in masks))
        self.margin = max(*heights, *widths) // 4
        canvas = (max(heights) + 2 * self.margin, max(widths) + 2 * self.margin)
        distance = np.empty((len(masks), 1, *canvas), np.float32)
        edge = np.zeros((len(masks), EDGE_POINTS, 2), np.float32)
        weight = np.zeros((len(masks), EDGE_POINTS), np.float32)
        for b, mask in enumerate(masks):
            h, w = mask.shape
            m = self.margin
            outside = cv2.copyMakeBorder((mask == 0).astype(np.uint8), m, canvas[0] - h - m, m, canvas[1] - w - m, cv2.BORDER_REPLICATE)
            distance[b, 0] = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            contours, _ = cv2.findContours((mask > 0).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
            points = np.concatenate([c[:, 0] for c in contours]) if contours else np.zeros((0, 2), np.int32)
            points = points[(points[:, 0] > 0) & (points[:, 0] < w - 1) & (points[:, 1] > 0) & (points[:, 1] < h - 1)]
            n = min(len(points), EDGE_POINTS)
            edge[b, :n] = points[np.linspace(0, len(points) - 1, n).round().astype(int)]
            weight[b, :n] = 1.0 / max(n, 1)
        t = {"dtype": model.dtype, "device": model.device}
        self.distance = torch.as_tensor(distance, **t)
        self.edge = torch.as_tensor(edge, **t)
        self.edge_weight = torch.as_tensor(weight, **t)
        self._to_grid = 2.0 / torch.tensor([canvas[1] - 1, canvas[0] - 1], **t)

    def loss(self, pixels: torch.Tensor, idx: torch.Tensor, scale: torch.Tensor, config: FitConfig) -> torch.Tensor:
        """(b,) silhouette term of images ``idx`` whose surface points project to ``pixels`` (b, K, 2):
        the mean ``rho`` of the points' distance outside the mask plus ``silhouette_coverage`` x the
        mean ``rho`` of each contour point's distance to the nearest projected point, distances over
        the person sizes ``scale`` (b,) px, ``rho`` Geman-McClure with ``silhouette_sigma``."""
        grid = (pixels + self.margin) * self._to_grid - 1.0
        out = torch.nn.functional.grid_sample(self.distance[idx], grid[:, :, None], align_corners=True, padding_mode="border")[:, 0, :, 0]
        outside = _gm((out / scale[:, None]) ** 2, config.silhouette_sigma).mean(-1)
        coverage = _coverage(self.edge[idx], self.edge_weight[idx], pixels, scale, config.silhouette_sigma)
        return outside + config.silhouette_coverage * coverage


def _coverage(targets: torch.Tensor, weights: torch.Tensor, pixels: torch.Tensor, scale: torch.Tensor, sigma: float) -> torch.Tensor:
    """(b,) weighted sum over the ``targets`` (b, P, 2) px of ``rho`` of each one's distance to the
    nearest of ``pixels`` (b, K, 2), over the person sizes ``scale`` (b,); ``weights`` (b, P)."""
    with torch.no_grad():
        # (b, P): the min's (sub)gradient flows to these (min's indices: 3x faster than argmin on CPU)
        nearest = torch.baddbmm((pixels**2).sum(-1)[:, None], targets, pixels.transpose(1, 2), alpha=-2.0).min(-1).indices
    gap2 = ((targets - pixels.gather(1, nearest[..., None].expand(-1, -1, 2))) ** 2).sum(-1) / scale[:, None] ** 2
    return (weights * _gm(gap2, sigma)).sum(-1)


#: the parsing term's regions: LIP classes of bare skin and shoes -> the DensePose parts
#: (:data:`~vtonpipe.models.render.iuv.PART_NAMES`) whose projection must cover them. A bare-skin
#: pixel shows that body part in front, whatever covers the rest of the body, so the term holds
#: under occlusion and clothing; garments (loose, and over several parts) are left to the silhouette.
PARSING_REGIONS: dict[LIP, tuple[int, ...]] = {
    LIP.LEFT_ARM: (4, 15, 17, 19, 21),
    LIP.RIGHT_ARM: (3, 16, 18, 20, 22),
    LIP.LEFT_LEG: (8, 10, 12, 14),
    LIP.RIGHT_LEG: (7, 9, 11, 13),
    LIP.LEFT_SHOE: (5, 12, 14),
    LIP.RIGHT_SHOE: (6, 11, 13),
    LIP.FACE: (23, 24),
}
#: pixels per region and image the parsing term samples (evenly in raster order)
REGION_POINTS = 32


class _PartRegions:
    """The LIP parsings of a batch, ready for the parsing term (:meth:`loss`).

    ``points`` (B, G, P, 2) px: up to ``REGION_POINTS`` pixels of each of the G
    :data:`PARSING_REGIONS` of each parsing; ``weight`` (B, G, P): each region's share of the
    image's labelled region pixels over its point count (0 for padding), so that the term is the
    mean over those pixels; ``parts``: per region, the surface points (indices into
    ``model.surface_index``) of its body parts."""

    def __init__(self, parsings: Sequence[np.ndarray], model: FitModel):
        points = np.zeros((len(parsings), len(PARSING_REGIONS), REGION_POINTS, 2), np.float32)
        weight = np.zeros((len(parsings), len(PARSING_REGIONS), REGION_POINTS), np.float32)
        for b, parsing in enumerate(parsings):
            pixels = [np.nonzero(parsing == label) for label in PARSING_REGIONS]
            total = sum(len(ys) for ys, _ in pixels)
            for g, (ys, xs) in enumerate(pixels):
                n = min(len(ys), REGION_POINTS)
                pick = np.linspace(0, len(ys) - 1, n).round().astype(int)
                points[b, g, :n] = np.stack([xs[pick], ys[pick]], 1)
                weight[b, g, :n] = len(ys) / total / n if n else 0.0
        t = {"dtype": model.dtype, "device": model.device}
        self.points = torch.as_tensor(points, **t)
        self.weight = torch.as_tensor(weight, **t)
        self.parts = [torch.as_tensor(np.nonzero(np.isin(model.surface_part, parts))[0], device=model.device) for parts in PARSING_REGIONS.values()]

    def loss(self, pixels: torch.Tensor, idx: torch.Tensor, scale: torch.Tensor, config: FitConfig) -> torch.Tensor:
        """(b,) parsing term of images ``idx`` whose surface points project to ``pixels`` (b, K, 2):
        the mean over the region pixels of ``rho`` of their distance to the nearest projected point
        of their region's body parts, over the person sizes ``scale`` (b,) px."""
        return sum(
            _coverage(self.points[idx, g], self.weight[idx, g], pixels[:, parts], scale, config.silhouette_sigma) for g, parts in enumerate(self.parts)
        )


class _Landmarks:
    """MediaPipe's hand and foot landmarks of a batch (:data:`~.models.MP33_FIT_LANDMARKS`), ready
    for the landmark term (:meth:`loss`): ``target`` (B, L, 2) px, ``conf`` (B, L) (0: not seen),
    ``points`` the positions of their vertices among the model's surface points."""

    def __init__(self, landmarks: np.ndarray, model: FitModel):
        if model.landmark_points is None:
            raise ValueError(f"landmark_weight > 0: the {model.name} fit model marks no MediaPipe landmarks (anny-fit does)")
        t = {"dtype": model.dtype, "device": model.device}
        self.target = torch.as_tensor(landmarks[..., :2], **t)
        self.conf = torch.as_tensor(landmarks[..., 2], **t)
        self.points = torch.as_tensor(model.landmark_points, device=model.device)

    def loss(self, pixels: torch.Tensor, idx: torch.Tensor, scale: torch.Tensor, config: FitConfig) -> torch.Tensor:
        """(b,) landmark term of images ``idx`` whose surface points project to ``pixels`` (b, K, 2):
        the confidence-weighted mean ``rho`` (Geman-McClure, ``sigma``) of each landmark's px gap to
        its vertex's projection over the person sizes ``scale`` (b,); 0 for an image with none seen."""
        r2 = ((pixels[:, self.points] - self.target[idx]) ** 2).sum(-1) / scale[:, None] ** 2
        return _weighted_rho(r2, self.conf[idx], config.sigma)


class _Params(torch.nn.Module):
    """The optimised variables of a batch (see the module docstring)."""

    def __init__(self, model: FitModel, R0: torch.Tensor, t0: torch.Tensor, n_fit: int, n_shapes: int | None = None):
        """``n_shapes``: rows of ``shape`` (one per person; default one per image)."""
        super().__init__()
        n, t = len(R0), {"dtype": model.dtype, "device": model.device}
        self.register_buffer("R0", R0.to(**t))
        self.register_buffer("z0", t0[:, 2].to(**t))
        self.register_buffer("uv0", (t0[:, :2] / t0[:, 2:]).to(**t))
        self.delta = torch.nn.Parameter(torch.zeros(n, 3, **t))
        self.uv = torch.nn.Parameter(torch.zeros(n, 2, **t))
        self.log_z = torch.nn.Parameter(torch.zeros(n, 1, **t))
        self.pose = torch.nn.Parameter(torch.zeros(n, n_fit, 3, **t))
        self.shape = torch.nn.Parameter(torch.zeros(n if n_shapes is None else n_shapes, model.num_shape, **t))

    def rigid(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        R = rotvec_to_rotmat(self.delta[idx]) @ self.R0[idx]
        z = self.z0[idx, None] * torch.exp(self.log_z[idx])
        return R, torch.cat([(self.uv0[idx] + self.uv[idx]) * z, z], -1)

    #: learning rate of each variable, times ``FitConfig.lr`` (Adam steps are about lr per element:
    #: radians for rotations, depth-relative for ``uv`` and ``log_z``, logits or betas for shape)
    LR_SCALE = {"pose": 1.0, "delta": 0.7, "uv": 0.07, "log_z": 0.2, "shape": 1.5}

    def groups(self, lr: float, names: Sequence[str] = tuple(LR_SCALE)) -> list[dict[str, Any]]:
        """Adam parameter groups of the variables ``names``."""
        return [{"params": [getattr(self, n)], "lr": self.LR_SCALE[n] * lr} for n in names]


def _pose_prior(model: FitModel, pose_fit: torch.Tensor, config: FitConfig) -> torch.Tensor:
    """(B,) pose prior of the fitted bones' rotations (B, n_fit, 3)."""
    w = torch.as_tensor(model.bone_weights, dtype=pose_fit.dtype, device=pose_fit.device)
    loss = config.pose_weight * (w * (pose_fit**2).sum(-1)).sum(-1)
    row = {bone: i for i, bone in enumerate(model.fit_bones)}
    for h in model.hinges:
        theta = pose_fit[:, row[h.bone]]
        axis = torch.as_tensor(h.axis, dtype=theta.dtype, device=theta.device)
        flexion = theta @ axis
        off_axis = theta - flexion[:, None] * axis
        loss = loss + config.pose_weight * config.off_axis_weight * (off_axis**2).sum(-1)
        loss = loss + config.hinge_weight * torch.relu(h.min_flexion - flexion) ** 2
    return loss


def _full_pose(model: FitModel, pose_fit: torch.Tensor) -> torch.Tensor:
    full = pose_fit.new_zeros(len(pose_fit), model.num_bones, 3)
    return full.index_copy(1, torch.as_tensor(model.fit_bones, device=pose_fit.device), pose_fit)


def _initial_rigid(model: FitModel, batch: _Batch, keypoints: np.ndarray, rest: torch.Tensor, back: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """R_0 (B, 3, 3), t_0 (B, 3) float64: upright, facing (or not) the camera, torso on the image torso."""
    rest = rest.double()
    body_neck, body_hip = rest[NECK], 0.5 * (rest[R_HIP] + rest[L_HIP])
    torso_m = float((body_neck - body_hip).norm())
    centre_body = 0.5 * (body_neck + body_hip)
    Rs, ts = [], []
    for b in range(batch.n):
        neck, hip = _torso(keypoints[b], batch.found[b])
        d = neck - hip
        torso_px = max(float(np.hypot(*d)), 1.0)
        roll = math.atan2(d[0], -d[1])
        R_roll = torch.as_tensor(Rotation.from_rotvec([0.0, 0.0, roll]).as_matrix())
        R = R_roll @ facing_rotation(model, back)
        f = float(batch.f[b])
        z = f * torso_m / torso_px
        centre = 0.5 * (neck + hip)
        ray = torch.tensor([(centre[0] - float(batch.c[b, 0])) / f, (centre[1] - float(batch.c[b, 1])) / f, 1.0], dtype=torch.float64)
        Rs.append(R)
        ts.append(z * ray - R @ centre_body)
    return torch.stack(Rs), torch.stack(ts)


def _rigid_stage(model: FitModel, batch: _Batch, keypoints: np.ndarray, config: FitConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Both facings fitted rigidly (rest body, torso and face points); the better R, t per image."""
    with torch.no_grad():
        rest = model.keypoints(torch.zeros(1, model.num_bones, 3, dtype=model.dtype, device=model.device), model.mean_shape())[0]
    inits = [_initial_rigid(model, batch, keypoints, rest, back) for back in (False, True)]
    R0 = torch.cat([r for r, _ in inits])
    t0 = torch.cat([t for _, t in inits])
    params = _Params(model, R0, t0, len(model.fit_bones))
    opt = torch.optim.Adam(params.groups(config.lr, ("delta", "uv", "log_z")))
    idx = torch.arange(2 * batch.n, device=model.device)
    image = idx % batch.n
    weights = torch.zeros(18, dtype=model.dtype, device=model.device)
    weights[list(TORSO_AND_FACE)] = 1.0
    for _ in range(config.rigid_iters):
        opt.zero_grad()
        R, t = params.rigid(idx)
        loss = _data_term(batch.project(rest @ R.transpose(1, 2) + t[:, None], image), batch, image, config.sigma, weights)
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        R, t = params.rigid(idx)
        loss = _data_term(batch.project(rest @ R.transpose(1, 2) + t[:, None], image), batch, image, config.sigma, weights)
        back = loss[batch.n :] < loss[: batch.n]
        pick = torch.where(back, idx[batch.n :], idx[: batch.n])
    return R[pick].double(), t[pick].double()


def drop_off_mask(keypoints: np.ndarray, masks: Sequence[np.ndarray], config: FitConfig, sizes_px: Sequence[float] | None = None) -> np.ndarray:
    """Copy of the (B, 18, 3) ``keypoints`` with those farther than ``config.off_mask`` person sizes
    outside their image's person mask set undetected (0, 0, 0): a joint off the silhouette is
    another thing's (harder samples: 0.2-0.9 % of the detected points lie more than 1 px off it,
    15-40 px from the true joint on average, against 1.8-2.6 px for the rest). ``sizes_px`` (B,):
    the person sizes (default: :func:`person_size` of the points themselves)."""
    out = keypoints.copy()
    for b, (kp, mask) in enumerate(zip(keypoints, masks)):
        found = kp[:, 2] > config.min_confidence
        if not found.any():
            continue
        h, w = mask.shape
        outside = cv2.distanceTransform((mask == 0).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        x = np.clip(np.round(kp[:, 0]).astype(int), 0, w - 1)
        y = np.clip(np.round(kp[:, 1]).astype(int), 0, h - 1)
        size = person_size(kp, config.min_confidence) if sizes_px is None else sizes_px[b]
        off = found & (outside[y, x] > config.off_mask * size)
        out[b, off] = 0.0
    return out


def fit_bodies(
    model: FitModel,
    keypoints: np.ndarray,
    sizes: Sequence[tuple[int, int]],
    config: FitConfig = FitConfig(),
    masks: Sequence[np.ndarray] | None = None,
    people: Sequence[Hashable] | None = None,
    parsings: Sequence[np.ndarray] | None = None,
    depths: np.ndarray | None = None,
    landmarks: np.ndarray | None = None,
    hidden: np.ndarray | None = None,
) -> FitResult:
    """Fit ``model`` to the COCO-18 keypoints (B, 18, 3) (x, y px, confidence) of B images of
    ``sizes`` (W, H) as one batched problem; with ``config.silhouette_weight > 0`` also to the
    person ``masks`` (B of uint8 (H, W), 1 on the person; required then, unused otherwise), and with
    ``config.parsing_weight > 0`` to the LIP ``parsings`` (B of uint8 (H, W) ids; likewise), and
    with ``config.depth_weight > 0`` to the joints' relative ``depths`` (B, 18) (px at the body's
    distance, ``f (Z_k - Z_hips) / Z_hips``, smaller = nearer; NaN unknown: the body backends give
    MediaPipe's scaled ``z``, the :mod:`~vtonpipe.models.bodies.lifting` lifter's or their mean),
    and with ``config.landmark_weight > 0`` to MediaPipe's hand and foot ``landmarks`` (B, 10, 3)
    (x, y px, confidence; :data:`~.models.MP33_FIT_LANDMARKS` order, 0 confidence unseen), and
    with ``config.hidden_weight > 0`` to the ``hidden`` (B, 18, 3) guesses of joints the keypoints
    leave undetected (:func:`~vtonpipe.converters.keypoints.mp33_hidden_joints`; confidence > 0
    where guessed).
    ``people`` (B keys, optional): images with equal keys show one person and share one shape,
    fitted jointly (their losses summed; they stop together). Images whose keypoints cannot be
    fitted (:func:`keypoint_problem`) get ``failure = ("too_few_keypoints", ...)`` and zero parameters.
    With several ``config.arm_twists`` the fit runs from each, and every image (every person, when
    fitted jointly) keeps the one of least loss."""
    fits = [
        _fit_from(model, keypoints, sizes, config, masks, people, parsings, depths, landmarks, hidden, twist)
        for twist in config.arm_twists
    ]
    return fits[0] if len(fits) == 1 else _least_loss(fits, people)


def _least_loss(fits: Sequence[FitResult], people: Sequence[Hashable] | None) -> FitResult:
    """Per image, or per person (the sum over their images), the fit of least loss among ``fits``
    of one batch; a start that failed (``fit_failed``: diverged, or too far off its keypoints)
    loses to any that did not."""
    losses = np.stack([np.where([x is None for x in f.failure], f.loss.astype(np.float64), np.inf) for f in fits])  # (starts, B)
    losses = np.where(np.isnan(losses), np.inf, losses)
    if people is not None:
        key = {k: i for i, k in enumerate(dict.fromkeys(people))}
        group = np.array([key[k] for k in people])
        per_person = np.zeros((len(fits), len(key)))
        np.add.at(per_person, (slice(None), group), losses)
        losses = per_person[:, group]
    best = np.argmin(losses, axis=0)
    rows = np.arange(losses.shape[1])
    pick = lambda name: np.stack([getattr(f, name) for f in fits])[best, rows]  # noqa: E731
    arrays = ("pose", "shape", "rotation", "translation", "camera", "joints_2d", "residual_px", "iterations", "loss")
    return FitResult(fits[0].model, *(pick(a) for a in arrays), [fits[k].failure[b] for b, k in enumerate(best)])


def _fit_from(
    model: FitModel,
    keypoints: np.ndarray,
    sizes: Sequence[tuple[int, int]],
    config: FitConfig,
    masks: Sequence[np.ndarray] | None,
    people: Sequence[Hashable] | None,
    parsings: Sequence[np.ndarray] | None,
    depths: np.ndarray | None,
    landmarks: np.ndarray | None,
    hidden: np.ndarray | None,
    arm_twist: float,
) -> FitResult:
    """:func:`fit_bodies` from the upper arms twisted by ``arm_twist`` rad (:attr:`FitModel.arm_axes`)."""
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, 18, 3)
    n = len(keypoints)
    if people is not None and len(people) != n:
        raise ValueError(f"{len(people)} people keys for {n} images")
    for weight, maps, what in (("silhouette_weight", masks, "person mask"), ("parsing_weight", parsings, "LIP parsing")):
        if getattr(config, weight) > 0 and (maps is None or [m.shape[::-1] for m in maps] != [tuple(s) for s in sizes]):
            raise ValueError(f"{weight} > 0 needs one {what} (H, W) per image, of the image's size")
    if config.depth_weight > 0 and (depths is None or np.shape(depths) != (n, 18)):
        raise ValueError(f"depth_weight > 0 needs the joints' relative depths (B, 18) = ({n}, 18), got {None if depths is None else np.shape(depths)}")
    if config.landmark_weight > 0 and (landmarks is None or np.shape(landmarks) != (n, len(MP33_FIT_LANDMARKS), 3)):
        raise ValueError(f"landmark_weight > 0 needs MediaPipe's hand and foot landmarks (B, 10, 3) = ({n}, 10, 3), got {None if landmarks is None else np.shape(landmarks)}")
    if config.hidden_weight > 0 and (hidden is None or np.shape(hidden) != (n, 18, 3)):
        raise ValueError(f"hidden_weight > 0 needs the guesses of the undetected joints (B, 18, 3) = ({n}, 18, 3), got {None if hidden is None else np.shape(hidden)}")
    hidden = np.asarray(hidden, np.float64) if config.hidden_weight > 0 else None
    if config.silhouette_weight > 0 and config.off_mask >= 0:
        people_px = [person_size(k, config.min_confidence) for k in keypoints]
        if hidden is not None:
            hidden = drop_off_mask(hidden, masks, config, people_px)
        keypoints = drop_off_mask(keypoints, masks, config, people_px)
    problems = [keypoint_problem(k, config.min_keypoints, config.min_confidence) for k in keypoints]
    ok = [b for b in range(n) if problems[b] is None]
    result = FitResult(
        model.name,
        np.zeros((n, model.num_bones, 3), np.float32), np.zeros((n, model.num_shape), np.float32),
        np.zeros((n, 3), np.float32), np.zeros((n, 3), np.float32),
        np.stack([camera_of(w, h, config.fov_y_deg) for w, h in sizes]) if n else np.zeros((0, 4), np.float32),
        np.zeros((n, 18, 3), np.float32), np.zeros(n, np.float32), np.zeros(n, np.int32), np.zeros(n, np.float32),
        [None if p is None else ("too_few_keypoints", p) for p in problems],
    )  # fmt: skip
    if not ok:
        return result
    kp = keypoints[ok]
    batch = _Batch(model, kp, [sizes[b] for b in ok], config, np.asarray(depths, np.float64)[ok] if config.depth_weight > 0 else None, None if hidden is None else hidden[ok])
    R0, t0 = _rigid_stage(model, batch, kp, config)
    keys = list(range(len(ok))) if people is None else [people[b] for b in ok]
    rows = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    person = torch.as_tensor([rows[k] for k in keys], device=model.device)  # (m,) image -> shape row
    params = _Params(model, R0, t0, len(model.fit_bones), len(rows))
    if arm_twist:
        row = {bone: i for i, bone in enumerate(model.fit_bones)}
        with torch.no_grad():
            for bone, axis in model.arm_axes:
                params.pose[:, row[bone]] = arm_twist * torch.as_tensor(axis, dtype=model.dtype, device=model.device)

    def losses(idx: torch.Tensor, terms: Sequence[tuple[float, _Silhouettes | _PartRegions | _Landmarks]]) -> torch.Tensor:
        """``terms``: (weight, term) of the surface terms (none: keypoints and priors only)."""
        pose_fit, shape = params.pose[idx], model.shape_from_free(params.shape[person[idx]])
        pose = _full_pose(model, pose_fit)
        R, t = params.rigid(idx)
        if not terms:
            joints = model.keypoints(pose, shape)
        else:
            joints, surface = model.keypoints_and_surface(pose, shape)
        joints = joints @ R.transpose(1, 2) + t[:, None]
        loss = _data_term(batch.project(joints, idx), batch, idx, config.sigma)
        if config.depth_weight > 0:
            loss = loss + config.depth_weight * _depth_term(joints, batch, idx, config)
        loss = loss + _pose_prior(model, pose_fit, config) + config.shape_weight * model.shape_prior(shape)
        if terms:
            pixels = batch.project(surface @ R.transpose(1, 2) + t[:, None], idx)
            for weight, term in terms:
                loss = loss + weight * term.loss(pixels, idx, batch.scale[idx], config)
        return loss

    steps = _descend(params, lambda idx: losses(idx, ()), config.lr, config, person)
    terms = []
    if config.silhouette_weight > 0:
        terms.append((config.silhouette_weight, _Silhouettes([masks[b] for b in ok], model)))
    if config.parsing_weight > 0:
        terms.append((config.parsing_weight, _PartRegions([parsings[b] for b in ok], model)))
    if config.landmark_weight > 0:
        terms.append((config.landmark_weight, _Landmarks(np.asarray(landmarks, np.float64)[ok], model)))
    if terms:  # the surface stage: refine the keypoint fit
        steps += _descend(params, lambda idx: losses(idx, terms), SILHOUETTE_LR * config.lr, config, person)

    m = len(ok)
    with torch.no_grad():
        all_idx = torch.arange(m, device=model.device)
        pose_fit, shape = params.pose.detach(), model.shape_from_free(params.shape.detach()[person])
        pose = _full_pose(model, pose_fit)
        joints = model.keypoints(pose, shape)
        R, t = params.rigid(all_idx)
        pixels = batch.project(joints @ R.transpose(1, 2) + t[:, None], all_idx)
        loss = losses(all_idx, terms).double().cpu().numpy()
    pixels = pixels.double().cpu().numpy()
    err = np.linalg.norm(pixels - kp[:, :, :2], axis=-1)
    conf = batch.conf.double().cpu().numpy()
    residual = (conf * err).sum(1) / conf.sum(1)
    scale = batch.scale.double().cpu().numpy()
    for i, b in enumerate(ok):
        result.pose[b] = pose[i].cpu().numpy()
        result.shape[b] = shape[i].cpu().numpy()
        result.rotation[b] = Rotation.from_matrix(R[i].double().cpu().numpy()).as_rotvec()
        result.translation[b] = t[i].cpu().numpy()
        result.joints_2d[b, :, :2] = pixels[i]
        result.joints_2d[b, :, 2] = batch.found[i]
        result.residual_px[b] = residual[i]
        result.loss[b] = loss[i]
        result.iterations[b] = config.rigid_iters + int(steps[i])
        if not (np.isfinite(residual[i]) and np.isfinite(result.translation[b]).all()):
            result.failure[b] = ("fit_failed", "the fit diverged (non-finite parameters)")
        elif residual[i] > config.max_residual * scale[i]:
            result.failure[b] = ("fit_failed", f"mean keypoint error {residual[i]:.1f} px > {config.max_residual:g} x person size {scale[i]:.0f} px")
    return result


def _descend(params: _Params, losses: Callable[[torch.Tensor], torch.Tensor], lr: float, config: FitConfig, person: torch.Tensor) -> torch.Tensor:
    """Adam (learning rate ``lr``, scaled per variable) on the sum of the per-image ``losses(idx)``
    (b,), with early stopping per person (``person`` (B,): each image's shape row; a person's loss
    is the sum of their images'); leaves every person at their best parameters. Returns the steps
    taken per image (B,) int64."""
    device = params.pose.device
    opt = torch.optim.Adam(params.groups(lr))
    people = len(params.shape)
    of = person.cpu()
    best = torch.full((people,), math.inf, dtype=torch.float64)
    best_state = {k: v.detach().clone() for k, v in params.named_parameters()}
    stall = torch.zeros(people, dtype=torch.int64)
    steps = torch.zeros(people, dtype=torch.int64)
    active = torch.ones(people, dtype=torch.bool)
    for _ in range(config.max_iters + 1):
        images = torch.nonzero(active[of]).flatten()
        opt.zero_grad()
        loss = losses(images.to(device))
        idx = torch.nonzero(active).flatten()  # the active people
        member = torch.searchsorted(idx, of[images])  # each image's person, as a position in idx
        value = torch.zeros(people, dtype=torch.float64).index_add_(0, of[images], loss.detach().double().cpu())[idx]
        improved = value < best[idx] * (1 - config.rel_tol)
        better = value < best[idx]
        with torch.no_grad():
            for name, p in params.named_parameters():
                keep = idx[better] if name == "shape" else images[better[member]]
                best_state[name][keep.to(device)] = p[keep.to(device)]
        best[idx[better]] = value[better]
        stall[idx] = torch.where(improved, 0, stall[idx] + 1)
        done = (stall[idx] >= config.patience) | (steps[idx] >= config.max_iters) | ~torch.isfinite(value)
        if done.any():
            _freeze(params, opt, best_state, idx[done].to(device), person)
            active[idx[done]] = False
        if not active.any():
            break
        loss[~done[member].to(loss.device)].sum().backward()
        opt.step()
        steps[idx[~done]] += 1
    return steps[of]


def _freeze(params: _Params, opt: torch.optim.Adam, best_state: dict[str, torch.Tensor], people: torch.Tensor, person: torch.Tensor) -> None:
    """Put ``people`` (their shape rows and the images of theirs, ``person`` mapping images to
    rows) back to their best parameters and zero their Adam moments (they stop moving)."""
    images = torch.nonzero(torch.isin(person, people)).flatten()
    with torch.no_grad():
        for name, p in params.named_parameters():
            idx = people if name == "shape" else images
            p[idx] = best_state[name][idx]
            state = opt.state.get(p)
            if state:
                state["exp_avg"][idx] = 0.0