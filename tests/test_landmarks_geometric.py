"""The ``geometric`` landmark estimator (vtonpipe.models.landmarks.geometric) on drawn garments and
people, and the ``geometric`` backend through its stage on a rendered sample."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vtonpipe.annotators import get_backend
from vtonpipe.bench.metrics import LandmarkAccuracy
from vtonpipe.converters.landmarks import (
    ABSENT,
    OCCLUDED,
    VISIBLE,
    flip_landmarks,
    side_ids,
)
from vtonpipe.core import ImageItem
from vtonpipe.datasets.sample_truth import image_truth_path, read_truth
from vtonpipe.models.landmarks.geometric import NoGarmentError, garment_kind, garment_landmarks, garment_length
from vtonpipe.models.landmarks.geometric_person import MissingKeypointsError, person_landmarks
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.context import AnnotationContext
from vtonpipe.pipeline.ingest import ingest
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.pipeline.store import ShardReader
from vtonpipe.synth import write_sample

H, W = 256, 192
LEFT, RIGHT = side_ids("left"), side_ids("right")
SLEEVE_SECTIONS = ("upper_arm", "elbow", "lower_arm", "sleeve_end")

#: a tee seen from the front, clockwise from the neck corner on the image's left (the wearer's
#: right); its hem 1.83 torso widths (armpit to armpit) below the neck, as the sample's tees
TEE = [(80, 40), (96, 46), (112, 40), (132, 50), (162, 90), (150, 100), (126, 80), (128, 150), (64, 150), (66, 80), (42, 100), (30, 90), (60, 50)]
#: the inside of the back seen through the neck opening, down to the V of the front neckline
V_NECK = [(80, 40), (96, 46), (112, 40), (96, 60)]
#: a tank top: straps from the neck corners to the armholes' top corners, armholes down to the sides
TANK = [(84, 40), (96, 46), (108, 40), (118, 42), (119, 60), (122, 76), (128, 90), (128, 150), (64, 150), (64, 90), (70, 76), (73, 60), (74, 42)]


def _garment(polygon, neck=V_NECK) -> tuple[np.ndarray, np.ndarray]:
    image = np.full((H, W, 3), 255, np.uint8)
    cv2.fillPoly(image, [np.array(polygon, np.int32)], (200, 60, 60))
    cv2.fillPoly(image, [np.array(neck, np.int32)], (90, 25, 25))  # the darker inside of the back
    mask = (image.min(2) < 250).astype(np.uint8)
    return mask, image


def _near(point, expected, tolerance: float) -> bool:
    return bool(np.linalg.norm(np.asarray(point[:2], float) - expected) <= tolerance)


def test_garment_corners_of_a_drawn_tee():
    mask, image = _garment(TEE)
    lm = garment_landmarks(mask, image)
    expected = {
        6: (80, 40), 1: (112, 40), 0: (96, 46),  # neck corners, the collar's back at the dip
        LEFT["armpit"]: (126, 80), RIGHT["armpit"]: (66, 80),  # concave corners
        LEFT["sleeve_end_exterior"]: (162, 90), LEFT["sleeve_end_interior"]: (150, 100),
        RIGHT["sleeve_end_exterior"]: (30, 90), RIGHT["sleeve_end_interior"]: (42, 100),
        29: (128, 150), 31: (64, 150), 30: (96, 150),  # hem corners (wearer's left on the image's right) and middle
    }  # fmt: skip
    for k, p in expected.items():
        assert lm[k, 2] == VISIBLE and _near(lm[k], p, 2.5), (k, lm[k], p)
    # the front neckline follows the V's edges down to its tip
    for k, x in ((3, 96 + 0.15 * 16), (4, 96 - 0.15 * 16), (2, 96 + 0.5 * 16), (5, 96 - 0.5 * 16)):
        v_y = 60 - 20 * abs(x - 96) / 16
        assert abs(lm[k, 0] - x) < 1.5 and abs(lm[k, 1] - v_y) < 2.5, (k, lm[k])
    # shoulders on the shoulder line, near above the armpits
    assert 112 < lm[7, 0] < 132 and lm[7, 1] < 52 and abs(lm[7, 0] - 126) < 4
    # a short sleeve: the upper arm's points between root and end, no elbow or lower arm
    for ids in (LEFT, RIGHT):
        assert lm[ids["upper_arm_exterior"], 2] == lm[ids["upper_arm_interior"], 2] == VISIBLE
        assert (lm[[ids["elbow_exterior"], ids["lower_arm_exterior"]], 2] == ABSENT).all()
    ext, inn = lm[LEFT["upper_arm_exterior"], :2], lm[LEFT["upper_arm_interior"], :2]
    assert ext[1] < inn[1] and ext[0] > 126  # the exterior edge above the interior one, out on the sleeve
    # the waist on the sides, 0.47 torso widths (armpit to armpit) below the armpits
    armpits = lm[[LEFT["armpit"], RIGHT["armpit"]], :2]
    assert lm[27, 1] == lm[28, 1] == pytest.approx(armpits[:, 1].mean() + 0.47 * np.ptp(armpits[:, 0]), abs=0.5)
    assert abs(lm[27, 0] - 127.5) < 1 and abs(lm[28, 0] - 64.5) < 1


def test_a_tank_top_has_no_sleeve_points_and_its_shoulders_on_the_straps():
    mask, image = _garment(TANK, [(84, 40), (96, 46), (108, 40), (96, 62)])
    lm = garment_landmarks(mask, image)
    sleeve = [ids[f"{s}_{e}"] for ids in (LEFT, RIGHT) for s in SLEEVE_SECTIONS for e in ("exterior", "interior")]
    assert (lm[sleeve, 2] == ABSENT).all() and (lm[sleeve, :2] == 0).all()
    assert (np.delete(lm[:, 2], sleeve) == VISIBLE).all()
    assert _near(lm[7], (118, 42), 2.5) and _near(lm[17], (74, 42), 2.5)  # the straps' outer top corners
    assert lm[8, 1] > 76 and lm[8, 0] > 124  # the armhole's bottom at the side


def test_a_mirrored_garment_gives_mirrored_landmarks():
    mask, image = _garment(TEE)
    lm = garment_landmarks(mask, image)
    mirrored = garment_landmarks(mask[:, ::-1], image[:, ::-1])
    np.testing.assert_array_equal(mirrored[:, 2], flip_landmarks(lm, W)[:, 2])
    np.testing.assert_allclose(mirrored[:, :2], flip_landmarks(lm, W)[:, :2], atol=1.0)


#: the tee's top part over a flared skirt down to row 240 (a dress), and over two trouser legs (a
#: jumpsuit) on the tank top: its crotch a concave corner below the armholes
DRESS = [*TEE[:7], (128, 130), (150, 240), (42, 240), (64, 130), *TEE[9:]]
JUMPSUIT = [*TANK[:7], (128, 150), (124, 240), (100, 240), (96, 190), (92, 240), (68, 240), (64, 150), *TANK[9:]]


def test_a_dress_gets_the_landmarks_of_its_top_part():
    mask, image = _garment(DRESS)
    lm = garment_landmarks(mask, image)
    hem_y = 40 + 1.85 * 60  # ONE_PIECE_HEM torso widths (armpit to armpit) below the neck corners
    for k, x in ((29, 128 + 22 * (hem_y - 130) / 110), (30, 96), (31, 64 - 22 * (hem_y - 130) / 110)):
        assert abs(lm[k, 1] - hem_y) < 4 and abs(lm[k, 0] - x) < 2, (k, lm[k])  # (armpits found on pixel edges)
    tee = garment_landmarks(*_garment(TEE))
    np.testing.assert_allclose(lm[:27, :2], tee[:27, :2], atol=1.5)  # neck, shoulders, sleeves, armpits
    assert abs(garment_landmarks(mask, image, one_piece=False)[30, 1] - 240) < 1.5  # told it is a top
    np.testing.assert_allclose(garment_landmarks(mask, image, one_piece=True), lm)


def test_a_jumpsuit_keeps_its_armpits_on_the_armholes():
    mask, image = _garment(JUMPSUIT, [(84, 40), (96, 46), (108, 40), (96, 62)])
    lm = garment_landmarks(mask, image)
    assert lm[LEFT["armpit"], 0] > 120 and lm[RIGHT["armpit"], 0] < 72 and 70 < lm[8, 1] < 95  # not the crotch
    assert abs(lm[30, 1] - (40 + 1.85 * 64)) < 3 and abs(lm[30, 0] - 96) < 1.5  # the hip line, not the legs


def test_what_an_in_shop_garment_is_from_its_shape():
    assert [garment_kind(*_garment(g)) for g in (TEE, DRESS, JUMPSUIT)] == ["top", "dress", "jumpsuit"]
    assert garment_length(*_garment(TEE)) == pytest.approx((150 - 40) / 61, abs=0.05)  # neck to hem, in torso widths
    broken, image = _garment(DRESS)
    broken[40:84, 96:] = 0  # the wearer's left shoulder lost (a white garment on white): armpits not level
    assert garment_length(broken, image) is None and garment_kind(broken, image) is None
    assert abs(garment_landmarks(broken, image)[30, 1] - 240) < 1.5  # an unreadable shape: a top's rules


def test_an_empty_garment_mask_fails():
    with pytest.raises(NoGarmentError):
        garment_landmarks(np.zeros((H, W), np.uint8), np.full((H, W, 3), 255, np.uint8))


def _capsule(canvas: np.ndarray, a, b, radius: int, label: int) -> None:
    cv2.line(canvas, tuple(int(v) for v in a), tuple(int(v) for v in b), label, 2 * radius)


def _person(crossed: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A front-facing person in a short-sleeved top: keypoints, LIP parsing, person mask. With
    ``crossed`` the left forearm lies across the belly down to the right hip."""
    kp = np.zeros((18, 3), np.float32)
    wrist_l = (78, 150) if crossed else (124, 135)
    for i, (x, y) in {0: (96, 40), 1: (96, 62), 2: (76, 62), 3: (70, 100), 4: (68, 135), 5: (116, 62), 6: (122, 100), 7: wrist_l,
                      8: (84, 150), 11: (108, 150), 14: (92, 37), 15: (100, 37), 16: (88, 40), 17: (104, 40)}.items():  # fmt: skip
        kp[i] = (x, y, 0.9)
    parsing = np.zeros((H, W), np.uint8)
    cv2.ellipse(parsing, (96, 38), (10, 13), 0, 0, 360, 13, -1)  # head
    parsing[45:66, 89:104] = 13  # neck
    parsing[160:230, 80:113] = 9  # trousers
    for side, (s, e, wr), label in (("r", (2, 3, 4), 15), ("l", (5, 6, 7), 14)):
        _capsule(parsing, kp[e, :2], kp[wr, :2], 5, label)  # forearm skin
        _capsule(parsing, kp[s, :2], kp[e, :2], 6, label)
    cv2.fillPoly(parsing, [np.array([(90, 62), (96, 66), (102, 62), (118, 58), (114, 160), (78, 160), (74, 58)], np.int32)], 5)  # torso
    for s, e in ((2, 3), (5, 6)):  # sleeves over the upper arm's first 60%
        _capsule(parsing, kp[s, :2], kp[s, :2] + 0.6 * (kp[e, :2] - kp[s, :2]), 7, 5)
    if crossed:
        _capsule(parsing, kp[6, :2], kp[7, :2], 5, 14)  # the forearm in front of the top
    return kp, parsing, (parsing > 0).astype(np.uint8)


def test_person_points_of_a_drawn_tee():
    kp, parsing, mask = _person()
    lm = person_landmarks(kp, parsing, mask)
    assert lm[0, 2] == OCCLUDED  # the collar's back is behind the neck of a person facing the camera
    assert (lm[1:7, 2] == VISIBLE).all() and lm[1, 0] > 96 > lm[6, 0]  # wearer's left on the image's right
    assert lm[1:7, 1].max() < 68 and lm[3, 1] > lm[1, 1]  # the neckline dips in the middle
    assert _near(lm[30], (96, 160.5), 1.0)  # the hem's middle under the torso
    waist_y = 62 + (1 - 0.45) * 88  # the waist line 45% of the way up from the hips to the shoulders
    sides = (118 - 4 * (waist_y - 58) / 102 + 0.5, 74 + 4 * (waist_y - 58) / 102 - 0.5)  # the torso's slanted sides, on the pixel edges
    assert _near(lm[27], (sides[0], waist_y), 1.0) and _near(lm[28], (sides[1], waist_y), 1.0)
    for ids in (LEFT, RIGHT):  # the sleeves cover the upper arm's middle, not the elbow
        assert lm[ids["upper_arm_exterior"], 2] != ABSENT and lm[ids["sleeve_end_exterior"], 2] != ABSENT
        assert lm[ids["elbow_exterior"], 2] == lm[ids["lower_arm_interior"], 2] == ABSENT
    axis = 0.5 * (kp[5, :2] + kp[6, :2])  # the left upper arm's middle: exterior on the outside
    assert lm[LEFT["upper_arm_exterior"], 0] > axis[0] > lm[LEFT["upper_arm_interior"], 0]
    # the sleeve ends where the drawn one does: 60% of the upper arm plus its round end (radius 7 px)
    upper = kp[6, :2] - kp[5, :2]
    along = (lm[LEFT["sleeve_end_exterior"], :2] - kp[5, :2]) @ upper / (upper @ upper)
    assert along == pytest.approx((0.6 * np.linalg.norm(upper) + 7) / np.linalg.norm(upper), abs=0.06)


@pytest.mark.parametrize("label", [6, 10])  # dress, jumpsuits
def test_a_one_piece_garment_has_its_hem_on_the_hip_line(label):
    kp, parsing, mask = _person()
    parsing[(parsing == 5) | (parsing == 9)] = label  # the top and trousers one garment, down to row 230
    parsing[150:230, 78:114] = label
    lm = person_landmarks(kp, parsing, (parsing > 0).astype(np.uint8))
    tee = person_landmarks(*_person())
    hip_y = 62 + 1.0 * 88  # ONE_PIECE_HEM torso lengths below the shoulders (62 -> hips 150)
    assert lm[30, 2] == VISIBLE and abs(lm[30, 1] - hip_y) <= 1.0
    assert (lm[[29, 31], 2] == VISIBLE).all() and np.abs(lm[[29, 31], 1] - hip_y).max() <= 2.0
    np.testing.assert_allclose(lm[:29], tee[:29])  # neckline, shoulders, sleeves and waist as for the top


def test_an_arm_across_the_body_occludes_the_hem_behind_it():
    plain = person_landmarks(*_person())
    crossed = person_landmarks(*_person(crossed=True))
    assert plain[31, 2] == VISIBLE and crossed[31, 2] == OCCLUDED  # the right hem corner behind the left forearm
    assert crossed[29, 2] == VISIBLE


def test_person_failures():
    kp, parsing, mask = _person()
    with pytest.raises(NoGarmentError):
        person_landmarks(kp, np.where(parsing == 5, 0, parsing), mask)
    no_shoulder = kp.copy()
    no_shoulder[5] = 0
    with pytest.raises(MissingKeypointsError):
        person_landmarks(no_shoulder, parsing, mask)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """A two-person sample with exact upstream annotations (``groundtruth`` backends)."""
    tmp = tmp_path_factory.mktemp("geo")
    write_sample(tmp / "raw", people=2, seed=5)
    ingest("sample", tmp / "raw", tmp / "build", layout_name="mpv", show_progress=False)
    for name in ("keypoints", "person_mask", "garment_mask", "parsing"):
        run_stage(tmp / "build", StageConfig(name, "groundtruth"), show_progress=False)
    return tmp / "build"


def test_geometric_backend_through_the_stage(build):
    res = run_stage(build, StageConfig("landmarks", "geometric"), show_progress=False)
    assert res.computed == res.total == 6 and res.failed == 0
    ctx = AnnotationContext(build)
    accuracy = LandmarkAccuracy()
    for row in ShardReader(build / "annotations" / "landmarks"):
        truth = read_truth(image_truth_path(ctx.dataset_root, ctx.images[row["image_id"]]["path"]))["landmarks"]
        accuracy.update(row["landmarks"], truth)
        np.testing.assert_array_equal(row["landmarks"][:, 2] == ABSENT, truth[:, 2] == ABSENT)  # the sleeves' lengths
    result = accuracy.result()
    assert result["mean_px_error"] < 5.0 and result["attribute_accuracy"] > 0.8, result


def test_bottoms_fail_with_a_reason(build):
    backend = get_backend("landmarks", "geometric")()
    ctx = AnnotationContext(build)
    garment = next(i for i, r in ctx.images.items() if r["kind"] == "garment")
    item = ImageItem(garment, ctx.image_sha256(garment), "garment", ctx.load_image(garment), "lower_body")
    (failure,) = backend.annotate([item], ctx)
    assert failure.reason == "no_upper_garment"
