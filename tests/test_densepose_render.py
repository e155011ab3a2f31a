"""densepose/render: IUV of the fitted body in DensePose's conventions, through the stage runner."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from builders import (
    FIT_FIELDS,
    KNOWN_BODIES,
    garment_image,
    make_build,
    person_image,
    write_rows,
    write_smpl_model,
)
from scipy.spatial.transform import Rotation

from vtonpipe.annotators.densepose_render import raster_backend, render_iuv
from vtonpipe.bench.metrics import IUVAccuracy
from vtonpipe.converters.masks import mask_box_edges
from vtonpipe.models.bodies.anny import AnnyBody
from vtonpipe.models.bodies.camera import PinholeCamera, frame_body
from vtonpipe.models.bodies.posed import posed_mesh
from vtonpipe.models.render.iuv import (
    anny_charts,
    hands_behind,
    iuv_from_raster,
    part_id,
    smpl_charts,
)
from vtonpipe.models.render.raster import rasterize
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.context import AnnotationContext
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.pipeline.store import ShardReader
from vtonpipe.schemas.body import BodyRecord

H, W = 256, 192


@pytest.fixture(scope="module")
def body():
    return AnnyBody()


def anny_row(body: AnnyBody, pose=None, azimuth_deg: float = 0.0, shift=(0.0, 0.0, 0.0)) -> dict:
    """A ``body`` row of the default anny body in ``pose`` (named bones), framed in a W x H image by
    ``frame_body`` and then moved by ``shift`` metres in the camera frame."""
    pose = body.pose_from_named(pose or {})[0].numpy()
    with torch.no_grad():
        vertices = body(pose)[0].numpy()
    camera, rigid = frame_body(vertices, width=W, height=H, azimuth_deg=azimuth_deg)
    return {
        "model": "anny",
        "pose": pose,
        "shape": np.full(6, 0.5, np.float32),
        "rotation": Rotation.from_matrix(rigid.R).as_rotvec().astype(np.float32),
        "translation": (rigid.t + shift).astype(np.float32),
        "camera": np.array([camera.fx, camera.fy, camera.cx, camera.cy], np.float32),
        **FIT_FIELDS,
    }


def reference_iuv(body: AnnyBody, row: dict) -> np.ndarray:
    """IUV of a body row computed here from the model, the camera and the charts."""
    with torch.no_grad():
        vertices = body(row["pose"], row["shape"], row["rotation"], row["translation"])[0].numpy()
    camera = PinholeCamera(*(float(v) for v in row["camera"]), W, H)
    charts = anny_charts()
    return iuv_from_raster(rasterize(vertices, body.faces, camera), charts.face_part, charts.face_uv)


def test_iuv_conventions_and_the_persons_sides(body):
    for azimuth in (0.0, 180.0):
        iuv = render_iuv(posed_mesh(BodyRecord(**anny_row(body, azimuth_deg=azimuth)), W, H))
        assert iuv.dtype == np.uint8 and iuv.shape == (H, W, 3)
        i = iuv[..., 0]
        assert i.max() <= 24 and (iuv[i == 0] == 0).all()  # background is (0, 0, 0)
        assert iuv[i > 0, 1:].min() == 0 and iuv[i > 0, 1:].max() == 255
        right_x = np.nonzero(i == part_id("right_hand"))[1].mean()
        left_x = np.nonzero(i == part_id("left_hand"))[1].mean()
        front, back = (i == part_id("torso_front")).sum(), (i == part_id("torso_back")).sum()
        if azimuth == 0.0:  # facing the camera: the person's right hand on the image left
            assert right_x < W / 2 < left_x and front > 20 * back
            seen = {"torso_front", "right_upper_arm_front", "left_upper_leg_front", "right_lower_leg_front", "right_head", "left_head"}
            assert {part_id(p) for p in seen} <= set(np.unique(i))
        else:
            assert left_x < W / 2 < right_x and back > 20 * front


@pytest.mark.parametrize("other", ["torch", "binned"])
def test_rasterisers_agree_on_iuv(body, other):
    mesh = posed_mesh(BodyRecord(**anny_row(body, {"upperarm01.L": (0.0, -0.6, 0.0), "lowerleg01.R": (0.5, 0.0, 0.0)}, azimuth_deg=30.0)), W, H)
    a, b = render_iuv(mesh, "embree"), render_iuv(mesh, other)
    same = a[..., 0] == b[..., 0]
    assert (~same).sum() <= 0.0005 * (a[..., 0] > 0).sum()
    assert np.abs(a[..., 1:].astype(int) - b[..., 1:].astype(int))[same].max() <= 1
    assert raster_backend("auto", "cpu") == "binned" and raster_backend("auto", "cuda:0") == "torch"
    assert raster_backend("torch", "cpu") == "torch"
    with pytest.raises(ValueError, match="raster must be one of"):
        raster_backend("opengl", "cpu")


def test_foreground_box_holds_the_pixel_edges():
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    np.testing.assert_array_equal(mask_box_edges(mask), [2.5, 1.5, 8.5, 4.5])


def _build(tmp_path, people: int = 2):
    return make_build(tmp_path, [(person_image(i, (H, W)), person_image(i + 50, (H, W)), garment_image(i, (H, W))) for i in range(people)])


def _person_ids(build) -> list[str]:
    return sorted(i for i, r in AnnotationContext(build).images.items() if r["kind"] == "person")


def test_smpl_bodies_render_densepose_s_own_charts(tmp_path, monkeypatch):
    """A generated SMPL model on which two DensePose parts lie flat at 2 m, facing the camera, each
    chart vertex at its own (U, V) scaled to 0.2 m: torso front on the image left, right lower leg
    front on the right; every other vertex 1 m further back, on the optical axis. Rendered through
    the stage, the U, V of each pixel must be the chart coordinates of its position on the plane."""
    charts = smpl_charts()
    size, depth = 0.2, 2.0
    origins = {part_id("torso_front"): (-0.22, -0.1), part_id("right_lower_leg_front"): (0.02, -0.1)}
    vertices = np.tile([0.0, 0.0, depth + 1.0], (6890, 1))
    for part, (x0, y0) in origins.items():
        corners = np.unique(charts.faces[charts.face_part == part])
        smpl_ids = charts.vertex_smpl[corners]
        assert len(np.unique(smpl_ids)) == len(corners)  # one (U, V) per SMPL vertex within the part
        vertices[smpl_ids] = np.column_stack([(x0, y0) + size * charts.vertex_uv[corners], np.full(len(corners), depth)])
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(tmp_path / "weights"))
    write_smpl_model(tmp_path / "weights", "female", vertices)
    build = _build(tmp_path, 1)
    ids = _person_ids(build)
    camera = PinholeCamera(400.0, 400.0, 95.5, 127.5, W, H)
    KNOWN_BODIES.clear()  # the SMPL body frame is the camera frame
    KNOWN_BODIES[ids[0]] = {
        **FIT_FIELDS, "model": "smpl-female", "pose": np.zeros((23, 3), np.float32), "shape": np.zeros(10, np.float32),
        "rotation": np.zeros(3, np.float32), "translation": np.zeros(3, np.float32),
        "camera": np.array([camera.fx, camera.fy, camera.cx, camera.cy], np.float32),
    }  # fmt: skip
    run_stage(build, StageConfig("body", "test-known"), show_progress=False)
    assert run_stage(build, StageConfig("densepose", "render"), show_progress=False).computed == 1
    iuv = ShardReader(build / "annotations" / "densepose").get(ids[0])["iuv"]

    on_plane = np.abs(rasterize(vertices, charts.smpl_faces, camera).depth - depth) < 1e-5
    for part, (x0, y0) in origins.items():
        side = on_plane & ((np.arange(W) < camera.cx) if x0 < 0 else (np.arange(W) > camera.cx))[None, :]
        assert side.sum() > 400 and (iuv[side, 0] == part).mean() > 0.99
        mine = side & (iuv[..., 0] == part)
        y, x = np.nonzero(mine)
        u = ((x - camera.cx) * depth / camera.fx - x0) / size
        v = ((y - camera.cy) * depth / camera.fy - y0) / size
        np.testing.assert_allclose(iuv[mine, 1:].astype(float), 255 * np.stack([u, v], 1), atol=0.51)


def test_stage_renders_the_body_rows_exactly_and_records_failures(tmp_path, body):
    build = _build(tmp_path)
    ids = _person_ids(build)
    KNOWN_BODIES.clear()
    KNOWN_BODIES.update({
        ids[0]: anny_row(body),
        ids[1]: anny_row(body, {"upperarm01.R": (0.0, 0.8, 0.0)}, azimuth_deg=20.0),
        ids[2]: anny_row(body, shift=(30.0, 0.0, 0.0)),  # far outside the image
    })  # ids[3] has no body: missing_upstream
    run_stage(build, StageConfig("body", "test-known"), show_progress=False)
    res = run_stage(build, StageConfig("densepose"), show_progress=False)  # the default backend is render
    assert (res.backend, res.computed, res.failed) == ("render", 2, 2)
    assert res.failures_by_reason == {"empty_render": 1, "missing_upstream": 1}
    rows = {r["image_id"]: r for r in ShardReader(build / "annotations" / "densepose")}
    assert sorted(rows) == ids[:2]

    accuracy = IUVAccuracy()
    for image_id, row in rows.items():
        expected = reference_iuv(body, KNOWN_BODIES[image_id])
        np.testing.assert_array_equal(row["iuv"], expected)
        accuracy.update(row["iuv"], expected)
        cols, lines = np.nonzero((expected[..., 0] > 0).any(0))[0], np.nonzero((expected[..., 0] > 0).any(1))[0]
        np.testing.assert_array_equal(row["bbox"], [cols[0] - 0.5, lines[0] - 0.5, cols[-1] + 0.5, lines[-1] + 0.5])
        assert (row["score"], row["num_people"], row["backend"]) == (1.0, 1, "render")
        assert json.loads(row["params"]) == {"raster": "auto", "register_to_mask_px": 0, "snap_to_mask_px": 0, "parsing_hands": False}
    assert accuracy.result() == {"part_accuracy": 1.0, "uv_error": 0.0, "false_body_rate": 0.0}

    # a body 1 cm off, as a fitter might give, no longer scores perfectly
    off = IUVAccuracy()
    off.update(render_iuv(posed_mesh(BodyRecord(**anny_row(body, shift=(0.01, 0.0, 0.0))), W, H)), rows[ids[0]]["iuv"])
    assert 0.8 < off.result()["part_accuracy"] < 0.99


def test_rows_follow_the_body_rows(tmp_path, body):
    build = _build(tmp_path, 1)
    ids = _person_ids(build)
    KNOWN_BODIES.clear()
    KNOWN_BODIES[ids[0]] = anny_row(body)
    run_stage(build, StageConfig("body", "test-known"), show_progress=False)
    first = run_stage(build, StageConfig("densepose", "render"), show_progress=False)
    assert (first.computed, first.failures_by_reason) == (1, {"missing_upstream": 1})
    again = run_stage(build, StageConfig("densepose", "render"), show_progress=False)
    assert (again.computed, again.skipped) == (0, 2)
    # the missing body is fitted later: its densepose is computed without --retry-failed
    KNOWN_BODIES[ids[1]] = anny_row(body, azimuth_deg=90.0)
    assert run_stage(build, StageConfig("body", "test-known"), retry_failed=True, show_progress=False).computed == 1
    later = run_stage(build, StageConfig("densepose", "render"), show_progress=False)
    assert (later.computed, later.skipped, later.failed) == (1, 1, 0)
    rows = {r["image_id"]: r for r in ShardReader(build / "annotations" / "densepose")}
    np.testing.assert_array_equal(rows[ids[1]]["iuv"], reference_iuv(body, KNOWN_BODIES[ids[1]]))


def _two_known_bodies(tmp_path, body):
    """A build whose two person images have the same known body: (build, their ids, the first one's IUV)."""
    build = _build(tmp_path, 1)
    ids = _person_ids(build)
    KNOWN_BODIES.clear()
    KNOWN_BODIES.update({i: anny_row(body) for i in ids})
    run_stage(build, StageConfig("body", "test-known"), show_progress=False)
    return build, ids, reference_iuv(body, KNOWN_BODIES[ids[0]])


def test_snapping_to_the_person_mask_reads_the_mask_rows(tmp_path, body):
    build, ids, exact = _two_known_bodies(tmp_path, body)
    mask = np.roll(exact[..., 0] > 0, 1, axis=1).astype(np.uint8)  # the person one pixel to the right
    write_rows(tmp_path, build, "person_mask", {ids[0]: mask})  # ids[1] has no mask row
    snapped = StageConfig("densepose", "render", {"snap_to_mask_px": 1})
    res = run_stage(build, snapped, show_progress=False)
    assert (res.computed, res.failures_by_reason) == (1, {"missing_upstream": 1})
    row = next(iter(ShardReader(build / "annotations" / "densepose")))
    np.testing.assert_array_equal(row["iuv"][..., 0] > 0, mask > 0)  # the render now covers the mask
    assert (row["iuv"][exact[..., 0] > 0] == exact[exact[..., 0] > 0])[mask[exact[..., 0] > 0] > 0].all()
    # a new mask row (from another file: a new row key) re-renders that image
    (tmp_path / "again").mkdir()
    write_rows(tmp_path / "again", build, "person_mask", {ids[0]: (exact[..., 0] > 0).astype(np.uint8)})
    assert run_stage(build, snapped, show_progress=False).computed == 1


def test_registering_to_the_person_mask_reads_the_mask_rows(tmp_path, body):
    """``register_to_mask_px`` alone reads person_mask too, and moves the render of a person 2 px
    right of the fit onto the mask, part labels and all (the shifted render is the truth here)."""
    build, ids, exact = _two_known_bodies(tmp_path, body)
    truth = np.roll(exact, 2, axis=1)
    write_rows(tmp_path, build, "person_mask", {ids[0]: (truth[..., 0] > 0).astype(np.uint8)})  # ids[1] has no mask row
    res = run_stage(build, StageConfig("densepose", "render", {"register_to_mask_px": 2}), show_progress=False)
    assert (res.computed, res.failures_by_reason) == (1, {"missing_upstream": 1})
    row = next(iter(ShardReader(build / "annotations" / "densepose")))
    registered, rendered = IUVAccuracy(), IUVAccuracy()
    registered.update(row["iuv"], truth)
    rendered.update(exact, truth)
    assert registered.result()["part_accuracy"] > rendered.result()["part_accuracy"] + 0.02
    assert registered.result()["false_body_rate"] < rendered.result()["false_body_rate"]


def test_hands_the_parsing_calls_clothing_show_the_body_behind_them(tmp_path, body):
    import math

    c, s = math.cos(0.73), math.sin(0.73)  # the left elbow bent 90 degrees past rest, the upper arm across: the left hand in front of the belly
    row = anny_row(body, {"lowerarm01.L": tuple(1.6 * np.array([-c, 0.0, -s])), "upperarm01.L": (0.0, 0.0, -0.6)})
    mesh = posed_mesh(BodyRecord(**row), W, H)
    full, behind = render_iuv(mesh), render_iuv(mesh, without_hands=True)
    left, right = full[..., 0] == part_id("left_hand"), full[..., 0] == part_id("right_hand")
    assert left.sum() > 100 and right.sum() > 20 and not np.isin(behind[..., 0], [3, 4]).any()
    assert (behind[left, 0] == part_id("torso_front")).mean() > 0.9
    build = _build(tmp_path, 1)
    ids = _person_ids(build)
    KNOWN_BODIES.clear()
    KNOWN_BODIES.update({i: row for i in ids})
    run_stage(build, StageConfig("body", "test-known"), show_progress=False)
    parsing = np.where(full[..., 0] > 0, 5, 0).astype(np.uint8)  # upper-clothes over the body (the left hand too) ...
    parsing[right] = 15  # ... but the right hand bare: right-arm
    write_rows(tmp_path, build, "parsing", {ids[0]: parsing})  # ids[1] has no parsing row
    res = run_stage(build, StageConfig("densepose", "render", {"parsing_hands": True}), show_progress=False)
    assert (res.computed, res.failures_by_reason) == (1, {"missing_upstream": 1})
    out = next(iter(ShardReader(build / "annotations" / "densepose")))["iuv"]
    np.testing.assert_array_equal(out[left], behind[left])  # the hidden hand: the torso behind it
    np.testing.assert_array_equal(out[~left], full[~left])  # the bare right hand and the rest: as rendered
    with pytest.raises(ValueError, match="must share"):
        hands_behind(full, behind[1:], parsing)


def test_hands_on_trousers_or_a_skirt_stay_in_front():
    """Only upper-body clothing hides a hand: one hanging beside the thigh is parsed as trousers more often than it hides behind them."""
    iuv = np.zeros((1, 5, 3), np.uint8)
    iuv[0, :, 0] = [3, 4, 4, 3, 2]  # hands, then the torso
    iuv[..., 1:] = 7
    without = np.full_like(iuv, 9)
    out = hands_behind(iuv, without, np.array([[5, 9, 12, 6, 5]], np.uint8))  # upper-clothes, pants, skirt, dress; the torso on upper-clothes
    np.testing.assert_array_equal(out[0, :, 0], [9, 4, 4, 9, 2])
