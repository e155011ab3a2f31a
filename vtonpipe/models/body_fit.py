"""Fitting a parametric body (anny or SMPL) to OpenPose COCO-18 keypoints, many images as one problem.

**Unknowns per image** ``b``: the axis-angle rotations of the model's major bones (``FitModel.
fit_bones``; every other bone stays 0), the shape (anny's six phenotype values squashed into
``[0, 1]`` by a sigmoid; SMPL betas), and the body -> camera rigid transform ``x -> R x + t``
(``R = exp([delta]) R_0``, ``t = z (u, v, 1)`` with ``z = z_0 exp(s)``). The camera is fixed: a
pinhole with ``fx = fy = H / (2 tan(fov_y / 2))`` for the assumed vertical field of view and the
principal point at the image centre ``((W - 1) / 2, (H - 1) / 2)`` (docs/CONVENTIONS.md).

**Loss per image** (sizes in units of the person's size ``S``, the larger side of the detected
keypoints' box, so that the weights do not depend on resolution):

- data: ``sum_k c_k rho(|x_k - k_k| / S) / sum_k c_k`` over detected keypoints (confidence ``c_k``),
  ``rho`` Geman-McClure ``sigma^2 r^2 / (sigma^2 + r^2)`` (``sigma`` 0.1: outliers cost at most
  ``sigma^2``), as in SMPLify;
- pose prior: anny has no learned pose prior and SMPLify's GMM needs a licensed file, so
  ``pose_weight * sum_j w_j |theta_j|^2`` with per-bone weights (stiff clavicles and spine, free
  limbs), plus, for the hinge joints (elbows, knees), ``off_axis_weight`` on the rotation part
  orthogonal to the flexion axis and ``hinge_weight * relu(f_min - f)^2`` on the flexion angle
  ``f`` (elbows and knees bending backwards);
- shape prior: ``shape_weight * |phenotype - 0.5|^2`` (anny) or ``|betas|^2`` (SMPL);
- silhouette (optional: ``silhouette_weight > 0``, with a person mask per image, :class:`_Silhouettes`):
  ``silhouette_weight * (outside + silhouette_coverage * coverage)`` on the body's surface points
  (one vertex per 3 cm cube of the rest body, :func:`spread_vertices`: 1936 of anny's 13718)
  projected to ``p_i``. ``outside = mean_i rho(D(p_i) / S)``, ``D`` the mask's distance transform
  (px to the nearest mask pixel, 0 on the mask, sampled bilinearly by ``grid_sample``): only
  points outside the mask cost, so clothes, hair or a skirt that make the mask larger than the
  body cost nothing. ``coverage = mean_j rho(min_i |q_j - p_i| / S)`` over 160 points ``q_j``
  evenly spaced along the mask's contours (not where the image border cuts the mask): it pulls
  the body out to the mask's edges, where the outside part alone is met as well by a body that
  stays too thin or too small (measured below: the outside part alone gains a third to half as
  much IoU).
  ``rho`` is Geman-McClure with ``silhouette_sigma`` 0.05: a contour point far from any body
  point (a skirt's hem, long hair, loose clothes) stops pulling. The gradient of the min goes to
  the nearest point (found without gradient); everything is batched like the data term.

**Initialisation.** ``R_0`` puts the body upright (in-plane roll from the hip -> neck direction
in the image), facing the camera or facing away; ``z_0`` follows from the torso length (neck to
mid-hip) in pixels against the model's, ``(u, v)`` puts the torso centre on the image torso
centre. A rigid stage (``rigid_iters`` Adam steps on ``R, t`` against the torso and face points,
the body at rest) runs for both facings at once and keeps, per image, the one with the lower loss:
a person photographed from the back has their left on the image's left (SMPLify tries the same two).

**Optimiser.** Adam with a learning rate per parameter group, on the sum of per-image losses,
so each image's gradients and Adam moments are its own: a batch gives the same fits as one image
at a time, only faster (one forward for all). Early stopping per image: an image whose loss has
not improved by ``rel_tol`` (relative) within ``patience`` steps is frozen at its best parameters
(its Adam moment zeroed, so it no longer moves) and leaves the forward; the batch stops when all
are frozen or after ``max_iters``. anny's 18 keypoints are computed without skinning the mesh:
the OpenPose regressor is linear in the skinned vertices and skinning is linear in the rest
vertices per bone, so each keypoint is ``sum_j T_j m_kj`` over the bone transforms ``T_j``, with
per-bone moments ``m_kj`` linear in anny's blend-shape coefficients, precomputed once
(:class:`AnnyFitModel`; equal to the full forward to 2e-5 m); the silhouette term's surface
points are skinned alone, from the same bone transforms.

**Silhouette stage.** With ``silhouette_weight > 0`` the fit above (keypoints only) runs to
convergence first; then the full loss is minimised from there by a second Adam run at
``SILHOUETTE_LR`` (0.1) times the learning rate, with the same early stopping, so it can only
lower the combined loss of the keypoint fit. Run as one stage from the start instead, the term
sometimes drags a body into a wrong pose before the keypoints have placed it (32 random bodies,
2 px noise, weight 1: joint error 2.24 px against 1.78 px in two stages, and at seed 1 one fit
stuck above ``max_residual``), although it places limbs without keypoints better (the test
with only the nose, neck, shoulders and hips: limb joints 3.9 px against 6.7 px in two stages;
22 px without the term). At the full learning rate the second stage's first Adam steps undo
the keypoint fit and early stopping ends it at once.

**Failures**: fewer than ``min_keypoints`` detected points or no torso (a shoulder/neck and a hip)
-> ``too_few_keypoints``; a residual (confidence-weighted mean px error) above ``max_residual * S``
or a non-finite fit -> ``fit_failed``.

**Measured** (``benchmarks/bench_body_fit.py``: float32, one torch thread on a shared 2-core
CPU, 256 x 192 images; the same problems and stopping rule batched and one image at a time):

==============================  ==========  ========  =====  ========  ==========  ===============
problems                        mode        images/s  iters  resid px  joint px    vertices cm
                                                                       (truth)     (raw / scaled)
==============================  ==========  ========  =====  ========  ==========  ===============
32 random bodies, 2 px noise    batched     2.45      230    1.23      2.10        59 / 8.8
                                one by one  0.38      230    1.23      2.09        59 / 8.8
16 random bodies, no noise      batched     3.27      227    0.43      0.43        34 / 4.4
                                one by one  0.43      228    0.43      0.43        34 / 4.4
24 sample renders, MediaPipe    batched     4.49      -      1.05      3.20 (*)    79 / 15
==============================  ==========  ========  =====  ========  ==========  ===============

Batched is 6.5x (noisy) and 7.6x (noiseless) faster at equal error. ``joint px``: the fit's
projected joints against the exact keypoints ((*) visible ones of the sample's ground truth,
which MediaPipe's own keypoints miss by 3.4 px; ``vtonpipe sample --people 12 --seed 0``,
remeasured on the current renders under a lighter load than the other rows).
Vertices: mean distance to the true body in the camera frame, raw and after the best scale
about the camera centre: one photo does not tell a tall person far away from a short one nearer
(the phenotype prior and the assumed field of view decide), so the raw error is mostly depth
(about 10 % of the distance).

**Silhouette term, measured** (``bench_body_fit.py --silhouette 0,0.3,1,3 [--noise 0 --bodies
16] --sample DIR``, batched, same machine, a lighter load than above). Synthetic bodies get their
exact silhouettes as masks; the 24 sample renders MediaPipe keypoints and MediaPipe person masks
(the ``keypoints`` and ``person_mask`` defaults; the same figures through ``vtonpipe annotate``),
whose masks include clothes and hair (IoU 0.895 with the body-only silhouette, 0.971 with the
person mask). IoU: the fitted body's silhouette (ray cast) against the exact one, or for the
sample against the body-only silhouette (``face_id >= 0``) / the person mask.

=================================  ======  ========  ========  ========  =============  ===========
problems                           weight  images/s  resid px  joint px  IoU            vertices cm
                                                                                        raw / scaled
=================================  ======  ========  ========  ========  =============  ===========
32 random bodies, 2 px noise       0       4.18      1.23      2.10      0.844          59 / 8.8
                                   0.3     2.47      1.26      1.99      0.857          58 / 8.7
                                   1       2.20      1.46      1.78      0.883          58 / 8.4
                                   3       1.83      1.74      1.61      0.908          56 / 8.0
16 random bodies, no noise         0       3.29      0.43      0.43      0.931          34 / 4.4
                                   0.3     1.59      0.40      0.40      0.937          34 / 4.0
                                   1       1.51      0.43      0.43      0.945          33 / 3.9
                                   3       1.36      0.55      0.55      0.952          32 / 4.0
24 sample renders, MediaPipe       0       4.49      1.05      3.20      0.834 / 0.812  79 / 15.1
keypoints and person masks         0.3     2.07      0.99      3.11      0.861 / 0.837  77 / 14.6
                                   1       1.60      1.13      3.01      0.885 / 0.862  78 / 14.5
                                   3       1.68      1.39      2.97      0.896 / 0.878  77 / 14.6
=================================  ======  ========  ========  ========  =============  ===========

The term helps on every problem: at weight 1 the silhouette IoU rises by 0.04 to 0.05 (the
sample's fitted bodies come to 0.885, close to the 0.895 of MediaPipe's own mask), the joints
get closer to the truth (1.78 against 2.10 px with noisy keypoints, 3.01 against 3.20 px on the
sample) and the scale-aligned body by 0.4 to 0.6 cm, at half the speed. Weight 3 fits the masks
more but lets the keypoint residual grow (0.55 px on noiseless keypoints); 1 is the balance.
The outside part alone (``silhouette_coverage`` 0, weight 1) reaches IoU 0.857 (noisy random
bodies) and 0.854 (sample) only, joints 1.99 and 3.14 px; coverage 0.3 / 3 gives 0.868 / 0.888
on the sample, so 1 is kept. (An earlier one-sided version, run in one stage from the start,
had even lowered the IoU on exact masks: 0.895 -> 0.886 / 0.889 at weights 0.1 / 1.)
The default stays 0 (off) all the same: the term makes the ``body`` stage read ``person_mask``,
and a keypoints-only configuration (and its cache keys) is left as it was; set
``silhouette_weight: 1`` in the stage's params to use it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np
import scipy.sparse
import torch
from scipy.spatial.transform import Rotation

from .anny_body import OPENPOSE18_FROM_COCO, PHENOTYPE_LABELS, AnnyBody, rotvec_to_rotmat
from .smpl_body import JOINT_NAMES, NUM_JOINTS, SMPLBody

# COCO-18 (docs/CONVENTIONS.md)
NOSE, NECK, R_SHOULDER, L_SHOULDER, R_HIP, L_HIP = 0, 1, 2, 5, 8, 11
#: points the rigid stage fits: nose, neck, shoulders, hips, eyes, ears (the body at rest fits them)
TORSO_AND_FACE = (0, 1, 2, 5, 8, 11, 14, 15, 16, 17)


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
    surface_index: np.ndarray  # (K,) vertices the silhouette term projects (:func:`spread_vertices`)

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


#: spacing (m) of the surface points of the silhouette term: about 1900 of anny's 13718 vertices
SURFACE_SPACING = 0.03


def spread_vertices(vertices: np.ndarray, spacing: float) -> np.ndarray:
    """Sorted indices of one vertex (the first) per ``spacing``-metre cube of the rest vertices
    (V, 3): points spread evenly over the surface, dense parts (hands, face) thinned."""
    _, first = np.unique(np.floor(vertices / spacing).astype(np.int64), axis=0, return_index=True)
    return np.sort(first)


class AnnyFitModel(FitModel):
    """anny (:class:`~vtonpipe.models.anny_body.AnnyBody`) for fitting: 104 pose rows (19 major
    bones fitted), six phenotype values through a sigmoid, keypoints from per-bone moments."""

    name = "anny"
    num_shape = len(PHENOTYPE_LABELS)
    left, up, front = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, -1.0, 0.0)
    #: fitted bones and their pose prior weights; fingers, toes, eyes, twist bones, wrists and feet stay 0
    BONE_WEIGHTS = {
        "spine05": 1.0, "spine04": 1.0, "spine03": 1.0, "spine02": 1.0, "spine01": 1.0, "neck01": 1.0, "head": 0.5,
        "clavicle.L": 4.0, "clavicle.R": 4.0, "shoulder01.L": 4.0, "shoulder01.R": 4.0,
        "upperarm01.L": 0.1, "upperarm01.R": 0.1, "lowerarm01.L": 0.1, "lowerarm01.R": 0.1,
        "upperleg01.L": 0.1, "upperleg01.R": 0.1, "lowerleg01.L": 0.1, "lowerleg01.R": 0.1,
    }  # fmt: skip
    ELBOW_REST_ANGLE = 0.73  # rad: the upper arm's angle from the vertical in the reference pose

    def __init__(self, body: AnnyBody | None = None):
        import anny
        import roma

        self._procrustes = roma.special_procrustes
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
            Hinge(index["lowerarm01.L"], (-c, 0.0, -s), -0.2),
            Hinge(index["lowerarm01.R"], (-c, 0.0, s), -0.2),
            Hinge(index["lowerleg01.L"], (1.0, 0.0, 0.0), -0.05),
            Hinge(index["lowerleg01.R"], (1.0, 0.0, 0.0), -0.05),
        )

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
        t = {"dtype": self.dtype, "device": self.device}
        self._moments = torch.as_tensor(moments.reshape(18, self.num_bones, 4), **t)
        self._moment_dirs = torch.as_tensor(moment_dirs.reshape(18, self.num_bones, A, 3).transpose(2, 0, 1, 3), **t).contiguous()
        self._eye4 = torch.zeros(4, 4, **t)
        self._eye4[3, 3] = 1.0
        # surface points: rest positions and blend shapes of the subset, dense skinning weights (K, J)
        self.surface_index = spread_vertices(template, SURFACE_SPACING)
        self._surface_rest = torch.as_tensor(template[self.surface_index], **t)
        self._surface_dirs = torch.as_tensor(blendshapes[:, self.surface_index], **t)
        self._surface_skin = torch.as_tensor(self.body.dense_skin_weights()[self.surface_index], **t)

    def shape_from_free(self, free: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(free)

    def shape_prior(self, shape: torch.Tensor) -> torch.Tensor:
        return ((shape - 0.5) ** 2).sum(-1)

    def _rest_bone_poses(self, coeffs: torch.Tensor) -> torch.Tensor:
        """anny's rest bone poses (B, J, 4, 4) for blend-shape coefficients (B, A), without the mesh
        (anny's ``_get_cached_rest_model`` minus its rest vertices)."""
        m = self.model
        heads = m.template_bone_heads + torch.einsum("ba,akd->bkd", coeffs, m.bone_heads_blendshapes)
        cross = m.bone_template_orientation_matrices + torch.einsum("ba,akij->bkij", coeffs, m.bone_orientation_blendshapes)
        rotation = self._procrustes(cross)
        rotation = torch.cat([torch.eye(3, dtype=self.dtype, device=self.device).expand(len(coeffs), 1, 3, 3), rotation[:, 1:]], 1)
        return torch.cat([torch.cat([rotation, heads[..., None]], -1), self._eye4[3].expand(*heads.shape[:2], 1, 4)], -2)

    def _posed(self, pose: torch.Tensor, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Blend-shape coefficients (B, A) and bone transforms (B, J, 3, 4) (rest -> posed, body frame)."""
        m = self.model
        # anny's public (if deprecated) phenotype -> blend-shape coefficients; local changes and facial actions 0
        coeffs = m.get_phenotype_blendshape_coefficients(**{label: shape[:, i] for i, label in enumerate(PHENOTYPE_LABELS)})
        rot = torch.nn.functional.pad(rotvec_to_rotmat(pose), (0, 1, 0, 1)) + self._eye4
        transforms, _ = m.get_bone_transforms(rot, self._rest_bone_poses(coeffs))
        return coeffs, transforms[:, :, :3, :]

    def _keypoints(self, coeffs: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        moments = self._moments + torch.nn.functional.pad(torch.einsum("ba,akjd->bkjd", coeffs, self._moment_dirs), (0, 1))
        return torch.einsum("bjrc,bkjc->bkr", T, moments)

    def keypoints(self, pose: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        return self._keypoints(*self._posed(pose, shape))

    def keypoints_and_surface(self, pose: torch.Tensor, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        coeffs, T = self._posed(pose, shape)
        rest = self._surface_rest + torch.einsum("ba,akd->bkd", coeffs, self._surface_dirs)
        blend = torch.einsum("kj,bjrc->bkrc", self._surface_skin, T)  # linear blend skinning of the subset
        return self._keypoints(coeffs, T), (blend[..., :3] @ rest[..., None])[..., 0] + blend[..., 3]


class SMPLFitModel(FitModel):
    """SMPL (:class:`~vtonpipe.models.smpl_body.SMPLBody`) for fitting: 23 pose rows (17 fitted:
    hands, feet, ankles and wrists move no COCO-18 point), betas with an L2 prior.

    ``name``: the body row's ``model`` ("smpl", "smpl-male", "smpl-female").
    """

    left, up, front = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
    # pose rows are SMPL joints 1..23, so row = joint - 1
    JOINT_WEIGHTS = {
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
        with torch.no_grad():
            rest = body(torch.zeros(NUM_JOINTS - 1, 3), torch.zeros(self.num_shape))[0]
        self.surface_index = spread_vertices(rest.double().cpu().numpy(), SURFACE_SPACING)

    def shape_from_free(self, free: torch.Tensor) -> torch.Tensor:
        return free

    def shape_prior(self, shape: torch.Tensor) -> torch.Tensor:
        return (shape**2).sum(-1)

    def keypoints(self, pose: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        return self.body.openpose18(pose, shape)

    def keypoints_and_surface(self, pose: torch.Tensor, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.body.openpose18(pose, shape), self.body(pose, shape)[:, self.surface_index]


# -- problem definition ----------------------------------------------------------------------------
@dataclass(frozen=True)
class FitConfig:
    """Settings of :func:`fit_bodies` (the ``body`` backends' params). Sizes relative to the
    person's size ``S`` (the larger side of the detected keypoints' box)."""

    fov_y_deg: float = 20.0  # assumed vertical field of view of the photo (fashion photos: long lenses)
    max_iters: int = 300  # Adam steps of the full fit (and of the silhouette stage), at most
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
    silhouette_coverage: float = 1.0  # weight of its coverage part relative to its outside part
    silhouette_sigma: float = 0.05  # Geman-McClure scale of both parts (fraction of S)

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
    if not (found[[NECK, R_SHOULDER, L_SHOULDER]].any() and found[[R_HIP, L_HIP]].any()):
        return "no torso: a shoulder (or the neck) and a hip are needed"
    return None


def person_size(keypoints: np.ndarray, min_confidence: float) -> float:
    """S (px): the larger side of the detected keypoints' box."""
    xy = keypoints[keypoints[:, 2] > min_confidence, :2]
    return float(max(np.ptp(xy[:, 0]), np.ptp(xy[:, 1]), 1.0))


@dataclass
class FitResult:
    """Fits of a batch (numpy, float32): ``pose`` (B, num_bones, 3), ``shape`` (B, num_shape),
    ``rotation`` (B, 3) axis-angle and ``translation`` (B, 3) m (body -> camera), ``camera``
    (B, 4) fx, fy, cx, cy, ``joints_2d`` (B, 18, 3) x, y px and 1 where the keypoint was used,
    ``residual_px`` (B,), ``iterations`` (B,) int32, ``failure`` per image: None or (reason, message)."""

    model: str
    pose: np.ndarray
    shape: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    camera: np.ndarray
    joints_2d: np.ndarray
    residual_px: np.ndarray
    iterations: np.ndarray
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

    def __init__(self, model: FitModel, keypoints: np.ndarray, sizes: Sequence[tuple[int, int]], config: FitConfig):
        t = {"dtype": model.dtype, "device": model.device}
        self.n = len(keypoints)
        found = keypoints[:, :, 2] > config.min_confidence
        self.found = found
        self.target = torch.as_tensor(keypoints[:, :, :2], **t)
        self.conf = torch.as_tensor(np.where(found, keypoints[:, :, 2], 0.0), **t)
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


def _data_term(pixels: torch.Tensor, batch: _Batch, idx: torch.Tensor, sigma: float, weights: torch.Tensor | None = None) -> torch.Tensor:
    r2 = ((pixels - batch.target[idx]) ** 2).sum(-1) / batch.scale[idx, None] ** 2
    w = batch.conf[idx] if weights is None else batch.conf[idx] * weights
    return (w * _gm(r2, sigma)).sum(-1) / w.sum(-1).clamp_min(1e-9)


#: mask contour points per image of the silhouette term's coverage part
EDGE_POINTS = 160
#: learning rate of the silhouette stage, times ``FitConfig.lr``: it refines a converged keypoint
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
        edge = self.edge[idx]
        with torch.no_grad():
            nearest = torch.cdist(edge, pixels).argmin(-1)  # (b, P): the min's (sub)gradient flows to these
        gap2 = ((edge - pixels.gather(1, nearest[..., None].expand(-1, -1, 2))) ** 2).sum(-1) / scale[:, None] ** 2
        coverage = (self.edge_weight[idx] * _gm(gap2, config.silhouette_sigma)).sum(-1)
        return outside + config.silhouette_coverage * coverage


class _Params(torch.nn.Module):
    """The optimised variables of a batch (see the module docstring)."""

    def __init__(self, model: FitModel, R0: torch.Tensor, t0: torch.Tensor, n_fit: int):
        super().__init__()
        n, t = len(R0), {"dtype": model.dtype, "device": model.device}
        self.register_buffer("R0", R0.to(**t))
        self.register_buffer("z0", t0[:, 2].to(**t))
        self.register_buffer("uv0", (t0[:, :2] / t0[:, 2:]).to(**t))
        self.delta = torch.nn.Parameter(torch.zeros(n, 3, **t))
        self.uv = torch.nn.Parameter(torch.zeros(n, 2, **t))
        self.log_z = torch.nn.Parameter(torch.zeros(n, 1, **t))
        self.pose = torch.nn.Parameter(torch.zeros(n, n_fit, 3, **t))
        self.shape = torch.nn.Parameter(torch.zeros(n, model.num_shape, **t))

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


def fit_bodies(
    model: FitModel,
    keypoints: np.ndarray,
    sizes: Sequence[tuple[int, int]],
    config: FitConfig = FitConfig(),
    masks: Sequence[np.ndarray] | None = None,
) -> FitResult:
    """Fit ``model`` to the COCO-18 keypoints (B, 18, 3) (x, y px, confidence) of B images of
    ``sizes`` (W, H) as one batched problem; with ``config.silhouette_weight > 0`` also to the
    person ``masks`` (B of uint8 (H, W), 1 on the person; required then, unused otherwise).
    Images whose keypoints cannot be fitted (:func:`keypoint_problem`) get ``failure =
    ("too_few_keypoints", ...)`` and zero parameters."""
    keypoints = np.asarray(keypoints, np.float64).reshape(-1, 18, 3)
    n = len(keypoints)
    if config.silhouette_weight > 0 and (masks is None or [m.shape[::-1] for m in masks] != [tuple(s) for s in sizes]):
        raise ValueError("silhouette_weight > 0 needs one person mask (H, W) per image, of the image's size")
    problems = [keypoint_problem(k, config.min_keypoints, config.min_confidence) for k in keypoints]
    ok = [b for b in range(n) if problems[b] is None]
    result = FitResult(
        model.name,
        np.zeros((n, model.num_bones, 3), np.float32), np.zeros((n, model.num_shape), np.float32),
        np.zeros((n, 3), np.float32), np.zeros((n, 3), np.float32),
        np.stack([camera_of(w, h, config.fov_y_deg) for w, h in sizes]) if n else np.zeros((0, 4), np.float32),
        np.zeros((n, 18, 3), np.float32), np.zeros(n, np.float32), np.zeros(n, np.int32),
        [None if p is None else ("too_few_keypoints", p) for p in problems],
    )  # fmt: skip
    if not ok:
        return result
    kp = keypoints[ok]
    batch = _Batch(model, kp, [sizes[b] for b in ok], config)
    R0, t0 = _rigid_stage(model, batch, kp, config)
    params = _Params(model, R0, t0, len(model.fit_bones))

    def losses(idx: torch.Tensor, silhouettes: _Silhouettes | None) -> torch.Tensor:
        pose_fit, shape = params.pose[idx], model.shape_from_free(params.shape[idx])
        pose = _full_pose(model, pose_fit)
        R, t = params.rigid(idx)
        if silhouettes is None:
            joints = model.keypoints(pose, shape)
        else:
            joints, surface = model.keypoints_and_surface(pose, shape)
        loss = _data_term(batch.project(joints @ R.transpose(1, 2) + t[:, None], idx), batch, idx, config.sigma)
        loss = loss + _pose_prior(model, pose_fit, config) + config.shape_weight * model.shape_prior(shape)
        if silhouettes is not None:
            pixels = batch.project(surface @ R.transpose(1, 2) + t[:, None], idx)
            loss = loss + config.silhouette_weight * silhouettes.loss(pixels, idx, batch.scale[idx], config)
        return loss

    steps = _descend(params, lambda idx: losses(idx, None), config.lr, config)
    if config.silhouette_weight > 0:  # the silhouette stage: refine the keypoint fit
        silhouettes = _Silhouettes([masks[b] for b in ok], model)
        steps += _descend(params, lambda idx: losses(idx, silhouettes), SILHOUETTE_LR * config.lr, config)

    m = len(ok)
    with torch.no_grad():
        all_idx = torch.arange(m, device=model.device)
        pose_fit, shape = params.pose.detach(), model.shape_from_free(params.shape.detach())
        pose = _full_pose(model, pose_fit)
        joints = model.keypoints(pose, shape)
        R, t = params.rigid(all_idx)
        pixels = batch.project(joints @ R.transpose(1, 2) + t[:, None], all_idx)
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
        result.iterations[b] = config.rigid_iters + int(steps[i])
        if not (np.isfinite(residual[i]) and np.isfinite(result.translation[b]).all()):
            result.failure[b] = ("fit_failed", "the fit diverged (non-finite parameters)")
        elif residual[i] > config.max_residual * scale[i]:
            result.failure[b] = ("fit_failed", f"mean keypoint error {residual[i]:.1f} px > {config.max_residual:g} x person size {scale[i]:.0f} px")
    return result


def _descend(params: _Params, losses: Callable[[torch.Tensor], torch.Tensor], lr: float, config: FitConfig) -> torch.Tensor:
    """Adam (learning rate ``lr``, scaled per variable) on the sum of the per-image ``losses(idx)``
    (b,), with per-image early stopping; leaves every image at its best parameters. Returns the
    steps taken per image (B,) int64."""
    device = params.pose.device
    opt = torch.optim.Adam(params.groups(lr))
    m = len(params.pose)
    best = torch.full((m,), math.inf, dtype=torch.float64)
    best_state = {k: v.detach().clone() for k, v in params.named_parameters()}
    stall = torch.zeros(m, dtype=torch.int64)
    steps = torch.zeros(m, dtype=torch.int64)
    active = torch.ones(m, dtype=torch.bool)
    for _ in range(config.max_iters + 1):
        idx = torch.nonzero(active).flatten()
        opt.zero_grad()
        loss = losses(idx.to(device))
        value = loss.detach().double().cpu()
        improved = value < best[idx] * (1 - config.rel_tol)
        better = value < best[idx]
        with torch.no_grad():
            for name, p in params.named_parameters():
                keep = idx[better].to(device)
                best_state[name][keep] = p[keep]
        best[idx[better]] = value[better]
        stall[idx] = torch.where(improved, 0, stall[idx] + 1)
        done = (stall[idx] >= config.patience) | (steps[idx] >= config.max_iters) | ~torch.isfinite(value)
        if done.any():
            _freeze(params, opt, best_state, idx[done].to(device))
            active[idx[done]] = False
        if not active.any():
            break
        loss[~done.to(loss.device)].sum().backward()
        opt.step()
        steps[idx[~done]] += 1
    return steps


def _freeze(params: _Params, opt: torch.optim.Adam, best_state: dict[str, torch.Tensor], idx: torch.Tensor) -> None:
    """Put images ``idx`` back to their best parameters and zero their Adam moments (they stop moving)."""
    with torch.no_grad():
        for name, p in params.named_parameters():
            p[idx] = best_state[name][idx]
            state = opt.state.get(p)
            if state:
                state["exp_avg"][idx] = 0.0


# -- known-answer problems (tests, benchmarks/bench_body_fit.py) -----------------------------------
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


def sample_pose(model: FitModel, rng: np.random.Generator, n: int) -> np.ndarray:
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
) -> SyntheticBodies:
    """``n`` random bodies (random pose, shape, turned up to ``max_yaw_deg`` about the vertical,
    seen from the back when ``back``) framed so their keypoints span 80 % of the image height of
    a ``size`` (W, H) image, with Gaussian noise of ``noise_px`` on the keypoints."""
    rng = np.random.default_rng(seed)
    width, height = size
    pose = sample_pose(model, rng, n)
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
