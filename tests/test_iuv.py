"""DensePose IUV: part semantics checked on DensePose's own SMPL charts, anny charts, IUV rendering."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import dijkstra

from vtonpipe.models.bodies.camera import PinholeCamera, frame_body
from vtonpipe.models.render.iuv import (
    DENSEPOSE_ALONG,
    PART_NAMES,
    anny_charts,
    iuv_from_raster,
    part_id,
    smpl_charts,
)
from vtonpipe.models.render.raster import Raster, rasterize

# SMPL landmark vertices: smplx/vertex_ids.py ("smplh", the SMPL body's ids) and
# SMPL-Anthropometry/landmark_definitions.py
SMPL_LANDMARKS = {
    "right_eye": (6260, "right_head"), "left_eye": (2800, "left_head"),
    "right_ear": (4071, "right_head"), "left_ear": (583, "left_head"), "left_temple": (166, "left_head"),
    "right_thumb": (6191, "right_hand"), "right_pinky": (6133, "right_hand"),
    "left_thumb": (2746, "left_hand"), "left_index": (2319, "left_hand"),
    "left_big_toe": (3216, "left_foot"), "left_heel": (3387, "left_foot"),
    "right_big_toe": (6617, "right_foot"), "right_heel": (6787, "right_foot"),
    "navel": (3501, "torso_front"), "left_nipple": (3042, "torso_front"), "right_nipple": (6489, "torso_front"),
    "pubic_bone": (3145, "torso_front"), "back_navel": (3022, "torso_back"),
    "right_bicep": (4855, "right_upper_arm_front"), "left_thigh": (947, "left_upper_leg_front"),
}  # fmt: skip


@pytest.fixture(scope="module")
def smpl():
    return smpl_charts()


@pytest.fixture(scope="module")
def smpl_graph(smpl):
    """SMPL's vertex adjacency (hop distances), from the charts' own faces."""
    f = smpl.smpl_faces
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    g = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(6890, 6890)).tocsr()
    return g + g.T


def _part_vertices(smpl, part: int) -> np.ndarray:
    return np.unique(smpl.smpl_faces[smpl.face_part == part])


def test_part_names():
    assert len(PART_NAMES) == 24 == len(set(PART_NAMES)) == len(DENSEPOSE_ALONG)
    assert part_id("torso_back") == 1 and part_id("left_head") == 24
    # docs/CONVENTIONS.md pairs: 1, 2 torso; 3 right hand; 4 left hand; 5 left foot; 6 right foot; ...
    expected = {1: "torso", 2: "torso", 3: "right_hand", 4: "left_hand", 5: "left_foot", 6: "right_foot",
                7: "right_upper_leg", 9: "right_upper_leg", 8: "left_upper_leg", 10: "left_upper_leg",
                11: "right_lower_leg", 13: "right_lower_leg", 12: "left_lower_leg", 14: "left_lower_leg",
                15: "left_upper_arm", 17: "left_upper_arm", 16: "right_upper_arm", 18: "right_upper_arm",
                19: "left_lower_arm", 21: "left_lower_arm", 20: "right_lower_arm", 22: "right_lower_arm",
                23: "head", 24: "head"}  # fmt: skip
    for i, prefix in expected.items():
        assert prefix in PART_NAMES[i - 1]


def test_smpl_charts_shapes_and_ranges(smpl):
    assert smpl.vertex_smpl.shape == (7829,) and smpl.vertex_uv.shape == (7829, 2)
    assert smpl.faces.shape == (13774, 3) and smpl.face_part.shape == (13774,)
    assert smpl.vertex_smpl.dtype == smpl.faces.dtype == np.int64 and smpl.face_part.dtype == np.uint8
    assert smpl.vertex_uv.dtype == np.float32 and smpl.vertex_uv.min() >= 0 and smpl.vertex_uv.max() <= 1
    np.testing.assert_array_equal(np.unique(smpl.vertex_smpl), np.arange(6890))  # every SMPL vertex
    np.testing.assert_array_equal(np.unique(smpl.faces), np.arange(7829))
    np.testing.assert_array_equal(np.unique(smpl.face_part), np.arange(1, 25))
    assert smpl.smpl_faces.shape == (13774, 3) and smpl.smpl_faces.max() == 6889
    assert smpl.face_uv.shape == (13774, 3, 2)
    # a chart vertex has one (U, V); SMPL vertices on part seams have several chart vertices
    assert len(smpl.vertex_smpl) > 6890


@pytest.mark.parametrize("landmark", sorted(SMPL_LANDMARKS))
def test_smpl_landmarks_lie_in_their_named_parts(smpl, landmark):
    vertex, name = SMPL_LANDMARKS[landmark]
    parts = set(smpl.face_part[(smpl.smpl_faces == vertex).any(1)].tolist())
    assert parts == {part_id(name)}


def test_smpl_front_and_back_parts_chain_up(smpl):
    """Fronts border fronts and backs border backs: torso -> upper arm -> lower arm, torso -> thigh."""

    def shared(a: str, b: str) -> int:
        return len(np.intersect1d(_part_vertices(smpl, part_id(a)), _part_vertices(smpl, part_id(b))))

    for side in ("left", "right"):
        for face in ("front", "back"):
            other = "back" if face == "front" else "front"
            upper, lower = f"{side}_upper_arm_{face}", f"{side}_lower_arm_{face}"
            assert shared(upper, f"torso_{face}") > 2 * shared(upper, f"torso_{other}")
            assert shared(lower, upper) > 2 * shared(lower, f"{side}_upper_arm_{other}")
            assert shared(f"{side}_lower_leg_{face}", f"{side}_upper_leg_{face}") > 2 * shared(
                f"{side}_lower_leg_{face}", f"{side}_upper_leg_{other}")  # fmt: skip
        assert shared(f"{side}_upper_leg_back", "torso_back") > 2 * shared(f"{side}_upper_leg_back", "torso_front")


def test_smpl_heels_are_nearer_the_leg_backs_and_toes_the_fronts(smpl, smpl_graph):
    for side in ("left", "right"):
        heel, _ = SMPL_LANDMARKS[f"{side}_heel"]
        toe, _ = SMPL_LANDMARKS[f"{side}_big_toe"]
        dist = dijkstra(smpl_graph, unweighted=True, indices=[heel, toe])
        hops = {(w, face): dist[i, _part_vertices(smpl, part_id(f"{side}_lower_leg_{face}"))].min()
                for i, w in enumerate(("heel", "toe")) for face in ("front", "back")}  # fmt: skip
        assert hops["heel", "back"] < hops["heel", "front"] and hops["toe", "front"] < hops["toe", "back"]


def test_densepose_along_table_matches_the_smpl_charts(smpl, smpl_graph):
    """Which of U, V grows along each part, measured by hop distance from the torso (the head, for
    the torso itself), as recorded in DENSEPOSE_ALONG."""
    torso = np.concatenate([_part_vertices(smpl, 1), _part_vertices(smpl, 2)])
    head = np.concatenate([_part_vertices(smpl, 23), _part_vertices(smpl, 24)])
    from_torso = dijkstra(smpl_graph, unweighted=True, indices=torso, min_only=True)
    from_head = dijkstra(smpl_graph, unweighted=True, indices=head, min_only=True)
    for part, (coord, sign) in DENSEPOSE_ALONG.items():
        chart_vertices = np.unique(smpl.faces[smpl.face_part == part])
        hops = (from_head if part <= 2 else from_torso)[smpl.vertex_smpl[chart_vertices]]
        corr = [np.corrcoef(smpl.vertex_uv[chart_vertices, c], hops)[0, 1] for c in (0, 1)]
        assert sign * corr[coord] > 0.7 and abs(corr[coord]) > abs(corr[1 - coord]), (part, corr)


# ---------------------------------------------------------------------------------------------
# IUV from a raster


def test_iuv_from_raster_conventions():
    face_id = np.array([[-1, 0, 1], [1, -1, 0]], np.int32)
    bary = np.zeros((2, 3, 3), np.float32)
    bary[0, 1] = [1.0, 0.0, 0.0]
    bary[0, 2] = [0.2, 0.3, 0.5]
    bary[1, 0] = [0.0, 0.0, 1.0]
    bary[1, 2] = [0.6, 0.4, 0.0]
    raster = Raster(face_id, bary, np.where(face_id >= 0, 2.0, np.inf).astype(np.float32))
    face_part = np.array([2, 24], np.uint8)
    face_uv = np.array([[[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], [[0.2, 0.4], [0.6, 0.0], [1.0, 1.0]]], np.float32)
    iuv = iuv_from_raster(raster, face_part, face_uv)
    assert iuv.dtype == np.uint8 and iuv.shape == (2, 3, 3)
    np.testing.assert_array_equal(iuv[0, 0], 0)
    np.testing.assert_array_equal(iuv[1, 1], 0)
    np.testing.assert_array_equal(iuv[0, 1], [2, 0, 255])
    # 0.2 * (0.2, 0.4) + 0.3 * (0.6, 0.0) + 0.5 * (1, 1) = (0.72, 0.58) -> (183.6, 147.9)
    np.testing.assert_array_equal(iuv[0, 2], [24, 184, 148])
    np.testing.assert_array_equal(iuv[1, 0], [24, 255, 255])
    np.testing.assert_array_equal(iuv[1, 2], [2, 102, 153])  # (0.4, 0.6)


def test_iuv_of_a_triangle_on_an_smpl_chart(smpl):
    """Rasterise one DensePose chart face and check I and the interpolated U, V pixel by pixel."""
    f = int(np.flatnonzero(smpl.face_part == 16)[0])
    camera = PinholeCamera(fx=10.0, fy=10.0, cx=0.0, cy=0.0, width=8, height=6)
    vertices = np.array([[0.1, 0.1, 2.0], [1.3, 0.1, 2.0], [0.1, 0.9, 2.0]])  # corners (0.5, 0.5), (6.5, 0.5), (0.5, 4.5)
    raster = rasterize(vertices, np.array([[0, 1, 2]]), camera)
    iuv = iuv_from_raster(raster, smpl.face_part[[f]], smpl.face_uv[[f]])
    np.testing.assert_array_equal(iuv[..., 0], np.where(raster.mask, 16, 0))
    j, i = np.nonzero(raster.mask)
    a, b = (i - 0.5) / 6, (j - 0.5) / 4
    uv = np.stack([1 - a - b, a, b], 1) @ smpl.face_uv[f]
    assert np.abs(iuv[j, i, 1:].astype(int) - 255 * uv).max() <= 0.51


# ---------------------------------------------------------------------------------------------
# anny


@pytest.fixture(scope="module")
def charts():
    return anny_charts()


@pytest.fixture(scope="module")
def a_pose():
    from vtonpipe.models.bodies.anny import AnnyBody

    body = AnnyBody()
    with torch.no_grad():
        return body()[0].numpy().astype(np.float64), body.faces


def _render(a_pose, charts, azimuth: float, size=(384, 512)) -> np.ndarray:
    vertices, faces = a_pose
    camera, pose = frame_body(vertices, width=size[0], height=size[1], azimuth_deg=azimuth)
    return iuv_from_raster(rasterize(pose.apply(vertices), faces, camera), charts.face_part, charts.face_uv)


def test_anny_charts_shapes_and_ranges(charts):
    assert charts.face_part.shape == (27420,) and charts.face_part.dtype == np.uint8
    assert charts.face_uv.shape == (27420, 3, 2) and charts.face_uv.dtype == np.float32
    np.testing.assert_array_equal(np.unique(charts.face_part), np.arange(1, 25))
    assert charts.face_uv.min() == 0.0 and charts.face_uv.max() == 1.0
    # left and right parts are mirror images: as many faces each
    counts = np.bincount(charts.face_part, minlength=25)
    for name in PART_NAMES:
        if name.startswith("left"):
            assert counts[part_id(name)] == counts[part_id(name.replace("left", "right", 1))]


def test_anny_front_and_back_views(a_pose, charts):
    front, back = _render(a_pose, charts, 0.0), _render(a_pose, charts, 180.0)
    for iuv in (front, back):
        assert iuv.dtype == np.uint8 and iuv[..., 0].max() <= 24
        bg = iuv[..., 0] == 0
        assert bg.mean() > 0.5 and (iuv[bg] == 0).all()
    i_front, i_back = front[..., 0], back[..., 0]
    width = i_front.shape[1]

    def mean_x(i, name):
        return np.nonzero(i == part_id(name))[1].mean()

    # the person's right lands on the image left in the front view, on the image right from the back
    for name in ("right_hand", "right_upper_arm_front", "right_lower_arm_front", "right_upper_leg_front", "right_head"):
        assert mean_x(i_front, name) < width / 2 < mean_x(i_front, name.replace("right", "left"))
    for name in ("right_hand", "right_upper_arm_back", "right_lower_leg_back", "right_head"):
        assert mean_x(i_back, name) > width / 2 > mean_x(i_back, name.replace("right", "left"))
    area = {name: ((i_front == part_id(name)).sum(), (i_back == part_id(name)).sum()) for name in PART_NAMES}
    assert area["torso_front"][0] > 5000 and area["torso_front"][1] < 0.05 * area["torso_front"][0]
    assert area["torso_back"][1] > 5000 and area["torso_back"][0] == 0
    for name in PART_NAMES:
        if name.endswith("_front"):
            assert area[name][0] > area[name][1]
        if name.endswith("_back"):
            assert area[name][1] > area[name][0]
    assert set(np.unique(i_front)) | set(np.unique(i_back)) == set(range(25))


def test_anny_uv_is_continuous_inside_parts(a_pose, charts):
    """Neighbouring pixels of one part rarely differ by more than 10% of the chart in U or V: only
    at silhouettes (grazing surfaces), the hand and foot seams and the finger and toe tips."""
    for azimuth in (0.0, 180.0, 90.0):
        iuv = _render(a_pose, charts, azimuth).astype(np.int32)
        pairs = jumps = 0
        for a, b in ((iuv[1:], iuv[:-1]), (iuv[:, 1:], iuv[:, :-1])):
            same = (a[..., 0] == b[..., 0]) & (a[..., 0] > 0)
            pairs += same.sum()
            jumps += (same & (np.abs(a[..., 1:] - b[..., 1:]).max(-1) > 25)).sum()
        assert pairs > 30000 and jumps / pairs < 0.012, (azimuth, jumps / pairs)
        # and U, V really vary: each large part covers most of its chart in the view
        torso = iuv[iuv[..., 0] == (1 if azimuth == 180.0 else 2)]
        assert np.ptp(torso[:, 1]) > 150 and np.ptp(torso[:, 2]) > 100


def test_anny_charts_have_seams_only_on_hands_and_feet(a_pose, charts):
    """Faces of one part sharing an edge give its two vertices the same (u, v), but for the seams
    of the full-turn hand and foot charts and a pole in the crotch."""
    _, faces = a_pose
    corner = np.arange(3)
    edges = np.stack([faces, np.roll(faces, -1, 1)], -1).reshape(-1, 2)  # (3F, 2): corner k -> k + 1
    owner = np.repeat(np.arange(len(faces)), 3)
    local = np.stack([np.tile(corner, len(faces)), np.tile(np.roll(corner, -1), len(faces))], 1)
    key = np.sort(edges, 1)
    order = np.lexsort((key[:, 1], key[:, 0]))
    key, owner, local, edges = key[order], owner[order], local[order], edges[order]
    first = np.flatnonzero((key[1:] == key[:-1]).all(1))  # each interior edge: rows first, first + 1
    assert len(first) == len(faces) * 3 // 2  # closed mesh: every edge has two faces
    f1, f2 = owner[first], owner[first + 1]
    same_part = charts.face_part[f1] == charts.face_part[f2]
    # the uv each face gives the edge's lower-numbered vertex, and the other one
    def corners(rows):  # the face's corners of (lower-numbered vertex, higher one)
        forward = (edges[rows, 0] == key[rows, 0])[:, None]
        return np.where(forward, local[rows], local[rows][:, ::-1])

    uv1 = charts.face_uv[f1[:, None], corners(first)]
    uv2 = charts.face_uv[f2[:, None], corners(first + 1)]
    seam = same_part & (np.abs(uv1 - uv2).max((1, 2)) > 1e-4)
    parts = charts.face_part[f1[seam]]
    hands_feet = np.isin(parts, [part_id(n) for n in ("left_hand", "right_hand", "left_foot", "right_foot")])
    assert 20 < hands_feet.sum() < 0.03 * np.isin(charts.face_part[f1], [3, 4, 5, 6]).sum()
    assert (~hands_feet).sum() <= 0.001 * same_part.sum()


def test_snapping_a_render_to_the_person_mask():
    from vtonpipe.models.render.iuv import snap_to_mask

    iuv = np.zeros((6, 8, 3), np.uint8)
    iuv[1:5, 2:4] = (2, 10, 20)  # torso front
    iuv[1:5, 4] = (15, 30, 40)  # an arm's column beside it
    mask = np.zeros((6, 8), np.uint8)
    mask[1:5, 3:7] = 1  # the person one column to the right of the fit
    out = snap_to_mask(iuv, mask, 1)
    assert (out[:, 2, 0] == 0).all()  # the body outside the mask is dropped
    np.testing.assert_array_equal(out[1:5, 5], np.tile([15, 30, 40], (4, 1)))  # 1 px off: the nearest body pixel's IUV
    assert (out[:, 6] == 0).all()  # 2 px off the body: left alone at radius 1
    np.testing.assert_array_equal(out[1:5, 3:5], iuv[1:5, 3:5])
    np.testing.assert_array_equal(snap_to_mask(iuv, mask, 2)[1:5, 6, 0], [15] * 4)
    assert snap_to_mask(iuv, mask, 0) is iuv


def test_registering_a_render_to_the_person_mask_moves_its_part_boundaries():
    """A render 2 px left of the person: registered, the body follows the mask and its inner part
    boundary moves with it (the nearest-pixel fill alone leaves it where the fit put it); mask
    pixels farther than ``register`` px from the body (a loose garment) stay background."""
    from vtonpipe.models.render.iuv import snap_to_mask

    iuv = np.zeros((24, 24, 3), np.uint8)
    iuv[4:20, 4:8] = (15, 10, 20)  # an upper arm's back half ...
    iuv[4:20, 8:12] = (17, 30, 40)  # ... and its front half, the boundary at column 8
    mask = np.zeros((24, 24), np.uint8)
    mask[4:20, 6:14] = 1  # the arm 2 px to the right: its true boundary at column 10
    mask[4:20, 19:22] = 1  # a loose sleeve 7 px off the body
    snapped, registered = snap_to_mask(iuv, mask, 1), snap_to_mask(iuv, mask, 1, register=2)
    first_front = lambda out: int(np.argmax(out[12, :, 0] == 17))  # noqa: E731
    assert first_front(snapped) == 8 and first_front(registered) in (9, 10)
    np.testing.assert_array_equal(registered[..., 0] > 0, mask.astype(bool) & (np.arange(24) < 16))  # the arm's mask, not the sleeve
    assert set(np.unique(registered[..., 0])) == {0, 15, 17}
    np.testing.assert_array_equal(registered[mask == 0], 0)
    assert snap_to_mask(iuv, mask, 0, register=0) is iuv
