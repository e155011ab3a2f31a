"""The ``person_mask`` annotator (MediaPipe Pose segmentation / Selfie Segmentation + face oval)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from builders import garment_image, make_build, write_mpv_tree
from PIL import Image

from vtonpipe.annotators.person_mask import MediaPipePoseMask, SelfieMask
from vtonpipe.converters.masks import mask_bbox
from vtonpipe.core import ImageItem
from vtonpipe.datasets.sample_truth import read_truth
from vtonpipe.io import read_image
from vtonpipe.models.nets import mediapipe as mediapipe_models
from vtonpipe.models.nets.mediapipe import (
    FaceOval,
    SelfieSegmenter,
    SquareCrop,
    fill_polygon,
)
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.ingest import ingest
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.pipeline.store import ShardReader
from vtonpipe.schemas.person_mask import PersonMaskRecord
from vtonpipe.synth import write_sample
from vtonpipe.vis import DRAWERS

GRACE = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"  # 512 x 600 portrait
NOSE, CHEST, FLAG, SHOULDER = (269, 225), (256, 450), (30, 30), (95, 422)  # (x, y) px in grace_hopper.jpg


def grace() -> np.ndarray:
    return np.asarray(Image.open(GRACE).convert("RGB"))


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    """grace_hopper as is, upside down (no face found), its chest only (no face; Pose only on a retry),
    half-size grayscale and RGBA; an 8x6 and a blank image."""
    tmp = tmp_path_factory.mktemp("pm")
    root = tmp / "raw"
    (root / "all").mkdir(parents=True)
    img = grace()
    for name, pixels in (("grace.jpg", img), ("flip.jpg", img[::-1]), ("chest.jpg", img[330:]), ("tiny.jpg", np.full((6, 8, 3), 90, np.uint8)),
                         ("blank.jpg", np.full((200, 150, 3), 255, np.uint8)), ("cloth.jpg", garment_image(0))):  # fmt: skip
        Image.fromarray(np.ascontiguousarray(pixels)).save(root / "all" / name, quality=95)
    Image.fromarray(img).convert("L").resize((256, 300), Image.BILINEAR).save(root / "all" / "gray.jpg", quality=95)
    Image.fromarray(np.dstack([img, np.full(img.shape[:2], 255, np.uint8)]), "RGBA").save(root / "all" / "rgba.png")
    pairs = [("grace.jpg", "flip.jpg"), ("chest.jpg", "tiny.jpg"), ("blank.jpg", "gray.jpg"), ("rgba.png", "grace.jpg")]
    write_mpv_tree(root, [], extra_lines=[f"{a}\t{b}\tcloth.jpg\ttest" for a, b in pairs])
    ingest("t", root, tmp / "build", layout_name="mpv", show_progress=False)
    return tmp / "build"


@pytest.fixture(scope="module")
def sample_build(tmp_path_factory) -> Path:
    """One rendered sample person at 256 x 192 (seed 5: two front views, faces about 25 px tall), ingested."""
    tmp = tmp_path_factory.mktemp("pm_sample")
    write_sample(tmp / "raw", people=1, seed=5)
    ingest("sample", tmp / "raw", tmp / "build", layout_name="mpv", show_progress=False)
    return tmp / "build"


def run(build: Path, backend: str) -> tuple[dict[str, dict], dict[str, str]]:
    """Rows and failure reasons by image id after running ``backend`` (a rerun replaces the other's rows)."""
    run_stage(build, StageConfig("person_mask", backend), show_progress=False)
    with ShardReader(build / "annotations" / "person_mask") as reader:
        rows = {r["image_id"].removeprefix("all/"): r for r in reader}
    failures = {r["item_id"].removeprefix("all/"): r["error"] for r in ShardReader(build / "annotations" / "person_mask" / "failures")}
    return rows, failures


@pytest.fixture(scope="module")
def pose_rows(build):
    return run(build, "mediapipe")


@pytest.fixture(scope="module")
def selfie_rows(build, pose_rows):  # after pose_rows: each run replaces the other backend's shards
    return run(build, "selfie")


def check_row(row: dict, shape: tuple[int, int]) -> None:
    mask = row["mask"]
    assert mask.shape == shape and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    assert row["area_fraction"] == pytest.approx(mask.mean())
    np.testing.assert_array_equal(row["bbox"], mask_bbox(mask))
    face = row["face_mask"]
    if face is None:
        assert row["face_oval"] is None and row["face_bbox"] is None
        return
    assert face.shape == shape and face.dtype == np.uint8
    np.testing.assert_array_equal(face, fill_polygon(row["face_oval"], shape))
    np.testing.assert_array_equal(row["face_bbox"], mask_bbox(face))


def check_grace(row: dict, scale: float = 1.0) -> None:
    def at(mask: np.ndarray, point: tuple[int, int]) -> int:
        x, y = (round((v + 0.5) * scale - 0.5) for v in point)
        return int(mask[y, x])

    assert (at(row["mask"], CHEST), at(row["mask"], FLAG), at(row["mask"], NOSE)) == (1, 0, 1)
    assert (at(row["face_mask"], NOSE), at(row["face_mask"], SHOULDER), at(row["face_mask"], CHEST)) == (1, 0, 0)
    x0, y0, x1, y1 = row["face_bbox"] / scale
    assert 150 <= x0 < x1 <= 380 and 100 <= y0 < y1 <= 350
    assert 0.4 < row["area_fraction"] < 0.75


def test_pose_segmentation_through_run_stage(pose_rows):
    rows, failures = pose_rows
    assert failures == {"tiny.jpg": "no_person", "blank.jpg": "no_person"}
    assert sorted(rows) == ["chest.jpg", "flip.jpg", "grace.jpg", "gray.jpg", "rgba.png"]
    # the chest alone: Pose finds no one at 0.5, the keypoint stage's retries (framed) do
    assert rows["chest.jpg"]["mask"][450 - 330, 256] == 1
    for name, shape in (("grace.jpg", (600, 512)), ("flip.jpg", (600, 512)), ("gray.jpg", (300, 256)), ("rgba.png", (600, 512))):
        assert rows[name]["backend"] == "mediapipe"
        check_row(rows[name], shape)
    check_grace(rows["grace.jpg"])
    check_grace(rows["rgba.png"])
    check_grace(rows["gray.jpg"], scale=0.5)
    # a person (Pose finds it upside down) and a square around its head, but no face found there: null fields
    assert rows["flip.jpg"]["face_mask"] is None and rows["flip.jpg"]["area_fraction"] > 0.4


def test_selfie_segmentation_through_run_stage(build, selfie_rows):
    rows, failures = selfie_rows
    assert failures == {"tiny.jpg": "no_person", "blank.jpg": "no_person"}
    assert sorted(rows) == ["chest.jpg", "flip.jpg", "grace.jpg", "gray.jpg", "rgba.png"]
    for name, row in rows.items():
        assert row["backend"] == "selfie"
        check_row(row, row["mask"].shape)
    check_grace(rows["grace.jpg"])
    chest = rows["chest.jpg"]
    assert chest["face_mask"] is None and chest["mask"][450 - 330, 256] == 1
    assert rows["flip.jpg"]["face_mask"] is None  # no face detected upside down: null fields
    # the mask is the selfie probability thresholded at 0.5, exactly
    prob = SelfieSegmenter()(read_image(build.parent / "raw" / "all" / "grace.jpg"))
    np.testing.assert_array_equal(rows["grace.jpg"]["mask"], (prob > 0.5).astype(np.uint8))


@pytest.mark.parametrize("backend", ["mediapipe", "selfie"])
def test_small_faces_found_on_the_head(sample_build, backend):
    """Face Mesh misses these faces in the whole image; in the square around the head it finds
    them: the oval lies on the ground truth's face, starts at its hairline, spans 0.5..0.85 of the
    head's face-coloured height (hairline to neck: LIP face includes the neck) and covers that
    region down to the oval's chin (IoU > 0.7)."""
    rows, failures = run(sample_build, backend)
    assert failures == {} and len(rows) == 2
    raw, whole_image = sample_build.parent / "raw", FaceOval()
    for name, row in rows.items():
        image = read_image(raw / "all" / name)
        assert image.shape == (256, 192, 3) and whole_image(image) is None
        check_row(row, (256, 192))
        gt = read_truth(raw / "gt" / (Path(name).stem + ".npz"))
        face, gt_face = row["face_mask"].astype(bool), gt["parsing"] == 13
        head_face = gt_face & np.isin(gt["iuv"][..., 0], (23, 24))  # DensePose head parts: hairline to neck
        head_rows = np.flatnonzero(head_face.any(1))
        top, chin = row["face_oval"][:, 1].min(), row["face_oval"][:, 1].max()
        assert head_rows[0] - 1 < top < head_rows[0] + 4
        assert 0.5 < (chin - top) / (head_rows[-1] - head_rows[0] + 1) < 0.85
        assert (face & gt_face).sum() >= 0.95 * face.sum()
        above_chin = head_face & (np.arange(256)[:, None] <= chin)
        assert (face & above_chin).sum() > 0.7 * (face | above_chin).sum()


def test_square_crop_maps_crop_pixel_centres_to_image_points():
    """On a float image whose channels are x and y, the bilinear crop's pixel (u, v) holds exactly
    the image point ``to_image`` gives (up to OpenCV's 1/32 px interpolation grid)."""
    h, w = 40, 60
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.dstack([xs, ys, np.zeros_like(xs)])
    crop = SquareCrop.around(np.array([30.3, 17.6]), 16.5, 66)  # scale 4, inside the image
    assert crop.scale == 4.0 and (crop.x0, crop.y0) == pytest.approx((22.05, 9.35))
    u, v = np.meshgrid(np.arange(66), np.arange(66))
    xy = crop.to_image(np.column_stack([u.ravel(), v.ravel()]))
    np.testing.assert_allclose(crop.apply(image)[..., :2].reshape(-1, 2), xy, atol=1 / 32 + 1e-4)
    # the square's edges and centre: crop pixel edges -0.5 and 65.5, centre 32.5
    corners_centre = crop.to_image(np.array([[-0.5, -0.5], [65.5, 65.5], [32.5, 32.5]]))
    np.testing.assert_allclose(corners_centre, [[22.05, 9.35], [38.55, 25.85], [30.3, 17.6]])
    # a large square keeps the image's resolution (never downscaled)
    assert SquareCrop.around(np.array([0.0, 0.0]), 300.5, 192).size == 301


def test_face_oval_in_a_crop_matches_the_whole_image():
    """grace_hopper's large face: the oval found in an upscaled crop, mapped back, is the whole
    image's within Face Mesh's own jitter (no offset, no scale error)."""
    img = grace()
    face = FaceOval()
    whole = face(img)
    in_crop = face(img, SquareCrop(100.3, 60.7, 330.0, 660))
    diff = in_crop - whole
    assert np.abs(diff.mean(0)).max() < 1.0 and np.sqrt((diff**2).sum(1).mean()) < 3.0


def test_threshold_param_and_bad_params():
    img = grace()
    item = ImageItem("x", "0" * 64, "person", img)
    areas = []
    for threshold in (0.1, 0.5, 0.9):
        backend = SelfieMask({"threshold": threshold})
        backend.ensure_setup()
        (rec,) = backend.annotate([item], ctx=None)
        areas.append(rec.area_fraction)
    assert areas[0] > areas[1] > areas[2] > 0.3
    with pytest.raises(ValueError, match="unknown params"):
        MediaPipePoseMask({"model_selection": 1})


def test_models_are_built_once_per_worker(tmp_path, monkeypatch):
    built: list[str] = []
    for cls in (mediapipe_models.PoseLandmarker, mediapipe_models.FaceOval):
        real = cls.__init__

        def counting(self, *args, _real=real, _name=cls.__name__, **kwargs):
            built.append(_name)
            _real(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", counting)
    img = grace()
    build = make_build(tmp_path, [(img, img[:, ::-1], garment_image(0))])
    res = run_stage(build, StageConfig("person_mask", batch_size=1), show_progress=False)
    assert res.computed == 2 and sorted(built) == ["FaceOval", "PoseLandmarker", "PoseLandmarker"]  # Pose at the default and the retry confidence


def test_person_mask_drawing(pose_rows):
    row = pose_rows[0]["grace.jpg"]
    img = grace()
    out = DRAWERS.get("person_mask")(img, PersonMaskRecord.schema.record(row), {})
    assert out.shape == img.shape and out.dtype == np.uint8
    x, y = CHEST
    assert (out[y, x] != img[y, x]).any()  # tinted person
    x, y = NOSE
    assert (out[y, x] != img[y, x]).any()  # tinted face
    assert (out[5:20, 5:20] == img[5:20, 5:20]).all()  # background untouched
