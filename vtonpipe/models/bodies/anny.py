"""The anny parametric body (NAVER, Apache-2.0) as a fast, batched, differentiable function.

anny's default full body has 13,718 vertices, 27,420 triangles and a 104-bone skeleton. Building
it the first time takes about a minute and writes about 800 MB (the model data, of which only a
50 MB compacted file is read afterwards) under ``vtonpipe.config.cache_dir() / "anny"``; warp, which
anny uses for skinning, keeps its compiled kernels under ``cache_dir() / "warp"``. Later loads
take a second or two. :func:`load_anny` loads it once per process; concurrent processes wait for
the one building it (a file lock in the cache). Posing without gradients on the CPU skins on
every torch thread instead of warp's one (:mod:`vtonpipe.models.bodies.skinning`).

**Body frame** (every output here): metres, ``+Z`` up, the person facing ``-Y``, ``+X`` their
left (right-handed), origin at the root bone's head (the pelvis, about 0.87 m above the soles of
the default body). With zero pose the body stands in anny's reference A-pose: legs straight,
arms hanging about 42 degrees out from the vertical, elbows slightly bent forward.

**Posing.** A pose is one axis-angle rotation (radians) per bone, ``(B, 104, 3)``. It is anny's
``local-ref`` parameterisation: each bone turns about its own head, about axes parallel to the
body frame's as carried along by its parent's rotation (for a bone whose ancestors are unposed,
plain body-frame axes). Checked on the model (tests/test_anny_body.py):

- raise an arm sideways: ``upperarm01.L`` about ``-Y``, ``upperarm01.R`` about ``+Y``; +0.84 rad
  (48 degrees) makes the arm horizontal (T-pose), about -0.5 rad lets it hang along the body;
- bend an elbow forward: ``lowerarm01.L`` about ``-(cos a, 0, sin a)``, ``lowerarm01.R`` about
  ``(-cos a, 0, sin a)``, with ``a`` the upper arm's angle from the vertical (0.73 rad at rest);
- bend a knee (foot backwards): ``lowerleg01.L/R`` about ``+X``; swing a leg forward
  (hip flexion): ``upperleg01.L/R`` about ``-X``; spread the legs: ``upperleg01.L`` about ``-Y``
  (``.R`` about ``+Y``);
- nod the head down: ``head`` (or ``neck01``) about ``+X``; turn it to the person's left: about
  ``+Z``;
- turn the whole body about the vertical axis: ``global_rot = (0, 0, a)`` (positive turns the
  person to their left: ``a = pi / 2`` faces them towards ``+X``), applied about the origin after
  skinning, then ``transl``.

Mirroring a rotation from one side to the other negates its ``Y`` and ``Z`` components.

**Phenotype** ``(B, 6)`` in ``PHENOTYPE_LABELS`` order, each in ``[0, 1]`` (0.5 is anny's
default): gender (0 male, 1 female), age (1/3 child, 0.5 teenager, 2/3 young adult, 1 old),
muscle, weight, height, proportions.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import torch

from ...config import cache_dir
from ...io import exclusive_lock
from .skinning import with_parallel_cpu_skinning

if TYPE_CHECKING:
    import anny

BONE_COUNT = 104
PHENOTYPE_LABELS = ("gender", "age", "muscle", "weight", "height", "proportions")

#: OpenPose COCO-18 keypoints (docs/CONVENTIONS.md) as anny COCO labels; "neck" is the shoulders' midpoint.
OPENPOSE18_FROM_COCO = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)  # fmt: skip


def anny_cache_dir() -> Path:
    """Where the anny model build is cached: ``cache_dir() / "anny"``."""
    return cache_dir() / "anny"


def warp_cache_dir() -> Path:
    """Where warp caches its compiled skinning kernels: ``cache_dir() / "warp"`` (warp adds a folder
    per version), unless ``WARP_CACHE_PATH`` says otherwise."""
    return cache_dir() / "warp"


@lru_cache(maxsize=None)
def _load_anny(device: str, dtype: torch.dtype) -> "anny.Anny":
    # read by warp.init() (anny calls it when it first skins) unless warp.config.kernel_cache_dir is set
    os.environ.setdefault("WARP_CACHE_PATH", str(warp_cache_dir()))
    import warp

    warp.config.log_level = warp.LOG_WARNING  # no per-module load messages on stdout

    import anny
    import anny.paths

    anny.paths.set_anny_cache_path(anny_cache_dir())
    with exclusive_lock(anny_cache_dir() / "build.lock"):  # one process builds, the others wait and load
        model = anny.Anny(rig="anny", topology="anny", pose_parameterization="local-ref")
    model._skinning_method = with_parallel_cpu_skinning(model._skinning_method)  # anny's attribute; see .skinning
    return model.to(device=device, dtype=dtype).eval()


def load_anny(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> "anny.Anny":
    """anny's default full body (``local-ref`` poses), built once per machine, loaded once per process.

    One model per ``(device, dtype)``; treat it as read-only (it is shared).
    """
    return _load_anny(str(torch.device(device)), dtype)


def _batched(x, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, name: str) -> torch.Tensor:
    """``x`` as a (B, *shape) tensor, adding the batch axis when it is missing."""
    t = torch.as_tensor(x, dtype=dtype, device=device)
    if t.shape == shape:
        t = t[None]
    if t.ndim != len(shape) + 1 or tuple(t.shape[1:]) != shape:
        raise ValueError(f"{name}: expected shape (B, {', '.join(map(str, shape))}) or {shape}, got {tuple(t.shape)}")
    return t


def rotvec_to_rotmat(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues: axis-angle ``(..., 3)`` (radians) -> rotation matrices ``(..., 3, 3)``; differentiable at 0."""
    theta2 = (rotvec * rotvec).sum(-1, keepdim=True)[..., None]  # (..., 1, 1)
    small = theta2 < 1e-8
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = theta2_safe.sqrt()
    # sin(t)/t and (1 - cos(t))/t^2, with their Taylor expansions near 0
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2_safe)
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(rotvec.shape + (3,))
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device)
    return eye + a * k + b * (k @ k)


class AnnyBody:
    """anny body: ``(pose, phenotype, global_rot, transl) -> vertices (B, V, 3)`` in the body frame.

    ``faces`` (F, 3) int64; ``bone_labels`` (104 names, ``.L`` = the person's left);
    ``skin_indices`` / ``skin_weights`` (V, 9) int64 / float32: each vertex's skinning bones and
    weights (summing to 1). Differentiable w.r.t. every input.
    """

    def __init__(self, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        import anny

        self.model = load_anny(device, dtype)
        self.device = torch.device(device)
        self.dtype = dtype
        self.faces = self.model.faces.cpu().numpy().astype(np.int64)
        self.bone_labels: tuple[str, ...] = tuple(self.model.bone_labels)
        self.bone_parents: tuple[int, ...] = tuple(int(p) for p in self.model.bone_parents)
        self.bone_index = {label: i for i, label in enumerate(self.bone_labels)}
        if len(self.bone_labels) != BONE_COUNT or tuple(self.model.phenotype_labels) != PHENOTYPE_LABELS:
            raise RuntimeError(f"unexpected anny model: {len(self.bone_labels)} bones, phenotypes {self.model.phenotype_labels}")
        self.skin_indices = self.model.vertex_bone_indices.cpu().numpy().astype(np.int64)
        self.skin_weights = self.model.vertex_bone_weights.cpu().numpy().astype(np.float32)
        regressor = anny.KeypointsRegressor.coco(self.model)
        self.coco_labels: tuple[str, ...] = tuple(regressor.labels)
        self._coco_weights = regressor.regression_weights.to(device=self.device, dtype=dtype)  # (23, V)
        self._eye4 = torch.zeros(4, 4, dtype=dtype, device=self.device)
        self._eye4[3, 3] = 1.0

    @property
    def num_vertices(self) -> int:
        return self.model.template_vertices.shape[0]

    def dense_skin_weights(self) -> np.ndarray:
        """(V, 104) float32 skinning weight of every bone at every vertex."""
        dense = np.zeros((self.num_vertices, BONE_COUNT), np.float32)
        np.add.at(dense, (np.arange(self.num_vertices)[:, None], self.skin_indices), self.skin_weights)
        return dense

    def pose_from_named(self, rotations: Mapping[str, Sequence[float] | np.ndarray | torch.Tensor]) -> torch.Tensor:
        """A ``(B, 104, 3)`` pose from axis-angle rotations (3,) or (B, 3) of named bones, others zero."""
        unknown = set(rotations) - set(self.bone_index)
        if unknown:
            raise KeyError(f"unknown anny bones {sorted(unknown)}")
        values = {k: _batched(v, (3,), self.dtype, self.device, f"rotation of {k}") for k, v in rotations.items()}
        batch = max((v.shape[0] for v in values.values()), default=1)
        pose = torch.zeros(batch, BONE_COUNT, 3, dtype=self.dtype, device=self.device)
        for label, value in values.items():
            pose[:, self.bone_index[label]] = value
        return pose

    def phenotype(self, **values: float) -> torch.Tensor:
        """A (6,) phenotype from named values (``gender=1.0, age=2/3, ...``), others at 0.5."""
        unknown = set(values) - set(PHENOTYPE_LABELS)
        if unknown:
            raise KeyError(f"unknown phenotypes {sorted(unknown)}; known: {PHENOTYPE_LABELS}")
        return torch.tensor([values.get(k, 0.5) for k in PHENOTYPE_LABELS], dtype=self.dtype, device=self.device)

    def forward_with_joints(self, pose=None, phenotype=None, global_rot=None, transl=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Vertices (B, V, 3) and bone heads (B, 104, 3), in the body frame moved by ``global_rot``, ``transl``.

        ``pose``: (B, 104, 3) or (104, 3) axis-angle per bone, or a mapping of a few named bones
        (see :meth:`pose_from_named`), None for the reference A-pose. ``phenotype``: (B, 6) or
        (6,), None for all 0.5. ``global_rot`` (B, 3) or (3,) axis-angle about the origin and
        ``transl`` (B, 3) or (3,) metres: ``x -> R(global_rot) x + transl``. Inputs with batch
        size 1 broadcast against the others.
        """
        dt, dev = self.dtype, self.device
        if pose is None or isinstance(pose, Mapping):
            pose = self.pose_from_named(pose or {})
        pose = _batched(pose, (BONE_COUNT, 3), dt, dev, "pose")
        phenotype = _batched(self.phenotype() if phenotype is None else phenotype, (len(PHENOTYPE_LABELS),), dt, dev, "phenotype")
        global_rot = _batched(torch.zeros(3) if global_rot is None else global_rot, (3,), dt, dev, "global_rot")
        transl = _batched(torch.zeros(3) if transl is None else transl, (3,), dt, dev, "transl")
        batch = max(len(pose), len(phenotype), len(global_rot), len(transl))
        for name, t in (("pose", pose), ("phenotype", phenotype), ("global_rot", global_rot), ("transl", transl)):
            if len(t) not in (1, batch):
                raise ValueError(f"{name} has batch size {len(t)}, expected 1 or {batch}")

        rot = torch.nn.functional.pad(rotvec_to_rotmat(pose), (0, 1, 0, 1)) + self._eye4  # (B, 104, 4, 4)
        out = self.model(pose_parameters=rot.expand(batch, -1, -1, -1), phenotype_kwargs=phenotype.expand(batch, -1))
        R = rotvec_to_rotmat(global_rot).transpose(-1, -2)  # row vectors: x @ R^T
        t = transl[:, None]
        vertices = out["vertices"] @ R + t
        joints = out["bone_poses"][..., :3, 3] @ R + t
        return vertices, joints

    def forward(self, pose=None, phenotype=None, global_rot=None, transl=None) -> torch.Tensor:
        """Vertices (B, V, 3); arguments as in :meth:`forward_with_joints`."""
        return self.forward_with_joints(pose, phenotype, global_rot, transl)[0]

    __call__ = forward

    def coco_keypoints(self, vertices: torch.Tensor) -> torch.Tensor:
        """anny's 23 COCO keypoints (``coco_labels`` order: 17 COCO body points then 6 foot points)
        regressed from vertices (B, V, 3) -> (B, 23, 3), same frame."""
        return torch.einsum("kv,bvd->bkd", self._coco_weights, vertices)

    def openpose18(self, vertices: torch.Tensor) -> torch.Tensor:
        """OpenPose COCO-18 keypoints (docs/CONVENTIONS.md order) from vertices (B, V, 3) -> (B, 18, 3)."""
        coco = self.coco_keypoints(vertices)
        index = {label: i for i, label in enumerate(self.coco_labels)}
        neck = 0.5 * (coco[:, index["left_shoulder"]] + coco[:, index["right_shoulder"]])
        return torch.stack([neck if name == "neck" else coco[:, index[name]] for name in OPENPOSE18_FROM_COCO], 1)
