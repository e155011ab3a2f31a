"""The body fitter on anny: keypoints without the mesh, recovery of known bodies, batching, early
stopping, front/back facing, the silhouette and parsing terms, the ``anny-fit`` backend through
``run_stage`` (failures recorded; with the silhouette term, the ``person_mask`` upstream, with the
parsing term the ``parsing`` one), ``posed_mesh`` of fitted rows and the drawing."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from builders import simple_build, write_keypoints, write_rows
from scipy.spatial.transform import Rotation

from vtonpipe.annotators import get_backend
from vtonpipe.annotators.body_fit import DEPTH_PARAMS
from vtonpipe.converters.keypoints import MP33_TO_COCO18
from vtonpipe.converters.labels import LIP
from vtonpipe.models.bodies.camera import PinholeCamera
from vtonpipe.models.bodies.fitting import (
    ANNY_MP33_VERTICES,
    MP33_FIT_LANDMARKS,
    AnnyFitModel,
    FitConfig,
    camera_of,
    fit_bodies,
)
from vtonpipe.models.bodies.fitting.optimize import (
    PARSING_REGIONS,
    _Batch,
    _depth_term,
    _freeze,
    _Landmarks,
    _Params,
    _PartRegions,
    _Silhouettes,
    drop_off_mask,
)
from vtonpipe.models.bodies.fitting.problems import random_fit_pose, synthetic_bodies
from vtonpipe.models.bodies.posed import posed_mesh
from vtonpipe.models.render.raster import rasterize
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.context import AnnotationContext
from vtonpipe.pipeline.layout import BuildLayout
from vtonpipe.pipeline.runner import StageError, run_stage
from vtonpipe.pipeline.store import ShardReader, read_manifest
from vtonpipe.vis import DRAWERS

W, H = 192, 256


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model() -> AnnyFitModel:
    return AnnyFitModel()


def clean_error(fit, truth) -> np.ndarray:
    """(B, 18) px distance between the fit's projected joints and the noiseless keypoints."""
    return np.linalg.norm(fit.joints_2d[:, :, :2] - truth.clean, axis=-1)


def silhouettes(model, pose, shape, rotation, translation) -> list[np.ndarray]:
    """uint8 (H, W) {0, 1} masks of anny bodies (numpy batches) seen by the fitter's camera."""
    camera = PinholeCamera(*(float(v) for v in camera_of(W, H, 20.0)), W, H)
    with torch.no_grad():
        vertices = model.body(pose, shape, rotation, translation).numpy()
    return [rasterize(v, model.body.faces, camera).mask.astype(np.uint8) for v in vertices]


def bare_parsings(model, pose, shape, rotation, translation) -> list[np.ndarray]:
    """uint8 (H, W) LIP maps of naked anny bodies (numpy batches): each body pixel gets the LIP
    class of its DensePose part (arms, legs, face; the torso upper-clothes, the feet shoes)."""
    from vtonpipe.models.render.iuv import anny_charts

    lip = np.zeros(25, np.uint8)
    for label, parts in PARSING_REGIONS.items():
        lip[list(parts)] = label
    lip[[1, 2]] = LIP.UPPER_CLOTHES
    lip[5], lip[6] = LIP.LEFT_SHOE, LIP.RIGHT_SHOE
    camera = PinholeCamera(*(float(v) for v in camera_of(W, H, 20.0)), W, H)
    face_part = anny_charts().face_part
    with torch.no_grad():
        vertices = model.body(pose, shape, rotation, translation).numpy()
    out = []
    for v in vertices:
        face = rasterize(v, model.body.faces, camera).face_id
        out.append(np.where(face >= 0, lip[face_part[np.maximum(face, 0)]], 0).astype(np.uint8))
    return out


#: COCO-18 elbows, wrists, knees and ankles; the keypoints a torso-only problem withholds (all but the nose, neck, shoulders and hips)
LIMBS = [3, 4, 6, 7, 9, 10, 12, 13]
WITHHELD = [3, 4, 6, 7, 9, 10, 12, 13, 14, 15, 16, 17]


def torso_only(keypoints: np.ndarray) -> np.ndarray:
    """A copy of (B, 18, 3) keypoints with the ``WITHHELD`` ones undetected (confidence 0)."""
    out = keypoints.copy()
    out[:, WITHHELD, 2] = 0.0
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.astype(bool) & b.astype(bool)).sum() / (a.astype(bool) | b.astype(bool)).sum())


def facing_z(model, rotation: np.ndarray) -> np.ndarray:
    """Camera z of each fitted body's facing direction: < 0 facing the camera, > 0 facing away."""
    return Rotation.from_rotvec(rotation).apply(np.asarray(model.front))[:, 2]


def test_keypoints_without_the_mesh_match_the_full_forward(model):
    g = torch.Generator().manual_seed(0)
    pose, phenotype = 0.3 * torch.randn(3, 104, 3, generator=g), torch.rand(3, 6, generator=g)
    with torch.no_grad():
        joints = model.keypoints(pose, phenotype)
        np.testing.assert_allclose(joints.numpy(), model.body.openpose18(model.body(pose, phenotype)).numpy(), atol=2e-5)


def test_phenotype_coefficients_and_their_gradients_equal_annys(model):
    from vtonpipe.models.bodies.anny import PHENOTYPE_LABELS
    from vtonpipe.models.bodies.fitting.models import _PhenotypeCoefficients

    g = torch.Generator().manual_seed(2)
    # random values, the ends of the range (anchors: one weight is exactly 0) and the middle
    phenotype = torch.cat([torch.rand(5, 6, generator=g), torch.zeros(1, 6), torch.ones(1, 6), torch.full((1, 6), 0.5)])
    coefficients = []
    for function in (model.model.get_phenotype_blendshape_coefficients, _PhenotypeCoefficients(model.model)):
        x = phenotype.clone().requires_grad_()
        c = function(**{label: x[:, i] for i, label in enumerate(PHENOTYPE_LABELS)})
        (c * torch.linspace(-1, 1, c.shape[1])).sum().backward()
        coefficients.append((c.detach(), x.grad))
    (ours, ours_grad), (annys, annys_grad) = coefficients[1], coefficients[0]
    assert ours.shape == annys.shape == (8, model.model.blendshapes.shape[0])
    np.testing.assert_allclose(ours.numpy(), annys.numpy(), atol=1e-6)
    np.testing.assert_allclose(ours_grad.numpy(), annys_grad.numpy(), atol=1e-5)
    assert annys.abs().sum() > 0 and annys_grad.abs().sum() > 0


def test_sub_skeletons_pose_like_the_full_skeleton(model):
    full = AnnyFitModel(model.body, full_skeleton=True)
    assert len(full.keypoint_skeleton.bones) == 104
    # closed under parents, the root first, the fitted bones in; the keypoints move fewer bones than the surface
    for sk in (model.keypoint_skeleton, model.surface_skeleton):
        bones = set(sk.bones.tolist())
        assert sk.bones[0] == 0 and all(model.body.bone_parents[b] in bones for b in sk.bones[1:])
        assert set(model.fit_bones) <= bones
    assert len(model.keypoint_skeleton.bones) < len(model.surface_skeleton.bones) < 104
    g = torch.Generator().manual_seed(4)
    pose, phenotype = 0.4 * torch.randn(2, 104, 3, generator=g), torch.rand(2, 6, generator=g)
    with torch.no_grad():
        np.testing.assert_allclose(model.keypoints(pose, phenotype).numpy(), full.keypoints(pose, phenotype).numpy(), atol=1e-6)
        for ours, reference in zip(model.keypoints_and_surface(pose, phenotype), full.keypoints_and_surface(pose, phenotype)):
            np.testing.assert_allclose(ours.numpy(), reference.numpy(), atol=1e-6)
    # a bone outside the keypoint skeleton (a finger tip) moves no keypoint
    outside = sorted(set(range(104)) - set(model.keypoint_skeleton.bones.tolist()))
    bent = pose.clone()
    bent[:, outside] += 0.5
    with torch.no_grad():
        np.testing.assert_allclose(full.keypoints(bent, phenotype).numpy(), full.keypoints(pose, phenotype).numpy(), atol=1e-6)


def test_surface_points_match_the_full_forward(model):
    g = torch.Generator().manual_seed(1)
    pose, phenotype = 0.3 * torch.randn(2, 104, 3, generator=g), torch.rand(2, 6, generator=g)
    with torch.no_grad():
        joints, surface = model.keypoints_and_surface(pose, phenotype)
        np.testing.assert_allclose(surface.numpy(), model.body(pose, phenotype)[:, model.surface_index].numpy(), atol=2e-5)
        np.testing.assert_array_equal(joints.numpy(), model.keypoints(pose, phenotype).numpy())
    # one vertex per 3 cm cube: spread over the whole body
    rest = model.model.template_vertices.numpy()
    assert 1500 < len(model.surface_index) < 2500
    np.testing.assert_allclose(rest[model.surface_index].min(0), rest.min(0), atol=0.03)
    np.testing.assert_allclose(rest[model.surface_index].max(0), rest.max(0), atol=0.03)


@pytest.mark.parametrize("noise_px, mean_px, max_px", [(0.0, 1.0, 4.0), (2.0, 3.0, 10.0)])
def test_recovers_known_bodies(model, noise_px, mean_px, max_px):
    truth = synthetic_bodies(model, 6, seed=1, size=(W, H), noise_px=noise_px)
    fit = fit_bodies(model, truth.keypoints, truth.sizes)
    assert fit.failure == [None] * 6
    err = clean_error(fit, truth)
    assert err.mean() < mean_px and err.max() < max_px, (err.mean(), err.max())
    assert fit.residual_px.max() < noise_px + 1.0
    np.testing.assert_array_equal(fit.camera, np.tile(camera_of(W, H, 20.0), (6, 1)))
    assert fit.camera[0, 2] == (W - 1) / 2 and fit.camera[0, 3] == (H - 1) / 2
    # bones outside the fitted set stay at zero, phenotypes in [0, 1], bodies in front of the camera
    others = np.setdiff1d(np.arange(104), model.fit_bones)
    assert not fit.pose[:, others].any() and fit.pose[:, list(model.fit_bones)].any()
    assert ((fit.shape >= 0) & (fit.shape <= 1)).all() and (fit.translation[:, 2] > 1).all()
    assert (facing_z(model, fit.rotation) < -0.5).all()
    # depth within 25 % (height and distance trade off) and yaw within 30 degrees: what 2D keypoints determine
    np.testing.assert_allclose(fit.translation[:, 2], truth.translation[:, 2], rtol=0.25)
    dR = (Rotation.from_rotvec(fit.rotation).inv() * Rotation.from_rotvec(truth.rotation)).magnitude()
    assert np.degrees(dR).max() < 30


def test_batched_fit_equals_one_image_at_a_time(model):
    """The same steps give the same fit. (Steps fixed: a fit that drifts along a flat valley until
    ``max_iters`` grows the batched sums' float rounding into differences of a pixel.)"""
    truth = synthetic_bodies(model, 3, seed=2, size=(W, H), noise_px=1.0)
    config = FitConfig(max_iters=150, patience=1000)
    batched = fit_bodies(model, truth.keypoints, truth.sizes, config)
    for b in range(3):
        alone = fit_bodies(model, truth.keypoints[b : b + 1], truth.sizes[b : b + 1], config)
        assert int(alone.iterations[0]) == int(batched.iterations[b]) == config.rigid_iters + config.max_iters
        np.testing.assert_allclose(alone.joints_2d[0], batched.joints_2d[b], atol=0.05)
        np.testing.assert_allclose(alone.pose[0], batched.pose[b], atol=0.01)
        np.testing.assert_allclose(alone.translation[0], batched.translation[b], rtol=2e-3)


def test_keypoint_weights_scale_each_joint_in_the_keypoint_term(model):
    """A nose 12 px off pulls the fit's nose towards it at equal weights; at weight 0 the eyes and
    ears place it; weights scaled as a whole change nothing (the term is a weighted mean); bad
    weights are refused."""
    truth = synthetic_bodies(model, 3, seed=4, size=(W, H))
    keypoints = truth.keypoints.copy()
    keypoints[:, 0, 0] += 12.0  # COCO-18 nose
    equal = fit_bodies(model, keypoints, truth.sizes)
    ignored = fit_bodies(model, keypoints, truth.sizes, FitConfig(keypoint_weights=[0.0] + [1.0] * 17))
    err_equal, err_ignored = clean_error(equal, truth), clean_error(ignored, truth)
    assert err_equal[:, 0].mean() > 3 and (err_ignored[:, 0] < 0.6 * err_equal[:, 0]).all(), (err_equal[:, 0], err_ignored[:, 0])
    assert err_ignored[:, 14:].mean() < err_equal[:, 14:].mean()  # the eyes and ears nearer too
    scaled = fit_bodies(model, keypoints, truth.sizes, FitConfig(keypoint_weights=[3.0] * 18))
    np.testing.assert_allclose(scaled.joints_2d, equal.joints_2d, atol=1e-3)
    for bad in ([1.0] * 17, [-1.0] + [1.0] * 17, [0.0] * 18):
        with pytest.raises(ValueError, match="keypoint_weights"):
            FitConfig(keypoint_weights=bad)


def test_early_stopping_freezes_each_image(model):
    truth = synthetic_bodies(model, 4, seed=3, size=(W, H))
    config = FitConfig(patience=5)
    fit = fit_bodies(model, truth.keypoints, truth.sizes, config)
    steps = fit.iterations - config.rigid_iters
    assert len(set(steps.tolist())) > 1 and (steps < config.max_iters).all()
    capped = fit_bodies(model, truth.keypoints, truth.sizes, FitConfig(patience=5, max_iters=int(steps.min()) - 1))
    np.testing.assert_array_equal(capped.iterations, config.rigid_iters + steps.min() - 1)

    # a frozen image keeps its parameters while Adam goes on moving the others
    params = _Params(model, torch.eye(3, dtype=torch.float64).expand(2, 3, 3), torch.tensor([[0.0, 0.0, 5.0]] * 2), 3)
    opt = torch.optim.Adam(params.groups(0.05))
    for _ in range(3):
        opt.zero_grad()
        (params.pose**2 - params.pose).sum().backward()
        opt.step()
    best = {k: v.detach().clone() for k, v in params.named_parameters()}
    _freeze(params, opt, best, torch.tensor([0]), torch.arange(2))
    for _ in range(3):
        opt.zero_grad()
        (params.pose[1:] ** 2 - params.pose[1:]).sum().backward()
        opt.step()
    np.testing.assert_array_equal(params.pose[0].detach().numpy(), best["pose"][0].numpy())
    assert not torch.equal(params.pose[1], best["pose"][1])


def test_images_of_one_person_share_their_shape(model):
    """Two photos each of 3 people (same body, two poses): fitted with ``people`` keys, each pair
    gets one shape, nearer the truth than the two independent fits' (on average); without keys
    the result is the independent fit, image for image."""
    a = synthetic_bodies(model, 3, seed=5, size=(W, H), noise_px=2.0)
    b = synthetic_bodies(model, 3, seed=6, size=(W, H), noise_px=2.0)
    # the same people in other poses: b's poses and cameras, a's shapes
    with torch.no_grad():
        vertices = model.body(b.pose, a.shape, b.rotation, b.translation)
        joints = model.body.openpose18(vertices).numpy()
    camera = camera_of(W, H, FitConfig().fov_y_deg)
    pixels = camera[:2] * joints[..., :2] / joints[..., 2:] + camera[2:]
    second = np.concatenate([pixels + np.random.default_rng(0).normal(0, 2.0, pixels.shape), np.ones((3, 18, 1))], -1)
    keypoints = np.concatenate([a.keypoints, second.astype(np.float32)])
    sizes = [(W, H)] * 6
    alone = fit_bodies(model, keypoints, sizes)
    np.testing.assert_array_equal(fit_bodies(model, keypoints, sizes, people=None).shape, alone.shape)
    joint = fit_bodies(model, keypoints, sizes, people=[0, 1, 2, 0, 1, 2])
    np.testing.assert_array_equal(joint.shape[:3], joint.shape[3:])
    truth = np.concatenate([a.shape, a.shape])
    assert np.abs(joint.shape - truth).mean() < np.abs(alone.shape - truth).mean()
    assert all(f is None for f in joint.failure) and joint.residual_px.max() < 3.0
    with pytest.raises(ValueError, match="people keys"):
        fit_bodies(model, keypoints, sizes, people=[0, 1])


def test_straight_arms_are_fitted_straight(model):
    """anny's reference elbows are bent by about 40 degrees, so a straight arm takes elbow flexion
    -0.65: the hinge prior lets the fit reach it (it penalises only bending past the straight arm)."""
    pose = random_fit_pose(model, np.random.default_rng(3), 4)
    elbows = model.hinges[:2]
    for h in elbows:
        pose[:, h.bone] = model.ELBOW_STRAIGHT * np.asarray(h.axis)
    truth = synthetic_bodies(model, 4, seed=3, size=(W, H), pose=pose)
    fit = fit_bodies(model, truth.keypoints, truth.sizes)
    flexion = np.stack([fit.pose[:, h.bone] @ np.asarray(h.axis) for h in elbows], 1)
    assert np.median(flexion) < -0.4, flexion  # 2D keypoints leave some arms bent in depth
    assert clean_error(fit, truth)[:, [4, 7]].max() < 2.0, clean_error(fit, truth)[:, [4, 7]]


def test_a_person_seen_from_behind_is_fitted_facing_away(model):
    """From the back the person's left is on the image's left and the face is hidden."""
    truth = synthetic_bodies(model, 4, seed=4, size=(W, H), back=True, max_yaw_deg=30.0)
    truth.keypoints[:, [0, 14, 15], 2] = 0.0  # nose and eyes not seen
    fit = fit_bodies(model, truth.keypoints, truth.sizes)
    assert (facing_z(model, fit.rotation) > 0.5).all() and (facing_z(model, truth.rotation) > 0.5).all()
    err = clean_error(fit, truth)[:, [k for k in range(18) if k not in (0, 14, 15)]]
    assert err.mean() < 1.5, err.mean()


# -- the silhouette term ---------------------------------------------------------------------------
def test_silhouette_term_pulls_a_shifted_and_scaled_body_onto_its_mask(model):
    """Gradient descent on the translation alone, from 10 px off and 15 % too far (too small in
    the image), brings the body back onto its exact mask, down to the true body's cost."""
    truth = synthetic_bodies(model, 2, seed=9, size=(W, H))
    masks = silhouettes(model, truth.pose, truth.shape, truth.rotation, truth.translation)
    config = FitConfig(silhouette_weight=1.0)
    batch, sil = _Batch(model, truth.keypoints, truth.sizes, config), _Silhouettes(masks, model)
    with torch.no_grad():
        _, surface = model.keypoints_and_surface(torch.as_tensor(truth.pose), torch.as_tensor(truth.shape))
        surface = surface @ torch.as_tensor(Rotation.from_rotvec(truth.rotation).as_matrix(), dtype=torch.float32).transpose(1, 2)
    idx = torch.arange(2)
    true_t = torch.as_tensor(truth.translation)

    def loss(t: torch.Tensor) -> torch.Tensor:
        return sil.loss(batch.project(surface + t[:, None], idx), idx, batch.scale, config)

    start = true_t * torch.tensor([1.0, 1.0, 1.15]) + true_t[:, 2:] * torch.tensor([10.0, -10.0, 0.0]) / float(batch.f[0])
    t = torch.nn.Parameter(start.clone())
    opt = torch.optim.Adam([t], lr=0.01)
    for _ in range(150):
        opt.zero_grad()
        loss(t).sum().backward()
        opt.step()
    with torch.no_grad():
        before, after, at_truth = loss(start), loss(t), loss(true_t)
    assert (before > 10 * at_truth).all() and (after < 1.05 * at_truth).all(), (at_truth, before, after)
    shift_px = float(batch.f[0]) * (t[:, :2] / t[:, 2:] - true_t[:, :2] / true_t[:, 2:]).detach()
    assert shift_px.abs().max() < 1.0 and ((t[:, 2] - true_t[:, 2]).abs() / true_t[:, 2] < 0.02).all(), (shift_px, t, true_t)


def test_keypoints_off_the_person_mask_are_dropped():
    """Mask columns 40..119, rows 50..149; detected points span rows 50..150 (S = 100), so with
    ``off_mask`` 0.01 a point more than 1 px outside the mask is dropped: 6 px right of it is, 1 px
    right of or below it and the points on it are not; undetected points stay undetected."""
    mask = np.zeros((200, 160), np.uint8)
    mask[50:150, 40:120] = 1
    keypoints = np.zeros((1, 18, 3))
    keypoints[0, :4] = [[60, 50, 1.0], [60, 150, 0.9], [125, 100, 0.8], [120, 100, 0.7]]
    out = drop_off_mask(keypoints, [mask], FitConfig(silhouette_weight=1.0, off_mask=0.01))
    np.testing.assert_array_equal(out[0, 2], 0.0)
    np.testing.assert_array_equal(np.delete(out[0], 2, axis=0), np.delete(keypoints[0], 2, axis=0))


def test_silhouette_masks_cut_by_the_frame_go_on_past_it(model):
    """Points below a mask that the image's bottom edge cuts are inside it; points beside it
    cost by their distance; no contour point lies on the image border."""
    mask = np.zeros((H, W), np.uint8)
    mask[100:, 80:120] = 1  # legs cut by the bottom edge
    sil = _Silhouettes([mask], model)
    config = FitConfig(silhouette_weight=1.0, silhouette_coverage=0.0, silhouette_sigma=1e3)  # rho = r^2
    scale = torch.tensor([1.0])
    below = torch.tensor([[[100.0, H + 20.0]]])  # 20 px below the image, under the mask
    beside = torch.tensor([[[129.0, H + 20.0]]])  # and 10 px right of its last column
    assert float(sil.loss(below, torch.tensor([0]), scale, config)) == 0.0
    assert float(sil.loss(beside, torch.tensor([0]), scale, config)) == pytest.approx(100.0, rel=0.01)
    edge = sil.edge[0][sil.edge_weight[0] > 0]
    assert len(edge) == 160 and edge[:, 1].max() < H - 1 and edge[:, 1].min() == 100


def test_silhouette_term_places_limbs_whose_keypoints_are_withheld(model):
    """Only the nose, neck, shoulders and hips given: the limbs follow the mask with the term and
    stay near the rest pose without it."""
    truth = synthetic_bodies(model, 3, seed=7, size=(W, H), noise_px=0.5)
    masks = silhouettes(model, truth.pose, truth.shape, truth.rotation, truth.translation)
    keypoints = torso_only(truth.keypoints)
    scores = {}
    for weight in (0.0, 1.0):
        fit = fit_bodies(model, keypoints, truth.sizes, FitConfig(silhouette_weight=weight), masks)
        assert fit.failure == [None] * 3
        fitted = silhouettes(model, fit.pose, fit.shape, fit.rotation, fit.translation)
        scores[weight] = [iou(a, b) for a, b in zip(fitted, masks)], clean_error(fit, truth)[:, LIMBS].mean()
    (iou_without, limbs_without), (iou_with, limbs_with) = scores[0.0], scores[1.0]
    assert max(iou_without) < 0.7 and min(iou_with) > 0.84, scores
    assert limbs_with < 8.0 and limbs_without > 15.0, scores


def test_silhouette_term_needs_a_mask_per_image(model):
    truth = synthetic_bodies(model, 2, seed=1, size=(W, H))
    with pytest.raises(ValueError, match="person mask"):
        fit_bodies(model, truth.keypoints, truth.sizes, FitConfig(silhouette_weight=1.0))
    with pytest.raises(ValueError, match="person mask"):
        fit_bodies(model, truth.keypoints, truth.sizes, FitConfig(silhouette_weight=1.0), [np.ones((W, H), np.uint8)] * 2)


# -- the depth term --------------------------------------------------------------------------------
def camera_joints(model, pose, shape, rotation, translation) -> np.ndarray:
    """(B, 18, 3) camera-frame COCO-18 joints (m) of anny bodies (numpy batches)."""
    t = {"dtype": model.dtype, "device": model.device}
    with torch.no_grad():
        joints = model.keypoints(torch.as_tensor(pose, **t), torch.as_tensor(shape, **t))
    joints = joints.double().cpu().numpy()
    return np.einsum("bij,bkj->bki", Rotation.from_rotvec(rotation).as_matrix(), joints) + translation[:, None]


def relative_depths(joints: np.ndarray) -> np.ndarray:
    """(B, 18) m: each joint's depth minus the hips' midpoint's."""
    return joints[..., 2] - 0.5 * (joints[:, 8, 2] + joints[:, 11, 2])[:, None]


def exact_depths(model, truth) -> tuple[np.ndarray, np.ndarray]:
    """The true bodies' camera-frame joints (B, 18, 3) m and their relative depths (B, 18) px at
    the body's distance (the depth term's targets)."""
    joints = camera_joints(model, truth.pose, truth.shape, truth.rotation, truth.translation)
    f = float(camera_of(W, H, FitConfig.fov_y_deg)[0])
    hips = 0.5 * (joints[:, 8, 2] + joints[:, 11, 2])[:, None]
    return joints, f * relative_depths(joints) / hips


def test_depth_term_is_the_gap_to_the_target_depths(model):
    """Hips at 5 m, the right wrist 0.5 m nearer: its relative depth is f (-0.5) / 5 px. The target
    puts it 10 px nearer than that, the hips at 0: over the three joints
    with a depth, ((10 / S)^2 + 0 + 0) / 3; the elbow, detected without a depth (NaN), and the
    undetected joints do not count."""
    keypoints = np.zeros((1, 18, 3))
    keypoints[0, [4, 8, 11, 3], 2] = 1.0
    keypoints[0, [4, 8, 11, 3], :2] = [[0, 0], [100, 0], [0, 200], [50, 50]]  # S = 200 px
    config = FitConfig(depth_weight=1.0, sigma=1e4)  # rho = r^2 (to 1e-7)
    f = float(camera_of(W, H, config.fov_y_deg)[0])
    depths = np.zeros((1, 18))
    depths[0, 4] = f * -0.5 / 5 - 10
    depths[0, 3] = np.nan
    batch = _Batch(model, keypoints, [(W, H)], config, depths)
    joints = torch.zeros(1, 18, 3, dtype=model.dtype)
    joints[..., 2] = 5.0
    joints[0, 4, 2] = 4.5
    joints[0, 3, 2] = 3.0  # no depth: not counted
    loss = _depth_term(joints, batch, torch.arange(1), config)
    assert float(loss[0]) == pytest.approx((10 / 200) ** 2 / 3, rel=1e-4)


def test_depth_term_brings_the_joints_depths_nearer_the_truth(model):
    """Noisy 2D keypoints leave each limb's depth (which way it points, towards or away from the
    camera) to the pose prior; the exact relative depths decide it."""
    truth = synthetic_bodies(model, 6, seed=3, size=(W, H), noise_px=2.0)
    true_joints, depths = exact_depths(model, truth)
    errors = {}
    for weight in (0.0, 1.0):
        fit = fit_bodies(model, truth.keypoints, truth.sizes, FitConfig(depth_weight=weight), depths=depths)
        assert fit.failure == [None] * 6
        joints = camera_joints(model, fit.pose, fit.shape, fit.rotation, fit.translation)
        errors[weight] = np.abs(relative_depths(joints) - relative_depths(true_joints)).mean()
        assert clean_error(fit, truth).mean() < 3.0
    assert errors[1.0] < 0.4 * errors[0.0], errors  # about 6.4 -> 1.1 cm


@pytest.mark.parametrize(
    "weight, argument, wrong_shape, message",
    [
        ("depth_weight", "depths", (1, 18), "relative depths"),
        ("landmark_weight", "landmarks", (2, 9, 3), "hand and foot landmarks"),
        ("hidden_weight", "hidden", (1, 18, 3), "undetected joints"),
    ],
)
def test_each_term_needs_its_input_per_image(model, weight, argument, wrong_shape, message):
    truth = synthetic_bodies(model, 2, seed=1, size=(W, H))
    with pytest.raises(ValueError, match=message):
        fit_bodies(model, truth.keypoints, truth.sizes, FitConfig(**{weight: 0.3}))
    with pytest.raises(ValueError, match=message):
        fit_bodies(model, truth.keypoints, truth.sizes, FitConfig(**{weight: 0.3}), **{argument: np.zeros(wrong_shape)})


# -- the parsing term ------------------------------------------------------------------------------
def true_landmarks(model, truth) -> np.ndarray:
    """(B, 10, 3) the marked vertices' exact projections (``MP33_FIT_LANDMARKS`` order), confidence 1."""
    camera = PinholeCamera(*(float(v) for v in camera_of(W, H, 20.0)), W, H)
    with torch.no_grad():
        vertices = model.body(truth.pose, truth.shape, truth.rotation, truth.translation).double().numpy()
    marked = [ANNY_MP33_VERTICES[n] for n in MP33_FIT_LANDMARKS]
    pixels = np.stack([camera.project(v[marked]) for v in vertices])
    return np.concatenate([pixels, np.ones((*pixels.shape[:2], 1))], -1)


def test_landmark_term_is_the_confidence_weighted_mean_gap(model):
    """Two of the ten landmarks seen (confidence 1 and 0.5), 3 and 4 px from their vertices'
    projections, S = 200 px: (1 (3/200)^2 + 0.5 (4/200)^2) / 1.5; an image with none seen costs 0."""
    landmarks = np.zeros((2, 10, 3))
    landmarks[0, 0] = (10.0, 20.0, 1.0)
    landmarks[0, 7] = (30.0, 40.0, 0.5)
    term = _Landmarks(landmarks, model)
    pixels = torch.zeros(2, len(model.surface_index), 2, dtype=model.dtype)
    pixels[0, model.landmark_points[0]] = torch.tensor([13.0, 20.0])
    pixels[0, model.landmark_points[7]] = torch.tensor([30.0, 44.0])
    loss = term.loss(pixels, torch.arange(2), torch.tensor([200.0, 200.0], dtype=model.dtype), FitConfig(sigma=1e4))  # rho = r^2
    assert float(loss[0]) == pytest.approx(((3 / 200) ** 2 + 0.5 * (4 / 200) ** 2) / 1.5, rel=1e-5)
    assert float(loss[1]) == 0.0
    np.testing.assert_array_equal(model.surface_index[model.landmark_points], [ANNY_MP33_VERTICES[n] for n in MP33_FIT_LANDMARKS])


def test_landmark_term_turns_hands_and_feet_onto_their_landmarks(model):
    """COCO-18 keypoints leave each limb's twist about its own axis to the prior; the hands' and
    feet's marked points decide it: with the term the fitted vertices project nearer them."""
    truth = synthetic_bodies(model, 4, seed=5, size=(W, H), noise_px=0.5)
    landmarks = true_landmarks(model, truth)
    gaps = {}
    for weight in (0.0, 1.0):
        fit = fit_bodies(model, truth.keypoints, truth.sizes, FitConfig(landmark_weight=weight), landmarks=landmarks)
        assert fit.failure == [None] * 4
        fitted = true_landmarks(model, SimpleNamespace(pose=fit.pose, shape=fit.shape, rotation=fit.rotation, translation=fit.translation))
        gaps[weight] = np.linalg.norm(fitted[..., :2] - landmarks[..., :2], axis=-1).mean()
    assert gaps[1.0] < 0.6 * gaps[0.0], gaps


# -- the hidden joints -----------------------------------------------------------------------------
def test_hidden_joints_enter_the_keypoint_term_at_their_weight(model):
    """A guessed wrist (keypoint undetected) is a target at confidence ``hidden_weight`` times its
    keypoint weight; the detected points keep theirs, and the confidences, person size and joint
    flags are the detected points' alone (a guess where a keypoint was detected is ignored)."""
    truth = synthetic_bodies(model, 1, seed=2, size=(W, H))
    kp = truth.keypoints.copy()
    kp[0, 4] = 0.0
    hidden = np.zeros((1, 18, 3))
    hidden[0, 4] = (50.0, 60.0, 1.0)
    hidden[0, 7] = (1.0, 2.0, 1.0)  # the left wrist is detected: not a target
    weights = tuple(float(w) for w in np.linspace(0.5, 2.0, 18))
    config = FitConfig(hidden_weight=0.3, keypoint_weights=weights)
    batch, plain = _Batch(model, kp, [(W, H)], config, hidden=hidden), _Batch(model, kp, [(W, H)], config)
    assert batch.target[0, 4].tolist() == [50.0, 60.0] and batch.target[0, 7].tolist() == kp[0, 7, :2].tolist()
    assert float(batch.weight[0, 4]) == pytest.approx(0.3 * weights[4])
    np.testing.assert_allclose(np.delete(batch.weight.numpy(), 4, 1), np.delete(plain.weight.numpy(), 4, 1))
    assert float(batch.conf[0, 4]) == 0.0 and not batch.found[0, 4]
    assert float(batch.scale[0]) == float(plain.scale[0])


def test_hidden_joints_bring_unseen_forearms_to_their_guesses(model):
    """With both elbows and wrists undetected (a back view's arms in front of the body) the
    forearms are the prior's; guesses 2 px off the true joints bring the fitted joints near them."""
    truth = synthetic_bodies(model, 4, seed=7, size=(W, H), noise_px=0.5)
    arms = [3, 4, 6, 7]
    kp = truth.keypoints.copy()
    kp[:, arms] = 0.0
    rng = np.random.default_rng(0)
    hidden = np.zeros((4, 18, 3))
    hidden[:, arms, :2] = truth.clean[:, arms] + rng.normal(0.0, 2.0, (4, 4, 2))
    hidden[:, arms, 2] = 1.0
    errors = {}
    for weight in (0.0, 0.3):
        fit = fit_bodies(model, kp, truth.sizes, FitConfig(hidden_weight=weight), hidden=hidden if weight else None)
        assert fit.failure == [None] * 4
        assert not fit.joints_2d[:, arms, 2].any()  # still reported undetected
        errors[weight] = clean_error(fit, truth)[:, arms].mean()
    assert errors[0.3] < 5.0 < errors[0.0], errors


def test_parsing_term_is_the_mean_over_region_pixels_of_the_gap_to_their_parts(model):
    """One left-arm pixel and three face pixels (weights 1/4 each): the left arm's points 5 px
    from its pixel, the head's on the middle face pixel: (25 + 1 + 0 + 1) / 4. The right arm's
    points on the left-arm pixel do not cover it; with no region pixel the term is 0."""
    parsing = np.zeros((H, W), np.uint8)
    parsing[60, 50] = LIP.LEFT_ARM
    parsing[20, 100:103] = LIP.FACE
    regions = _PartRegions([parsing, np.zeros((H, W), np.uint8)], model)
    part = torch.as_tensor(model.surface_part)
    pixels = torch.full((2, len(part), 2), 1000.0, dtype=model.dtype)
    left_arm = torch.isin(part, torch.tensor([4, 15, 17, 19, 21]))
    pixels[:, left_arm] = torch.tensor([53.0, 64.0], dtype=model.dtype)
    pixels[:, torch.isin(part, torch.tensor([3, 16, 18, 20, 22]))] = torch.tensor([50.0, 60.0], dtype=model.dtype)  # the right arm
    pixels[:, torch.isin(part, torch.tensor([23, 24]))] = torch.tensor([101.0, 20.0], dtype=model.dtype)
    config = FitConfig(parsing_weight=1.0, silhouette_sigma=1e4)  # rho = r^2 (to 1e-7)
    loss = regions.loss(pixels, torch.arange(2), torch.ones(2, dtype=model.dtype), config)
    assert float(loss[0]) == pytest.approx((25 + 1 + 0 + 1) / 4, rel=1e-5) and float(loss[1]) == 0.0
    # Geman-McClure: a pixel far from its part costs at most sigma^2
    far = regions.loss(pixels[:1], torch.arange(1), torch.ones(1, dtype=model.dtype), FitConfig(parsing_weight=1.0, silhouette_sigma=0.5))
    assert float(far[0]) < 0.25


def test_surface_parts_are_densepose_parts_of_the_body_regions(model):
    part = model.surface_part
    assert part.shape == model.surface_index.shape and part.min() >= 1 and part.max() <= 24
    assert set(np.unique(part)) == set(range(1, 25))
    with torch.no_grad():
        rest = model.body(torch.zeros(1, 104, 3), model.mean_shape())[0].numpy()[model.surface_index]
    left = rest @ np.asarray(model.left)
    # the person's left hand (part 4) on their left, the right hand (3) on their right; the head on top
    assert left[part == 4].min() > 0 > left[part == 3].max()
    assert (rest @ np.asarray(model.up))[np.isin(part, [23, 24])].min() > (rest @ np.asarray(model.up))[np.isin(part, [1, 2])].max() - 0.05


def test_parsing_term_places_limbs_whose_keypoints_are_withheld(model):
    """Only the nose, neck, shoulders and hips given and no silhouette: the bare arms and legs of
    the parsing pull the limbs half way or more to their true places (about 22 -> 10 px; it only
    asks for the bare pixels to be covered, the silhouette's outside part is what keeps the limbs
    off the background); without the term they stay near the rest pose."""
    truth = synthetic_bodies(model, 3, seed=7, size=(W, H), noise_px=0.5)
    parsings = bare_parsings(model, truth.pose, truth.shape, truth.rotation, truth.translation)
    keypoints = torso_only(truth.keypoints)
    errors = {}
    for weight in (0.0, 3.0):
        fit = fit_bodies(model, keypoints, truth.sizes, FitConfig(parsing_weight=weight), parsings=parsings)
        assert fit.failure == [None] * 3
        errors[weight] = clean_error(fit, truth)[:, LIMBS].mean()
    assert errors[0.0] > 15.0 and errors[3.0] < 0.6 * errors[0.0], errors


def test_parsing_term_needs_a_parsing_per_image(model):
    truth = synthetic_bodies(model, 2, seed=1, size=(W, H))
    with pytest.raises(ValueError, match="LIP parsing"):
        fit_bodies(model, truth.keypoints, truth.sizes, FitConfig(parsing_weight=1.0))
    with pytest.raises(ValueError, match="LIP parsing"):
        fit_bodies(model, truth.keypoints, truth.sizes, FitConfig(parsing_weight=1.0), parsings=[np.zeros((W, H), np.uint8)] * 2)


@pytest.mark.parametrize("backend", ["anny-fit", "smpl-fit"])
def test_requires_follows_the_silhouette_and_parsing_weights(backend):
    cls = get_backend("body", backend)
    assert cls.default_params["silhouette_weight"] == 0.0 and cls.default_params["parsing_weight"] == 0.0
    assert cls().requires == ("keypoints",)
    assert cls({"silhouette_weight": 0.5}).requires == ("keypoints", "person_mask")
    assert cls({"parsing_weight": 1.0}).requires == ("keypoints", "parsing")
    assert cls({"silhouette_weight": 1.0, "parsing_weight": 1.0}).requires == ("keypoints", "person_mask", "parsing")


# -- the backend through run_stage -----------------------------------------------------------------
@pytest.fixture(scope="module")
def stage(tmp_path_factory, model):
    """A build of 3 people (6 person images) whose keypoints rows are: 2 synthetic bodies, 4
    points only, a body with 7 wild points, and none for 2 images (they fail upstream)."""
    tmp = tmp_path_factory.mktemp("body")
    build = simple_build(tmp, n=3)
    ids = sorted(i for i, r in AnnotationContext(build).images.items() if r["kind"] == "person")
    truth = synthetic_bodies(model, 3, seed=5, size=(W, H), noise_px=0.5)
    few = truth.keypoints[2].copy()
    few[4:, 2] = 0.0
    wild = truth.keypoints[2].copy()
    wild[[3, 4, 6, 7, 9, 10, 13], :2] = [[5, 5], [186, 5], [5, 250], [186, 250], [96, 5], [5, 128], [186, 128]]
    write_keypoints(tmp, build, {ids[0]: truth.keypoints[0], ids[1]: truth.keypoints[1], ids[2]: few, ids[3]: wild})
    result = run_stage(build, StageConfig("body"), show_progress=False)
    return build, ids, truth, result


def test_anny_fit_backend_records_fits_and_failures(stage, model):
    build, ids, truth, result = stage
    assert (result.total, result.computed, result.failed) == (6, 2, 4)
    assert result.failures_by_reason == {"too_few_keypoints": 1, "fit_failed": 1, "missing_upstream": 2}
    failures = {r["item_id"]: r["error"] for r in ShardReader(BuildLayout(build).failures("body"))}
    assert failures == {ids[2]: "too_few_keypoints", ids[3]: "fit_failed", ids[4]: "missing_upstream", ids[5]: "missing_upstream"}
    rows = ShardReader(build / "annotations" / "body")
    for b, image_id in enumerate(ids[:2]):
        row = rows.get(image_id)
        assert row["model"] == "anny" and row["backend"] == "anny-fit" and row["pose"].shape == (104, 3) and row["shape"].shape == (6,)
        np.testing.assert_allclose(row["camera"], camera_of(W, H, 20.0))
        assert row["iterations"] > FitConfig.rigid_iters and row["residual_px"] < 1.5
        np.testing.assert_array_equal(row["joints_2d"][:, 2], 1.0)
        assert np.abs(row["joints_2d"][:, :2] - truth.clean[b]).mean() < 1.5
        # posed_mesh of the row reproduces the stored projected joints
        mesh = posed_mesh(rows.record(image_id), W, H)
        with torch.no_grad():
            joints = model.body.openpose18(torch.as_tensor(mesh.vertices)[None])[0].double().numpy()
        np.testing.assert_allclose(mesh.camera.project(joints), row["joints_2d"][:, :2], atol=0.02)
        assert mesh.project().shape == (model.body.num_vertices, 2)


def test_drawing_shows_the_fitted_silhouette_and_joints(stage):
    build, ids, _, _ = stage
    record = ShardReader(build / "annotations" / "body").record(ids[0])
    mesh = posed_mesh(record, W, H)
    body = rasterize(mesh.vertices, mesh.faces, mesh.camera).mask
    image = np.full((H, W, 3), 255, np.uint8)
    picture = DRAWERS.get("body")(image, record, {})
    assert picture.shape == image.shape and body.mean() > 0.1
    changed = (picture != 255).any(-1)
    assert changed[body].all()  # the silhouette is tinted
    joints = np.round(record.joints_2d[:, :2]).astype(int)
    assert changed[joints[:, 1], joints[:, 0]].all()  # joints drawn where they project
    far = cv2.dilate(body.astype(np.uint8), np.ones((15, 15), np.uint8)) == 0
    assert not changed[far].any()  # nothing drawn away from the body


def test_anny_fit_with_the_silhouette_term_reads_the_person_masks(tmp_path, model):
    """4 person images: 2 with 6 keypoints (as above) and masks, 1 without a mask and 1
    without keypoints (both missing_upstream); the fitted rows cover their masks."""
    build = simple_build(tmp_path, n=2)
    ids = sorted(i for i, r in AnnotationContext(build).images.items() if r["kind"] == "person")
    truth = synthetic_bodies(model, 3, seed=7, size=(W, H), noise_px=0.5)
    masks = silhouettes(model, truth.pose, truth.shape, truth.rotation, truth.translation)
    keypoints = torso_only(truth.keypoints)  # nose, neck, shoulders, hips left
    write_keypoints(tmp_path, build, {ids[0]: keypoints[0], ids[1]: keypoints[1], ids[2]: keypoints[2]})
    params = {"silhouette_weight": 1.0}
    with pytest.raises(StageError, match="person_mask"):
        run_stage(build, StageConfig("body", "anny-fit", params), show_progress=False)
    write_rows(tmp_path, build, "person_mask", {ids[0]: masks[0], ids[1]: masks[1], ids[3]: masks[2]})

    result = run_stage(build, StageConfig("body", "anny-fit", params), show_progress=False)
    assert (result.computed, result.failures_by_reason) == (2, {"missing_upstream": 2})
    failures = {r["item_id"]: r["message"] for r in ShardReader(BuildLayout(build).failures("body"))}
    assert sorted(failures) == [ids[2], ids[3]]
    assert "person_mask" in failures[ids[2]] and "keypoints" in failures[ids[3]]
    provenance = read_manifest(build / "annotations" / "body")["provenance"][0]
    assert provenance["params"]["silhouette_weight"] == 1.0 and sorted(provenance["upstream"]) == ["keypoints", "person_mask"]
    rows = ShardReader(build / "annotations" / "body")
    for b in range(2):
        mesh = posed_mesh(rows.record(ids[b]), W, H)
        assert iou(rasterize(mesh.vertices, mesh.faces, mesh.camera).mask, masks[b]) > 0.8  # < 0.65 without the term


def test_anny_fit_with_the_parsing_term_reads_the_parsings(tmp_path, model):
    """4 person images: 2 with keypoints (limbs withheld) and parsings, 1 without a parsing and 1
    without keypoints (both missing_upstream); the parsing is an upstream of the rows."""
    build = simple_build(tmp_path, n=2)
    ids = sorted(i for i, r in AnnotationContext(build).images.items() if r["kind"] == "person")
    truth = synthetic_bodies(model, 3, seed=7, size=(W, H), noise_px=0.5)
    parsings = bare_parsings(model, truth.pose, truth.shape, truth.rotation, truth.translation)
    keypoints = torso_only(truth.keypoints)
    write_keypoints(tmp_path, build, {ids[0]: keypoints[0], ids[1]: keypoints[1], ids[2]: keypoints[2]})
    write_rows(tmp_path, build, "parsing", {ids[0]: parsings[0], ids[1]: parsings[1], ids[3]: parsings[2]})
    result = run_stage(build, StageConfig("body", "anny-fit", {"parsing_weight": 3.0}), show_progress=False)
    assert (result.computed, result.failures_by_reason) == (2, {"missing_upstream": 2})
    failures = {r["item_id"]: r["message"] for r in ShardReader(BuildLayout(build).failures("body"))}
    assert "parsing" in failures[ids[2]] and "keypoints" in failures[ids[3]]
    provenance = read_manifest(build / "annotations" / "body")["provenance"][0]
    assert provenance["params"]["parsing_weight"] == 3.0 and sorted(provenance["upstream"]) == ["keypoints", "parsing"]
    rows = ShardReader(build / "annotations" / "body")
    error = np.mean([np.linalg.norm(rows.get(ids[b])["joints_2d"][LIMBS, :2] - truth.clean[b, LIMBS], axis=-1).mean() for b in range(2)])
    assert error < 12.0, error  # about 22 px without the term


def test_anny_fit_with_hidden_weight_reads_mediapipes_unseen_joints(tmp_path, model):
    """Keypoints rows whose wrists MediaPipe saw at visibility 0.1 (undetected in ``keypoints``,
    kept in ``landmarks_mp33``: a back view's hands in front of the body): with ``hidden_weight``
    the fitted wrists come to those guesses, without it the forearms are the prior's; the rows
    still flag the wrists undetected."""
    build = simple_build(tmp_path, n=1)
    ids = sorted(i for i, r in AnnotationContext(build).images.items() if r["kind"] == "person")
    truth = synthetic_bodies(model, 2, seed=7, size=(W, H), noise_px=0.5)
    arms = [4, 7]
    landmarks = np.zeros((2, 33, 4), np.float32)
    for coco, mp in enumerate(MP33_TO_COCO18):
        if mp is not None:
            landmarks[:, mp] = np.concatenate([truth.keypoints[:, coco, :2], np.zeros((2, 1)), np.full((2, 1), 0.1 if coco in arms else 1.0)], 1)
    write_rows(tmp_path, build, "keypoints", dict(zip(ids, landmarks)))
    errors = {}
    for weight in (0.0, 0.3):
        result = run_stage(build, StageConfig("body", "anny-fit", {"hidden_weight": weight}), show_progress=False)
        assert result.computed == 2
        rows = ShardReader(build / "annotations" / "body")
        assert not any(rows.get(i)["joints_2d"][arms, 2].any() for i in ids)
        errors[weight] = np.mean([np.linalg.norm(rows.get(i)["joints_2d"][arms, :2] - truth.clean[b, arms], axis=-1).mean() for b, i in enumerate(ids)])
    assert errors[0.3] < 5.0 < errors[0.0], errors


def test_anny_fit_with_the_depth_term_reads_mediapipes_depths(tmp_path, model):
    """Keypoints rows with MediaPipe's 33 landmarks (their z the exact relative depths over the
    default ``depth_scale``): the rows' joint depths come near the truth; a row without landmarks (another
    keypoints backend) fails with an error naming the backend to use."""
    build = simple_build(tmp_path, n=1)
    ids = sorted(i for i, r in AnnotationContext(build).images.items() if r["kind"] == "person")
    truth = synthetic_bodies(model, 2, seed=3, size=(W, H), noise_px=2.0)
    true_joints, depths = exact_depths(model, truth)
    landmarks = np.zeros((2, 33, 4), np.float32)
    for coco, mp in enumerate(MP33_TO_COCO18):
        if mp is not None:
            landmarks[:, mp] = np.concatenate([truth.keypoints[:, coco, :2], depths[:, coco, None] / DEPTH_PARAMS["depth_scale"], np.ones((2, 1))], 1)
    write_rows(tmp_path, build, "keypoints", dict(zip(ids, landmarks)))
    result = run_stage(build, StageConfig("body", "anny-fit", {"depth_weight": 1.0}), show_progress=False)
    assert result.computed == 2
    rows = ShardReader(build / "annotations" / "body")
    for b, image_id in enumerate(ids):
        row = rows.get(image_id)
        joints = camera_joints(model, row["pose"][None], row["shape"][None], row["rotation"][None], row["translation"][None])
        assert (
            np.abs(relative_depths(joints) - relative_depths(true_joints[b : b + 1])).mean() < 0.035
        )  # about 6 cm without the term (0.0307 on one 2-core machine)
    plain = simple_build(tmp_path / "plain", n=1)
    write_keypoints(tmp_path / "plain", plain, {ids[0]: truth.keypoints[0]})
    result = run_stage(plain, StageConfig("body", "anny-fit", {"depth_weight": 1.0}), show_progress=False)
    assert result.failures_by_reason == {"error:ValueError": 1, "missing_upstream": 1}
    failures = {r["item_id"]: r["message"] for r in ShardReader(BuildLayout(plain).failures("body"))}
    assert "keypoints backend mediapipe" in failures[ids[0]]


def test_the_fit_starts_from_each_arm_twist_and_keeps_the_least_loss(model):
    """``arm_twists``: the upper arms start turned inwards about their rest axis (with no step taken
    the fit returns the start: 1.2 rad about the left arm's (sin a0, 0, -cos a0), the right's
    mirror); with several starts every image is the fit of least loss among the single-start fits,
    row for row, and its loss is their minimum."""
    a0 = model.ELBOW_REST_ANGLE
    pose = np.zeros((3, model.num_bones, 3))
    left, right = model.body.bone_index["upperarm01.L"], model.body.bone_index["upperarm01.R"]
    folded = Rotation.from_rotvec([0.0, 0.2, 0.0]) * Rotation.from_rotvec([-0.6, 0.0, 0.0]) * Rotation.from_rotvec(1.75 * np.array([np.sin(a0), 0.0, -np.cos(a0)]))
    pose[:2, left] = folded.as_rotvec()  # the sample's arms in front: elbows forward, forearms across the belly
    pose[:2, right] = folded.as_rotvec() * [1.0, -1.0, -1.0]
    for h in model.hinges[:2]:
        pose[:2, h.bone] = 1.15 * np.asarray(h.axis)
    truth = synthetic_bodies(model, 3, seed=8, size=(W, H), noise_px=0.5, pose=pose)

    start = fit_bodies(model, truth.keypoints, truth.sizes, FitConfig(max_iters=0, arm_twists=[1.2]))
    np.testing.assert_allclose(start.pose[:, left], np.tile(1.2 * np.array([np.sin(a0), 0.0, -np.cos(a0)]), (3, 1)), atol=1e-6)
    np.testing.assert_allclose(start.pose[:, right], np.tile(1.2 * np.array([np.sin(a0), 0.0, np.cos(a0)]), (3, 1)), atol=1e-6)

    singles = [fit_bodies(model, truth.keypoints, truth.sizes, FitConfig(arm_twists=(t,))) for t in (0.0, 1.2)]
    both = fit_bodies(model, truth.keypoints, truth.sizes, FitConfig(arm_twists=(0.0, 1.2)))
    best = np.argmin([s.loss for s in singles], axis=0)
    for b, k in enumerate(best):
        np.testing.assert_array_equal(both.pose[b], singles[k].pose[b])
        np.testing.assert_array_equal(both.translation[b], singles[k].translation[b])
    np.testing.assert_array_equal(both.loss, np.minimum(singles[0].loss, singles[1].loss))
    assert (both.loss > 0).all()
    with pytest.raises(ValueError, match="arm_twists"):
        FitConfig(arm_twists=())


def test_one_person_keeps_one_start_over_their_photos():
    """Per person the least summed loss: photo losses (1, 5 | 4) from the first start and (3, 2 | 6)
    from the second; person a's sums are 6 and 5, so both of a's photos take the second start,
    and b's photo the first (4 < 6). Without people keys each photo takes its own least (1, 2, 4).
    A start that failed on a photo loses to one that did not."""
    from vtonpipe.models.bodies.fitting.optimize import FitResult, _least_loss

    def fit(tag: float, losses: list[float], failure: list | None = None) -> FitResult:
        n = len(losses)
        return FitResult(
            "anny", np.full((n, 2, 3), tag, np.float32), np.zeros((n, 6), np.float32), np.zeros((n, 3), np.float32),
            np.zeros((n, 3), np.float32), np.zeros((n, 4), np.float32), np.zeros((n, 18, 3), np.float32),
            np.zeros(n, np.float32), np.zeros(n, np.int32), np.asarray(losses, np.float32), failure or [None] * n,
        )  # fmt: skip

    fits = [fit(1.0, [1.0, 5.0, 4.0]), fit(2.0, [3.0, 2.0, 6.0])]
    joint = _least_loss(fits, ["a", "a", "b"])
    assert joint.pose[:, 0, 0].tolist() == [2.0, 2.0, 1.0] and joint.loss.tolist() == [3.0, 2.0, 4.0]
    alone = _least_loss(fits, None)
    assert alone.pose[:, 0, 0].tolist() == [1.0, 2.0, 1.0] and alone.loss.tolist() == [1.0, 2.0, 4.0]
    # a failed start loses whatever its loss: diverged (NaN) or too far off its keypoints
    failed = fit(1.0, [float("nan"), 0.5], [("fit_failed", "the fit diverged"), ("fit_failed", "mean keypoint error ...")])
    kept = _least_loss([failed, fit(2.0, [3.0, 6.0])], None)
    assert kept.pose[:, 0, 0].tolist() == [2.0, 2.0] and kept.failure == [None, None]
