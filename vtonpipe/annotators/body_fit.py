"""``body`` backends: ``anny-fit`` (default), ``smpl-fit`` and ``frankmocap``.

- ``anny-fit``: anny (Apache-2.0, no user files) fitted to the image's COCO-18 keypoints by
  :func:`vtonpipe.models.bodies.fitting.fit_bodies`; the whole batch is one optimisation problem.
- ``smpl-fit``: the same optimiser on SMPL (``gender`` neutral | male | female), from the user's
  model file read by the safe loader of :mod:`vtonpipe.models.bodies.smpl`. Rows have ``model``
  ``smpl`` (neutral), ``smpl-male`` or ``smpl-female``; ``pose`` the 23 body joints.
- ``frankmocap``: FrankMocap's body regressor (github.com/facebookresearch/frankmocap, not on
  PyPI: put its checkout on ``PYTHONPATH`` so that ``bodymocap`` imports, and its
  ``extra_data`` under ``<weights>/frankmocap/``), its weak-perspective output converted to the
  perspective camera and rigid transform of the other backends (:func:`frankmocap_to_body`).
  FrankMocap's own SMPL layer unpickles its SMPL file with ``pickle`` and chumpy (its code, not
  vtonpipe's); vtonpipe reads the same file with its safe loader.

All read the ``keypoints`` annotation. ``anny-fit`` and ``smpl-fit`` with ``silhouette_weight >
0`` also read the ``person_mask`` annotation's ``mask`` (``requires`` follows the param) for the
fitter's silhouette term (:mod:`vtonpipe.models.bodies.fitting`: off by default, 1 measures best),
and with ``parsing_weight > 0`` the ``parsing`` annotation's LIP map for its parsing term; with
``depth_weight > 0`` the depth term reads the keypoints rows' MediaPipe landmarks (a row of another
keypoints backend has none: an error naming the backend): ``depth_cue`` ``mediapipe`` takes their
``z`` times ``depth_scale``, ``lifter`` the depths :mod:`~vtonpipe.models.bodies.lifting`'s network
(learnt from random anny bodies) reads off their 2D points, ``mean`` the mean of the two (with the
lifter, every row's key and the stage's provenance hold the lifter's config key, ``depth_lifter``:
retrained differently, the bodies are fitted again). With ``landmark_weight >
0`` (anny-fit) the landmark term their hands' and feet's points; with ``hidden_weight > 0`` the
keypoint term also takes MediaPipe's guesses of the wrists and ankles the keypoints row leaves unseen
(:func:`~vtonpipe.converters.keypoints.mp33_hidden_joints`: on back views with the hands in front
of the body the wrists are 5-7 px off there, where a fit without them puts them 23 px off). Params (see
:class:`~vtonpipe.models.bodies.fitting.FitConfig`): the assumed ``fov_y_deg`` (fixes ``fx = fy``;
principal point at the image centre), optimiser settings, the upper arms' starting twists
(``arm_twists``: the fit runs from each, every image keeps its least loss), prior and silhouette
weights and the failure thresholds. Failures: ``too_few_keypoints`` (fewer than ``min_keypoints`` or no torso),
``fit_failed`` (mean keypoint error above ``max_residual`` x person size, or a diverged fit),
``missing_upstream`` (no keypoints row, or, with the silhouette or parsing term, no person_mask
or parsing row: the upstream stage failed on the image; such an image is not fitted without it,
so every row of a configuration is fitted the same way).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ..converters.keypoints import clear_outside, mp33_coco_joints, mp33_depths_to_coco18, mp33_hidden_joints, mp33_points
from ..core import (
    AnnotationFailure,
    Backend,
    Context,
    ImageItem,
    Requirements,
    WeightFile,
)
from ..models.bodies.anny import AnnyBody
from ..models.bodies.fitting import (
    MP33_FIT_LANDMARKS,
    AnnyFitModel,
    FitConfig,
    FitModel,
    SMPLFitModel,
    camera_of,
    fit_bodies,
    keypoint_problem,
    person_size,
)
from ..models.bodies.lifting import DepthLifter, LifterConfig, lift_depths, load_depth_lifter
from ..models.bodies.smpl import SMPL_MODEL_FILES, SMPL_MODEL_NAMES, SMPLBody
from ..schemas.body import BodyRecord
from .body import SPEC as BODY_SPEC
from .registry import register_backend

FRANKMOCAP_SOURCE = "FrankMocap's scripts/install_frankmocap.md and download_data_body_module.sh (github.com/facebookresearch/frankmocap)"
FRANKMOCAP_CHECKPOINT = WeightFile(
    "frankmocap/extra_data/body_module/pretrained_weights/2020_05_31-00_50_43-best-51.749683916568756.pt",
    FRANKMOCAP_SOURCE,
    None,
    "FrankMocap body regressor (SPIN's HMR, trained with EFT fits)",
)
FRANKMOCAP_MEAN_PARAMS = WeightFile(
    "frankmocap/extra_data/body_module/data_from_spin/smpl_mean_params.npz", FRANKMOCAP_SOURCE, None, "SPIN's SMPL mean parameters"
)
FRANKMOCAP_SMPL = WeightFile(
    "frankmocap/extra_data/smpl/basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
    "SMPLify's neutral SMPL model (https://smplify.is.tue.mpg.de, registration required), as FrankMocap's install notes say",
    None,
    "neutral SMPL model of FrankMocap",
)
HMR_INPUT_HALF = 112.0  # half of the regressor's 224 px input crop
#: the landmark term reads MediaPipe's hand and foot landmarks seen at least this well (the
#: keypoints stage's default ``min_visibility``, MediaPipe's own drawing threshold)
LANDMARK_MIN_VISIBILITY = 0.5
#: the depth term's targets (params ``depth_cue``, ``depth_scale``)
DEPTH_CUES = ("mediapipe", "lifter", "mean")
#: params of the anny-fit and smpl-fit backends beyond :class:`FitConfig`: where the depth term's
#: targets come from, and MediaPipe's relative depth (px at the body's distance) per px of its
#: ``z`` (MediaPipe exaggerates depth about four-fold: 0.22 is the least-squares slope on the seed-11 sample)
DEPTH_PARAMS = {"depth_cue": "mediapipe", "depth_scale": 0.22}


def depth_targets(landmarks: np.ndarray, cue: str, depth_scale: float, lifter: DepthLifter | None) -> np.ndarray:
    """(B, 18) relative joint depths px (``f (Z_k - Z_hips) / Z_hips`` at the body's distance,
    smaller = nearer) from MediaPipe's landmarks (B, 33, 4): ``mediapipe`` ``depth_scale`` times
    their ``z``, ``lifter`` the ``lifter``'s from their 2D points (as COCO joints), ``mean`` both's mean."""
    scaled = depth_scale * mp33_depths_to_coco18(landmarks).astype(np.float64)
    if cue == "mediapipe":
        return scaled
    points = np.stack([mp33_coco_joints(lm) for lm in landmarks])
    lifted = lift_depths(lifter, points)
    return lifted if cue == "lifter" else 0.5 * (scaled + lifted)


class _FitBackend(Backend):
    """Shared: read the keypoints (and the person masks for the silhouette term), fit the whole
    batch at once, one record or failure each."""

    spec = BODY_SPEC
    _model: FitModel
    _lifter: DepthLifter | None = None

    def __init__(self, params: Mapping[str, Any] | None = None, *, device: str = "cpu"):
        super().__init__(params, device=device)
        if self.params["depth_cue"] not in DEPTH_CUES:
            raise ValueError(f"body/{self.name}: depth_cue must be one of {', '.join(DEPTH_CUES)}, not {self.params['depth_cue']!r}")

    @property
    def uses_lifter(self) -> bool:
        return self.params["depth_weight"] > 0 and self.params["depth_cue"] != "mediapipe"

    def setup(self) -> None:
        self._model = self._fit_model()
        if self.uses_lifter:
            self._lifter = load_depth_lifter()

    def input_sha256(self, item_id: str, ctx: Context) -> str:
        """The image's bytes hash, with the lifter the key of its config too (its weights follow from it)."""
        key = super().input_sha256(item_id, ctx)
        return hashlib.sha256(f"{key}/depth_lifter/{LifterConfig().key()}".encode()).hexdigest() if self.uses_lifter else key

    def provenance(self) -> dict[str, Any]:
        return {"depth_lifter": LifterConfig().key()} if self.uses_lifter else {}

    def _fit_model(self) -> FitModel:
        raise NotImplementedError

    @property
    def requires(self) -> tuple[str, ...]:
        return ("keypoints",) + ("person_mask",) * (self.params["silhouette_weight"] > 0) + ("parsing",) * (self.params["parsing_weight"] > 0)

    def annotate(self, items: Sequence[ImageItem], ctx: Context) -> list[BodyRecord | AnnotationFailure]:
        silhouette, parsing = self.params["silhouette_weight"] > 0, self.params["parsing_weight"] > 0
        depth, landmark, hide = (self.params[k] > 0 for k in ("depth_weight", "landmark_weight", "hidden_weight"))
        out: dict[int, BodyRecord | AnnotationFailure] = {}
        keypoints: dict[int, np.ndarray] = {}
        mp33: dict[int, np.ndarray] = {}
        landmarks: dict[int, np.ndarray] = {}
        hidden: dict[int, np.ndarray] = {}
        masks: dict[int, np.ndarray | None] = {}
        parsings: dict[int, np.ndarray | None] = {}
        for i, item in enumerate(items):
            try:
                row = ctx.annotation("keypoints", item.image_id)
                mask = ctx.annotation("person_mask", item.image_id).mask if silhouette else None
                labels = ctx.annotation("parsing", item.image_id).parsing if parsing else None
            except AnnotationFailure as f:
                out[i] = f
            else:
                keypoints[i], masks[i], parsings[i] = row.keypoints, mask, labels
                if (depth or landmark or hide) and row.landmarks_mp33 is None:
                    raise ValueError(
                        f"body: depth_weight, landmark_weight or hidden_weight > 0 needs MediaPipe's landmarks (the keypoints backend mediapipe); {item.image_id}'s keypoints row has none"
                    )
                if depth:
                    mp33[i] = row.landmarks_mp33
                if landmark:
                    seen = mp33_points(row.landmarks_mp33, MP33_FIT_LANDMARKS, LANDMARK_MIN_VISIBILITY)
                    landmarks[i] = clear_outside(seen, item.image.shape[:2])
                if hide:
                    hidden[i] = mp33_hidden_joints(row.landmarks_mp33, row.keypoints, item.image.shape[:2])
        if keypoints:
            sizes = [(items[i].image.shape[1], items[i].image.shape[0]) for i in keypoints]
            config = FitConfig.from_params(self.params)
            fit = fit_bodies(
                self._model,
                np.stack(list(keypoints.values())),
                sizes,
                config,
                list(masks.values()) if silhouette else None,
                parsings=list(parsings.values()) if parsing else None,
                depths=depth_targets(np.stack(list(mp33.values())), self.params["depth_cue"], self.params["depth_scale"], self._lifter) if depth else None,
                landmarks=np.stack(list(landmarks.values())) if landmark else None,
                hidden=np.stack(list(hidden.values())) if hide else None,
            )
            for j, i in enumerate(keypoints):
                out[i] = AnnotationFailure(*fit.failure[j]) if fit.failure[j] else BodyRecord(**fit.record(j))
        return [out[i] for i in range(len(items))]


@register_backend
class AnnyFit(_FitBackend):
    name = "anny-fit"
    version = "5"  # 2: sub-skeleton keypoint forward (same maths, float sums reordered: fits differ by rounding); 3: the landmark vertices among the surface points; 4: the hinge prior lets elbows and knees straighten; 5: depth_cue
    requirements = Requirements(packages=("torch", "anny"))
    default_params = {**asdict(FitConfig()), **DEPTH_PARAMS}
    doc = "anny fitted to the COCO-18 keypoints (batched Adam, robust 2D loss, bone priors, front/back facing; optional silhouette term)."

    def _fit_model(self) -> FitModel:
        return AnnyFitModel(AnnyBody(self.device))


@register_backend
class SMPLFit(_FitBackend):
    name = "smpl-fit"
    version = "2"  # 2: depth_cue
    requirements = Requirements(packages=("torch",), weights=tuple(SMPL_MODEL_FILES.values()))
    default_params = {**asdict(FitConfig()), **DEPTH_PARAMS, "gender": "neutral", "num_betas": 10}
    doc = "SMPL (user's model file, gender param) fitted to the COCO-18 keypoints by the anny-fit optimiser."

    def __init__(self, params: Mapping[str, Any] | None = None, *, device: str = "cpu"):
        super().__init__(params, device=device)
        if self.params["gender"] not in SMPL_MODEL_FILES:
            raise ValueError(f"body/smpl-fit: gender must be one of {sorted(SMPL_MODEL_FILES)}, not {self.params['gender']!r}")

    def weight_files(self) -> tuple[WeightFile, ...]:
        return (SMPL_MODEL_FILES[self.params["gender"]],)

    def _fit_model(self) -> FitModel:
        (model_file,) = self.weight_files()
        body = SMPLBody.from_file(model_file.require(), self.params["num_betas"], self.device)
        return SMPLFitModel(body, SMPL_MODEL_NAMES[self.params["gender"]])


def frankmocap_to_body(output: dict[str, Any], smpl: SMPLBody, width: int, height: int, fov_y_deg: float) -> dict[str, Any]:
    """A FrankMocap body output (``BodyMocap.regress`` key names) as ``body`` fields.

    FrankMocap places SMPL (smplx, ``global_orient`` about the pelvis joint ``J_0``, no
    translation) in the image by a weak-perspective camera ``(s, tx, ty)`` on its 224 px crop:
    ``x_img = (112 / k) (s X + tx + 1) + x_topleft`` (``convert_smpl_to_bbox`` then
    ``convert_bbox_to_oriIm``; ``k`` is ``bbox_scale_ratio``, crop px per image px), i.e. ``a X +
    b`` with ``a = 112 s / k`` px/m. With the fitter's perspective camera (``f`` from
    ``fov_y_deg``, centre ``c``) the body goes at depth ``Z = f / a`` (its keypoints' mean depth),
    shifted by ``(b - c) / a``, so that both projections agree on that depth plane. FrankMocap's
    image coordinates are taken as the pixel-centre frame of docs/CONVENTIONS.md.

    Returns ``model``, ``pose`` (23, 3), ``shape`` (betas), ``rotation``, ``translation``, ``camera``.
    """
    rotmat = np.asarray(output["pred_rotmat"], np.float64).reshape(24, 3, 3)
    aa = Rotation.from_matrix(rotmat).as_rotvec()
    betas = np.asarray(output["pred_betas"], np.float64).reshape(-1)
    s, tx, ty = (float(v) for v in np.asarray(output["pred_camera"]).ravel())
    k = float(output["bbox_scale_ratio"])
    top_left = np.asarray(output["bbox_top_left"], np.float64).ravel()
    a = HMR_INPUT_HALF * s / k
    b = top_left + HMR_INPUT_HALF * (np.array([tx, ty]) + 1) / k
    camera = camera_of(width, height, fov_y_deg)
    f, c = float(camera[0]), camera[2:].astype(np.float64)
    with torch.no_grad():
        _, offset = smpl.rigid_from_global_orient(aa[0], np.zeros(3), betas)  # smplx's output: x -> R x + offset
        body_keypoints = smpl.openpose18(aa[1:], betas)[0].double().cpu().numpy()
    offset = offset[0].double().cpu().numpy()
    keypoints = Rotation.from_rotvec(aa[0]).apply(body_keypoints) + offset
    shift = np.array([*(b - c) / a, f / a - keypoints[:, 2].mean()])
    return {
        "model": "smpl",
        "pose": aa[1:].astype(np.float32),
        "shape": betas.astype(np.float32),
        "rotation": aa[0].astype(np.float32),
        "translation": (offset + shift).astype(np.float32),
        "camera": camera,
    }


@register_backend
class FrankMocap(Backend):
    spec = BODY_SPEC
    name = "frankmocap"
    version = "1"
    requirements = Requirements(packages=("bodymocap",), weights=(FRANKMOCAP_CHECKPOINT, FRANKMOCAP_MEAN_PARAMS, FRANKMOCAP_SMPL))
    default_params = {"fov_y_deg": FitConfig.fov_y_deg, "bbox_margin": 0.1, "min_keypoints": 6, "min_confidence": 0.05, "max_residual": 0.1}
    requires = ("keypoints",)
    doc = "FrankMocap's body regressor on the keypoints' box; weak perspective converted to the fitter's camera."

    def setup(self) -> None:
        from bodymocap.body_mocap_api import BodyMocap

        root = FRANKMOCAP_CHECKPOINT.path.parents[3]
        with contextlib.chdir(root):  # BodyMocap reads ./extra_data/body_module/data_from_spin/smpl_mean_params.npz
            self._mocap = BodyMocap(str(FRANKMOCAP_CHECKPOINT.path), str(FRANKMOCAP_SMPL.path.parent), device=torch.device(self.device))
        self._smpl = SMPLBody.from_file(FRANKMOCAP_SMPL.path, device=self.device)

    def _regress(self, image: np.ndarray, box: np.ndarray) -> dict[str, Any] | None:
        """FrankMocap's body output for the RGB image's person in ``box`` (x, y, w, h), or None."""
        from bodymocap.utils.imutils import process_image_bbox

        crop, norm_img, scale_ratio, top_left, _ = process_image_bbox(np.ascontiguousarray(image[..., ::-1]), box, input_res=224)
        if crop is None:
            return None
        with torch.no_grad():
            rotmat, betas, camera = self._mocap.model_regressor(norm_img.to(self._mocap.device))
        return {
            "pred_rotmat": rotmat.cpu().numpy(),
            "pred_betas": betas.cpu().numpy(),
            "pred_camera": camera.cpu().numpy().ravel(),
            "bbox_top_left": np.asarray(top_left),
            "bbox_scale_ratio": scale_ratio,
        }

    def annotate_one(self, item: ImageItem, ctx: Context) -> BodyRecord:
        p = self.params
        kp = ctx.annotation("keypoints", item.image_id).keypoints
        problem = keypoint_problem(kp, p["min_keypoints"], p["min_confidence"])
        if problem:
            raise AnnotationFailure("too_few_keypoints", problem)
        found = kp[:, 2] > p["min_confidence"]
        lo, hi = kp[found, :2].min(0), kp[found, :2].max(0)
        margin = p["bbox_margin"] * (hi - lo).max()
        box = np.array([*(lo - margin), *(hi - lo + 2 * margin)])
        h, w = item.image.shape[:2]
        output = self._regress(item.image, box)
        if output is None:
            raise AnnotationFailure("fit_failed", "FrankMocap could not crop the person box")
        return self._with_joints(frankmocap_to_body(output, self._smpl, w, h, p["fov_y_deg"]), kp, found)

    def _with_joints(self, record: dict[str, Any], kp: np.ndarray, found: np.ndarray) -> BodyRecord:
        """The body of ``record`` (:func:`frankmocap_to_body`) with its projected COCO-18 joints
        and residual against the keypoints; ``fit_failed`` when the residual is too large."""
        with torch.no_grad():
            joints = self._smpl.openpose18(record["pose"], record["shape"])[0].double().cpu().numpy()
        cam = Rotation.from_rotvec(record["rotation"]).apply(joints) + record["translation"]
        fx, fy, cx, cy = record["camera"]
        pixels = np.stack([fx * cam[:, 0] / cam[:, 2] + cx, fy * cam[:, 1] / cam[:, 2] + cy], 1)
        conf = np.where(found, kp[:, 2], 0.0)
        residual = float((conf * np.linalg.norm(pixels - kp[:, :2], axis=1)).sum() / conf.sum())
        size = person_size(kp, self.params["min_confidence"])
        if not residual <= self.params["max_residual"] * size:
            raise AnnotationFailure("fit_failed", f"mean keypoint error {residual:.1f} px > {self.params['max_residual']:g} x person size {size:.0f} px")
        joints_2d = np.concatenate([pixels, found[:, None]], 1).astype(np.float32)
        return BodyRecord(**record, joints_2d=joints_2d, residual_px=residual, iterations=0)
