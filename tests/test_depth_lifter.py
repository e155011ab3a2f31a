"""The depth lifter (vtonpipe.models.bodies.lifting): its inputs and targets, that it learns, its
cache, and the body stage's depth cues."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from builders import simple_build, write_rows

from vtonpipe.annotators import get_backend
from vtonpipe.annotators.body_fit import depth_targets
from vtonpipe.converters.keypoints import COCO18, MP33_TO_COCO18, mp33_coco_joints
from vtonpipe.models.bodies import lifting
from vtonpipe.models.bodies.lifting import DepthLifter, LifterConfig, lift_depths, lifter_inputs, training_set
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.context import AnnotationContext
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.pipeline.store import ShardReader

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = LifterConfig(bodies=4000, steps=400, batch_size=128, width=64, blocks=1)
LIMBS = [int(j) for j in (COCO18.RIGHT_ELBOW, COCO18.RIGHT_WRIST, COCO18.LEFT_ELBOW, COCO18.LEFT_WRIST, COCO18.RIGHT_KNEE, COCO18.LEFT_KNEE)]


@pytest.fixture(scope="module")
def tiny_lifter() -> DepthLifter:
    return lifting.train_depth_lifter(TINY)


def test_lifter_inputs_are_centred_on_the_hips_in_torso_lengths():
    """Hips at (90, 200) and (110, 200), the neck at (100, 150): torso 50 px; a wrist at (150, 200)
    is (1, 0) torso lengths from the hips' midpoint."""
    kp = np.zeros((1, 18, 3))
    kp[0, COCO18.RIGHT_HIP, :2], kp[0, COCO18.LEFT_HIP, :2], kp[0, COCO18.NECK, :2] = (90, 200), (110, 200), (100, 150)
    kp[0, COCO18.RIGHT_WRIST, :2] = (150, 200)
    x, torso = lifter_inputs(kp)
    assert torso[0] == pytest.approx(50.0)
    np.testing.assert_allclose(x[0, COCO18.RIGHT_WRIST], (1.0, 0.0))
    np.testing.assert_allclose(x[0, COCO18.NECK], (0.0, -1.0))
    kp[0, COCO18.NECK, :2] = (100, 200)  # no torso: no inputs, and no depths
    assert np.isnan(lifter_inputs(kp)[1][0])
    assert np.isnan(lift_depths(DepthLifter(8, 1), kp)).all()


def test_training_set_depths_grow_away_from_the_camera():
    """Every turn about the vertical: a person facing the camera (their left shoulder on the
    image's right) mostly has the nose nearer than the hips (negative depth), one facing away
    farther (the random spine bends lean some torsos back: about 18 % of them; a wrong sign would
    make it 82 % the other way)."""
    x, depth = training_set(TINY, n=400, seed=5)
    assert x.shape == (400, 18, 2) and depth.shape == (400, 18)
    np.testing.assert_allclose(0.5 * (depth[:, COCO18.RIGHT_HIP] + depth[:, COCO18.LEFT_HIP]), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(x[:, COCO18.NECK], axis=-1), 1.0, rtol=1e-5)
    across = x[:, COCO18.LEFT_SHOULDER, 0] - x[:, COCO18.RIGHT_SHOULDER, 0]
    facing, away = across > 0.2, across < -0.2
    assert facing.sum() > 100 and away.sum() > 100
    assert (depth[facing, COCO18.NOSE] < 0).mean() > 0.7
    assert (depth[away, COCO18.NOSE] > 0).mean() > 0.7


@pytest.fixture(scope="module")
def fit_model():
    from vtonpipe.models.bodies.fitting import AnnyFitModel

    return AnnyFitModel()


def test_arms_drawn_from_the_shoulders_range_of_motion(fit_model):
    """``arms_in_range`` with each range one angle, on a body at rest facing the camera (elbows
    straight): raised 0.84 rad sideways the arms are horizontal (wrists at the shoulders' height,
    out to the sides); 2.2 rad, overhead (wrists above the nose); swung 1.57 rad forward they point
    towards the camera (the wrists nearer than the shoulders by cos 42 degrees of the arm); twisted alone
    straight arms stay about where they are, and
    bent ones fold the forearms across the body (positive) or out to the sides (negative). The right arm mirrors the left; bodies not drawn keep their pose."""
    from vtonpipe.models.bodies.fitting.problems import synthetic_bodies
    from vtonpipe.models.bodies.lifting import arms_in_range

    def keypoints(raise_, swing=0.0, twist=0.0, elbow=fit_model.ELBOW_STRAIGHT):
        pose = np.zeros((2, fit_model.num_bones, 3))
        for h in fit_model.hinges:
            if abs(np.asarray(h.axis) @ np.asarray(fit_model.left)) < 0.99:  # the elbows
                pose[:, h.bone] = elbow * np.asarray(h.axis)
        before = pose.copy()
        config = LifterConfig(arm_raise=(raise_, raise_), arm_swing=(swing, swing), arm_twist=(twist, twist))
        arms_in_range(fit_model, pose, np.array([True, False]), np.random.default_rng(0), config)
        np.testing.assert_array_equal(pose[1], before[1])
        bodies = synthetic_bodies(fit_model, 1, 0, fov_y_deg=20.0, max_yaw_deg=0.0, pose=pose[:1])
        return bodies.clean[0], bodies.joints[0]

    R_SHO, R_WRI, L_SHO, L_WRI, NOSE = (int(j) for j in (COCO18.RIGHT_SHOULDER, COCO18.RIGHT_WRIST, COCO18.LEFT_SHOULDER, COCO18.LEFT_WRIST, COCO18.NOSE))
    rest, _ = keypoints(0.0)
    arm = np.linalg.norm(rest[L_WRI] - rest[L_SHO])
    horizontal, _ = keypoints(0.84)
    for sho, wri, out in ((R_SHO, R_WRI, -1), (L_SHO, L_WRI, 1)):
        assert abs(horizontal[wri, 1] - horizontal[sho, 1]) < 0.05 * arm
        assert out * (horizontal[wri, 0] - horizontal[sho, 0]) > 0.9 * arm
    overhead, _ = keypoints(2.2)
    assert overhead[[R_WRI, L_WRI], 1].max() < overhead[NOSE, 1]
    forward, joints = keypoints(0.0, swing=1.57)
    reach = np.linalg.norm(joints[L_WRI] - joints[L_SHO])  # m
    assert (joints[[R_WRI, L_WRI], 2] < joints[[R_SHO, L_SHO], 2] - 0.6 * reach).all()  # cos 42 degrees of the arm towards the camera
    assert np.linalg.norm(forward[L_WRI] - forward[L_SHO]) < 0.8 * arm
    twisted, _ = keypoints(0.0, twist=1.2)
    np.testing.assert_allclose(twisted[[R_WRI, L_WRI]], rest[[R_WRI, L_WRI]], atol=0.12 * arm)  # the 5 degrees a straight elbow keeps
    folded, _ = keypoints(0.0, twist=1.2, elbow=1.3)  # elbows bent: the twist turns the plane the forearm folds in
    spread, _ = keypoints(0.0, twist=-1.2, elbow=1.3)
    centre = 0.5 * (rest[R_SHO, 0] + rest[L_SHO, 0])
    assert abs(folded[L_WRI, 0] - centre) < abs(spread[L_WRI, 0] - centre) - 0.3 * arm  # across the body, not out to the side
    for a, b in ((horizontal, R_WRI), (overhead, R_WRI), (forward, R_WRI)):
        centre = 0.5 * (a[R_SHO, 0] + a[L_SHO, 0])
        assert abs((a[b, 0] - centre) + (a[L_WRI, 0] - centre)) < 0.02 * arm  # mirrored
        assert abs(a[b, 1] - a[L_WRI, 1]) < 0.02 * arm


def test_a_small_lifter_learns_the_limbs_depths_on_bodies_it_did_not_see(tiny_lifter):
    """400 steps of a 64-wide lifter: on held-out bodies the limbs' depth error is under that of
    guessing each joint's mean depth (the best input-blind guess): 0.66 of it on one 2-core machine
    (a limb's 2D length leaves which way it points to the pose prior)."""
    x, depth = training_set(TINY, n=2000, seed=99)
    with torch.no_grad():
        predicted = tiny_lifter(torch.as_tensor(x)).numpy()
    error = np.abs(predicted - depth)[:, LIMBS].mean()
    blind = np.abs(depth - depth.mean(0))[:, LIMBS].mean()
    assert error < 0.8 * blind, (error, blind)


def test_training_is_repeatable(tiny_lifter):
    """The same config trains the same weights (fixed seeds, TRAIN_THREADS torch threads)."""
    again = lifting.train_depth_lifter(TINY)
    for a, b in zip(tiny_lifter.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_the_lifter_is_trained_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VTONPIPE_CACHE", str(tmp_path))
    calls = []

    def train(config):
        calls.append(config)
        return DepthLifter(config.width, config.blocks, config.members)

    monkeypatch.setattr(lifting, "train_depth_lifter", train)
    config = LifterConfig(width=16, blocks=1, seed=7)
    lifting.load_depth_lifter.cache_clear()
    try:
        first = lifting.load_depth_lifter(config)
        assert calls == [config] and lifting.lifter_path(config).is_file()
        assert lifting.lifter_path(config).parent == tmp_path / "depth_lifter"
        lifting.load_depth_lifter.cache_clear()
        again = lifting.load_depth_lifter(config)
        assert calls == [config]  # read, not trained again
        for a, b in zip(first.state_dict().values(), again.state_dict().values()):
            torch.testing.assert_close(a, b)
        assert LifterConfig(width=16, blocks=1, seed=8).key() != config.key()
        lifting.lifter_path(config).write_bytes(b"not a checkpoint")
        lifting.load_depth_lifter.cache_clear()
        with pytest.raises(RuntimeError, match="delete it"):
            lifting.load_depth_lifter(config)
    finally:
        lifting.load_depth_lifter.cache_clear()


def constant_lifter(value: float) -> DepthLifter:
    """A lifter that says every joint is ``value`` torso lengths behind the hips."""
    net = DepthLifter(8, 1)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.members[0].out.bias.fill_(value)
    return net.eval()


def test_a_lifter_of_several_members_says_their_mean():
    lifter = DepthLifter(8, 1, members=2)
    with torch.no_grad():
        for member, value in zip(lifter.members, (0.2, 0.6)):
            for p in member.parameters():
                p.zero_()
            member.out.bias.fill_(value)
    torch.testing.assert_close(lifter(torch.zeros(3, 18, 2)), torch.full((3, 18), 0.4))


def test_depth_targets_of_each_cue():
    """MediaPipe's z 10 px at the wrist: 0.22 x 10 = 2.2 px; a lifter saying 0.5 torso lengths on a
    40 px torso: 20 px; their mean 11.1 px."""
    landmarks = np.zeros((1, 33, 4), np.float32)
    landmarks[0, :, 3] = 1.0
    landmarks[0, 11, :2], landmarks[0, 12, :2] = (110, 100), (90, 100)  # shoulders: the neck at (100, 100)
    landmarks[0, 23, :2], landmarks[0, 24, :2] = (110, 140), (90, 140)  # hips
    wrist = MP33_TO_COCO18[COCO18.RIGHT_WRIST]
    landmarks[0, wrist, 2] = 10.0
    lifter = constant_lifter(0.5)
    mediapipe = depth_targets(landmarks, "mediapipe", 0.22, None)
    assert mediapipe[0, COCO18.RIGHT_WRIST] == pytest.approx(2.2)
    lifted = depth_targets(landmarks, "lifter", 0.22, lifter)
    torso = lifter_inputs(mp33_coco_joints(landmarks[0])[None])[1][0]
    assert torso == pytest.approx(40.0, rel=0.05)  # the COCO joints sit a little off BlazePose's landmarks
    np.testing.assert_allclose(lifted[0], 0.5 * torso)
    np.testing.assert_allclose(depth_targets(landmarks, "mean", 0.22, lifter), 0.5 * (mediapipe + lifted))


def test_the_body_stage_reads_the_lifters_depths(tmp_path, monkeypatch, tiny_lifter):
    """depth_cue ``mean`` and ``lifter``: the stage loads the lifter once and records the cue in
    every row's params and the lifter's config key in the stage's provenance; the rows' key follows
    that config (a lifter trained otherwise refits every body), and without the lifter it is the
    image's alone; an unknown cue is refused naming the choices."""
    import vtonpipe.annotators.body_fit as body_fit

    loads = []
    monkeypatch.setattr(body_fit, "load_depth_lifter", lambda: loads.append(1) or tiny_lifter)
    with pytest.raises(ValueError, match="mediapipe, lifter, mean"):
        get_backend("body", "anny-fit")({"depth_cue": "both"})
    build = simple_build(tmp_path, n=1)
    ids = sorted(i for i, r in AnnotationContext(build).images.items() if r["kind"] == "person")
    x, _ = training_set(TINY, n=2, seed=3)
    landmarks = np.zeros((2, 33, 4), np.float32)
    for coco, mp in enumerate(MP33_TO_COCO18):
        if mp is not None:
            landmarks[:, mp, :2] = 96 + 60 * x[:, coco]
    landmarks[:, :, 3] = 1.0
    write_rows(tmp_path, build, "keypoints", dict(zip(ids, landmarks)))
    for cue in ("mean", "lifter"):
        result = run_stage(build, StageConfig("body", "anny-fit", {"depth_weight": 0.1, "depth_cue": cue}), show_progress=False, recompute=True)
        assert result.computed == 2, result.failures_by_reason
        rows = ShardReader(build / "annotations" / "body")
        assert {json.loads(rows.get(i)["params"])["depth_cue"] for i in ids} == {cue}
        assert [p["depth_lifter"] for p in rows.manifest["provenance"]] == [LifterConfig().key()]
    assert len(loads) == 2
    ctx = AnnotationContext(build)
    keyed = {i: rows.get(i)["input_sha256"] for i in ids}
    assert all(keyed[i] != ctx.image_sha256(i) for i in ids)
    monkeypatch.setattr(LifterConfig, "key", lambda self: "another-lifter")
    result = run_stage(build, StageConfig("body", "anny-fit", {"depth_weight": 0.1, "depth_cue": "lifter"}), show_progress=False)
    assert result.computed == 2  # not the rows of the lifter before
    rows = ShardReader(build / "annotations" / "body")
    assert all(rows.get(i)["input_sha256"] not in (keyed[i], ctx.image_sha256(i)) for i in ids)
    result = run_stage(build, StageConfig("body", "anny-fit", {"depth_weight": 0.1, "depth_cue": "mediapipe"}), show_progress=False)
    rows = ShardReader(build / "annotations" / "body")
    assert [rows.get(i)["input_sha256"] for i in ids] == [ctx.image_sha256(i) for i in ids]
    assert "depth_lifter" not in rows.manifest["provenance"][-1]
