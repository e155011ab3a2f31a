"""A depth cue for the body fit learnt from anny: one photo's COCO-18 keypoints -> each joint's
depth relative to the hips' midpoint.

A limb's 2D length says how far it points towards or away from the camera, not which way.
MediaPipe's ``z`` says which way, but is 5-6 cm off on average (docs/BODY_FIT.md). The lifter
makes a second guess, and its errors are not MediaPipe's. It is the mean of three residual MLPs
in the manner of Martinez et al., "A simple yet effective baseline for 3d human pose estimation"
(ICCV 2017), but with LayerNorm blocks. They are trained on random anny bodies:

- poses from :func:`~vtonpipe.models.bodies.fitting.problems.random_fit_pose` with the limbs and
  the head spread wider, elbows from straight to fully bent;
- on a share of them (``arm_share``), upper arms drawn uniformly over the shoulder's range of
  motion (:func:`arms_in_range`: at the side to overhead, back to forward, twisted either way),
  which the limbs' spread alone rarely reaches;
- every turn about the vertical, and random shapes;
- photographed by the fitter's camera.

It sees none of the sample's poses.

**Units.** The inputs are the 18 keypoints (x, y px) minus the hips' midpoint, over the torso
length ``t`` (px, the neck to the hips' midpoint). The outputs are the relative depths
``f (Z_k - Z_hips) / Z_hips``, over ``t``. These are px at the body's distance, the body fit's
depth term's units (:func:`lift_depths` returns px).

**Weights.** Trained on first use, in about 6 minutes on two CPU cores. They are cached as
``cache_dir() / "depth_lifter" / <key>.pt``, the key a hash of :class:`LifterConfig` and
:data:`LIFTER_VERSION`. Concurrent processes wait for the one that trains.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ...config import cache_dir
from ...converters.keypoints import COCO18
from ...io import atomic_path, exclusive_lock
from .anny import AnnyBody
from .fitting import AnnyFitModel, focal_length
from .fitting.problems import random_fit_pose, synthetic_bodies

#: bump when the training data or the network change in a way the config does not show
LIFTER_VERSION = "1"

log = logging.getLogger(__name__)

_NECK, _R_HIP, _L_HIP = int(COCO18.NECK), int(COCO18.RIGHT_HIP), int(COCO18.LEFT_HIP)


@dataclass(frozen=True)
class LifterConfig:
    """The lifter's training. Angles in radians; ``noise`` in torso lengths."""

    bodies: int = 200_000  # random anny bodies in the training set
    steps: int = 6000  # AdamW steps (one-cycle learning rate)
    batch_size: int = 256
    lr: float = 2e-3  # the one-cycle schedule's peak
    width: int = 512
    blocks: int = 2  # residual blocks of two linear-LayerNorm-ReLU layers each
    members: int = 3  # MLPs averaged, each its own initialisation and batches (seeds seed, seed + 1, ...)
    noise: float = 0.03  # Gaussian noise on the input keypoints
    limb_spread: float = 0.6  # per-axis spread of the rotations of the bones with a prior weight under 1 (anny's limbs and head)
    elbow: tuple[float, float] = (-0.65, 2.0)  # elbow flexion range (-0.65: straight)
    knee: tuple[float, float] = (-0.1, 1.2)
    hinge_noise: float = 0.05
    arm_share: float = 0.5  # share of the bodies whose upper arms are drawn from the shoulder's range of motion instead (:func:`arms_in_range`)
    arm_raise: tuple[float, float] = (-0.7, 2.4)  # sideways from anny's rest arm (42 degrees out; 0.84 horizontal): at the side to overhead
    arm_swing: tuple[float, float] = (-0.8, 1.6)  # forward (negative: back)
    arm_twist: tuple[float, float] = (-1.5, 1.5)  # about the arm's own axis (positive: the forearm folds in front of the body)
    fov_y_deg: float = 20.0  # the fitter's default camera
    seed: int = 0

    def key(self) -> str:
        """Short hash of the config and :data:`LIFTER_VERSION`: the cached weights' file name."""
        text = json.dumps({"version": LIFTER_VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class DepthLifter(torch.nn.Module):
    """(B, 18, 2) normalised keypoints (:func:`lifter_inputs`) -> (B, 18) relative depths over
    the torso length: the mean of ``members`` MLPs trained apart (:func:`train_depth_lifter`)."""

    def __init__(self, width: int = 512, blocks: int = 2, members: int = 1):
        super().__init__()
        self.members = torch.nn.ModuleList(_LifterMLP(width, blocks) for _ in range(members))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([member(x) for member in self.members]).mean(0)


class _LifterMLP(torch.nn.Module):
    def __init__(self, width: int, blocks: int):
        super().__init__()
        self.inp = torch.nn.Linear(2 * len(COCO18), width)
        self.blocks = torch.nn.ModuleList(
            torch.nn.Sequential(
                torch.nn.Linear(width, width),
                torch.nn.LayerNorm(width),
                torch.nn.ReLU(),
                torch.nn.Linear(width, width),
                torch.nn.LayerNorm(width),
                torch.nn.ReLU(),
            )  # fmt: skip
            for _ in range(blocks)
        )
        self.out = torch.nn.Linear(width, len(COCO18))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x.flatten(1)))
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


def lifter_inputs(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO-18 points (B, 18, >=2), x y px -> (B, 18, 2) float32, minus the hips' midpoint, over
    the torso length; and the torso lengths (B,) px (NaN where under 1e-3 px)."""
    xy = np.asarray(keypoints, np.float64)[..., :2]
    hips = 0.5 * (xy[:, _R_HIP] + xy[:, _L_HIP])
    torso = np.linalg.norm(xy[:, _NECK] - hips, axis=-1)
    torso = np.where(torso > 1e-3, torso, np.nan)
    return ((xy - hips[:, None]) / torso[:, None, None]).astype(np.float32), torso


def training_set(config: LifterConfig, n: int | None = None, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (default ``config.bodies``) random anny bodies: their normalised keypoints (n, 18, 2)
    (:func:`lifter_inputs`, no noise) and relative depths over the torso length (n, 18), float32."""
    model = AnnyFitModel(AnnyBody())
    n = config.bodies if n is None else n
    rng = np.random.default_rng(config.seed if seed is None else seed)
    inputs, depths = [], []
    for start in range(0, n, 10_000):
        count = min(10_000, n - start)
        pose = random_fit_pose(model, rng, count, config.limb_spread, config.elbow, config.knee, config.hinge_noise)
        if config.arm_share > 0:
            arms_in_range(model, pose, rng.random(count) < config.arm_share, rng, config)
        bodies = synthetic_bodies(model, count, int(rng.integers(2**31)), fov_y_deg=config.fov_y_deg, max_yaw_deg=180.0, pose=pose)
        f = focal_length(bodies.sizes[0][1], config.fov_y_deg)
        z = bodies.joints[..., 2].astype(np.float64)
        z_hips = 0.5 * (z[:, _R_HIP] + z[:, _L_HIP])
        x, torso = lifter_inputs(bodies.clean)
        inputs.append(x)
        depths.append((f * (z - z_hips[:, None]) / z_hips[:, None] / torso[:, None]).astype(np.float32))
    return np.concatenate(inputs), np.concatenate(depths)


def arms_in_range(model: AnnyFitModel, pose: np.ndarray, which: np.ndarray, rng: np.random.Generator, config: LifterConfig) -> None:
    """Set both upper arms of the bodies ``which`` (n,) bool of ``pose`` (n, bones, 3), in place, to
    rotations drawn uniformly over the shoulder's range of motion, each arm its own: a twist about
    the rest arm's axis (``config.arm_twist``), then a swing forward (``arm_swing``), then a raise
    sideways (``arm_raise``), rad, in :mod:`vtonpipe.synth.poses`' axes (the left arm's twist about
    its rest axis in ``model.arm_axes``, raise about ``-Y``, swing about ``-X``; the right arm's
    mirrored). Random limb spreads alone rarely reach arms overhead or a forearm folded onto the
    hip by a twisted upper arm."""
    rows = np.flatnonzero(which)
    (left, axis), (right, _) = model.arm_axes  # the right arm's rotations are the left's mirrored
    axis = np.asarray(axis)
    for bone, mirror in ((left, np.ones(3)), (right, np.array([1.0, -1.0, -1.0]))):
        raise_, swing, twist = (rng.uniform(*r, len(rows)) for r in (config.arm_raise, config.arm_swing, config.arm_twist))
        zeros = np.zeros(len(rows))
        upper = Rotation.from_rotvec(np.stack([zeros, -raise_, zeros], 1)) * Rotation.from_rotvec(np.stack([-swing, zeros, zeros], 1)) * Rotation.from_rotvec(twist[:, None] * axis)
        pose[rows, bone] = upper.as_rotvec() * mirror


#: torch threads of the training, whatever the machine: the weights follow the order of the float
#: reductions, which follows the thread count (one thread and two train lifters 0.9 apart in some
#: weights, of equal accuracy); fixed, the same CPU arithmetic trains the same weights
TRAIN_THREADS = 2


def train_depth_lifter(config: LifterConfig = LifterConfig()) -> DepthLifter:
    """A lifter trained on :func:`training_set` (smooth L1 on the depths, noisy inputs), on
    :data:`TRAIN_THREADS` torch threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)
    try:
        return _train(config)
    finally:
        torch.set_num_threads(threads)


def _train(config: LifterConfig) -> DepthLifter:
    inputs, depths = (torch.as_tensor(a) for a in training_set(config))
    lifter = DepthLifter(config.width, config.blocks, members=0)
    for m in range(config.members):
        with torch.random.fork_rng():
            torch.manual_seed(config.seed + m)
            member = _LifterMLP(config.width, config.blocks)
        _train_member(member, inputs, depths, config, torch.Generator().manual_seed(config.seed + m))
        lifter.members.append(member)
    return lifter.eval()


def _train_member(net: torch.nn.Module, inputs: torch.Tensor, depths: torch.Tensor, config: LifterConfig, generator: torch.Generator) -> None:
    optimiser = torch.optim.AdamW(net.parameters(), config.lr / 2, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.lr, total_steps=config.steps)
    for _ in range(config.steps):
        idx = torch.randint(0, len(inputs), (config.batch_size,), generator=generator)
        x = inputs[idx] + config.noise * torch.randn(inputs[idx].shape, generator=generator)
        loss = torch.nn.functional.smooth_l1_loss(net(x), depths[idx], beta=0.05)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()


def lifter_path(config: LifterConfig = LifterConfig()) -> Path:
    return cache_dir() / "depth_lifter" / f"{config.key()}.pt"


@lru_cache(maxsize=4)
def load_depth_lifter(config: LifterConfig = LifterConfig()) -> DepthLifter:
    """The lifter of ``config``: from the cache (:func:`lifter_path`), trained and cached first
    if it is not there. One per process and config; treat it as read-only."""
    path = lifter_path(config)
    with exclusive_lock(path.with_suffix(".lock")):
        if not path.exists():
            log.warning("training the body fit's depth lifter (its first use: about 6 minutes on two cores) into %s", path)
            net = train_depth_lifter(config)
            with atomic_path(path) as tmp:
                torch.save(net.state_dict(), tmp)
    net = DepthLifter(config.width, config.blocks, config.members)
    try:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as e:  # a file another version or a full disk left: name it, do not guess
        raise RuntimeError(f"{path}: not a depth lifter of this config ({e}); delete it and it is trained again") from e
    return net.eval()


def lift_depths(lifter: DepthLifter, keypoints: np.ndarray) -> np.ndarray:
    """(B, 18) float64 relative depths px (``f (Z_k - Z_hips) / Z_hips``, smaller = nearer) of
    COCO-18 points (B, 18, >=2) x y px, every point placed; NaN rows where the torso is degenerate."""
    x, torso = lifter_inputs(keypoints)
    ok = np.isfinite(torso)
    out = np.full(torso.shape + (len(COCO18),), np.nan)
    if ok.any():
        with torch.no_grad():
            out[ok] = lifter(torch.as_tensor(x[ok])).double().numpy() * torso[ok, None]
    return out
