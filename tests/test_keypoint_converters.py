"""Keypoint layouts, conversions, pose-map encodings and OpenPose JSON: exact, index by index."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vtonpipe.converters.keypoints import (
    BLAZEPOSE_TO_COCO18_OFFSETS,
    BODY25_NAMES,
    COCO18_NAMES,
    COCO18_SKELETON,
    MP33_MIRROR,
    MP33_NAMES,
    MP33_TO_COCO18,
    OPENPOSE_COLOURS,
    blazepose_to_coco_joints,
    body25_to_coco18,
    clear_outside,
    coco18_to_body25,
    from_openpose_json,
    gaussian_heatmaps,
    keypoint_bbox,
    mp33_depths_to_coco18,
    mp33_hidden_joints,
    mp33_to_coco18,
    pose_disks,
    read_openpose_json,
    to_openpose_json,
    torso_frame,
    write_openpose_json,
)


def coco_pose() -> np.ndarray:
    """Point k at (10 k + 1, 100 + k), confidence (k + 1) / 20; point 13 (l-ankle) undetected."""
    kp = np.array([[10 * k + 1, 100 + k, (k + 1) / 20] for k in range(18)], np.float32)
    kp[13] = 0
    return kp


def test_layout_names():
    assert len(COCO18_NAMES) == 18 and len(BODY25_NAMES) == 25 and len(MP33_NAMES) == 33
    assert COCO18_NAMES[1] == "neck" and COCO18_NAMES[2] == "right_shoulder" and COCO18_NAMES[8] == "right_hip"
    assert COCO18_NAMES[14:] == ("right_eye", "left_eye", "right_ear", "left_ear")
    assert BODY25_NAMES[8] == "mid_hip" and BODY25_NAMES[9] == "right_hip" and BODY25_NAMES[12] == "left_hip"
    assert BODY25_NAMES[19:] == ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")
    assert MP33_NAMES[11:13] == ("left_shoulder", "right_shoulder") and MP33_NAMES[32] == "right_foot_index"
    # the mapping pairs equally named points
    for coco, mp in enumerate(MP33_TO_COCO18):
        if mp is not None:
            assert COCO18_NAMES[coco] == MP33_NAMES[mp]
    assert len(COCO18_SKELETON) == 17 and len(OPENPOSE_COLOURS) == 18


def test_mp33_mirror_swaps_left_and_right():
    assert MP33_MIRROR[0] == 0 and MP33_MIRROR[11] == 12 and MP33_MIRROR[1] == 4 and MP33_MIRROR[31] == 32  # nose; shoulders; eye inner; foot index
    for i, j in enumerate(MP33_MIRROR):
        assert MP33_MIRROR[j] == i
        assert MP33_NAMES[j] == MP33_NAMES[i].replace("left", "#").replace("right", "left").replace("#", "right")


def test_mp33_to_coco18_index_by_index():
    lm = np.array([[i, 1000 + i, 0.5 + i / 100] for i in range(33)], np.float32)
    kp = mp33_to_coco18(lm)
    expected = [0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7]
    for coco, mp in enumerate(expected):
        if mp is not None:
            np.testing.assert_array_equal(kp[coco], lm[mp])
    np.testing.assert_allclose(kp[1], [11.5, 1011.5, 0.61])  # neck: midpoint of 11, 12; min confidence
    assert kp.dtype == np.float32 and kp.shape == (18, 3)


def test_mp33_to_coco18_threshold_and_neck_needs_both_shoulders():
    lm = np.array([[i, i, 0.9] for i in range(33)], np.float32)
    lm[12, 2] = 0.3  # right shoulder below the threshold
    lm[7, 2] = 0.0  # left ear not visible at all
    kp = mp33_to_coco18(lm, min_confidence=0.5)
    np.testing.assert_array_equal(kp[2], [0, 0, 0])  # r-shoulder
    np.testing.assert_array_equal(kp[1], [0, 0, 0])  # neck: min(0.9, 0.3) < 0.5
    np.testing.assert_array_equal(kp[17], [0, 0, 0])  # l-ear
    np.testing.assert_array_equal(kp[5], lm[11])
    kp = mp33_to_coco18(lm)  # no threshold: only confidence-0 points are dropped
    np.testing.assert_allclose(kp[1], [11.5, 11.5, 0.3])
    np.testing.assert_array_equal(kp[17], [0, 0, 0])
    assert mp33_to_coco18(np.stack([lm, lm])).shape == (2, 18, 3)
    with pytest.raises(ValueError, match="33, 3"):
        mp33_to_coco18(np.zeros((33, 4)))


def test_mp33_depths_to_coco18_index_by_index():
    lm = np.array([[i, 1000 + i, 10.0 * i - 50, 0.9] for i in range(33)], np.float32)
    z = mp33_depths_to_coco18(lm)
    expected = [0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7]
    for coco, mp in enumerate(expected):
        if mp is not None:
            assert z[coco] == lm[mp, 2]
    assert z[1] == 65.0  # neck: the shoulders' mean (60 and 70)
    assert z.shape == (18,) and mp33_depths_to_coco18(np.stack([lm, lm])).shape == (2, 18)
    with pytest.raises(ValueError, match="33, 3 or 4"):
        mp33_depths_to_coco18(np.zeros((18, 3)))


def standing_pose() -> np.ndarray:
    """An upright COCO-18 pose: neck (100, 50), hips (90, 150) and (110, 150) (torso 100 px),
    ankles (92, 240) right and (108, 240) left, nose (100, 30); the rest undetected."""
    kp = np.zeros((18, 3), np.float32)
    for j, (x, y) in {0: (100, 30), 1: (100, 50), 8: (90, 150), 11: (110, 150), 10: (92, 240), 13: (108, 240)}.items():
        kp[j] = (x, y, 0.9)
    return kp


def test_torso_frame():
    hips, up, across, torso = torso_frame(standing_pose())
    np.testing.assert_allclose(hips, [100, 150])
    np.testing.assert_allclose(up, [0, -1])
    np.testing.assert_allclose(across, [1, 0])
    assert torso == 100
    no_hip = standing_pose()
    no_hip[8] = 0
    assert torso_frame(no_hip) is None


def test_blazepose_to_coco_joints_hand_checked():
    """Offsets (up, outward) in torso lengths: the ankles' (-0.04, 0.01) move each 4 px down and
    1 px away from the body's axis; the nose's (-0.02, 0) 2 px down; undetected points stay 0."""
    offsets = np.zeros((18, 2), np.float32)
    offsets[10] = offsets[13] = (-0.04, 0.01)
    offsets[0] = (-0.02, 0.0)
    out = blazepose_to_coco_joints(standing_pose(), offsets)
    np.testing.assert_allclose(out[10], [91, 244, 0.9], rtol=1e-6)  # right ankle, on the image's left
    np.testing.assert_allclose(out[13], [109, 244, 0.9], rtol=1e-6)
    np.testing.assert_allclose(out[0], [100, 32, 0.9], rtol=1e-6)
    np.testing.assert_array_equal(out[[1, 8, 11]], standing_pose()[[1, 8, 11]])
    np.testing.assert_array_equal(out[2], 0)
    # the frame turns with the body: the pose rotated 90 degrees gives the rotated result
    turn = np.array([[0, -1], [1, 0]], np.float32)
    lying = standing_pose()
    lying[:, :2] = lying[:, :2] @ turn.T
    lying[standing_pose()[:, 2] == 0] = 0
    moved = blazepose_to_coco_joints(lying, offsets)
    np.testing.assert_allclose(moved[[0, 10, 13], :2], out[[0, 10, 13], :2] @ turn.T, atol=1e-4)
    # without the neck nothing moves
    headless = standing_pose()
    headless[1] = 0
    np.testing.assert_array_equal(blazepose_to_coco_joints(headless, offsets), headless)
    with pytest.raises(ValueError, match="18, 3"):
        blazepose_to_coco_joints(np.zeros((25, 3)))


def test_mp33_hidden_joints_keeps_unseen_limb_joints_moved_to_coco():
    """A standing person's 33 landmarks, all at visibility 0.1 but the shoulders and hips (0.9):
    the keypoints row has those alone, so the guesses are the wrists and ankles (not the elbows,
    knees or face), each at its landmark moved by the COCO offsets, confidence 1; a detected
    wrist is not guessed, nor a landmark outside the image."""
    lm = np.zeros((33, 4), np.float32)
    lm[:, 3] = 0.1
    for mp, (x, y) in {11: (110, 60), 12: (90, 60), 23: (105, 140), 24: (95, 140), 13: (115, 100), 14: (85, 100),
                       15: (118, 135), 16: (82, 135), 25: (106, 190), 26: (94, 190), 27: (106, 240), 28: (94, 240), 0: (100, 30)}.items():
        lm[mp, :2] = (x, y)
    lm[[11, 12, 23, 24], 3] = 0.9
    keypoints = mp33_to_coco18(lm[:, [0, 1, 3]], 0.5)
    guess = mp33_hidden_joints(lm, keypoints, (256, 192))
    limbs = [4, 7, 10, 13]
    moved = blazepose_to_coco_joints(mp33_to_coco18(lm[:, [0, 1, 3]]))
    np.testing.assert_allclose(guess[limbs, :2], moved[limbs, :2])
    np.testing.assert_array_equal(guess[limbs, 2], 1.0)
    np.testing.assert_array_equal(np.delete(guess, limbs, 0), 0.0)  # the seen torso, the unseen elbows, knees and face
    assert guess[10, 1] > 240  # the right ankle moved down, to COCO's ankle
    keypoints[4] = (82, 135, 0.9)  # the right wrist detected after all
    lm[27, :2] = (106, 300)  # the left ankle's landmark below the image
    again = mp33_hidden_joints(lm, keypoints, (256, 192))
    np.testing.assert_array_equal(again[[4, 13]], 0.0)
    with pytest.raises(ValueError, match="33, 4"):
        mp33_hidden_joints(lm[:, :3], keypoints, (256, 192))


def test_blazepose_offsets_table():
    """The shipped table: (18, 2), nothing on the axis moves sideways, every point at most 5 % of
    a torso length, and the ankles are the farthest (BlazePose's sit highest)."""
    t = BLAZEPOSE_TO_COCO18_OFFSETS
    assert t.shape == (18, 2) and t.dtype == np.float32
    assert t[0, 1] == t[1, 1] == 0
    assert np.abs(t).max() <= 0.05
    assert set(np.argsort(t[:, 0])[:2]) == {10, 13}


def test_coco18_to_body25_index_by_index():
    kp = coco_pose()
    b = coco18_to_body25(kp)
    assert b.shape == (25, 3) and b.dtype == np.float32
    for coco, body in enumerate([0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]):
        np.testing.assert_array_equal(b[body], kp[coco])
    np.testing.assert_allclose(b[8], [(81 + 111) / 2, (108 + 111) / 2, 9 / 20])  # mid-hip of r-hip 8, l-hip 11
    np.testing.assert_array_equal(b[19:], 0)
    np.testing.assert_array_equal(body25_to_coco18(b), kp)
    kp[11] = 0  # one hip missing: no mid-hip
    np.testing.assert_array_equal(coco18_to_body25(kp)[8], 0)
    np.testing.assert_array_equal(coco18_to_body25(np.stack([kp, kp]))[1, 9], kp[8])


def test_body25_to_coco18_drops_midhip_and_feet():
    b = np.arange(75, dtype=np.float32).reshape(25, 3)
    c = body25_to_coco18(b)
    np.testing.assert_array_equal(c[:8], b[:8])
    np.testing.assert_array_equal(c[8:], b[9:19])


def test_clear_outside_uses_the_pixel_extent():
    kp = np.array([[-0.5, 0, 1], [-0.6, 0, 1], [9.5, 5.5, 1], [9.51, 0, 1], [0, 5.6, 1]], np.float32)
    out = clear_outside(kp, (6, 10))  # H 6, W 10: x in [-0.5, 9.5], y in [-0.5, 5.5]
    np.testing.assert_array_equal(out[:, 2], [1, 0, 1, 0, 0])
    np.testing.assert_array_equal(out[1], 0)


def test_keypoint_bbox():
    np.testing.assert_array_equal(keypoint_bbox(coco_pose()), [1, 100, 171, 117])
    assert keypoint_bbox(np.zeros((18, 3))) is None


def test_gaussian_heatmaps_on_hand_computed_points():
    kp = np.zeros((18, 3), np.float32)
    kp[0] = (2, 1, 0.9)
    kp[5] = (0.5, 3, 0.2)
    hm = gaussian_heatmaps(kp, (4, 5), sigma=2.0)
    assert hm.shape == (18, 4, 5) and hm.dtype == np.float32
    assert hm[0, 1, 2] == 1.0  # pixel centre (x=2, y=1)
    assert hm[0, 1, 4] == pytest.approx(np.exp(-4 / 8))  # 2 px right
    assert hm[0, 3, 0] == pytest.approx(np.exp(-(4 + 4) / 8))
    assert hm[5, 3, 0] == pytest.approx(np.exp(-0.25 / 8))  # half a pixel from (x=0, y=3)
    assert not hm[[i for i in range(18) if i not in (0, 5)]].any()  # undetected: all zero


def test_gaussian_heatmaps_hold_no_denormals():
    # far tails underflow to 0 rather than to denormals (slow arithmetic), keeping every value >= 1e-19 exact
    kp = np.array([[5, 5, 1.0]] * 18, np.float32)
    hm = gaussian_heatmaps(kp, (256, 192), sigma=6.0)
    positive = hm[hm > 0]
    assert positive.min() >= np.finfo(np.float32).tiny
    assert hm[0, 5, 60] == pytest.approx(np.exp(-(55**2) / 72), rel=1e-5)  # 55 px away, about 6e-19: kept
    assert hm[0, 5, 100] == 0 and hm[0, 200, 5] == 0


def test_pose_disks_radius_4():
    kp = np.zeros((18, 3), np.float32)
    kp[1] = (10, 10, 1)
    kp[2] = (0, 0, 0)  # undetected at the origin: nothing drawn
    d = pose_disks(kp, (21, 21))
    assert d.shape == (18, 21, 21) and set(np.unique(d)) == {0.0, 1.0}
    ys, xs = np.nonzero(d[1])
    assert len(xs) == 49  # lattice points with x^2 + y^2 <= 16
    assert ((xs - 10) ** 2 + (ys - 10) ** 2 <= 16).all()
    assert d[1, 10, 14] == 1 and d[1, 10, 15] == 0 and d[1, 13, 13] == 0  # (3, 3): 18 > 16
    assert d.sum() == 49


def test_openpose_json_layouts_exact(tmp_path):
    kp = coco_pose()
    obj = to_openpose_json(kp[None])
    assert obj == {"version": 1.3, "people": [{"pose_keypoints_2d": [round(float(v), 3) for v in kp.reshape(-1)]}]}
    assert obj["people"][0]["pose_keypoints_2d"][:6] == [1.0, 100.0, 0.05, 11.0, 101.0, 0.1]

    body = to_openpose_json([kp, kp], layout="body25")
    values = body["people"][1]["pose_keypoints_2d"]
    assert len(body["people"]) == 2 and len(values) == 75
    assert values[8 * 3 : 9 * 3] == [96.0, 109.5, 0.45]  # MidHip
    assert values[9 * 3 : 10 * 3] == [81.0, 108.0, 0.45]  # RHip (COCO 8)
    assert values[12 * 3 : 13 * 3] == [111.0, 111.0, 0.6]  # LHip (COCO 11)
    assert values[19 * 3 :] == [0.0] * 18  # feet unknown

    path = tmp_path / "x_keypoints.json"
    write_openpose_json(path, kp[None], layout="body25")
    assert json.loads(path.read_text()) == to_openpose_json(kp[None], layout="body25")
    np.testing.assert_allclose(read_openpose_json(path)[0], kp, atol=5e-4)
    np.testing.assert_allclose(read_openpose_json(path, layout="body25")[0], coco18_to_body25(kp), atol=5e-4)
    np.testing.assert_allclose(from_openpose_json(obj)[0], kp, atol=5e-4)


def test_openpose_json_reader_edge_cases():
    assert from_openpose_json({"version": 1.3, "people": []}).shape == (0, 18, 3)
    assert from_openpose_json({"people": []}, layout="body25").shape == (0, 25, 3)
    legacy = {"version": 1.0, "people": [{"pose_keypoints": list(range(54))}]}  # CP-VTON's files
    np.testing.assert_array_equal(from_openpose_json(legacy)[0], np.arange(54).reshape(18, 3))
    with pytest.raises(ValueError, match="neither COCO-18"):
        from_openpose_json({"people": [{"pose_keypoints_2d": [0.0] * 60}]})
    with pytest.raises(ValueError, match="unknown layout"):
        to_openpose_json(coco_pose()[None], layout="body_25")
