"""The ``keypoints`` annotator's MediaPipe backend on a real photo, bad inputs, and its drawing."""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib
import mediapipe as mp
import numpy as np
import pytest
from builders import garment_image, make_build, person_image, write_mpv_tree
from PIL import Image

from vtonpipe.annotators.keypoints import MediaPipeKeypoints
from vtonpipe.converters.keypoints import COCO18_NAMES, MP33_MIRROR, MP33_NAMES, OPENPOSE_COLOURS, blazepose_to_coco_joints, clear_outside
from vtonpipe.core import ImageItem
from vtonpipe.models.nets import mediapipe as mediapipe_models
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.ingest import ingest
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.pipeline.store import ShardReader
from vtonpipe.synth import write_sample
from vtonpipe.vis import DRAWERS

GRACE = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"  # 512 x 600 portrait

# Where the points are in grace_hopper.jpg, by eye: (x0, y0, x1, y1) px.
REGIONS = {
    "nose": (245, 205, 290, 250),
    "right_eye": (205, 175, 250, 215),
    "left_eye": (280, 170, 325, 210),
    "right_ear": (175, 190, 220, 245),
    "left_ear": (315, 185, 360, 240),
    "right_shoulder": (50, 380, 150, 470),
    "left_shoulder": (400, 380, 500, 470),
    "neck": (230, 390, 320, 460),
}


def grace() -> np.ndarray:
    return np.asarray(Image.open(GRACE).convert("RGB"))


def check_grace_keypoints(kp: np.ndarray, scale: float = 1.0) -> None:
    """The face points and shoulders where they are (in grace_hopper.jpg resized by ``scale``);
    arms and legs (out of frame) undetected."""
    for name, box in REGIONS.items():
        x0, y0, x1, y1 = ((v + 0.5) * scale - 0.5 for v in box)
        x, y, c = kp[COCO18_NAMES.index(name)]
        assert x0 <= x <= x1 and y0 <= y <= y1 and c >= 0.5, (name, x, y, c)
    for name in ("right_wrist", "left_wrist", "right_hip", "left_hip", "right_knee", "left_knee", "right_ankle", "left_ankle"):
        np.testing.assert_array_equal(kp[COCO18_NAMES.index(name)], 0, err_msg=name)


def item(image: np.ndarray) -> ImageItem:
    return ImageItem("x", "0" * 64, "person", image)


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    """An MPV build of grace_hopper as RGB JPEG, half-size grayscale JPEG and RGBA PNG, an 8x6
    image, a blank image and the builders' crude figures (not people to MediaPipe)."""
    tmp = tmp_path_factory.mktemp("kp")
    root = tmp / "raw"
    (root / "all").mkdir(parents=True)
    img = grace()
    Image.fromarray(img).save(root / "all" / "grace.jpg", quality=95)
    # MediaPipe's person detector misses the full-size grayscale portrait (score < 0.3), not a half-size one
    Image.fromarray(img).convert("L").resize((256, 300), Image.BILINEAR).save(root / "all" / "grace_gray.jpg", quality=95)
    rgba = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    rgba[:, :40, 3] = 0  # a transparent strip, composited over white
    Image.fromarray(rgba, "RGBA").save(root / "all" / "grace_rgba.png")
    Image.fromarray(np.full((6, 8, 3), 128, np.uint8)).save(root / "all" / "tiny.jpg")
    Image.fromarray(np.full((256, 192, 3), 255, np.uint8)).save(root / "all" / "blank.jpg")
    Image.fromarray(garment_image(0)).save(root / "all" / "cloth.jpg")
    lines = ["grace.jpg\tgrace_gray.jpg\tcloth.jpg\ttrain", "grace_rgba.png\ttiny.jpg\tcloth.jpg\ttrain", "blank.jpg\tgrace.jpg\tcloth.jpg\ttest"]
    write_mpv_tree(root, [(person_image(0), person_image(1), garment_image(1))], extra_lines=lines)
    ingest("t", root, tmp / "build", layout_name="mpv", show_progress=False)
    return tmp / "build"


@pytest.fixture(scope="module")
def stage(build):
    return run_stage(build, StageConfig("keypoints", batch_size=2), show_progress=False)


def test_mediapipe_on_grace_hopper_finds_face_and_shoulders():
    backend = MediaPipeKeypoints()
    backend.ensure_setup()
    (rec,) = backend.annotate([item(grace())], ctx=None)
    check_grace_keypoints(rec.keypoints)
    assert rec.num_people == 1 and rec.people.shape == (1, 18, 3)
    np.testing.assert_array_equal(rec.people[0], rec.keypoints)
    found = rec.keypoints[:, 2] > 0
    assert rec.score == pytest.approx(rec.keypoints[found, 2].mean())


def test_mediapipe_keypoints_follow_the_pixel_convention():
    """x = t W - 0.5, y = t H - 0.5 of MediaPipe's own output; COCO-18 points are its landmarks."""
    img = grace()
    h, w = img.shape[:2]
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        lms = pose.process(img).pose_landmarks.landmark
    backend = MediaPipeKeypoints(params={"mirror_average": False})  # one pass, as MediaPipe gives it
    backend.ensure_setup()
    (rec,) = backend.annotate([item(img)], ctx=None)
    raw = rec.landmarks_mp33
    np.testing.assert_allclose(raw[:, 0], [p.x * w - 0.5 for p in lms], atol=1e-3)
    np.testing.assert_allclose(raw[:, 1], [p.y * h - 0.5 for p in lms], atol=1e-3)
    np.testing.assert_allclose(raw[:, 2], [p.z * w for p in lms], atol=1e-3)
    np.testing.assert_allclose(raw[:, 3], [p.visibility for p in lms], atol=1e-6)
    kp = rec.keypoints
    for coco, mp_index in ((0, 0), (2, 12), (5, 11), (14, 5), (15, 2), (16, 8), (17, 7)):
        np.testing.assert_array_equal(kp[coco], raw[mp_index, [0, 1, 3]])
    np.testing.assert_allclose(kp[1], [*(raw[11, :2] + raw[12, :2]) / 2, min(raw[11, 3], raw[12, 3])], rtol=1e-6)
    # raw landmarks are kept whatever their visibility, even off-image (the hips are below the frame)
    assert raw[23, 1] > h and raw[23, 3] < 0.5


def test_run_stage_grayscale_rgba_tiny_and_blank(build, stage):
    assert (stage.total, stage.computed, stage.failures_by_reason) == (7, 3, {"no_person": 4})
    reader = ShardReader(build / "annotations" / "keypoints")
    assert sorted(reader.ids()) == ["all/grace.jpg", "all/grace_gray.jpg", "all/grace_rgba.png"]
    for image_id, scale in (("all/grace.jpg", 1.0), ("all/grace_gray.jpg", 0.5), ("all/grace_rgba.png", 1.0)):
        row = reader.get(image_id)
        assert (row["backend"], row["num_people"]) == ("mediapipe", 1)
        check_grace_keypoints(row["keypoints"], scale)
        assert row["landmarks_mp33"].shape == (33, 4)
    failed = {r["item_id"]: r["error"] for r in ShardReader(build / "annotations" / "keypoints" / "failures")}
    assert failed == {
        "all/tiny.jpg": "no_person",
        "all/blank.jpg": "no_person",
        "all/P0000@1=person_half_front.jpg": "no_person",
        "all/P0000@1=person_whole_back.jpg": "no_person",
    }


def test_one_pose_model_per_worker(monkeypatch, tmp_path):
    built = {"pose": [], "people": []}

    def counting(cls, name):
        real = cls.__init__

        def init(self, **kwargs):
            built[name].append(kwargs)
            real(self, **kwargs)

        return init

    for name, cls in (("pose", mediapipe_models.PoseLandmarker), ("people", mediapipe_models.PeopleCounter)):
        monkeypatch.setattr(cls, "__init__", counting(cls, name))
    img = grace()
    build = make_build(tmp_path, [(img, img[:, ::-1], garment_image(0))])
    res = run_stage(build, StageConfig("keypoints", batch_size=1), show_progress=False)
    # Pose at the default and at the retry confidence, the people counter: each built once
    assert res.computed == 2 and len(built["pose"]) == 2 and len(built["people"]) == 1


@pytest.fixture(scope="module")
def sample_people(tmp_path_factory) -> list[np.ndarray]:
    """The pose-A photos (256 x 192) of the first two people of ``vtonpipe sample --seed 0``."""
    root = tmp_path_factory.mktemp("people") / "raw"
    write_sample(root, people=2, seed=0)
    return [np.asarray(Image.open(root / "all" / f"S000{i}@0=person_whole_front.jpg").convert("RGB")) for i in (0, 1)]


def test_num_people_counts_several_people(sample_people):
    """Pose sees one person; the row counts the people: 1 on each render, 2 on both side by side,
    2 on two copies of the grace_hopper portrait."""
    backend = MediaPipeKeypoints()
    backend.ensure_setup()
    first, second = sample_people
    images = [first, second, np.hstack([first, second]), np.hstack([grace(), grace()])]
    records = backend.annotate([item(i) for i in images], ctx=None)
    assert [r.num_people for r in records] == [1, 1, 2, 2]
    assert all(r.people.shape == (1, 18, 3) for r in records)  # keypoints of the main person only


def test_coco_offsets_move_a_whole_body_to_cocos_joints(sample_people):
    """On a whole-body render the points are MediaPipe's landmarks moved by
    ``blazepose_to_coco_joints`` (the ankles 3-4 px down at this size); with ``coco_offsets``
    off they are the landmarks themselves."""
    moved, raw = MediaPipeKeypoints(), MediaPipeKeypoints(params={"coco_offsets": False})
    for backend in (moved, raw):
        backend.ensure_setup()
    image = sample_people[0]
    (a,), (b,) = moved.annotate([item(image)], ctx=None), raw.annotate([item(image)], ctx=None)
    np.testing.assert_array_equal(a.landmarks_mp33, b.landmarks_mp33)
    mediapipe_points = mediapipe_models.pose_coco18(mediapipe_models.PoseResult(b.landmarks_mp33, None), image.shape[:2], 0.5)
    np.testing.assert_array_equal(b.keypoints, mediapipe_points)
    np.testing.assert_allclose(a.keypoints, clear_outside(blazepose_to_coco_joints(mediapipe_points), image.shape[:2]), atol=1e-4)
    for ankle in (10, 13):
        assert 2.5 < a.keypoints[ankle, 1] - b.keypoints[ankle, 1] < 5


def test_keypoints_drawing(build, stage):
    record = ShardReader(build / "annotations" / "keypoints").record("all/grace.jpg")
    img = grace()
    out = DRAWERS.get("keypoints")(img, record, {})
    assert out.shape == img.shape and out.dtype == np.uint8
    kp = record.keypoints
    x, y = np.round((kp[1, :2] + kp[2, :2]) / 2).astype(int)  # middle of the neck - right shoulder bone
    expected = 0.4 * img[y, x] + 0.6 * np.array(OPENPOSE_COLOURS[0])
    np.testing.assert_allclose(out[y, x], expected, atol=3)
    assert (out[:, :20] == img[:, :20]).all()  # nothing drawn far from the person's points


class ScriptedPose:
    """A stand-in for MediaPipe Pose that finds a person only where ``finds(confidence, image)``
    says so: landmarks on a diagonal of that image, visibility 1."""

    def __init__(self, finds, calls, segmentation=False):
        self.finds, self.calls, self.segmentation = finds, calls, segmentation

    def __call__(self, confidence):
        def landmarker(image):
            self.calls.append((confidence, image.shape[:2]))
            if not self.finds(confidence, image):
                return None
            h, w = image.shape[:2]
            t = np.linspace(0.3, 0.7, 33)
            mask = np.ones((h, w), np.float32) if self.segmentation else None  # the person all over the image it saw
            return mediapipe_models.PoseResult(np.stack([t * w, t * h, np.zeros(33), np.ones(33)], 1).astype(np.float32), mask)

        return landmarker


def test_unmirror_landmarks_hand_checked():
    """The mirrored image's left shoulder (11) at x = 3 of a 20-px-wide image is the person's right
    shoulder (12) at x = 20 - 1 - 3 = 16 in the image; y, z and visibility unchanged."""
    lm = np.zeros((33, 4), np.float32)
    lm[11] = (3.0, 5.0, -2.0, 0.9)
    lm[0] = (9.5, 1.0, 0.0, 1.0)  # the image's centre column stays put
    out = mediapipe_models.unmirror_landmarks(lm, 20)
    np.testing.assert_allclose(out[12], (16.0, 5.0, -2.0, 0.9))
    np.testing.assert_allclose(out[0], (9.5, 1.0, 0.0, 1.0))
    np.testing.assert_allclose(mediapipe_models.unmirror_landmarks(out, 20), lm)


def pose_of(landmarks):
    return mediapipe_models.PoseResult(np.asarray(landmarks, np.float32), None)


@pytest.mark.parametrize("case", ["same person", "another person", "nobody mirrored", "nobody"])
def test_mirror_averaged(case):
    """The image's landmarks averaged with the mirrored image's (unmirrored) for one pose; the
    image's own when the mirrored copy finds nobody or someone else; None when it finds nobody."""
    rng = np.random.default_rng(0)
    w = 40
    own = np.concatenate([rng.uniform(5, 35, (33, 2)), rng.uniform(-1, 1, (33, 1)), rng.uniform(0.5, 1, (33, 1))], 1)
    noise = np.concatenate([rng.normal(0, 0.5, (33, 2)), np.zeros((33, 2))], 1)
    seen = {"same person": own + noise, "another person": own + (12.0, 0.0, 0.0, 0.0), "nobody mirrored": None}.get(case)
    image = np.zeros((30, w, 3), np.uint8)
    image[:, 0] = 255  # tells the mirrored copy apart

    def detect(img):
        if img[0, 0, 0] == 255:
            return None if case == "nobody" else pose_of(own)
        return None if seen is None else pose_of(mediapipe_models.unmirror_landmarks(seen, w))  # what the mirrored photo shows

    res = mediapipe_models.mirror_averaged(detect, image)
    if case == "nobody":
        assert res is None
    elif case == "same person":
        np.testing.assert_allclose(res.landmarks[:, :3], (own + seen)[:, :3] / 2, atol=1e-5)
        np.testing.assert_allclose(res.landmarks[:, 3], np.minimum(own, seen)[:, 3], atol=1e-6)
    else:
        np.testing.assert_allclose(res.landmarks, own, atol=1e-6)


def standing_front_view(w: float = 40.0) -> np.ndarray:
    """(33, 4) landmarks of a person facing the camera in a ``w``-px-wide image: their left on the
    image's right, each left/right twin 10 px apart about x = w / 2, rows 2 px apart."""
    lm = np.zeros((33, 4), np.float32)
    lm[:, 1] = 2.0 * np.arange(33)
    lm[:, 3] = 1.0
    for i, twin in enumerate(MP33_MIRROR):
        lm[i, 0] = w / 2 + (0 if twin == i else 5.0 if "left" in MP33_NAMES[i] else -5.0)
        lm[i, 1] = 2.0 * min(i, twin)
    return lm


def swap_legs(lm: np.ndarray) -> np.ndarray:
    out = lm.copy()
    for left, right in mediapipe_models.MP33_LEG_TWINS:
        out[[left, right]] = lm[[right, left]]
    return out


@pytest.mark.parametrize("wrong", ["mirrored copy", "photo"])
def test_mirror_averaged_keeps_the_legs_named_like_the_shoulders(wrong):
    """When one pass names the legs the other way round (hips crossed against the shoulders), the
    legs are the other pass's, not the mean (which would put both legs on the midline); the rest is
    still averaged."""
    w = 40
    right = standing_front_view(w)
    noise = np.zeros((33, 4), np.float32)
    noise[:, 0] = 0.4
    crossed = swap_legs(right + noise)
    own, seen = (right, crossed) if wrong == "mirrored copy" else (crossed, right + noise)
    assert mediapipe_models.legs_disagree(own, seen)
    assert mediapipe_models.hips_follow_shoulders(right) == pytest.approx(1.0)
    assert mediapipe_models.hips_follow_shoulders(crossed) == pytest.approx(-1.0)
    image = np.zeros((80, w, 3), np.uint8)
    image[:, 0] = 255

    def detect(img):
        return pose_of(own) if img[0, 0, 0] == 255 else pose_of(mediapipe_models.unmirror_landmarks(seen, w))

    res = mediapipe_models.mirror_averaged(detect, image)
    legs = [i for twins in mediapipe_models.MP33_LEG_TWINS for i in twins]
    upper = [i for i in range(33) if i not in legs]
    kept = own if wrong == "mirrored copy" else seen
    np.testing.assert_allclose(res.landmarks[legs], kept[legs], atol=1e-5)
    np.testing.assert_allclose(res.landmarks[upper, :3], (own + seen)[upper, :3] / 2, atol=1e-5)
    assert not mediapipe_models.legs_disagree(right, right + noise)


def test_mirror_gap_and_centre_gap():
    """Hand-checked: a 10 x 100 px pose (size 100) whose copy has 20 landmarks 3 px and 13 landmarks
    1 px off: median gap 3 px -> 0.03; moved 5 px in x and 12 px in y: median point 13 px -> 0.13."""
    lm = np.zeros((33, 4), np.float32)
    lm[:, 0] = np.linspace(0, 10, 33)
    lm[:, 1] = np.linspace(0, 100, 33)
    off = lm.copy()
    off[:20, 0] += 3.0
    off[20:, 1] += 1.0
    assert mediapipe_models.mirror_gap(lm, off) == pytest.approx(0.03)
    assert mediapipe_models.centre_gap(lm, lm + (5.0, 12.0, 0.0, 0.0)) == pytest.approx(0.13)


@pytest.mark.parametrize("case", ["misread", "agreeing", "zoomed finds another person"])
def test_a_misread_photo_is_read_again_zoomed_out(case):
    """When the photo's and its mirror image's readings disagree past ``reframe_gap``, the pair is
    read again on the photo zoomed out by 0.7 about its centre; that pair, agreeing better, is
    averaged and brought back to the photo's frame (x, y through the inverse zoom, z / 0.7). A pair
    that agrees is not read again; a zoomed pair of another person is not used."""
    h, w = 80, 60
    truth = standing_front_view(w)
    truth[:, 1] += 10.0
    truth[:, 2] = np.linspace(-5, 5, 33)
    misread = truth.copy()
    misread[:, 0] = w / 2 + 0.2 * (truth[:, 0] - w / 2)  # shoulders, hips and legs collapsed onto the midline
    forward = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0.0, 0.7)
    in_zoomed = truth.copy()
    in_zoomed[:, :2] = truth[:, :2] @ forward[:, :2].T + forward[:, 2]
    in_zoomed[:, 2] *= 0.7
    if case == "zoomed finds another person":
        in_zoomed[:, 0] += 25.0
    image = np.zeros((h, w, 3), np.uint8)
    image[:, 0, 0] = 255  # the photo's left column: red unless mirrored
    image[0, :, 1] = 255  # its top row: zoomed out, the replicated border makes the top rows green
    calls = []

    def detect(img):
        mirrored, zoomed = img[h // 2, 0, 0] != 255, img[2, w // 2, 1] == 255
        calls.append((zoomed, mirrored))
        if zoomed:
            seen = in_zoomed
        elif case == "agreeing":
            seen = truth
        else:
            seen = misread if not mirrored else truth  # the two readings disagree
        return pose_of(mediapipe_models.unmirror_landmarks(seen, w) if mirrored else seen)

    res = mediapipe_models.mirror_averaged(detect, image, reframe_gap=0.015, reframe_scales=(0.7,))
    if case == "agreeing":
        assert calls == [(False, False), (False, True)]
        np.testing.assert_allclose(res.landmarks, truth, atol=1e-5)
        return
    assert calls == [(False, False), (False, True), (True, False), (True, True)]
    expected = truth if case == "misread" else 0.5 * (misread + truth)
    np.testing.assert_allclose(res.landmarks, expected, atol=1e-3)
    without = mediapipe_models.mirror_averaged(detect, image)
    np.testing.assert_allclose(without.landmarks, 0.5 * (misread + truth), atol=1e-5)


def test_mirror_average_is_the_mean_of_the_photo_and_its_mirror_image(sample_people):
    """The stage's ``landmarks_mp33`` with ``mirror_average`` on: the mean of MediaPipe's landmarks
    of the photo and of its mirror image (unmirrored), about a pixel from either."""
    averaged, single = MediaPipeKeypoints(), MediaPipeKeypoints(params={"mirror_average": False})
    for backend in (averaged, single):
        backend.ensure_setup()
    image = sample_people[0]
    (a,), (b,), (m,) = (backend.annotate([item(i)], ctx=None) for backend, i in ((averaged, image), (single, image), (single, np.ascontiguousarray(image[:, ::-1]))))
    unmirrored = mediapipe_models.unmirror_landmarks(m.landmarks_mp33, image.shape[1])
    np.testing.assert_allclose(a.landmarks_mp33[:, :3], (b.landmarks_mp33[:, :3] + unmirrored[:, :3]) / 2, atol=1e-4)
    np.testing.assert_allclose(a.landmarks_mp33[:, 3], np.minimum(b.landmarks_mp33[:, 3], unmirrored[:, 3]), atol=1e-6)
    gap = np.linalg.norm(a.landmarks_mp33[:, :2] - b.landmarks_mp33[:, :2], axis=1)
    assert 0 < np.median(gap) < 3


@pytest.mark.parametrize(
    ("case", "size", "finds", "expected"),
    [
        ("low confidence", (256, 192), lambda c, im: c < 0.5, "whole"),
        ("one tile of a wide photo", (256, 768), lambda c, im: c < 0.5 and im.shape[1] == 256 and im[0, 0, 0] == 200, "tile"),
        ("framed", (256, 192), lambda c, im: c < 0.5 and im.shape[0] > 256, "framed"),
        ("nowhere", (256, 192), lambda c, im: False, None),
    ],
)
def test_mediapipe_retries_before_no_person(case, size, finds, expected):
    """``MainPersonPose`` (the keypoint stage's detector): landmarks come back in the image's frame
    whichever attempt found the person."""
    calls = []
    detect = mediapipe_models.MainPersonPose.__new__(mediapipe_models.MainPersonPose)  # scripted landmarkers instead of MediaPipe's
    scripted = ScriptedPose(finds, calls)
    detect._pose, detect._retry, detect.min_visibility = scripted(0.5), scripted(0.2), 0.5
    h, w = size
    image = np.full((h, w, 3), 90, np.uint8)
    image[:, 256:512] = 200  # the tile the person is in (wide case)
    res = detect(image)
    if expected is None:
        assert res is None and [c for c, _ in calls] == [0.5, 0.2, 0.2]  # default, retry, framed (no tiles)
        return
    lm = res.landmarks
    if expected == "whole":
        np.testing.assert_allclose(lm[0, :2], [0.3 * w, 0.3 * h], rtol=1e-6)
    elif expected == "tile":  # the tile x in [256, 512), mapped back into the image frame
        np.testing.assert_allclose(lm[[0, -1], 0], [256 + 0.3 * 256, 256 + 0.7 * 256], rtol=1e-6)
    else:  # framed by a border of 64 px: back in the image frame
        pad = max(h, w) // 4
        np.testing.assert_allclose(lm[0, :2], [0.3 * (w + 2 * pad) - pad, 0.3 * (h + 2 * pad) - pad], rtol=1e-6)


@pytest.mark.parametrize(
    ("size", "finds", "expected_columns"),
    [
        ((256, 768), lambda c, im: c < 0.5 and im.shape[1] == 256 and im[0, 0, 0] == 200, (256, 512)),  # one tile
        ((256, 192), lambda c, im: c < 0.5 and im.shape[0] > 256, (0, 192)),  # framed
    ],
)
def test_the_person_mask_comes_back_in_the_image_frame_with_the_keypoints_person(size, finds, expected_columns):
    """With segmentation (the ``person_mask`` stage's ``mediapipe`` backend uses the keypoint
    stage's detector), the mask of the attempt that found the person is mapped back: the tile's
    columns only, or the framed image's middle."""
    detect = mediapipe_models.MainPersonPose.__new__(mediapipe_models.MainPersonPose)
    scripted = ScriptedPose(finds, [], segmentation=True)
    detect._pose, detect._retry, detect.min_visibility = scripted(0.5), scripted(0.2), 0.5
    image = np.full((*size, 3), 90, np.uint8)
    image[:, 256:512] = 200
    mask = detect(image).segmentation
    assert mask.shape == size
    columns = np.flatnonzero(mask.any(0))
    assert (columns[0], columns[-1] + 1) == expected_columns and mask[:, columns[0] : columns[-1] + 1].all()


def test_person_mask_and_keypoints_retry_alike():
    from vtonpipe.annotators import get_backend

    keypoints, person_mask = get_backend("keypoints", "mediapipe"), get_backend("person_mask", "mediapipe")
    for key in ("min_detection_confidence", "retry_detection_confidence"):
        assert person_mask.default_params[key] == keypoints.default_params[key]
