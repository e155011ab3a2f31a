"""The parametric bodies as the fitter sees them: the unknowns it optimises (fitted bones,
shape), their priors (per-bone weights, hinges) and a fast keypoint forward.

:class:`AnnyFitModel` computes anny's 18 OpenPose keypoints without skinning the mesh: the
regressor is linear in the skinned vertices and skinning is linear in the rest vertices per bone,
so each keypoint is ``sum_j T_j m_kj`` over the bone transforms ``T_j`` with per-bone moments
``m_kj`` linear in anny's blend-shape coefficients, precomputed once (equal to the full forward to
2e-5 m); the silhouette term's surface points (:func:`spread_vertices`) are skinned alone. Each
forward poses only the sub-tree of the skeleton that moves its outputs (:class:`_Skeleton`) and
sums only the non-zero (keypoint, bone) moments.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import scipy.sparse
import torch

from ..anny import OPENPOSE18_FROM_COCO, PHENOTYPE_LABELS, AnnyBody, rotvec_to_rotmat
from ..smpl import JOINT_NAMES, NUM_JOINTS, SMPLBody

if TYPE_CHECKING:
    import anny


@dataclass(frozen=True)
class Hinge:
    """A hinge joint: pose row ``bone`` bends naturally by a positive rotation about ``axis`` (unit,
    pose coordinates); flexion below ``min_flexion`` radians is penalised (hyperextension)."""

    bone: int
    axis: tuple[float, float, float]
    min_flexion: float


class FitModel(ABC):
    """A body model as the fitter sees it: pose rows, which of them are fitted, priors, shape
    parameterisation and the 18 OpenPose keypoints in the body frame."""

    name: str  # the ``model`` of the body row
    num_bones: int  # pose rows stored
    num_shape: int
    fit_bones: tuple[int, ...]
    bone_weights: tuple[float, ...]  # pose prior weight of each fitted bone
    hinges: tuple[Hinge, ...]
    #: the body frame's unit vectors: the person's left, up, and the direction they face
    left: tuple[float, float, float]
    up: tuple[float, float, float]
    front: tuple[float, float, float]
    device: torch.device
    dtype: torch.dtype
    surface_index: np.ndarray  # (K,) vertices the silhouette and parsing terms project (:func:`spread_vertices`)
    surface_part: np.ndarray  # (K,) int32 DensePose part (1..24) of each of them (the parsing term's)
    #: each upper arm's pose row and its rest direction's unit axis (pose coordinates) oriented so
    #: that a positive turn about it is an inward twist: a forearm bent forward folds in front of the body
    arm_axes: tuple[tuple[int, tuple[float, float, float]], ...]
    #: (10,) positions in ``surface_index`` of the vertices :data:`MP33_FIT_LANDMARKS` mark (the
    #: landmark term's); None: the model marks none
    landmark_points: np.ndarray | None = None

    @abstractmethod
    def shape_from_free(self, free: torch.Tensor) -> torch.Tensor:
        """Shape parameters (B, num_shape) from the unconstrained optimisation variables."""

    @abstractmethod
    def shape_prior(self, shape: torch.Tensor) -> torch.Tensor:
        """(B,) squared distance of the shape from the mean."""

    @abstractmethod
    def keypoints(self, pose: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        """OpenPose COCO-18 (B, 18, 3), body frame, of ``pose`` (B, num_bones, 3) and ``shape`` (B, num_shape)."""

    @abstractmethod
    def keypoints_and_surface(self, pose: torch.Tensor, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The keypoints (B, 18, 3) and the silhouette term's surface points (B, K, 3): the posed
        vertices ``surface_index`` (K,), body frame."""

    def mean_shape(self) -> torch.Tensor:
        return self.shape_from_free(torch.zeros(1, self.num_shape, dtype=self.dtype, device=self.device))


#: MediaPipe Pose landmarks the anny fit reads beyond COCO-18: hands (their orientation turns the
#: arm about its axis) and feet (the leg's)
MP33_FIT_LANDMARKS = ("left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_heel", "right_heel", "left_foot_index", "right_foot_index")
#: the anny vertex each of them marks: the vertex of that hand or foot nearest MediaPipe's landmark
#: over the 120 person photos of a harder sample (seed 11), 3.1-3.4 px from it on hands and
#: 1.7-1.9 px on feet there, 3.1-4.0 and 2.1-2.2 px on the seed-12 sample it did not see
#: (``benchmarks/bench_keypoint_offsets.py``)
ANNY_MP33_VERTICES = {
    "left_pinky": 9835, "right_pinky": 3169, "left_index": 9803, "right_index": 3151, "left_thumb": 9840, "right_thumb": 3630,
    "left_heel": 12432, "right_heel": 6355, "left_foot_index": 11606, "right_foot_index": 5831,
}  # fmt: skip

#: spacing (m) of the surface points of the silhouette term: about 1900 of anny's 13718 vertices
SURFACE_SPACING = 0.03


def spread_vertices(vertices: np.ndarray, spacing: float) -> np.ndarray:
    """Sorted indices of one vertex (the first) per ``spacing``-metre cube of the rest vertices
    (V, 3): points spread evenly over the surface, dense parts (hands, face) thinned."""
    _, first = np.unique(np.floor(vertices / spacing).astype(np.int64), axis=0, return_index=True)
    return np.sort(first)


class _Skeleton:
    """A sub-tree of anny's skeleton: ``bones`` (J',) sorted indices (closed under parents, the root
    first), its kinematic chain (anny's ``get_kinematic_chain`` of the remapped parents) and the
    bones' rest data (template heads and orientations, their blend shapes, reference orientations)."""

    def __init__(self, model: anny.Anny, parents: tuple[int, ...], moving: np.ndarray):
        from anny.utils import kinematics

        keep = set()
        for j in np.flatnonzero(moving):
            while j >= 0 and j not in keep:
                keep.add(int(j))
                j = parents[j]
        self.bones = np.array(sorted(keep | {0}))
        position = {int(b): i for i, b in enumerate(self.bones)}
        levels, indices = kinematics.get_kinematic_chain([-1] + [position[parents[b]] for b in self.bones[1:]])
        self.chain = (levels, indices.to(model.template_bone_heads.device))
        b = torch.as_tensor(self.bones, device=model.template_bone_heads.device)
        self.heads = model.template_bone_heads[b]
        self.head_dirs = model.bone_heads_blendshapes[:, b]
        self.orientations = model.bone_template_orientation_matrices[b]
        self.orientation_dirs = model.bone_orientation_blendshapes[:, b]
        self.reference_orientations = model.reference_bone_orientations[b]


class _PhenotypeCoefficients:
    """anny's phenotype -> blend-shape coefficients (its ``get_phenotype_blendshape_coefficients``,
    local changes and facial actions 0), computed as the products anny defines them by: each of its
    phenotype blend shapes (624 in anny 0.6) weighs the product of 3 to 6 of the 26 variation weights
    (linear interpolation between each phenotype's anchors; the race weights normalised). anny takes
    a masked product over all 26 (a product whose backward, cumulative products in both directions,
    was 15 % of a fit step); here each blend shape multiplies only its own factors."""

    def __init__(self, model):
        from anny.models.model_data import PHENOTYPE_VARIATIONS
        from anny.utils.interpolation import linear_interpolation_coefficients

        if model.local_change_labels or model.facial_action_labels:
            raise RuntimeError("anny model with local changes or facial actions: AnnyFitModel expects anny's default phenotype-only model")
        self._interpolate = linear_interpolation_coefficients
        self._variations = PHENOTYPE_VARIATIONS
        self._model = model
        mask = model.stacked_phenotype_blend_shapes_mask.bool()  # (S, 26)
        n = len(mask[0])
        count = int(mask.sum(1).max())
        # each blend shape's factor columns, padded with column n (a constant 1)
        self._factors = torch.full((len(mask), count), n, dtype=torch.long, device=mask.device)
        for s, row in enumerate(mask):
            cols = torch.nonzero(row).flatten()
            self._factors[s, : len(cols)] = cols
        self._projection = model.phenotype_blendshape_projection  # (S, A) or None

    def __call__(self, **values: torch.Tensor) -> torch.Tensor:
        """(B, A) coefficients of phenotype ``values`` (B,) by label; as in anny, labels the model does
        not expose (cupsize, firmness, the race ones) stay at 0.5."""
        m = self._model
        values = {k: v for k, v in values.items() if k in m.phenotype_labels}
        batch = len(next(iter(values.values())))
        default = m.template_vertices.new_full((batch,), 0.5)
        race = torch.stack([values.get(k, default) for k in self._variations["race"]], 1)
        weights = []
        for feature in self._variations:
            if feature == "race":
                weights.append(torch.nan_to_num(race / race.sum(1, keepdim=True), 1 / 3, 1 / 3, 1 / 3))
            else:
                weights.append(self._interpolate(values.get(feature, default), m.anchors[feature], extrapolate=m.extrapolate_phenotypes))
        factors = torch.cat([*weights, default.new_ones(batch, 1)], 1)[:, self._factors]  # (B, S, count)
        product = factors[..., 0]
        for i in range(1, factors.shape[-1]):
            product = product * factors[..., i]
        return product if self._projection is None else product @ self._projection


class AnnyFitModel(FitModel):
    """anny (:class:`~vtonpipe.models.bodies.anny.AnnyBody`) for fitting: 104 pose rows (19 major
    bones fitted), six phenotype values through a sigmoid, keypoints from per-bone moments."""

    name = "anny"
    num_shape = len(PHENOTYPE_LABELS)
    left, up, front = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, -1.0, 0.0)
    #: fitted bones and their pose prior weights; fingers, toes, eyes, twist bones, wrists and feet stay 0
    BONE_WEIGHTS: ClassVar[dict[str, float]] = {
        "spine05": 1.0, "spine04": 1.0, "spine03": 1.0, "spine02": 1.0, "spine01": 1.0, "neck01": 1.0, "head": 0.5,
        "clavicle.L": 4.0, "clavicle.R": 4.0, "shoulder01.L": 4.0, "shoulder01.R": 4.0,
        "upperarm01.L": 0.1, "upperarm01.R": 0.1, "lowerarm01.L": 0.1, "lowerarm01.R": 0.1,
        "upperleg01.L": 0.1, "upperleg01.R": 0.1, "lowerleg01.L": 0.1, "lowerleg01.R": 0.1,
    }  # fmt: skip
    ELBOW_REST_ANGLE = 0.73  # rad: the upper arm's angle from the vertical in the reference pose
    #: hinge flexion (rad) of a straight limb, below which the hinge prior penalises hyperextension: the
    #: reference pose's elbows are bent by about 40 degrees and its knees by about 9 (bone heads), flexion
    #: -0.65 and -0.1 straighten them (5 and 3 degrees left)
    ELBOW_STRAIGHT, KNEE_STRAIGHT = -0.65, -0.1

    def __init__(self, body: AnnyBody | None = None, full_skeleton: bool = False):
        """``full_skeleton``: pose all 104 bones and sum all 18 x 104 (keypoint, bone) moments in every
        forward (the original path, kept as the benchmark's baseline and the tests' reference) instead
        of only the sub-trees that move the keypoints (70 bones) or the keypoints and surface points
        (102) and the non-zero pairs."""
        import anny
        import roma
        from anny.utils import kinematics

        self._procrustes = roma.special_procrustes
        self._forward_kinematic = kinematics.forward_kinematic
        self.body = body or AnnyBody()
        m = self.body.model
        if m.bone_orientation != "cached" or m.rest_orientation_refiner is not None:
            raise RuntimeError(f"anny model with bone orientation {m.bone_orientation!r}: AnnyFitModel expects anny 0.6's cached orientations")
        self.model, self.device, self.dtype = m, self.body.device, self.body.dtype
        self.num_bones = len(self.body.bone_labels)
        index = self.body.bone_index
        self.fit_bones = tuple(index[b] for b in self.BONE_WEIGHTS)
        self.bone_weights = tuple(self.BONE_WEIGHTS.values())
        c, s = math.cos(self.ELBOW_REST_ANGLE), math.sin(self.ELBOW_REST_ANGLE)
        self.hinges = (
            Hinge(index["lowerarm01.L"], (-c, 0.0, -s), self.ELBOW_STRAIGHT),
            Hinge(index["lowerarm01.R"], (-c, 0.0, s), self.ELBOW_STRAIGHT),
            Hinge(index["lowerleg01.L"], (1.0, 0.0, 0.0), self.KNEE_STRAIGHT),
            Hinge(index["lowerleg01.R"], (1.0, 0.0, 0.0), self.KNEE_STRAIGHT),
        )
        self.arm_axes = ((index["upperarm01.L"], (s, 0.0, -c)), (index["upperarm01.R"], (s, 0.0, c)))  # vtonpipe.synth.poses' twist

        # OpenPose regressor rows (18, V): anny's COCO rows, the neck as the shoulders' midpoint
        regressor = anny.KeypointsRegressor.coco(m)
        coco = dict(zip(regressor.labels, regressor.regression_weights.double().cpu().numpy()))
        op18 = np.stack([0.5 * (coco["left_shoulder"] + coco["right_shoulder"]) if n == "neck" else coco[n] for n in OPENPOSE18_FROM_COCO])
        # per-bone moments: M[k, j] = sum_v W[k, v] s[v, j] (x_v, 1) with s the skinning weights
        skin_index = m.vertex_bone_indices.long().cpu().numpy()
        skin_weight = m.vertex_bone_weights.double().cpu().numpy()
        k, v = np.nonzero(op18)
        rows = (k[:, None] * self.num_bones + skin_index[v]).ravel()
        cols = np.repeat(v, skin_index.shape[1])
        V = op18.shape[1]
        P = scipy.sparse.csr_matrix(((op18[k, v][:, None] * skin_weight[v]).ravel(), (rows, cols)), shape=(18 * self.num_bones, V))
        template = m.template_vertices.double().cpu().numpy()
        blendshapes = m.blendshapes.double().cpu().numpy()  # (A, V, 3)
        A = blendshapes.shape[0]
        moments = P @ np.concatenate([template, np.ones((V, 1))], 1)  # (18 * J, 4)
        moment_dirs = P @ blendshapes.transpose(1, 0, 2).reshape(V, A * 3)  # (18 * J, A * 3)
        moments = moments.reshape(18, self.num_bones, 4)
        moment_dirs = moment_dirs.reshape(18, self.num_bones, A, 3).transpose(2, 0, 1, 3)
        t = {"dtype": self.dtype, "device": self.device}
        self._eye4 = torch.zeros(4, 4, **t)
        self._eye4[3, 3] = 1.0
        # surface points: rest positions and blend shapes of the subset, dense skinning weights (K, J)
        spread = spread_vertices(template, SURFACE_SPACING)
        self.surface_index = np.concatenate([spread, [ANNY_MP33_VERTICES[n] for n in MP33_FIT_LANDMARKS]])
        self.landmark_points = np.arange(len(spread), len(self.surface_index))
        surface_skin = self.body.dense_skin_weights()[self.surface_index]  # (K, 104)
        # the skeletons each forward poses: the bones that move a keypoint (or a surface point) and their ancestors
        keypoint_bones = (np.abs(moments).sum((0, 2)) > 0) | (np.abs(moment_dirs).sum((0, 1, 3)) > 0) | full_skeleton
        self.keypoint_skeleton = _Skeleton(m, self.body.bone_parents, keypoint_bones)
        self.surface_skeleton = _Skeleton(m, self.body.bone_parents, keypoint_bones | (surface_skin.sum(0) > 0))
        for sk in (self.keypoint_skeleton, self.surface_skeleton):
            if not set(self.fit_bones) <= set(sk.bones.tolist()):
                raise RuntimeError("a fitted bone moves no keypoint")
        # the (keypoint, bone) pairs with a non-zero moment (about 1 in 8 of 18 x 70): only these are summed
        used = (np.abs(moments).sum(-1) > 0) | (np.abs(moment_dirs).sum((0, 3)) > 0) | full_skeleton  # (18, J)
        self._moments, self._moment_dirs, self._pairs = {}, {}, {}
        for sk in (self.keypoint_skeleton, self.surface_skeleton):
            k, j = np.nonzero(used[:, sk.bones])
            self._pairs[sk] = (torch.as_tensor(k, device=self.device), torch.as_tensor(j, device=self.device))
            self._moments[sk] = torch.as_tensor(moments[k, sk.bones[j]], **t)  # (P, 4)
            self._moment_dirs[sk] = torch.as_tensor(moment_dirs[:, k, sk.bones[j]].reshape(A, -1), **t)  # (A, P * 3)
        self._surface_rest = torch.as_tensor(template[self.surface_index], **t)
        self._surface_dirs = torch.as_tensor(blendshapes[:, self.surface_index], **t)
        self._surface_skin = torch.as_tensor(surface_skin[:, self.surface_skeleton.bones], **t)  # (K, J')
        self._coefficients = m.get_phenotype_blendshape_coefficients if full_skeleton else _PhenotypeCoefficients(m)

    @functools.cached_property
    def surface_part(self) -> np.ndarray:
        from ...render.iuv import anny_charts, vertex_parts

        faces = self.body.faces
        return vertex_parts(faces, anny_charts().face_part, int(faces.max()) + 1)[self.surface_index]

    def shape_from_free(self, free: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(free)

    def shape_prior(self, shape: torch.Tensor) -> torch.Tensor:
        return ((shape - 0.5) ** 2).sum(-1)

    def _rest_bone_poses(self, coeffs: torch.Tensor, sk: _Skeleton) -> torch.Tensor:
        """anny's rest bone poses (B, J', 4, 4) of the skeleton's bones for blend-shape coefficients
        (B, A), without the mesh (anny's ``_get_cached_rest_model`` minus its rest vertices)."""
        heads = sk.heads + torch.einsum("ba,akd->bkd", coeffs, sk.head_dirs)
        cross = sk.orientations + torch.einsum("ba,akij->bkij", coeffs, sk.orientation_dirs)
        rotation = self._procrustes(cross[:, 1:])  # the root's rest orientation is I
        rotation = torch.cat([torch.eye(3, dtype=self.dtype, device=self.device).expand(len(coeffs), 1, 3, 3), rotation], 1)
        return torch.cat([torch.cat([rotation, heads[..., None]], -1), self._eye4[3].expand(*heads.shape[:2], 1, 4)], -2)

    def _posed(self, pose: torch.Tensor, shape: torch.Tensor, sk: _Skeleton) -> tuple[torch.Tensor, torch.Tensor]:
        """Blend-shape coefficients (B, A) and the transforms (B, J', 3, 4) (rest -> posed, body
        frame) of the skeleton's bones: anny's forward kinematics on the sub-tree, exact since a
        bone's transform depends only on its ancestors."""
        coeffs = self._coefficients(**{label: shape[:, i] for i, label in enumerate(PHENOTYPE_LABELS)})
        rot = torch.nn.functional.pad(rotvec_to_rotmat(pose[:, sk.bones]), (0, 1, 0, 1)) + self._eye4
        transforms, _ = self._forward_kinematic(sk.chain, self._rest_bone_poses(coeffs, sk), rot, "local-ref", sk.reference_orientations)
        return coeffs, transforms[:, :, :3, :]

    def _keypoints(self, coeffs: torch.Tensor, T: torch.Tensor, sk: _Skeleton) -> torch.Tensor:
        """Keypoints (B, 18, 3): ``sum_j T_j m_kj`` over the non-zero (keypoint, bone) pairs."""
        k, j = self._pairs[sk]
        moments = self._moments[sk] + torch.nn.functional.pad((coeffs @ self._moment_dirs[sk]).reshape(len(coeffs), -1, 3), (0, 1))
        terms = torch.einsum("bprc,bpc->bpr", T[:, j], moments)  # (B, P, 3)
        return terms.new_zeros(len(coeffs), 18, 3).index_add(1, k, terms)

    def keypoints(self, pose: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        sk = self.keypoint_skeleton
        return self._keypoints(*self._posed(pose, shape, sk), sk)

    def keypoints_and_surface(self, pose: torch.Tensor, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sk = self.surface_skeleton
        coeffs, T = self._posed(pose, shape, sk)
        rest = self._surface_rest + torch.einsum("ba,akd->bkd", coeffs, self._surface_dirs)
        # linear blend skinning of the subset (dense weights: on CPU faster than gathering each point's 9 bones)
        blend = torch.einsum("kj,bjrc->bkrc", self._surface_skin, T)
        # the 3 x 4 transform of each point applied elementwise (a batched product of 3 x 3 matrices is slower)
        return self._keypoints(coeffs, T, sk), (blend[..., :3] * rest[:, :, None]).sum(-1) + blend[..., 3]


class SMPLFitModel(FitModel):
    """SMPL (:class:`~vtonpipe.models.bodies.smpl.SMPLBody`) for fitting: 23 pose rows (17 fitted:
    hands, feet, ankles and wrists move no COCO-18 point), betas with an L2 prior.

    ``name``: the body row's ``model`` ("smpl", "smpl-male", "smpl-female").
    """

    left, up, front = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
    # pose rows are SMPL joints 1..23, so row = joint - 1
    JOINT_WEIGHTS: ClassVar[dict[str, float]] = {
        "left_hip": 0.1, "right_hip": 0.1, "spine1": 1.0, "left_knee": 0.1, "right_knee": 0.1, "spine2": 1.0,
        "spine3": 1.0, "neck": 1.0, "left_collar": 4.0, "right_collar": 4.0, "head": 0.5, "left_shoulder": 0.1,
        "right_shoulder": 0.1, "left_elbow": 0.1, "right_elbow": 0.1,
    }  # fmt: skip

    def __init__(self, body: SMPLBody, name: str = "smpl"):
        self.body, self.name = body, name
        self.device, self.dtype = body.device, body.dtype
        self.num_bones, self.num_shape = NUM_JOINTS - 1, body.num_betas
        row = {n: JOINT_NAMES.index(n) - 1 for n in JOINT_NAMES[1:]}
        self.fit_bones = tuple(row[n] for n in self.JOINT_WEIGHTS)
        self.bone_weights = tuple(self.JOINT_WEIGHTS.values())
        # SMPLify's angle prior signs: natural bends are -y (left elbow), +y (right elbow), +x (knees)
        self.hinges = (
            Hinge(row["left_elbow"], (0.0, -1.0, 0.0), 0.0),
            Hinge(row["right_elbow"], (0.0, 1.0, 0.0), 0.0),
            Hinge(row["left_knee"], (1.0, 0.0, 0.0), 0.0),
            Hinge(row["right_knee"], (1.0, 0.0, 0.0), 0.0),
        )
        # the T-pose arms lie along +-x: an inward twist (+x on both sides, the mirror of a turn about x
        # being itself) turns a forearm bent forwards (+z) down
        self.arm_axes = ((row["left_shoulder"], (1.0, 0.0, 0.0)), (row["right_shoulder"], (1.0, 0.0, 0.0)))
        with torch.no_grad():
            rest = body(torch.zeros(NUM_JOINTS - 1, 3), torch.zeros(self.num_shape))[0]
        self.surface_index = spread_vertices(rest.double().cpu().numpy(), SURFACE_SPACING)

    @functools.cached_property
    def surface_part(self) -> np.ndarray:
        from ...render.iuv import smpl_charts, vertex_parts

        charts = smpl_charts()
        return vertex_parts(charts.smpl_faces, charts.face_part, int(charts.smpl_faces.max()) + 1)[self.surface_index]

    def shape_from_free(self, free: torch.Tensor) -> torch.Tensor:
        return free

    def shape_prior(self, shape: torch.Tensor) -> torch.Tensor:
        return (shape**2).sum(-1)

    def keypoints(self, pose: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        return self.body.openpose18(pose, shape)

    def keypoints_and_surface(self, pose: torch.Tensor, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.body.openpose18(pose, shape), self.body(pose, shape)[:, self.surface_index]
