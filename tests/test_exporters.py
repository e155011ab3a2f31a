"""`vtonpipe export` / `import`: every format round-trips a build's annotations, and the files
are what the cited loaders read. The loader checks below re-read the exported folders the way
each loader's own code indexes them (quoted in the comments), not with vtonpipe's readers."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from vtonpipe.cli import main
from vtonpipe.converters.labels import convert
from vtonpipe.exporters import FORMATS, get_format, run_export
from vtonpipe.exporters import imported as _imported  # noqa: F401  (registers the imported backends)
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.ingest import ingest
from vtonpipe.pipeline.pack import pack
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.pipeline.store import ShardReader, read_manifest
from vtonpipe.synth import write_sample

STAGES = ("keypoints", "garment_mask", "parsing", "densepose", "landmarks", "body")
#: format -> the annotators it exports and imports back
ROUND_TRIPS = {
    "viton-hd": ("keypoints", "parsing", "garment_mask"),
    "dresscode": ("keypoints", "parsing", "densepose"),
    "openpose-json": ("keypoints",),
    "densepose-dump": ("densepose",),
    "parsing-png": ("parsing",),
    "landmarks-coco": ("landmarks",),
    "3dgcl": ("keypoints", "parsing", "densepose"),
}
#: the label set each format stores parsing in
LABEL_SET = {"viton-hd": "cihp", "dresscode": "atr", "parsing-png": "lip", "3dgcl": "lip"}


@pytest.fixture(scope="module")
def oracle(tmp_path_factory) -> Path:
    """A two-person sample at 64 x 48 whose stages are the exact ground truth (anny bodies)."""
    tmp = tmp_path_factory.mktemp("oracle")
    write_sample(tmp / "raw", people=2, seed=3, size=(64, 48))
    ingest("sample", tmp / "raw", tmp / "build", layout_name="mpv", show_progress=False)
    for name in STAGES:
        assert run_stage(tmp / "build", StageConfig(name, "groundtruth"), show_progress=False).failed == 0
    return tmp / "build"


def _bare_copy(build: Path, dst: Path) -> Path:
    """The build without its annotation stages (what a second team has after `ingest`)."""
    shutil.copytree(build, dst, ignore=shutil.ignore_patterns("annotations"))
    return dst


def _import(build: Path, fmt: str, source: Path, annotator: str, settings: dict | None = None):
    params = {"format": fmt, "source": str(source), "settings": settings or {}}
    return run_stage(build, StageConfig(annotator, "imported", params), show_progress=False)


def _records(build: Path, annotator: str) -> dict:
    with ShardReader(build / "annotations" / annotator) as r:
        return {i: r.record(i) for i in r.ids()}


def _kinds(build: Path) -> dict[str, str]:
    with ShardReader(build / "ingest" / "images") as r:
        return {row["image_id"]: row["kind"] for row in r}


def test_every_format_is_registered_with_its_loader():
    assert set(FORMATS.keys()) == set(ROUND_TRIPS)
    for name, cls in FORMATS.items():
        assert cls.loader and "/" in cls.loader, name
        assert set(cls.imports) == set(ROUND_TRIPS[name])


@pytest.mark.parametrize("fmt", sorted(ROUND_TRIPS))
def test_export_then_import_gives_the_same_annotations(oracle, tmp_path, fmt):
    out = tmp_path / "out"
    res = run_export(get_format(fmt), oracle, out, show_progress=False)
    assert res.written == res.items > 0 and not res.missing
    build = _bare_copy(oracle, tmp_path / "b")
    for annotator in ROUND_TRIPS[fmt]:
        result = _import(build, fmt, out, annotator)
        assert result.failed == 0 and result.computed > 0, result.failures_by_reason
        original, back = _records(oracle, annotator), _records(build, annotator)
        kinds = {"garment_mask": {"garment"}, "landmarks": {"person", "garment"}}.get(annotator, {"person"})
        assert set(back) == {i for i in original if _kinds(oracle)[i] in kinds}
        for i, rec in back.items():
            want = original[i]
            if annotator == "keypoints":
                np.testing.assert_array_equal(rec.keypoints, want.keypoints)
                assert rec.people.shape[1:] == (18, 3)
                np.testing.assert_array_equal(rec.bbox, want.bbox)
            elif annotator == "parsing":
                label_set = LABEL_SET[fmt]
                np.testing.assert_array_equal(rec.parsing, convert(convert(want.parsing, "lip", label_set), label_set, "lip"))
                assert rec.native_label_set == label_set
            elif annotator == "densepose":
                np.testing.assert_array_equal(rec.iuv, want.iuv)  # U, V written as uint8 / 255: read back exactly
                np.testing.assert_array_equal(rec.bbox, want.bbox)
            elif annotator == "garment_mask":
                np.testing.assert_array_equal(rec.mask, want.mask)
            else:
                np.testing.assert_array_equal(rec.landmarks, want.landmarks)
                assert rec.garment_category == want.garment_category
        manifest = read_manifest(build / "annotations" / annotator)
        (prov,) = manifest["provenance"]
        assert prov["backend"] == "imported" and prov["source"] == str(out.resolve())
        assert prov["files_sha256"] and all(len(s) == 64 for s in prov["files_sha256"].values())


@pytest.mark.parametrize("fmt,layout", [("viton-hd", "viton"), ("dresscode", "dresscode")])
def test_a_teams_own_folder_imports_by_the_images_paths(oracle, tmp_path, fmt, layout):
    """A dataset folder with its annotations beside the images (no vtonpipe-export.json):
    ingested with its layout, then imported from the same folder."""
    folder = tmp_path / "dataset"
    run_export(get_format(fmt), oracle, folder, show_progress=False)
    names = json.loads((folder / "vtonpipe-export.json").read_text())["names"]
    (folder / "vtonpipe-export.json").unlink()
    build = tmp_path / "build"
    ingest("team", folder, build, layout_name=layout, show_progress=False)
    original = _records(oracle, "keypoints")
    people = {i for i, kind in _kinds(build).items() if kind == "person"}  # the pair lists' persons (pose A)
    assert len(people) == 2
    res = _import(build, fmt, folder, "keypoints")
    assert res.failed == 0 and res.computed == 2
    back = _records(build, "keypoints")
    assert set(back) == people
    for image_id, rec in original.items():
        if names[image_id] in back:
            np.testing.assert_allclose(back[names[image_id]].keypoints, rec.keypoints, atol=1e-4)


def test_export_resumes_and_rewrites_only_what_changed(oracle, tmp_path):
    out = tmp_path / "out"
    first = run_export(get_format("viton-hd"), oracle, out, show_progress=False)
    again = run_export(get_format("viton-hd"), oracle, out, show_progress=False)
    assert again.written == 0 and again.skipped == first.items
    victim = next((out / "train" / "image-parse-v3").glob("*.png"))
    victim.write_bytes(b"truncated")
    third = run_export(get_format("viton-hd"), oracle, out, show_progress=False)
    assert third.written == 1
    assert Image.open(victim).mode == "P"


def test_import_reuses_rows_and_reads_only_edited_files(oracle, tmp_path):
    out = tmp_path / "out"
    run_export(get_format("openpose-json"), oracle, out, show_progress=False)
    build = _bare_copy(oracle, tmp_path / "b")
    first = _import(build, "openpose-json", out, "keypoints")
    again = _import(build, "openpose-json", out, "keypoints")
    assert again.computed == 0 and again.skipped == first.total
    edited = min(out.glob("*_keypoints.json"))
    data = json.loads(edited.read_text())
    data["people"][0]["pose_keypoints_2d"][0] += 1.0
    edited.write_text(json.dumps(data))
    third = _import(build, "openpose-json", out, "keypoints")
    assert third.computed == 1 and third.skipped == first.total - 1


def test_plain_pickles_refuse_anything_but_plain_values(tmp_path):
    from pathlib import PurePosixPath

    from vtonpipe.exporters.base import pickle_bytes, read_plain_pickle

    good = tmp_path / "good.pkl"
    good.write_bytes(pickle_bytes({"a": [np.arange(3, dtype=np.uint32), 1.5, "x"], "b": np.float32(2)}))
    back = read_plain_pickle(good)
    assert back["a"][0].dtype == np.uint32 and back["b"] == 2
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({"path": PurePosixPath("x")}))
    with pytest.raises(pickle.UnpicklingError, match="refusing pathlib"):
        read_plain_pickle(bad)


def test_imported_backend_names_what_is_wrong_with_its_params(oracle, tmp_path):
    from vtonpipe.core import BackendUnavailableError

    build = _bare_copy(oracle, tmp_path / "b")
    with pytest.raises(BackendUnavailableError, match="is not a folder"):
        _import(build, "viton-hd", tmp_path / "absent", "keypoints")
    with pytest.raises(BackendUnavailableError, match="format openpose-json has no parsing annotations"):
        _import(build, "openpose-json", tmp_path, "parsing")
    with pytest.raises(BackendUnavailableError, match="is not one of"):
        _import(build, "no-such-format", tmp_path, "keypoints")


def test_imported_rows_pack_like_computed_ones(oracle, tmp_path):
    out = tmp_path / "out"
    run_export(get_format("viton-hd"), oracle, out, show_progress=False)
    run_export(get_format("densepose-dump"), oracle, tmp_path / "dp", show_progress=False)
    build = _bare_copy(oracle, tmp_path / "b")
    for annotator in ("keypoints", "parsing", "garment_mask"):
        _import(build, "viton-hd", out, annotator)
    _import(build, "densepose-dump", tmp_path / "dp", "densepose")
    res = pack(build, annotators=("keypoints", "parsing", "garment_mask", "densepose"), rows_per_shard=8)
    assert res.rows == {"train": 2} and not res.dropped
    with ShardReader(next(p.parent for p in (build / "packed").glob("*/manifest.json"))) as r:
        sample = r.record(r.ids()[0])
    np.testing.assert_array_equal(sample.source["keypoints"].keypoints, _records(oracle, "keypoints")[sample.source.image_id].keypoints)


@pytest.mark.parametrize("fmt", ["viton-hd", "dresscode"])
def test_export_at_another_size_rescales_maps_and_points(oracle, tmp_path, fmt):
    out = tmp_path / "out"
    run_export(get_format(fmt), oracle, out, size=(128, 96), show_progress=False)
    names = json.loads((out / "vtonpipe-export.json").read_text())["names"]
    for image_id, path in names.items():
        assert Image.open(out / path).size == (96, 128), image_id
    build = _bare_copy(oracle, tmp_path / "b")
    _import(build, fmt, out, "keypoints")
    _import(build, fmt, out, "parsing")
    original, back = _records(oracle, "keypoints"), _records(build, "keypoints")
    for i, rec in back.items():
        np.testing.assert_allclose(rec.keypoints, original[i].keypoints, atol=1e-4)
    lip = _records(oracle, "parsing")
    for i, rec in _records(build, "parsing").items():  # nearest 2x up then 2x down is the identity
        np.testing.assert_array_equal(rec.parsing, lip[i].parsing)


def test_3dgcl_at_another_size_renders_the_body_with_the_scaled_camera(oracle, tmp_path):
    out = tmp_path / "out"
    run_export(get_format("3dgcl"), oracle, out, size=(128, 96), show_progress=False)
    densepose = _records(oracle, "densepose")
    names = json.loads((out / "vtonpipe-export.json").read_text())["names"]
    for image_id, path in names.items():
        with open(out / "smpl" / (Path(path).stem + ".pkl"), "rb") as f:
            body = pickle.load(f)["visibility"] != 4294967295
        assert body.shape == (128, 96)
        native = densepose[image_id].iuv[..., 0] > 0  # the body at 64 x 48, rendered with the build's camera
        block = body.reshape(64, 2, 48, 2).mean(axis=(1, 3))  # each native pixel's four 2x pixels
        assert ((block >= 0.5) == native).mean() > 0.97
        assert abs(body.sum() / 4 - native.sum()) < 0.05 * native.sum()


# -- the files as the cited loaders read them ----------------------------------------------------
def test_viton_hd_files_as_hr_viton_cp_dataset_reads_them(oracle, tmp_path):
    out = tmp_path / "out"
    run_export(get_format("viton-hd"), oracle, out, show_progress=False)
    parsing, keypoints, masks = _records(oracle, "parsing"), _records(oracle, "keypoints"), _records(oracle, "garment_mask")
    names = json.loads((out / "vtonpipe-export.json").read_text())["names"]
    image_of = {Path(p).name: i for i, p in names.items()}
    data_path = out / "train"
    lines = (out / "train_pairs.txt").read_text().splitlines()
    assert len(lines) == 2
    for line in lines:
        im_name, c_name = line.strip().split()  # CPDataset.__init__
        c = Image.open(data_path / "cloth" / c_name).convert("RGB")
        cm_array = (np.array(Image.open(data_path / "cloth-mask" / c_name)) >= 128).astype(np.float32)
        assert cm_array.shape == (c.size[1], c.size[0])
        np.testing.assert_array_equal(cm_array, masks[image_of[c_name]].mask)
        im_name = "image/" + im_name  # CPDataset.__getitem__
        Image.open(data_path / im_name)
        parse_name = im_name.replace("image", "image-parse-v3").replace(".jpg", ".png")
        im_parse = Image.open(data_path / parse_name)
        assert im_parse.mode == "P"
        parse = np.array(im_parse)
        assert parse.dtype == np.uint8 and parse.max() <= 19  # scattered into 20 channels
        person = image_of[Path(im_name).name]
        np.testing.assert_array_equal(parse, convert(parsing[person].parsing, "lip", "cihp"))
        agnostic = np.array(Image.open(data_path / parse_name.replace("image-parse-v3", "image-parse-agnostic-v3.2")))
        assert not np.isin(agnostic, (5, 6, 7)).any() and agnostic.max() <= 19
        pose_map = Image.open(data_path / im_name.replace("image", "openpose_img").replace(".jpg", "_rendered.png"))
        assert pose_map.size == im_parse.size and pose_map.mode == "RGB"
        with open(data_path / im_name.replace("image", "openpose_json").replace(".jpg", "_keypoints.json")) as f:
            pose_data = np.array(json.load(f)["people"][0]["pose_keypoints_2d"]).reshape((-1, 3))
        coco = keypoints[person].keypoints
        assert pose_data.shape == (25, 3)
        np.testing.assert_array_equal(pose_data[[9, 12], :2], coco[[8, 11], :2])  # get_agnostic's hips
        np.testing.assert_array_equal(pose_data[[2, 5], :2], coco[[2, 5], :2])  # and shoulders
        dense = Image.open(data_path / im_name.replace("image", "image-densepose"))
        assert dense.mode == "RGB" and dense.size == im_parse.size


def test_dresscode_files_as_its_data_dataset_reads_them(oracle, tmp_path):
    out = tmp_path / "out"
    run_export(get_format("dresscode"), oracle, out, show_progress=False)
    keypoints, parsing, densepose = _records(oracle, "keypoints"), _records(oracle, "parsing"), _records(oracle, "densepose")
    image_of = {Path(p).name: i for i, p in json.loads((out / "vtonpipe-export.json").read_text())["names"].items()}
    dataroot = out / "upper_body"
    with open(dataroot / "train_pairs.txt") as f:
        lines = f.readlines()
    assert len(lines) == 2
    for line in lines:
        im_name, c_name = line.strip().split()
        assert im_name.endswith("_0.jpg") and c_name.endswith("_1.jpg")
        Image.open(dataroot / "images" / c_name)
        im = Image.open(dataroot / "images" / im_name)
        width, height = im.size
        Image.open(dataroot / "skeletons" / im_name.replace("_0", "_5"))
        parse_array = np.array(Image.open(dataroot / "label_maps" / im_name.replace("_0.jpg", "_4.png")))
        person = image_of[im_name]
        assert parse_array.max() < 18
        np.testing.assert_array_equal(parse_array, convert(parsing[person].parsing, "lip", "atr"))
        assert (parse_array == 4).any()  # the upper_body garment label the loader takes as the cloth
        with open(dataroot / "keypoints" / im_name.replace("_0.jpg", "_2.json")) as f:
            pose_data = np.array(json.load(f)["keypoints"]).reshape((-1, 4))
        assert pose_data.shape == (18, 4)
        coco = keypoints[person].keypoints
        point_x = np.multiply(pose_data[:, 0], width / 384.0)
        point_y = np.multiply(pose_data[:, 1], height / 512.0)
        drawn = (point_x > 1) & (point_y > 1)
        assert drawn.sum() >= 10 and np.all(coco[drawn, 2] > 0)
        np.testing.assert_allclose(point_x[drawn], coco[drawn, 0], atol=1e-3)
        np.testing.assert_allclose(point_y[drawn], coco[drawn, 1], atol=1e-3)
        uv = np.load(dataroot / "dense" / im_name.replace("_0.jpg", "_5_uv.npz"))["uv"]
        labels = np.array(Image.open(dataroot / "dense" / im_name.replace("_0.jpg", "_5.png")))
        assert uv.dtype == np.float32 and uv.shape == (2, height, width) and 0 <= uv.min() and uv.max() <= 1
        assert labels.max() <= 24
        np.testing.assert_array_equal(labels, densepose[person].iuv[..., 0])
        np.testing.assert_allclose(uv, densepose[person].iuv[..., 1:].transpose(2, 0, 1) / 255.0, atol=1e-6)


@pytest.mark.parametrize("layout,points", [("body25", 25), ("coco18", 18)])
def test_openpose_json_files_have_openpose_keys(oracle, tmp_path, layout, points):
    out = tmp_path / "out"
    run_export(get_format("openpose-json", {"layout": layout}), oracle, out, show_progress=False)
    files = sorted(out.glob("*_keypoints.json"))
    assert len(files) == 4
    for f in files:
        people = json.loads(f.read_text())["people"]
        assert len(people) == 1 and len(people[0]["pose_keypoints_2d"]) == 3 * points


def test_densepose_dump_unpickles_with_plain_pickle_and_pastes_into_its_box(oracle, tmp_path):
    out = tmp_path / "out"
    run_export(get_format("densepose-dump"), oracle, out, show_progress=False)
    with open(out / "densepose.pkl", "rb") as f:
        results = pickle.load(f)  # apply_net's dump: a list of one dict per image
    densepose = _records(oracle, "densepose")
    assert len(results) == len(densepose)
    for entry in results:
        assert set(entry) == {"file_name", "scores", "pred_boxes_XYXY", "pred_densepose"}
        iuv = densepose[entry["file_name"]].iuv
        x, y, x1, y1 = (int(v) for v in entry["pred_boxes_XYXY"][0])  # densepose_results.py: x, y, w, h = int(box)
        w, h = x1 - x, y1 - y
        result = entry["pred_densepose"][0]
        assert result["labels"].dtype == np.uint8 and result["labels"].shape == (h, w)
        assert result["uv"].dtype == np.float32 and result["uv"].shape == (2, h, w)
        pasted = np.zeros(iuv.shape[:2], np.uint8)
        pasted[y : y + h, x : x + w] = result["labels"]
        np.testing.assert_array_equal(pasted, iuv[..., 0])


def test_landmarks_coco_json_is_coco_keypoints(oracle, tmp_path):
    out = tmp_path / "out"
    run_export(get_format("landmarks-coco"), oracle, out, show_progress=False)
    coco = json.loads((out / "landmarks.json").read_text())
    (category,) = coco["categories"]
    assert len(category["keypoints"]) == 32
    images = {im["id"]: im for im in coco["images"]}
    truth = _records(oracle, "landmarks")
    for ann in coco["annotations"]:
        kp = np.array(ann["keypoints"]).reshape(32, 3)
        attribute = truth[images[ann["image_id"]]["file_name"]].landmarks[:, 2]
        np.testing.assert_array_equal(kp[:, 2], np.choose(attribute.astype(int), [2, 1, 0]))
        assert ann["num_keypoints"] == int((kp[:, 2] > 0).sum())


def test_3dgcl_files_as_its_pix2pix512psw_dataset_reads_them(oracle, tmp_path):
    import csv

    import cv2

    out = tmp_path / "out"
    run_export(get_format("3dgcl"), oracle, out, show_progress=False)
    keypoints, parsing, densepose = _records(oracle, "keypoints"), _records(oracle, "parsing"), _records(oracle, "densepose")
    image_of = {Path(p).name: i for i, p in json.loads((out / "vtonpipe-export.json").read_text())["names"].items()}
    # Pix2pixDataset.initialize: the topology files, with one background entry appended
    smpl_faces = np.load(out / "smpl" / "smpl_faces.npy")
    assert smpl_faces.dtype == np.uint32 and smpl_faces.shape[1] == 3
    num_vertices = int(smpl_faces.max()) + 1
    smpl_faces = np.concatenate((smpl_faces, np.array([num_vertices] * 3, dtype=np.uint32)[np.newaxis, ...]))
    vertices_sem_idx = np.load(out / "smpl" / "vertices_semantic_idxs.npy")
    symmetric_table = np.load(out / "smpl" / "vertices_symm_idxs.npy")
    assert vertices_sem_idx.dtype == np.int32 and vertices_sem_idx.shape == (num_vertices,) and 1 <= vertices_sem_idx.min() and vertices_sem_idx.max() <= 24
    assert symmetric_table.shape == (num_vertices,) and np.array_equal(symmetric_table[symmetric_table], np.arange(num_vertices))
    symmetric_table = np.concatenate((symmetric_table, np.array([-1]))).astype(np.int32)
    with open(out / "train_psw512.csv") as f:  # SMPL512pswDataset.get_paths (pandas reads the same columns)
        pairs = [(r["from"], r["to"]) for r in csv.DictReader(f)]
    assert len(pairs) == 2
    for src_im, tar_im in pairs:
        for name in (src_im, tar_im):
            image_path = str(out / "image" / name)
            image = np.array(Image.open(image_path).convert("RGB"))
            h, w = image.shape[:2]
            person = image_of[name]
            parsing_map = cv2.imread(image_path.replace("image", "parsing").replace(".png", "_label.png"))[..., 0:1][:, :, 0]
            np.testing.assert_array_equal(parsing_map, parsing[person].parsing)
            with open(image_path.replace("image", "keypoints").replace(".png", "_keypoints.json")) as f:
                kp = np.array(json.load(f)["people"][0]["pose_keypoints_2d"]).reshape(-1, 3)
            np.testing.assert_array_equal(kp, keypoints[person].keypoints)
            with open(image_path.replace("image", "densepose").replace(".png", ".pkl"), "rb") as f:  # get_densepose
                dp = pickle.load(f)
            x0, y0, _, _ = dp["pred_boxes_XYXY"]
            label = dp["pred_densepose_label"][np.newaxis, ...].astype(np.float32) * 10
            uv = dp["pred_densepose_uv"].astype(np.float32)
            label_uv = np.concatenate([label, uv], axis=0)
            uv_h, uv_w = label_uv.shape[-2], label_uv.shape[-1]
            pad_w = int(x0), w - uv_w - int(x0)
            pad_h = int(y0), h - uv_h - int(y0)
            pad_uv = np.pad(label_uv, ((0, 0), (pad_h[0], pad_h[1]), (pad_w[0], pad_w[1])), "constant", constant_values=(0, 0))
            np.testing.assert_array_equal(pad_uv[0] / 10, densepose[person].iuv[..., 0])
            with open(image_path.replace("/image/", "/smpl/").replace(".png", ".pkl"), "rb") as f:
                smpl = pickle.load(f)
            assert smpl["visibility"].dtype == np.uint32 and smpl["pred_vertices_img"].shape == (num_vertices, 2)
            visibility = smpl["visibility"].astype(np.int64)  # get_smpl_semantic_region
            body = visibility != 4294967295
            visibility[~body] = len(smpl_faces) - 1
            vertices = smpl_faces[visibility].astype(np.int32)
            assert vertices.shape == (h, w, 3) and np.all(vertices[~body] == num_vertices)
            np.testing.assert_array_equal(body, densepose[person].iuv[..., 0] > 0)  # the body seen where DensePose sees it
            assert np.all(symmetric_table[vertices[body]] < num_vertices)


# -- the commands ----------------------------------------------------------------------------------
def test_import_landmarks_reads_coco_visibility_flags(oracle, tmp_path):
    build = _bare_copy(oracle, tmp_path / "b")
    garment = next(i for i in _records(oracle, "landmarks") if "cloth" in i)
    keypoints = [0.0] * 96
    keypoints[0:3] = [10.5, 4.0, 2]  # collar back visible
    keypoints[3:6] = [12.0, 6.0, 1]  # neck left occluded
    keypoints[6:9] = [99.0, 99.0, 0]  # absent: x, y dropped
    coco = {
        "images": [{"id": 7, "file_name": Path(garment).name, "width": 48, "height": 64}],
        "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "keypoints": keypoints}],
    }
    path = tmp_path / "labels" / "mine.json"
    path.parent.mkdir()
    path.write_text(json.dumps(coco))
    res = CliRunner().invoke(main, ["import-landmarks", str(path), "--build", str(build)])
    assert res.exit_code == 0, res.output
    assert "not_in_source 5" in res.output  # the images the file does not annotate
    rows = _records(build, "landmarks")
    lm = rows[garment].landmarks
    np.testing.assert_array_equal(lm[:3], [[10.5, 4.0, 0], [12.0, 6.0, 1], [0, 0, 2]])
    assert set(rows) == {garment}


def test_annotate_with_the_imported_params_recomputes_nothing(oracle, tmp_path):
    import yaml
    from builders import summary_rows

    out = tmp_path / "out"
    run_export(get_format("viton-hd"), oracle, out, show_progress=False)
    build = _bare_copy(oracle, tmp_path / "b")
    runner = CliRunner()
    res = runner.invoke(main, ["import", str(out), "--format", "viton-hd", "--build", str(build), "--annotator", "keypoints"])
    assert res.exit_code == 0, res.output
    assert summary_rows(res.output)["keypoints"]["computed"] == "4"
    params = {"annotators": {"keypoints": {"backend": "imported", "params": {"format": "viton-hd", "source": str(out.resolve()), "settings": {}}}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    res = runner.invoke(main, ["--params", str(tmp_path / "params.yaml"), "annotate", "--dataset", "x", "--build", str(build)])
    assert res.exit_code == 0, res.output
    row = summary_rows(res.output)["keypoints"]
    assert (row["backend"], row["computed"], row["already done"]) == ("imported", "0", "4")


def test_export_and_import_commands(oracle, tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    res = runner.invoke(main, ["export", "--format", "parsing-png", "--build", str(oracle), "--out", str(out), "--set", "label_set=atr"])
    assert res.exit_code == 0, res.output
    assert "4 items (4 written" in res.output
    build = _bare_copy(oracle, tmp_path / "b")
    res = runner.invoke(main, ["import", str(out), "--format", "parsing-png", "--build", str(build), "--set", "label_set=atr"])
    assert res.exit_code == 0, res.output
    assert "backend: imported" in res.output
    assert _records(build, "parsing")
    res = runner.invoke(main, ["export", "--format", "nope", "--build", str(oracle), "--out", str(out)])
    assert res.exit_code == 1 and "unknown format 'nope'" in res.output
