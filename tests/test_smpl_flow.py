"""smpl_flow/render: flow and visibility between two rendered anny bodies, exact against independent
computations; 3D-GCL's o_gt on a rendered pair; the stage, its failures and its drawing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
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

from vtonpipe.annotators.densepose_render import render, render_iuv
from vtonpipe.annotators.smpl_flow_render import pair_flow
from vtonpipe.bench.metrics import FlowAccuracy
from vtonpipe.models.bodies.anny import AnnyBody
from vtonpipe.models.bodies.camera import PinholeCamera, frame_body
from vtonpipe.models.bodies.posed import posed_mesh
from vtonpipe.models.render.binned import BinnedMesh
from vtonpipe.models.render.flow import (
    BACKGROUND,
    HIDDEN,
    VISIBLE,
    body_flow,
    correspondence_ground_truth,
    hand_pixels,
    hands_behind_body,
    raster_hands_behind,
    refine_flow_photometric,
    snap_flow_to_mask,
)
from vtonpipe.models.render.iuv import anny_charts, hand_faces, hidden_hands, part_id, smpl_charts
from vtonpipe.models.render.raster import Raster, rasterize
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.context import AnnotationContext
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.pipeline.show import render_show
from vtonpipe.pipeline.store import ShardReader
from vtonpipe.schemas.body import BodyRecord
from vtonpipe.vis.smpl_flow import draw_smpl_flow, flow_to_colour, warp_source

H, W = 256, 192


def _rotvec(*steps) -> np.ndarray:
    """Axis-angle of the product of (axis, angle) rotations."""
    m = np.eye(3)
    for axis, angle in steps:
        m = m @ Rotation.from_rotvec(np.asarray(axis, float) / np.linalg.norm(axis) * angle).as_matrix()
    return Rotation.from_matrix(m).as_rotvec()


#: the right forearm across the chest: upper arm along the body turned inwards, elbow bent forwards
ARM_ACROSS = {
    "upperarm01.R": _rotvec(((0, 0, 1), 1.2), ((0, 1, 0), -0.5)),
    "lowerarm01.R": 1.5 * np.array([-np.cos(0.73), 0.0, np.sin(0.73)]),
}


@pytest.fixture(scope="module")
def body():
    return AnnyBody()


def anny_row(body: AnnyBody, pose=None, azimuth_deg: float = 0.0) -> dict:
    """A ``body`` row of the default anny body in ``pose`` (named bones), framed in a W x H image;
    the camera is the one that frames the A-pose body, whatever the pose."""
    with torch.no_grad():
        rest = body()[0].numpy()
    camera, rigid = frame_body(rest, width=W, height=H, azimuth_deg=azimuth_deg)
    return {
        "model": "anny",
        "pose": body.pose_from_named(pose or {})[0].numpy(),
        "shape": np.full(6, 0.5, np.float32),
        "rotation": Rotation.from_matrix(rigid.R).as_rotvec().astype(np.float32),
        "translation": rigid.t.astype(np.float32),
        "camera": np.array([camera.fx, camera.fy, camera.cx, camera.cy], np.float32),
        **FIT_FIELDS,
    }


def mesh(row: dict):
    return posed_mesh(BodyRecord(**row), W, H)


def test_shifted_principal_point_gives_constant_flow(body):
    target = anny_row(body, azimuth_deg=20.0)
    source = {**target, "camera": target["camera"] + np.float32([0, 0, 5, -3])}
    flow, visibility = pair_flow(mesh(source), mesh(target))
    assert flow.dtype == np.float32 and flow.shape == (H, W, 2) and visibility.dtype == np.uint8
    on_body = render(mesh(target), mesh(target).faces).mask
    np.testing.assert_array_equal(visibility, np.where(on_body, VISIBLE, BACKGROUND))
    np.testing.assert_allclose(flow[on_body], np.tile([5.0, -3.0], (on_body.sum(), 1)), atol=0.01)
    assert (flow[~on_body] == 0).all()


def test_translated_body_flow_matches_the_projection(body):
    target = anny_row(body, {"upperarm01.L": (0.0, -0.6, 0.0)}, azimuth_deg=-30.0)
    move = np.float32([0.05, -0.03, 0.4])  # metres in the camera frame
    source = {**target, "translation": target["translation"] + move}
    flow, visibility = pair_flow(mesh(source), mesh(target))
    # independent: back-project each target pixel centre with its rendered depth, move, project
    raster = render(mesh(target), mesh(target).faces)
    fx, fy, cx, cy = (float(v) for v in target["camera"])
    y, x = np.nonzero(raster.mask)
    z = raster.depth[y, x].astype(np.float64)
    point = np.stack([(x - cx) * z / fx, (y - cy) * z / fy, z], 1) + move
    expected = np.stack([fx * point[:, 0] / point[:, 2] + cx - x, fy * point[:, 1] / point[:, 2] + cy - y], 1)
    np.testing.assert_allclose(flow[y, x], expected, atol=0.01)
    assert (visibility[raster.mask] == VISIBLE).mean() > 0.97  # only silhouette slivers change


def test_arm_in_front_of_the_torso_hides_it(body):
    source, target = mesh(anny_row(body, ARM_ACROSS)), mesh(anny_row(body))
    flow, visibility = pair_flow(source, target)
    source_iuv, target_iuv = render_iuv(source), render_iuv(target)
    source_depth, target_depth = render(source, source.faces).depth, render(target, target.faces).depth
    torso = np.isin(target_iuv[..., 0], [part_id("torso_front"), part_id("torso_back")])
    still = torso & (np.abs(flow).max(-1) < 1e-3)  # torso points the arm's pose does not move
    arm_parts = [part_id(p) for p in ("right_hand", "right_upper_arm_front", "right_upper_arm_back", "right_lower_arm_front", "right_lower_arm_back")]
    in_front = np.isin(source_iuv[..., 0], arm_parts) & (source_depth < target_depth - 0.01)  # the arm 1 cm or more in front
    behind_arm = still & in_front
    assert behind_arm.sum() > 100
    assert (visibility[behind_arm] == HIDDEN).all()
    assert (visibility[still & np.isin(source_iuv[..., 0], [part_id("torso_front")])] == VISIBLE).all()
    # the other way round, nothing covers the torso in the source: all of it that shows is visible
    flow, visibility = pair_flow(target, source)
    still = np.isin(source_iuv[..., 0], [part_id("torso_front"), part_id("torso_back")]) & (np.abs(flow).max(-1) < 1e-3)
    assert still.sum() > 1000 and (visibility[still] == VISIBLE).all()


def _build(tmp_path, people: int):
    return make_build(tmp_path, [(person_image(i, (H, W)), person_image(i + 50, (H, W)), garment_image(i, (H, W))) for i in range(people)])


def _pairs(build) -> list[dict]:
    return sorted(AnnotationContext(build).pairs, key=lambda p: p["source_image_id"])


def test_smpl_pairs_of_any_genders(tmp_path, monkeypatch, body):
    """SMPL bodies flow through SMPL's topology, whatever their model files' genders: a generated
    model whose mesh lays each DensePose part's chart on a tile of a tilted plane 2 m away, moved
    in depth and sideways between the pair's images; an SMPL body never pairs with an anny one."""
    charts = smpl_charts()
    part = np.zeros(len(charts.vertex_uv), int)
    part[charts.faces] = charts.face_part[:, None]
    first = np.unique(charts.vertex_smpl, return_index=True)[1]  # a chart vertex of each SMPL vertex
    u, v, p = charts.vertex_uv[first, 0], charts.vertex_uv[first, 1], part[first] - 1
    vertices = np.stack([-0.3 + 0.1 * (p % 6) + 0.09 * u, -0.2 + 0.1 * (p // 6) + 0.09 * v, 2.0 + 0.1 * u], 1)
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(tmp_path / "weights"))
    for gender in ("neutral", "male"):
        write_smpl_model(tmp_path / "weights", gender, vertices)
    build = _build(tmp_path, 2)
    smpl_pair, mixed = _pairs(build)
    camera = np.float32([300.0, 300.0, 95.5, 127.5])
    move = np.float32([0.03, 0.01, 0.2])
    smpl = {**FIT_FIELDS, "pose": np.zeros((23, 3), np.float32), "shape": np.zeros(10, np.float32), "rotation": np.zeros(3, np.float32), "camera": camera}
    KNOWN_BODIES.clear()
    KNOWN_BODIES.update({
        smpl_pair["source_image_id"]: {**smpl, "model": "smpl-male", "translation": move},
        smpl_pair["target_image_id"]: {**smpl, "model": "smpl", "translation": np.zeros(3, np.float32)},
        mixed["source_image_id"]: {**smpl, "model": "smpl", "translation": np.zeros(3, np.float32)},
        mixed["target_image_id"]: anny_row(body),
    })  # fmt: skip
    run_stage(build, StageConfig("body", "test-known"), show_progress=False)
    res = run_stage(build, StageConfig("smpl_flow", "render"), show_progress=False)
    assert (res.computed, res.failures_by_reason) == (1, {"model_mismatch": 1})
    row = ShardReader(build / "annotations" / "smpl_flow").get(smpl_pair["pair_id"])
    # independent: back-project each target pixel centre with its rendered depth, move, project
    fx, fy, cx, cy = (float(c) for c in camera)
    raster = rasterize(vertices, charts.smpl_faces, PinholeCamera(fx, fy, cx, cy, W, H))
    y, x = np.nonzero(raster.mask)
    z = raster.depth[y, x].astype(np.float64)
    point = np.stack([(x - cx) * z / fx, (y - cy) * z / fy, z], 1) + move
    expected = np.stack([fx * point[:, 0] / point[:, 2] + cx - x, fy * point[:, 1] / point[:, 2] + cy - y], 1)
    assert len(y) > 4000
    np.testing.assert_allclose(row["flow"][y, x], expected, atol=0.01)
    assert (row["visibility"][raster.mask] == VISIBLE).mean() > 0.95
    assert (row["visibility"][~raster.mask] == BACKGROUND).all()
    with pytest.raises(ValueError, match="one model"):
        pair_flow(mesh(KNOWN_BODIES[mixed["source_image_id"]]), mesh(anny_row(body)))


def test_stage_writes_flow_rows_and_records_failures(tmp_path, body):
    build = _build(tmp_path, 3)
    ok, missing, mixed = _pairs(build)
    smpl = {**anny_row(body), "model": "smpl", "pose": np.zeros((23, 3), np.float32), "shape": np.zeros(10, np.float32)}
    KNOWN_BODIES.clear()
    KNOWN_BODIES.update({
        ok["source_image_id"]: anny_row(body, ARM_ACROSS, azimuth_deg=15.0),
        ok["target_image_id"]: anny_row(body, {"lowerleg01.L": (0.6, 0.0, 0.0)}),
        missing["source_image_id"]: anny_row(body),
        mixed["source_image_id"]: anny_row(body),
        mixed["target_image_id"]: smpl,
    })  # missing's target has no body
    run_stage(build, StageConfig("body", "test-known"), show_progress=False)
    res = run_stage(build, StageConfig("smpl_flow"), show_progress=False)  # the default backend is render
    assert (res.backend, res.computed, res.failed) == ("render", 1, 2)
    assert res.failures_by_reason == {"missing_upstream": 1, "model_mismatch": 1}

    rows = list(ShardReader(build / "annotations" / "smpl_flow"))
    assert [r["pair_id"] for r in rows] == [ok["pair_id"]]
    row = rows[0]
    source, target = mesh(KNOWN_BODIES[ok["source_image_id"]]), mesh(KNOWN_BODIES[ok["target_image_id"]])
    flow, visibility = pair_flow(source, target)
    # the stage poses its images in one batched forward, this reference one by one: equal up to
    # float32 rounding of the vertices (how much depends on the machine's matmul kernels)
    np.testing.assert_allclose(row["flow"], flow, atol=1e-3)
    assert (row["visibility"] == visibility).mean() > 0.999
    assert row["visible_fraction"] == pytest.approx((visibility == VISIBLE).sum() / (visibility != BACKGROUND).sum(), abs=1e-3)
    assert 0.7 < row["visible_fraction"] < 1.0
    accuracy = FlowAccuracy()  # exact parameters: perfect scores
    accuracy.update(row["flow"], row["visibility"], flow, visibility)
    assert accuracy.result() == pytest.approx({"epe_visible": 0.0, "visibility_iou_visible": 1.0, "visibility_iou_hidden": 1.0, "visibility_miou": 1.0}, abs=1e-3)

    # the missing target body is fitted later: the pair is computed without --retry-failed
    KNOWN_BODIES[missing["target_image_id"]] = anny_row(body, azimuth_deg=-40.0)
    run_stage(build, StageConfig("body", "test-known"), retry_failed=True, show_progress=False)
    later = run_stage(build, StageConfig("smpl_flow"), show_progress=False)
    assert (later.computed, later.skipped, later.failures_by_reason) == (1, 2, {"model_mismatch": 1})  # the mixed pair still failed


def test_snapping_a_flow_to_the_person_mask():
    """Hand-checked: a 4-pixel-high body two columns wide (flow (3, -1) visible, then (5, 2)
    hidden), the person mask one column to its right."""
    flow = np.zeros((6, 8, 2), np.float32)
    visibility = np.full((6, 8), BACKGROUND, np.uint8)
    flow[1:5, 2], visibility[1:5, 2] = (3.0, -1.0), VISIBLE
    flow[1:5, 3], visibility[1:5, 3] = (5.0, 2.0), HIDDEN
    mask = np.zeros((6, 8), np.uint8)
    mask[1:5, 3:6] = 1
    out_flow, out_vis = snap_flow_to_mask(flow, visibility, mask, 1)
    assert (out_vis[:, 2] == BACKGROUND).all() and (out_flow[:, 2] == 0).all()  # the body outside the mask is dropped
    np.testing.assert_array_equal(out_flow[1:5, 4], np.tile([5.0, 2.0], (4, 1)))  # 1 px off: the nearest body pixel's flow
    assert (out_vis[1:5, 4] == HIDDEN).all()  # ... and visibility
    assert (out_vis[:, 5] == BACKGROUND).all() and (out_flow[:, 5] == 0).all()  # 2 px off: left alone at radius 1
    np.testing.assert_array_equal(out_flow[1:5, 3], flow[1:5, 3])
    wider_flow, wider_vis = snap_flow_to_mask(flow, visibility, mask, 2)
    np.testing.assert_array_equal(wider_flow[1:5, 5], np.tile([5.0, 2.0], (4, 1)))
    assert (wider_vis[1:5, 5] == HIDDEN).all()
    assert (visibility[1:5, 4] == BACKGROUND).all()  # the inputs are not modified
    same = snap_flow_to_mask(flow, visibility, mask, 0)
    assert same[0] is flow and same[1] is visibility


def test_snapping_reads_the_target_s_person_mask(tmp_path, body):
    """With ``snap_to_mask_px`` the stage reads the target image's person_mask row: a pair whose
    target has none fails ``missing_upstream``; the other one is the unsnapped flow fitted to the mask."""
    build = _build(tmp_path, 2)
    pairs = _pairs(build)
    KNOWN_BODIES.clear()
    for k, pair in enumerate(pairs):
        KNOWN_BODIES[pair["source_image_id"]] = anny_row(body, ARM_ACROSS, azimuth_deg=15.0)
        KNOWN_BODIES[pair["target_image_id"]] = anny_row(body, azimuth_deg=-10.0 * k)
    run_stage(build, StageConfig("body", "test-known"), show_progress=False)
    target = pairs[0]["target_image_id"]
    flow, visibility = pair_flow(mesh(KNOWN_BODIES[pairs[0]["source_image_id"]]), mesh(KNOWN_BODIES[target]))
    mask = np.roll(visibility != BACKGROUND, 1, axis=1).astype(np.uint8)  # the person one pixel to the right
    write_rows(tmp_path, build, "person_mask", {target: mask})  # the other pair's target has no mask row
    res = run_stage(build, StageConfig("smpl_flow", "render", {"snap_to_mask_px": 1}), show_progress=False)
    assert (res.computed, res.failures_by_reason) == (1, {"missing_upstream": 1})
    row = next(iter(ShardReader(build / "annotations" / "smpl_flow")))
    assert row["pair_id"] == pairs[0]["pair_id"]
    expected_flow, expected_vis = snap_flow_to_mask(flow, visibility, mask, 1)
    np.testing.assert_array_equal(row["visibility"] != BACKGROUND, mask > 0)  # the flow now covers the mask
    assert (row["visibility"] == expected_vis).mean() > 0.999
    np.testing.assert_allclose(row["flow"], expected_flow, atol=1e-3)
    # a new mask row (from another file: a new row key) recomputes that pair
    (tmp_path / "again").mkdir()
    write_rows(tmp_path / "again", build, "person_mask", {target: (visibility != BACKGROUND).astype(np.uint8)})
    assert run_stage(build, StageConfig("smpl_flow", "render", {"snap_to_mask_px": 1}), show_progress=False).computed == 1


def test_a_raster_s_hands_on_clothing_take_the_body_behind_them():
    """Hand-checked on four pixels of a five-face mesh (faces 0 and 1 the hands): a hand on
    upper-clothes takes the hit of the body without hands (its face 1 there is the mesh's face 3),
    or none where nothing lies behind it; a bare hand and the torso stay."""
    hand_face = np.array([True, True, False, False, False])
    raster = Raster(
        face_id=np.array([[0, 1, 1, 2]], np.int32),
        bary=np.full((1, 4, 3), 1 / 3, np.float32),
        depth=np.array([[2.0, 2.0, 2.0, 2.5]], np.float32),
    )
    behind = Raster(
        face_id=np.array([[1, -1, 1, 0]], np.int32),  # faces 2, 3, 4 of the mesh, counted 0, 1, 2
        bary=np.array([[[0.2, 0.3, 0.5], [0, 0, 0], [0.6, 0.2, 0.2], [1, 0, 0]]], np.float32),
        depth=np.array([[2.4, np.inf, 2.6, 2.5]], np.float32),
    )
    parsing = np.array([[5, 5, 15, 5]], np.uint8)  # upper-clothes, upper-clothes, right-arm (bare), upper-clothes
    out = raster_hands_behind(raster, behind, hand_face, hidden_hands(hand_pixels(raster, hand_face), parsing))
    np.testing.assert_array_equal(out.face_id, [[3, -1, 1, 2]])
    np.testing.assert_allclose(out.bary[0, 0], [0.2, 0.3, 0.5])
    np.testing.assert_allclose(out.bary[0, 2:], raster.bary[0, 2:])
    np.testing.assert_allclose(out.depth, [[2.4, np.inf, 2.0, 2.5]])
    with pytest.raises(ValueError, match="must share"):
        hidden_hands(hand_pixels(raster, hand_face), parsing[:, :3])


def test_hand_faces_of_both_body_models():
    """SMPL's hand faces (by their SMPL vertices) are exactly DensePose's hand chart faces; anny's
    are its charts' hand faces; another model has no charts."""
    charts = smpl_charts()
    np.testing.assert_array_equal(hand_faces("smpl", charts.smpl_faces), np.isin(charts.face_part, [part_id("right_hand"), part_id("left_hand")]))
    anny = anny_charts()
    assert hand_faces("anny", np.zeros((len(anny.face_part), 3), np.int64)).sum() == np.isin(anny.face_part, [3, 4]).sum() > 0
    with pytest.raises(ValueError, match="charts"):
        hand_faces("anny", np.zeros((5, 3), np.int64))
    with pytest.raises(ValueError, match="no DensePose charts"):
        hand_faces("mano", np.zeros((5, 3), np.int64))


def bare_handed_parsing(iuv: np.ndarray) -> np.ndarray:
    """A LIP parsing of a rendered body: upper-clothes over it, its hands bare (right-arm, left-arm)."""
    parsing = np.where(iuv[..., 0] > 0, 5, 0).astype(np.uint8)
    parsing[iuv[..., 0] == part_id("right_hand")] = 15
    parsing[iuv[..., 0] == part_id("left_hand")] = 14
    return parsing


def test_which_hands_the_photo_shows_behind_the_body():
    """Hand-checked on a 1 x 6 raster (faces 0, 1 the right hand, 2 the left, 3 the torso): the right
    hand has 3 of its 4 pixels on upper-clothes (behind the body at share 0.5, not at 0.8), the left
    hand its one pixel on a bare arm; a hand with no pixel is not behind."""
    raster = Raster(
        face_id=np.array([[0, 1, 1, 0, 2, 3]], np.int32), bary=np.full((1, 6, 3), 1 / 3, np.float32), depth=np.full((1, 6), 2.0, np.float32)
    )
    parsing = np.array([[5, 5, 15, 6, 14, 5]], np.uint8)  # upper-clothes, upper-clothes, right-arm, dress, left-arm, upper-clothes
    hands = np.array([[1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 1]], bool)
    np.testing.assert_array_equal(hands_behind_body(raster, hands, parsing, 0.5), [True, False, False])
    np.testing.assert_array_equal(hands_behind_body(raster, hands, parsing, 0.8), [False, False, False])


def test_a_source_hand_the_photo_shows_behind_the_body_hides_nothing(tmp_path, body):
    """With ``parsing_hands`` the source's parsing rows count too (a pair whose source has none
    fails ``missing_upstream``). The source's right forearm lies across its chest. Parsed bare,
    its hand hides the torso behind it as fitted; parsed as upper-clothes (behind the body in the
    photo) it hides nothing and is hidden itself: the target's torso points behind it are
    visible in the source, as cast against the source without that hand, the target's points on
    that hand are hidden, every other pixel keeps its visibility and the flow is unchanged."""
    build = _build(tmp_path, 2)
    pairs = _pairs(build)
    KNOWN_BODIES.clear()
    for pair in pairs:
        KNOWN_BODIES[pair["source_image_id"]] = anny_row(body, ARM_ACROSS)
        KNOWN_BODIES[pair["target_image_id"]] = anny_row(body, azimuth_deg=10.0)
    run_stage(build, StageConfig("body", "test-known"), show_progress=False)
    source, target = (mesh(KNOWN_BODIES[pairs[0][k]]) for k in ("source_image_id", "target_image_id"))
    source_iuv, target_iuv = render_iuv(source), render_iuv(target)
    parsings = {pairs[0]["target_image_id"]: bare_handed_parsing(target_iuv), pairs[0]["source_image_id"]: bare_handed_parsing(source_iuv)}
    write_rows(tmp_path, build, "parsing", parsings)
    res = run_stage(build, StageConfig("smpl_flow", "render", {"parsing_hands": True}), show_progress=False)
    assert (res.computed, res.failures_by_reason) == (1, {"missing_upstream": 1})
    full_flow, full_vis = pair_flow(source, target)
    bare = next(iter(ShardReader(build / "annotations" / "smpl_flow")))
    np.testing.assert_array_equal(bare["visibility"], full_vis)
    np.testing.assert_allclose(bare["flow"], full_flow, atol=1e-3)

    clothed = parsings[pairs[0]["source_image_id"]].copy()
    clothed[source_iuv[..., 0] == part_id("right_hand")] = 5
    (tmp_path / "clothed").mkdir()
    write_rows(tmp_path / "clothed", build, "parsing", {**parsings, pairs[0]["source_image_id"]: clothed})
    assert run_stage(build, StageConfig("smpl_flow", "render", {"parsing_hands": True}), show_progress=False).computed == 1
    row = next(iter(ShardReader(build / "annotations" / "smpl_flow")))
    right_hand = hand_faces("anny", source.faces, (part_id("right_hand"),))
    without = BinnedMesh(source.vertices, source.faces[~right_hand], source.camera)
    _, vis_without = body_flow(render(target, target.faces), target.faces, source.vertices, source.camera, occluders=without)
    hidden_px = hand_pixels(BinnedMesh(source.vertices, source.faces, source.camera).rasterize(), right_hand)
    x, y = (np.rint(np.where(full_vis != BACKGROUND, np.indices((H, W))[::-1][k] + full_flow[..., k], -1)).astype(int) for k in (0, 1))
    through = (x >= 0) & (x < W) & (y >= 0) & (y < H)
    through[through] = hidden_px[y[through], x[through]]  # target pixels whose source point lies on the hidden hand's pixels
    torso = np.isin(target_iuv[..., 0], [part_id("torso_front"), part_id("torso_back")])
    assert (through & torso & (full_vis == HIDDEN) & (row["visibility"] == VISIBLE)).sum() > 30  # the torso behind the hand shows
    on_hand = right_hand[np.maximum(render(target, target.faces).face_id, 0)] & (full_vis != BACKGROUND)  # target points on that hand
    assert (on_hand & (full_vis == VISIBLE)).sum() > 10 and (row["visibility"][on_hand] == HIDDEN).all()  # the hand itself is hidden
    np.testing.assert_array_equal(row["visibility"][through & ~on_hand], vis_without[through & ~on_hand])
    np.testing.assert_array_equal(row["visibility"][~through & ~on_hand], full_vis[~through & ~on_hand])
    np.testing.assert_allclose(row["flow"], full_flow, atol=1e-3)


def test_hands_the_target_s_parsing_calls_clothing_flow_from_the_body_behind_them(tmp_path, body):
    """With ``parsing_hands`` the stage reads the target image's parsing row (a pair whose target
    has none fails ``missing_upstream``): a target hand across the torso on upper-clothes flows
    from the torso behind it (the target body rendered without its hands), a bare hand and the
    rest of the body as before."""
    build = _build(tmp_path, 2)
    pairs = _pairs(build)
    KNOWN_BODIES.clear()
    for pair in pairs:
        KNOWN_BODIES[pair["source_image_id"]] = anny_row(body, azimuth_deg=10.0)
        KNOWN_BODIES[pair["target_image_id"]] = anny_row(body, ARM_ACROSS)
    run_stage(build, StageConfig("body", "test-known"), show_progress=False)
    source, target = (mesh(KNOWN_BODIES[pairs[0][k]]) for k in ("source_image_id", "target_image_id"))
    hand = hand_faces("anny", target.faces)
    iuv = render_iuv(target)
    right = iuv[..., 0] == part_id("right_hand")
    assert right.sum() > 30 and (iuv[..., 0] == part_id("left_hand")).sum() > 30
    parsing = np.where(iuv[..., 0] > 0, 5, 0).astype(np.uint8)  # upper-clothes over the body ...
    parsing[iuv[..., 0] == part_id("left_hand")] = 14  # ... but the left hand bare: left-arm
    source_parsing = bare_handed_parsing(render_iuv(source))  # the source's hands as fitted
    write_rows(tmp_path, build, "parsing", {pairs[0]["target_image_id"]: parsing, pairs[0]["source_image_id"]: source_parsing})
    res = run_stage(build, StageConfig("smpl_flow", "render", {"parsing_hands": True}), show_progress=False)
    assert (res.computed, res.failures_by_reason) == (1, {"missing_upstream": 1})
    row = next(iter(ShardReader(build / "annotations" / "smpl_flow")))
    full_flow, full_vis = pair_flow(source, target)
    kept = target.faces[~hand]
    behind_flow, behind_vis = body_flow(rasterize(target.vertices, kept, target.camera), kept, source.vertices, source.camera)
    assert (behind_vis[right] != BACKGROUND).mean() > 0.9  # the torso lies behind the right hand
    assert np.abs(behind_flow[right] - full_flow[right]).max() > 5  # and it flows from elsewhere in the source
    np.testing.assert_allclose(row["flow"][right], behind_flow[right], atol=1e-3)
    np.testing.assert_array_equal(row["visibility"][right], behind_vis[right])
    np.testing.assert_allclose(row["flow"][~right], full_flow[~right], atol=1e-3)
    assert (row["visibility"][~right] == full_vis[~right]).mean() > 0.999


def textured_photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """RGB uint8 (h, w, 3) smooth random texture (blurred noise, features a few px wide)."""
    import cv2

    noise = np.random.default_rng(seed).uniform(0, 255, (h, w, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 1.5) * 3 - 255, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("source_width", [48, 56])
def test_photometric_refinement_moves_the_flow_onto_the_photos(source_width):
    """The target photo is the source shifted 2 px right: the true flow is (-2, 0) everywhere. A
    flow 0.94 px off on the visible body moves towards it with each pass (one pass is a small step:
    the smoothness term holds it near the bodies' flow), within 0.55 px after three; hidden and
    background pixels keep theirs; a source photo wider than the target works the same."""
    source = textured_photo(64, source_width)
    target = np.zeros((64, 48, 3), np.uint8)
    target[:, 2:] = source[:, : 48 - 2]
    flow = np.zeros((64, 48, 2), np.float32)
    visibility = np.full((64, 48), BACKGROUND, np.uint8)
    visibility[8:56, 8:40], flow[8:56, 8:40] = VISIBLE, (-2.8, 0.5)
    visibility[8:56, 36:40] = HIDDEN
    visible = visibility == VISIBLE
    inner = np.zeros_like(visible)
    inner[12:52, 12:32] = True  # away from the visible region's edges
    refined, errors = flow, [np.linalg.norm(flow[inner] - (-2.0, 0.0), axis=1).mean()]
    for _ in range(3):
        refined = refine_flow_photometric(refined, visibility, target, source)
        errors.append(np.linalg.norm(refined[inner] - (-2.0, 0.0), axis=1).mean())
    assert errors[0] == pytest.approx(0.943, abs=1e-3)
    assert all(b < a - 0.05 for a, b in zip(errors, errors[1:])) and errors[-1] < 0.55, errors
    np.testing.assert_array_equal(refined[~visible], flow[~visible])
    assert (flow[visible] == np.float32([-2.8, 0.5])).all()  # the input is not modified
    empty = np.full((64, 48), BACKGROUND, np.uint8)
    assert refine_flow_photometric(flow, empty, target, source) is flow


def test_the_stage_refines_the_visible_flow_by_the_photos(tmp_path, body):
    """With ``photometric_refine`` the stage keeps the bodies' visibility and the flow of hidden
    pixels, and moves the visible pixels' flow by the photos (within a few px of the bodies')."""
    build = _build(tmp_path, 1)
    (pair,) = _pairs(build)
    KNOWN_BODIES.clear()
    KNOWN_BODIES[pair["source_image_id"]] = anny_row(body, ARM_ACROSS, azimuth_deg=15.0)
    KNOWN_BODIES[pair["target_image_id"]] = anny_row(body)
    run_stage(build, StageConfig("body", "test-known"), show_progress=False)
    res = run_stage(build, StageConfig("smpl_flow", "render", {"photometric_refine": True}), show_progress=False)
    assert (res.computed, res.failed) == (1, 0)
    row = next(iter(ShardReader(build / "annotations" / "smpl_flow")))
    flow, visibility = pair_flow(mesh(KNOWN_BODIES[pair["source_image_id"]]), mesh(KNOWN_BODIES[pair["target_image_id"]]))
    np.testing.assert_array_equal(row["visibility"], visibility)
    np.testing.assert_allclose(row["flow"][visibility != VISIBLE], flow[visibility != VISIBLE], atol=1e-4)
    moved = np.linalg.norm(row["flow"] - flow, axis=-1)[visibility == VISIBLE]
    assert 0 < moved.mean() < 3


def test_correspondence_ground_truth_warps_like_bilinear_sampling(body):
    """3D-GCL's o_gt (Eq. 4) of a rendered pair (the flow and visibility a smpl_flow row holds) is
    bilinear sampling of the 1/8-resolution source at each visible target cell's source position."""
    source = mesh(anny_row(body, ARM_ACROSS, azimuth_deg=25.0))
    target = mesh(anny_row(body, {"upperarm01.L": (0.0, -0.5, 0.0), "upperleg01.R": (-0.4, 0.0, 0.0)}))
    flow, visibility = pair_flow(source, target)
    o = correspondence_ground_truth(flow, visibility, stride=8)
    hs, ws = H // 8, W // 8
    assert o.shape == (hs * ws, hs * ws)
    image = torch.rand(1, 3, hs, ws, generator=torch.Generator().manual_seed(0))
    warped = (o @ image[0].reshape(3, -1).T).T.reshape(3, hs, ws)
    # independent: grid_sample at the source position of each cell centre (8 k + 3.5 px), the flow
    # read at the pixel nearest to it (8 k + 4)
    ty, tx = np.meshgrid(8 * np.arange(hs) + 3.5, 8 * np.arange(ws) + 3.5, indexing="ij")
    cell_flow = flow[8 * np.arange(hs) + 4][:, 8 * np.arange(ws) + 4]
    grid = np.stack([(tx + cell_flow[..., 0] + 0.5) / W, (ty + cell_flow[..., 1] + 0.5) / H], -1) * 2 - 1
    expected = F.grid_sample(image, torch.from_numpy(grid[None]).float(), mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    cells = visibility[8 * np.arange(hs) + 4][:, 8 * np.arange(ws) + 4] == VISIBLE
    assert 60 < cells.sum() < hs * ws
    torch.testing.assert_close(warped[:, cells], expected[:, cells], atol=1e-5, rtol=0)
    assert (warped[:, ~cells] == 0).all()


def test_flow_colours_and_warp():
    colours = flow_to_colour(np.array([[[0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [-2.0, 0.0]]], np.float32))
    np.testing.assert_array_equal(colours[0, :3], [[255, 255, 255], [255, 0, 0], [255, 128, 128]])  # rest white, +x red
    assert colours[0, 3, 0] == 0 and colours[0, 3, 2] == 255  # -x: blue-cyan
    source = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3.0, -2.0
    warped = warp_source(source, flow)
    np.testing.assert_array_equal(warped[2:, :27], source[:18, 3:])
    assert (warped[:2] == 0).all() and (warped[:, 27:] == 0).all()


def test_drawing_of_a_stored_pair(tmp_path, body):
    build = _build(tmp_path, 1)
    (pair,) = _pairs(build)
    KNOWN_BODIES.clear()
    KNOWN_BODIES.update({pair["source_image_id"]: anny_row(body, ARM_ACROSS), pair["target_image_id"]: anny_row(body, azimuth_deg=30.0)})
    run_stage(build, StageConfig("body", "test-known"), show_progress=False)
    run_stage(build, StageConfig("smpl_flow"), show_progress=False)
    ctx = AnnotationContext(build)
    record = ctx.reader("smpl_flow").record(pair["pair_id"])
    target = ctx.load_image(pair["target_image_id"])
    picture = draw_smpl_flow(target, record, {"source": ctx.load_image(pair["source_image_id"]), "target": target})
    assert picture.dtype == np.uint8 and picture.shape == (H, 3 * W, 3)
    colours, warped, states = np.split(picture, 3, axis=1)
    vis = record.visibility
    assert (colours[vis == BACKGROUND] == 255).all() and (colours[vis != BACKGROUND] != 255).any(-1).mean() > 0.9
    moved = warp_source(ctx.load_image(pair["source_image_id"]), record.flow)
    np.testing.assert_array_equal(warped[vis == VISIBLE], moved[vis == VISIBLE])
    np.testing.assert_array_equal(states[vis == HIDDEN], np.tile([220, 40, 40], ((vis == HIDDEN).sum(), 1)))
    assert render_show(build, pair["pair_id"], height=128).shape[0] == 128 + 20
