"""The 32-landmark definition (vtonpipe.converters.landmarks) and the sample's ground truth that
follows it: mirror symmetry, absent sleeve points, occlusion by an arm and by turning."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vtonpipe.converters.landmarks import (
    ABSENT,
    FLIP,
    LANDMARK_NAMES,
    OCCLUDED,
    VISIBLE,
    flip_landmarks,
    side_ids,
)
from vtonpipe.models.bodies.anny import AnnyBody
from vtonpipe.models.render.iuv import anny_charts
from vtonpipe.synth.person import DressedBody
from vtonpipe.synth.poses import PoseRecipe, sample_pose
from vtonpipe.synth.recipes import sample_person
from vtonpipe.synth.scene import Renderer, Shot

SIZE = (256, 192)
SHOT = Shot(elevation=2.0, fov=20.0, margin=0.05, seed=1)
ARMS_DOWN = {"raise_l": -0.55, "raise_r": -0.55, "elbow_l": -0.4, "elbow_r": -0.4}
SLEEVE_POINTS = [side_ids(s)[f"{sec}_{e}"] for s in ("left", "right") for sec in ("upper_arm", "elbow", "lower_arm", "sleeve_end") for e in ("exterior", "interior")]


def test_flip_table_swaps_the_wearers_sides():
    assert all(FLIP[FLIP[k]] == k for k in range(32))
    assert [k for k in range(32) if FLIP[k] == k] == [0, 30]  # collar back and hem middle
    for k, name in enumerate(LANDMARK_NAMES):
        if "_left" in name:
            assert LANDMARK_NAMES[FLIP[k]] == name.replace("_left", "_right")
    assert (FLIP[1], FLIP[3], FLIP[7], FLIP[16], FLIP[27], FLIP[29]) == (6, 4, 17, 26, 28, 31)
    lm = np.zeros((32, 3), np.float32)
    lm[:, 2] = ABSENT
    lm[7] = (150.0, 40.0, VISIBLE)  # left shoulder at image x 150 of a 192 px wide image
    lm[30] = (95.5, 120.0, OCCLUDED)
    flipped = flip_landmarks(lm, 192)
    np.testing.assert_array_equal(flipped[17], [41.0, 40.0, VISIBLE])  # 192 - 1 - 150: now the right shoulder
    np.testing.assert_array_equal(flipped[30], [95.5, 120.0, OCCLUDED])  # the centre stays (W - 1) / 2 = 95.5
    assert (flipped[7] == [0, 0, ABSENT]).all()  # absent points stay at (0, 0)
    np.testing.assert_array_equal(flip_landmarks(flipped, 192), lm)
    np.testing.assert_array_equal(flip_landmarks(np.stack([lm, flipped]), 192), np.stack([flipped, lm]))  # batched


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(AnnyBody(), anny_charts())


def _dressed(renderer: Renderer, category: str, sleeve: float) -> DressedBody:
    recipe = sample_person(np.random.default_rng([7, 0]))
    return DressedBody(renderer.body, dataclasses.replace(recipe, top=dataclasses.replace(recipe.top, category=category, sleeve=sleeve)))


@pytest.fixture(scope="module")
def long_sleeve(renderer) -> DressedBody:
    return _dressed(renderer, "long_sleeve", 0.95)


def _mirrored(pose: PoseRecipe) -> PoseRecipe:
    """The pose seen in a mirror: left and right limbs swapped, turns and tilts reversed."""
    params = {}
    for k, v in pose.params.items():
        if k.endswith(("_l", "_r")):
            params[k[:-1] + ("r" if k.endswith("_l") else "l")] = v
        else:
            params[k] = -v if k in ("head_turn", "head_tilt", "spine_twist") else v
    return PoseRecipe(pose.name, -pose.turn, params)


def test_a_mirrored_render_has_the_flipped_ground_truth(renderer, long_sleeve):
    pose = sample_pose("wave", np.random.default_rng(3), turn=0.5)
    view = renderer.person(long_sleeve, pose, SHOT, SIZE)
    mirror = renderer.person(long_sleeve, _mirrored(pose), SHOT, SIZE)
    expected = flip_landmarks(view.landmarks, SIZE[1])
    np.testing.assert_array_equal(mirror.landmarks[:, 2], expected[:, 2])
    np.testing.assert_allclose(mirror.landmarks[:, :2], expected[:, :2], atol=0.3)
    assert (view.landmarks[:, 2] == OCCLUDED).sum() >= 3  # a turned, waving pose hides some points
    # the in-shop garment (the rest body, front view) is its own mirror image
    garment = renderer.garment(long_sleeve, SIZE, seed=0).landmarks
    assert (garment[:, 2] == VISIBLE).sum() >= 28
    np.testing.assert_array_equal(flip_landmarks(garment, SIZE[1])[:, 2], garment[:, 2])
    np.testing.assert_allclose(flip_landmarks(garment, SIZE[1])[:, :2], garment[:, :2], atol=1.0)


def test_a_tank_top_has_no_sleeve_points(renderer):
    tank = _dressed(renderer, "sleeveless", 0.0)
    for lm in (renderer.person(tank, PoseRecipe("custom", 0.0, ARMS_DOWN), SHOT, SIZE).landmarks, renderer.garment(tank, SIZE, seed=0).landmarks):
        np.testing.assert_array_equal(lm[SLEEVE_POINTS], np.tile([0, 0, ABSENT], (16, 1)))
        others = np.setdiff1d(np.arange(32), SLEEVE_POINTS)
        assert (lm[others, 2] != ABSENT).all()


def test_an_arm_across_the_body_occludes_what_it_covers(renderer, long_sleeve):
    down = renderer.person(long_sleeve, PoseRecipe("custom", 0.0, ARMS_DOWN), SHOT, SIZE)
    # the left forearm folded across the belly, the hand in front of the right elbow
    crossed = renderer.person(long_sleeve, PoseRecipe("custom", 0.0, ARMS_DOWN | {"raise_l": -0.6, "swing_l": 0.2, "twist_l": 1.5, "elbow_l": 0.95}), SHOT, SIZE)
    elbow_in = side_ids("right")["elbow_interior"]
    assert down.landmarks[elbow_in, 2] == VISIBLE and crossed.landmarks[elbow_in, 2] == OCCLUDED
    x, y = np.rint(crossed.landmarks[elbow_in, :2]).astype(int)
    assert crossed.parsing[y, x] == 14  # the left arm's (hand's) pixels lie over it
    # the forearm lies across the waist line, above the hem
    assert (down.landmarks[[27, 28], 2] == VISIBLE).all() and (crossed.landmarks[[27, 28], 2] == OCCLUDED).all()
    assert (crossed.landmarks[[29, 30, 31], 2] == VISIBLE).all()


def test_turning_away_hides_the_far_side(renderer, long_sleeve):
    # turn > 0 turns the person towards their left: the left side faces away from the camera
    turned = renderer.person(long_sleeve, PoseRecipe("custom", 1.3, ARMS_DOWN), SHOT, SIZE).landmarks
    left, right = side_ids("left"), side_ids("right")
    for part in ("shoulder", "upper_arm_exterior", "elbow_exterior", "sleeve_end_exterior"):
        assert turned[left[part], 2] == OCCLUDED and turned[right[part], 2] == VISIBLE, part
    assert turned[27, 2] == OCCLUDED and turned[30, 2] == VISIBLE  # the far waist point; the front's hem
    assert turned[1, 2] == OCCLUDED and turned[6, 2] == VISIBLE  # neckline ends
    assert turned[0, 2] == OCCLUDED  # the collar's back is behind the neck


def test_a_back_view_shows_the_collars_back_and_hides_the_front(renderer, long_sleeve):
    back = renderer.person(long_sleeve, PoseRecipe("custom", float(np.pi), ARMS_DOWN), SHOT, SIZE)
    lm = back.landmarks
    assert lm[0, 2] == VISIBLE  # the back of the collar faces the camera
    assert (lm[[2, 3, 4, 5], 2] == OCCLUDED).all()  # the front neckline is behind the neck
    assert (lm[30, 2] == OCCLUDED)  # the hem's middle is on the front
    # seen from the back, the wearer's left is on the image's left
    left, right = side_ids("left"), side_ids("right")
    assert lm[left["shoulder"], 0] < lm[right["shoulder"], 0]


def test_back_views_are_opt_in_and_leave_the_default_photos_alone():
    from vtonpipe.synth.recipes import sample_photos

    plain = [sample_photos(np.random.default_rng([0, i])) for i in range(40)]
    again = [sample_photos(np.random.default_rng([0, i]), back_share=0.0) for i in range(40)]
    assert plain == again and not any(p.view == "back" for pair in plain for p in pair)
    backs = [p.view for i in range(40) for p in sample_photos(np.random.default_rng([0, i]), back_share=0.5)]
    assert 20 <= backs.count("back") <= 60 and {"front", "side"} <= set(backs)


def test_arms_in_front_fold_the_forearms_across_the_torso(renderer, long_sleeve):
    """The opt-in pose: both wrists between the shoulders and between neck and hips, the forearms
    and hands (DensePose parts 3, 4, 19-22) over a good part of the torso."""
    from vtonpipe.synth.recipes import sample_photos

    for seed in range(3):
        view = renderer.person(long_sleeve, sample_pose("arms_in_front", np.random.default_rng(seed)), SHOT, SIZE)
        kp = view.coco18  # OpenPose order: 1 neck, 2 / 5 right / left shoulder, 4 / 7 wrist, 8 / 11 hip
        (rx, ry), (lx, ly) = kp[4, :2], kp[7, :2]
        x0, x1 = sorted((kp[2, 0], kp[5, 0]))
        assert x0 < rx < x1 and x0 < lx < x1, seed  # the hands in front of the body, not at its sides
        assert (kp[[4, 7], 2] == 2).any(), seed  # and seen (one hand may cover the other): not pushed into the belly
        assert kp[1, 1] < ry < kp[8, 1] and kp[1, 1] < ly < kp[11, 1], seed
        torso = np.zeros(SIZE, bool)
        torso[int(kp[1, 1]) : int(kp[8, 1]), int(x0) : int(x1)] = True
        assert np.isin(view.iuv[..., 0][torso], (3, 4, 19, 20, 21, 22)).mean() > 0.15, seed
    plain = [sample_photos(np.random.default_rng([0, i])) for i in range(40)]
    assert plain == [sample_photos(np.random.default_rng([0, i]), arms_in_front_share=0.0) for i in range(40)]
    names = [p.pose.name for i in range(40) for p in sample_photos(np.random.default_rng([0, i]), arms_in_front_share=0.5)]
    assert 20 <= names.count("arms_in_front") <= 60 and "arms_in_front" not in [p.pose.name for pair in plain for p in pair]
