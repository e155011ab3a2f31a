"""Label-set conversions, palettes and the VTON agnostic inputs (vtonpipe.converters.labels).

Expected tables are written out here from the sources, not from the module: class names from
docs/CONVENTIONS.md and SCHP's README, the 13-class merge from VITON-HD's datasets.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vtonpipe.converters import labels as L
from vtonpipe.io import decode_image

LIP = [
    "background", "hat", "hair", "glove", "sunglasses", "upper-clothes", "dress", "coat", "socks", "pants",
    "jumpsuits", "scarf", "skirt", "face", "left-arm", "right-arm", "left-leg", "right-leg", "left-shoe", "right-shoe",
]
ATR = [
    "background", "hat", "hair", "sunglasses", "upper-clothes", "skirt", "pants", "dress", "belt", "left-shoe",
    "right-shoe", "face", "left-leg", "right-leg", "left-arm", "right-arm", "bag", "scarf",
]


def ids(values) -> np.ndarray:
    return np.array(values, np.uint8).reshape(1, -1)


def test_label_lists_follow_conventions():
    assert list(L.LIP_LABELS) == LIP
    assert list(L.ATR_LABELS) == ATR
    assert list(L.CIHP_LABELS) == LIP[:10] + ["torso-skin"] + LIP[11:]
    # VITON-HD datasets.py's `labels` dict, key order: 0 background [0, 10], 1 hair [1, 2], 2 face
    # [4, 13], 3 upper [5, 6, 7], 4 bottom [9, 12], 5-10 arms, legs, shoes, 11 socks [8], 12 noise [3, 11]
    assert L.VITON13_LABELS == (
        "background", "hair", "face", "upper", "bottom", "left_arm", "right_arm",
        "left_leg", "right_leg", "left_shoe", "right_shoe", "socks", "noise",
    )  # fmt: skip


def test_atr_to_lip_every_id():
    by_name = {"bag": "background"}  # LIP has no bag; every other ATR class but belt has a LIP namesake
    src = [i for i in range(18) if ATR[i] != "belt"]  # garment-dependent, tested below
    got = L.atr_to_lip(ids(src))[0]
    for a, lip in zip(src, got):
        assert LIP[lip] == by_name.get(ATR[a], ATR[a]), ATR[a]


def test_lip_to_atr_every_id():
    by_name = {"coat": "upper-clothes", "jumpsuits": "dress"}
    src = [i for i in range(20) if LIP[i] not in ("glove", "socks")]  # side-dependent, tested below
    got = L.lip_to_atr(ids(src))[0]
    for lip, a in zip(src, got):
        assert ATR[a] == by_name.get(LIP[lip], LIP[lip]), LIP[lip]


def test_cihp_lip_tables():
    everything = ids(range(20))
    lip_from_cihp = L.cihp_to_lip(everything)[0]
    cihp_from_lip = L.lip_to_cihp(everything)[0]
    for i in range(20):
        assert lip_from_cihp[i] == (13 if i == 10 else i)  # torso-skin/neck -> face
        assert cihp_from_lip[i] == (6 if i == 10 else i)  # jumpsuits -> dress


def test_viton13_merge_matches_viton_hd():
    # VITON-HD datasets.py `labels`: new id -> CIHP ids
    viton = {0: [0, 10], 1: [1, 2], 2: [4, 13], 3: [5, 6, 7], 4: [9, 12], 5: [14], 6: [15], 7: [16], 8: [17],
             9: [18], 10: [19], 11: [8], 12: [3, 11]}
    expected = np.zeros(20, np.uint8)
    for new, olds in viton.items():
        expected[olds] = new
    np.testing.assert_array_equal(L.to_viton13(ids(range(20)), "cihp")[0], expected)
    lip = L.to_viton13(ids(range(20)), "lip")[0]
    assert lip[10] == 3  # LIP jumpsuits are a garment (upper), not CIHP's neck
    np.testing.assert_array_equal(np.delete(lip, 10), np.delete(expected, 10))
    np.testing.assert_array_equal(L.to_viton13(ids([7, 16]), "atr")[0], [3, 0])  # ATR dress -> upper, bag -> background


def test_round_trips_where_lossless():
    rng = np.random.default_rng(0)

    def random_map(allowed):
        return rng.choice(np.array(allowed, np.uint8), size=(16, 12))

    lip_ok = [i for i in range(20) if i not in (3, 7, 8, 10)]  # glove, coat, socks, jumpsuits are merged in ATR
    p = random_map(lip_ok)
    np.testing.assert_array_equal(L.atr_to_lip(L.lip_to_atr(p)), p)
    atr_ok = [i for i in range(18) if i not in (8, 16)]  # belt, bag have no LIP class
    a = random_map(atr_ok)
    np.testing.assert_array_equal(L.lip_to_atr(L.atr_to_lip(a)), a)
    p = random_map([i for i in range(20) if i != 10])
    np.testing.assert_array_equal(L.cihp_to_lip(L.lip_to_cihp(p)), p)
    np.testing.assert_array_equal(L.lip_to_cihp(L.cihp_to_lip(p)), p)
    np.testing.assert_array_equal(L.convert(a, "atr", "cihp"), L.lip_to_cihp(L.atr_to_lip(a)))
    np.testing.assert_array_equal(L.convert(p, "cihp", "cihp"), p)


def test_belt_goes_to_the_nearest_garment():
    a = np.zeros((22, 6), np.uint8)
    a[:10] = 4  # upper-clothes
    a[10:12] = 8  # belt
    a[12:] = 6  # pants
    lip = L.atr_to_lip(a)
    assert (lip[10] == 5).all() and (lip[11] == 9).all()  # row 10 touches the top, row 11 the pants
    only_belt = np.zeros((4, 4), np.uint8)
    only_belt[1:3, 1:3] = 8
    assert set(np.unique(L.atr_to_lip(only_belt))) == {0, 9}  # no garment to join: pants


def test_glove_and_socks_take_the_side_of_the_nearest_limb():
    p = np.zeros((10, 20), np.uint8)
    p[:, 2:5] = 15  # right arm on the image left
    p[:, 15:18] = 14  # left arm on the image right
    p[5, 5] = 3  # glove next to the right arm
    p[5, 14] = 3  # glove next to the left arm
    a = L.lip_to_atr(p)
    assert a[5, 5] == 15 and a[5, 14] == 14
    q = np.zeros((10, 20), np.uint8)
    q[2:8, 6:14] = 5  # torso, centre column 9.5
    q[9, 4] = 8  # socks, image left of centre: anatomical right -> right-leg (ATR 13)
    q[9, 15] = 8
    a = L.lip_to_atr(q)
    assert a[9, 4] == 13 and a[9, 15] == 12


def test_swap_left_right():
    np.testing.assert_array_equal(L.swap_left_right(ids([13, 14, 15, 16, 17, 18, 19]))[0], [13, 15, 14, 17, 16, 19, 18])
    np.testing.assert_array_equal(L.swap_left_right(ids([9, 10, 11, 12, 13, 14, 15]), "atr")[0], [10, 9, 11, 13, 12, 15, 14])


def test_out_of_range_ids_are_refused():
    with pytest.raises(ValueError, match="not a atr label"):
        L.atr_to_lip(ids([18]))
    with pytest.raises(ValueError, match="uint8"):
        L.lip_to_atr(np.zeros((2, 2), np.int32))


def test_schp_palette_is_pascal_voc():
    voc = [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128), (0, 128, 128),
           (128, 128, 128), (64, 0, 0), (192, 0, 0), (64, 128, 0), (192, 128, 0), (64, 0, 128), (192, 0, 128),
           (64, 128, 128), (192, 128, 128), (0, 64, 0), (128, 64, 0), (0, 192, 0), (128, 192, 0)]
    np.testing.assert_array_equal(L.schp_palette(20), np.array(voc, np.uint8))
    assert L.schp_palette().shape == (256, 3)


def test_palette_png_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    p = rng.integers(0, 20, (23, 17)).astype(np.uint8)
    path = tmp_path / "parse.png"
    L.write_palette_png(path, p)
    with Image.open(path) as im:
        assert im.mode == "P"
    got, palette = L.read_palette_png(path)
    np.testing.assert_array_equal(got, p)
    np.testing.assert_array_equal(palette[:20], L.schp_palette(20))
    # viewers see the palette colours
    np.testing.assert_array_equal(decode_image(path.read_bytes()), L.colorize(p, L.schp_palette()))
    L.write_palette_png(path, p, L.LIP_PALETTE)
    np.testing.assert_array_equal(decode_image(path.read_bytes()), L.colorize(p))
    Image.fromarray(p).save(tmp_path / "gray.png")
    got, palette = L.read_palette_png(tmp_path / "gray.png")
    assert palette is None
    np.testing.assert_array_equal(got, p)


# -- agnostic inputs -----------------------------------------------------------------------------
H, W = 512, 384


def pose(overrides: dict | None = None) -> np.ndarray:
    """COCO-18 keypoints of an upright person facing the camera on a 384 x 512 grid; None: undetected."""
    kp = np.zeros((18, 3))
    points = {1: (192, 100), 2: (140, 110), 3: (120, 180), 4: (110, 250), 5: (244, 110), 6: (264, 180),
              7: (274, 250), 8: (160, 300), 11: (224, 300), 0: (192, 60)}
    for j, xy in {**points, **(overrides or {})}.items():
        kp[j] = (*xy, 1.0) if xy is not None else 0.0
    return kp


def person_parsing() -> np.ndarray:
    p = np.zeros((H, W), np.uint8)
    p[20:90, 162:222] = 13  # face
    p[90:110, 180:204] = 10  # neck (CIHP) / jumpsuits (LIP)
    p[110:300, 150:234] = 5  # upper-clothes
    p[180:220, 182:202] = 0  # a hole in the shirt
    p[300:470, 150:234] = 9  # pants
    p[470:500, 150:190] = 19  # right shoe
    p[470:500, 194:234] = 18  # left shoe
    p[110:260, 100:150] = 15  # right arm (image left)
    p[260:320, 95:125] = 15  # right hand
    p[110:260, 234:290] = 14  # left arm
    p[260:320, 260:290] = 14  # left hand
    p[5:20, 5:30] = 5  # a stray upper-clothes blob far from the person
    return p


def test_parse_agnostic_removes_upper_garments_neck_and_arms_keeps_hands():
    p = person_parsing()
    out = L.parse_agnostic(p, pose())  # r = 10 * 512 / 1024 = 5
    assert not np.isin(out, (5, 6, 7, 10)).any()
    np.testing.assert_array_equal(out[p == 13], 13)
    np.testing.assert_array_equal(out[p == 9], 9)
    assert out[200, 270] == 0 and out[200, 115] == 0  # forearms: within 5 r of the elbow-wrist line
    assert out[150, 240] == 0  # next to the shoulder: in the 15 r elbow disc and the shoulder line
    assert out[310, 274] == 14 and out[310, 110] == 15  # hands 60 px below the wrists (> 4 r) stay
    assert out[262, 280] == 0  # 12 px from the left wrist: inside its 4 r disc


def test_parse_agnostic_bridges_a_missing_elbow_like_viton_hd():
    # VITON-HD keeps the last drawn joint when a segment is skipped: shoulder -> wrist directly.
    p = np.zeros((H, W), np.uint8)
    p[170:190, 200:300] = 14  # a horizontal band crossing both candidate lines
    with_elbow = L.parse_agnostic(p, pose())
    no_elbow = L.parse_agnostic(p, pose({6: None}))
    # (254, 180): 10 px from the l-shoulder -> l-wrist line, 10 px from the elbow joint -> removed either way
    assert with_elbow[180, 264] == 0 and no_elbow[180, 254] == 0
    # (290, 180): 26 px from the elbow (inside the 15 r = 75 px disc) but 30 px from the shoulder-wrist line (> 5 r)
    assert with_elbow[180, 290] == 0 and no_elbow[180, 290] == 14


def test_image_agnostic_paints_torso_neck_arms_and_restores_head_lower_body_hands():
    p = person_parsing()
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (H, W, 3)).astype(np.uint8)
    image[np.all(image == 128, axis=2)] = 127  # no pixel already gray
    out = L.image_agnostic(image, p, pose())
    gray = np.all(out == 128, axis=2)
    # shoulders 104 px apart -> r = int(104 / 16) + 1 = 7; hips moved to x = 140 and 244
    assert gray[200, 192] and gray[200, 145]  # torso quadrilateral
    assert gray[95, 192] and not gray[30, 192] and not gray[15, 192]  # neck box; face restored; above the box
    np.testing.assert_array_equal(out[p == 13], image[p == 13])
    np.testing.assert_array_equal(out[p == 9], image[p == 9])
    assert gray[320, 142] and gray[320, 240]  # background beside the pants on the hip line (12 r = 84 px wide)
    assert gray[200, 268]  # left forearm (inside the 10 r line)
    # left hand 30 px past the wrist: painted by the 5 r = 35 px wrist disc, restored (arm mask ends at 4 r = 28)
    np.testing.assert_array_equal(out[280, 274], image[280, 274])
    np.testing.assert_array_equal(out[500:, :], image[500:, :])
    with pytest.raises(ValueError, match=r"\[11\]"):
        L.image_agnostic(image, p, pose({11: None}))


def test_agnostic_mask_upper_body():
    p = person_parsing()
    m = L.agnostic_mask(p, pose(), "upper_body")
    assert m.dtype == np.uint8 and m.shape == (H, W) and set(np.unique(m)) <= {0, 1}
    assert m[150, 192] == 1 and m[200, 192] == 1  # shirt and its filled hole
    assert m[100, 192] == 1  # id 10 (jumpsuits on LIP) is a one-piece garment
    assert m[150, 130] == 1 and m[150, 260] == 1  # arms
    assert m[50, 192] == 0  # face protected
    assert m[350, 192] == 0 and m[480, 170] == 0  # pants, shoes protected
    assert m[300, 110] == 0  # right hand: arm label beyond the drawn arm
    assert m[290, 140] == 1 and m[290, 139] == 0  # the shirt starts at x = 150: 5x5 x 5 dilation reaches 10 px
    assert m[12, 15] == 0  # the stray blob is not the largest region
    assert m[400, 30] == 0


def test_agnostic_mask_lower_body_and_dresses():
    p = person_parsing()
    lower = L.agnostic_mask(p, pose(), "lower_body")
    assert lower[350, 192] == 1 and lower[150, 192] == 0 and lower[150, 130] == 0 and lower[480, 170] == 0
    assert lower[350, 145] == 1  # dilated 10 px beyond the pants
    dresses = L.agnostic_mask(p, pose(), "dresses")
    assert dresses[350, 192] == 1 and dresses[150, 192] == 1 and dresses[50, 192] == 0


def test_agnostic_mask_neck_on_cihp_is_dilated_once():
    p = np.zeros((H, W), np.uint8)
    p[110:300, 150:234] = 5
    p[40:60, 180:204] = 10  # far above the shirt: CIHP neck, or LIP jumpsuits
    kp = pose({3: None, 6: None})  # no elbows: the (absent) parsed arms are used
    lip = L.agnostic_mask(p, kp, "upper_body")
    # LIP: the jumpsuit blob is a separate garment region, dropped as not the largest
    assert lip[50, 192] == 0 and lip[200, 192] == 1
    p[60:110, 186:198] = 10  # connect it to the shirt
    cihp = L.agnostic_mask(p, kp, "upper_body", label_set="cihp")
    lip = L.agnostic_mask(p, kp, "upper_body")
    assert cihp[50, 192] == 1 and lip[50, 192] == 1
    assert cihp[50, 174] == 0 and lip[50, 174] == 1  # 6 px off: neck dilation 2 px, garment 10 px


def test_agnostic_mask_other_resolutions_and_errors():
    p = np.zeros((1024, 768), np.uint8)
    p[220:600, 300:468] = 5
    kp = pose()
    kp[:, :2] *= 2
    m = L.agnostic_mask(p, kp, "upper_body")
    assert m.shape == (1024, 768) and m[400, 384] == 1 and m[50, 50] == 0
    with pytest.raises(ValueError, match="category"):
        L.agnostic_mask(p, kp, "shoes")
    with pytest.raises(ValueError, match="COCO-18"):
        L.agnostic_mask(p, kp[:17], "upper_body")
