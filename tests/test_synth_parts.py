"""Building blocks of the sample generator: mesh clipping, ray crossings, poses, garment regions,
landmark anchors, and the byte-stable ground-truth writer."""

from __future__ import annotations

import math
import zipfile

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import cKDTree

from vtonpipe.converters.landmarks import FLIP, LANDMARK_NAMES, side_ids
from vtonpipe.datasets.sample_truth import read_truth, write_truth
from vtonpipe.models.bodies.anny import AnnyBody
from vtonpipe.models.render.raster import EmbreeMesh
from vtonpipe.synth.anchors import top_anchors
from vtonpipe.synth.garments import Bottom, Fabric, Top, bottom_field, top_field
from vtonpipe.synth.geometry import clip_mesh, crossings
from vtonpipe.synth.hair import hair_curtain, rigid_fit
from vtonpipe.synth.person import DressedBody
from vtonpipe.synth.poses import POSE_NAMES, bone_rotations, sample_pose
from vtonpipe.synth.recipes import sample_person
from vtonpipe.synth.skirt import RINGS, SEGMENTS, skirt_mesh


@pytest.fixture(scope="module")
def body() -> AnnyBody:
    return AnnyBody()


@pytest.fixture(scope="module")
def dressed(body) -> DressedBody:
    return DressedBody(body, sample_person(np.random.default_rng([7, 0])))


def _area(vertices: np.ndarray, faces: np.ndarray) -> float:
    tri = vertices[faces]
    return float(0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum())


def test_clip_mesh_cuts_along_the_interpolated_zero_level():
    grid = trimesh.creation.box(extents=(2.0, 2.0, 2.0)).subdivide().subdivide()
    v, f = np.asarray(grid.vertices), np.asarray(grid.faces)
    field = 0.3 - v[:, 0]  # keep x < 0.3 (a plane through no vertex)
    clipped = clip_mesh(v, f, field)
    # the kept surface: the x = -1 face, and 1.3 / 2 of the four faces along x
    assert _area(clipped.vertices, clipped.faces) == pytest.approx(4.0 + 4 * 4.0 * 1.3 / 2, rel=1e-9)
    assert clipped.vertices[:, 0].max() == pytest.approx(0.3)
    # every clipped point is the same point of its parent face
    face = np.arange(len(clipped.faces))
    bary = np.full((len(face), 3), 1 / 3)
    parent, pbary = clipped.parent_bary(face, bary)
    centroids = clipped.vertices[clipped.faces].mean(1)
    np.testing.assert_allclose(np.einsum("nk,nkd->nd", pbary, v[f[parent]]), centroids, atol=1e-12)
    # orientation kept: each clipped face's normal agrees with its parent's
    def normals(vv, ff):
        return np.cross(vv[ff[:, 1]] - vv[ff[:, 0]], vv[ff[:, 2]] - vv[ff[:, 0]])

    assert (np.einsum("nd,nd->n", normals(clipped.vertices, clipped.faces), normals(v, f)[parent]) > 0).all()


def test_ray_crossings_count_surfaces_on_the_segment():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    caster = EmbreeMesh(np.asarray(sphere.vertices), np.asarray(sphere.faces))
    origins = np.array([[0.0, 0.0, -3.0]] * 4)
    targets = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 3.0], [0.0, 0.0, -2.0], [0.0, 0.3, 0.5]])
    np.testing.assert_array_equal(crossings(caster, origins, targets), [1, 2, 0, 1])
    np.testing.assert_allclose(caster.first_hit(origins[:1], np.array([[0.0, 0.0, 1.0]])), [2.0], atol=2e-3)


def test_rigid_fit_recovers_a_motion():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 3))
    R = trimesh.transformations.rotation_matrix(0.7, [0.3, -1.0, 0.2])[:3, :3]
    t = np.array([0.1, -0.4, 2.0])
    R_fit, t_fit = rigid_fit(points, points @ R.T + t)
    np.testing.assert_allclose(R_fit, R, atol=1e-12)
    np.testing.assert_allclose(t_fit, t, atol=1e-12)


def _keypoints(body: AnnyBody, name: str, seed: int = 0, turn: float = 0.0) -> dict[str, np.ndarray]:
    pose = body.pose_from_named(bone_rotations(sample_pose(name, np.random.default_rng(seed), turn), 0.733))
    with torch.no_grad():
        k = body.openpose18(body(pose=pose, global_rot=(0.0, 0.0, turn)))[0].numpy()
    names = ("nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist", "r_hip", "r_knee",
             "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear")  # fmt: skip
    return dict(zip(names, k))


@pytest.mark.parametrize("seed", [0, 1])
def test_named_poses_look_like_their_names(body, seed):
    k = _keypoints(body, "arms_down", seed)
    for s in "lr":
        assert k[f"{s}_wrist"][2] < k[f"{s}_hip"][2] + 0.15 and abs(k[f"{s}_wrist"][0]) < 0.32  # hanging by the sides
    k = _keypoints(body, "t_pose", seed)
    for s in "lr":
        assert abs(k[f"{s}_wrist"][2] - k[f"{s}_shoulder"][2]) < 0.15 and abs(k[f"{s}_wrist"][0]) > 0.5
    k = _keypoints(body, "arms_overhead", seed)
    for s in "lr":
        assert k[f"{s}_wrist"][2] > k["nose"][2] + 0.1
    k = _keypoints(body, "hands_on_hips", seed)
    for s in "lr":
        assert np.linalg.norm(k[f"{s}_wrist"] - k[f"{s}_hip"]) < 0.25 and abs(k[f"{s}_elbow"][0]) > abs(k[f"{s}_wrist"][0])
    k = _keypoints(body, "wave", seed)
    assert max(k["l_wrist"][2], k["r_wrist"][2]) > k["neck"][2] > min(k["l_wrist"][2], k["r_wrist"][2])
    k = _keypoints(body, "walking", seed)
    assert abs(k["l_ankle"][1] - k["r_ankle"][1]) > 0.2  # one foot in front of the other
    # turning by 45 degrees to the person's left moves the nose towards +X
    assert _keypoints(body, "a_pose", seed, turn=math.pi / 4)["nose"][0] > 0.07


def test_pose_recipes_are_reproducible_and_named():
    a = sample_pose("wave", np.random.default_rng(3))
    assert a == sample_pose("wave", np.random.default_rng(3)) and a != sample_pose("wave", np.random.default_rng(4))
    assert {sample_pose(n, np.random.default_rng(0)).name for n in POSE_NAMES} == set(POSE_NAMES)
    with pytest.raises(ValueError, match="unknown pose"):
        sample_pose("cartwheel", np.random.default_rng(0))


def _covers(field: np.ndarray, f, bone_point: np.ndarray) -> bool:
    """Is the rest vertex nearest to ``bone_point`` inside the region?"""
    return bool(field[np.argmin(np.linalg.norm(f.rest - bone_point, axis=1))] > 0)


def test_garment_regions_cover_what_their_kind_covers(dressed):
    f = dressed.fields
    j = f.joints
    solid = Fabric("solid", (200, 0, 0), (200, 0, 0), 0.05)
    chest = np.array([0.0, -0.12, j["upperarm01.L"][2] - 0.12])
    mid_upper_arm = 0.5 * (j["upperarm01.L"] + j["lowerarm01.L"])
    forearm = 0.5 * (j["lowerarm01.L"] + j["wrist.L"])
    for category, sleeve, covered, bare in [
        ("tee", 0.4, [chest, mid_upper_arm], [forearm, j["head"], j["finger3-1.L"]]),
        ("long_sleeve", 0.95, [chest, mid_upper_arm, forearm], [j["finger3-1.L"], j["head"]]),
        ("sleeveless", 0.0, [chest], [mid_upper_arm, forearm, j["head"]]),
    ]:
        field = top_field(f, Top(category, "crew", -0.05, sleeve, solid))
        assert all(_covers(field, f, p) for p in covered), category
        assert not any(_covers(field, f, p) for p in bare), category
        assert not _covers(field, f, j["lowerleg01.L"])
    knee, shin = j["lowerleg01.L"], 0.5 * (j["lowerleg01.L"] + j["foot.L"])
    trousers = bottom_field(f, Bottom("trousers", 0.1, 0.95, solid))
    shorts = bottom_field(f, Bottom("shorts", 0.1, 0.3, solid))
    assert _covers(trousers, f, knee) and _covers(trousers, f, shin) and not _covers(trousers, f, chest)
    assert _covers(shorts, f, j["upperleg02.L"]) and not _covers(shorts, f, knee)
    assert not _covers(trousers, f, j["finger3-1.L"])  # hands hang by the thighs in the rest pose


#: the landmark ids each top of the sample has: tees' sleeves end between the mid upper arm and the elbow
SLEEVE_IDS = {section: [ids[f"{section}_{edge}"] for ids in (side_ids("left"), side_ids("right")) for edge in ("exterior", "interior")]
              for section in ("upper_arm", "elbow", "lower_arm", "sleeve_end")}  # fmt: skip
BODY_IDS = [*range(9), 17, 18, *range(27, 32)]
EXPECTED_PRESENT = {
    "tee": sorted(BODY_IDS + SLEEVE_IDS["upper_arm"] + SLEEVE_IDS["sleeve_end"]),
    "long_sleeve": sorted(BODY_IDS + sum(SLEEVE_IDS.values(), [])),
    "sleeveless": BODY_IDS,
}


@pytest.mark.parametrize("category", ["tee", "long_sleeve", "sleeveless"])
def test_landmark_anchors_sit_where_their_names_say(dressed, category):
    f = dressed.fields
    j = f.joints
    top = Top(category, "v", -0.05, {"tee": 0.4, "long_sleeve": 0.95, "sleeveless": 0.0}[category], Fabric("solid", (0, 0, 0), (0, 0, 0), 0.05))
    field = top_field(f, top)
    anchors = top_anchors(f, dressed.faces, field, category)
    np.testing.assert_array_equal(np.flatnonzero(anchors.present), EXPECTED_PRESENT[category])
    p = anchors.points(f.rest)
    # on the region (its boundary or inside): the field interpolated at each anchor is >= 0
    value = (1 - anchors.t) * field[anchors.i] + anchors.t * field[anchors.j]
    assert (value[anchors.present] > -1e-9).all()
    for k in EXPECTED_PRESENT[category]:
        name = LANDMARK_NAMES[k]
        if name.endswith("_left"):
            assert p[k, 0] > 0.005, name  # the person's left is +X
        elif name.endswith("_right"):
            assert p[k, 0] < -0.005, name
        # the rest body is symmetric: each point mirrors its FLIP partner
        np.testing.assert_allclose(p[FLIP[k]], p[k] * [-1, 1, 1], atol=0.012, err_msg=name)
    assert p[0, 1] > j["neck01"][1] > p[3, 1]  # the collar's back point behind the neck, the neck bottom in front
    assert p[1, 0] > p[2, 0] > p[3, 0] > p[4, 0] > p[5, 0] > p[6, 0]  # the front neckline from left to right
    assert p[1, 2] > p[2, 2] > p[3, 2]  # ... going down to its bottom
    assert p[3, 2] > p[27, 2] > p[29, 2] and p[3, 2] > p[30, 2]  # neckline above the waist above the hem
    assert p[7, 2] > p[8, 2] and p[17, 2] > p[18, 2]  # shoulders above the armpits
    for side, s in (("left", 1), ("right", -1)):
        ids = side_ids(side)
        sections = [sec for sec in ("upper_arm", "elbow", "lower_arm", "sleeve_end") if anchors.present[ids[f"{sec}_exterior"]]]
        along = [s * p[ids[f"{sec}_exterior"], 0] for sec in sections]
        assert along == sorted(along), side  # sections in order out along the arm
        for sec in sections:  # the exterior edge is above the interior one on the rest arm (42 degrees out)
            assert p[ids[f"{sec}_exterior"], 2] > p[ids[f"{sec}_interior"], 2], (side, sec)


def test_skirt_faces_outwards_and_never_narrows(body):
    with torch.no_grad():
        v = body(pose=body.pose_from_named(bone_rotations(sample_pose("walking", np.random.default_rng(0)), 0.733)))[0].numpy()
    arm = body.dense_skin_weights()[:, [i for i, b in enumerate(body.bone_labels) if b.startswith(("upperarm", "lowerarm", "wrist", "finger", "metacarpal"))]].sum(1)
    covered = (v[:, 2] < 0.0) & (v[:, 2] > -0.5) & (arm < 0.5)
    verts, faces, uv = skirt_mesh(v, covered, np.zeros(2), 0.0, -0.4, 0.05)
    tri = verts[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    outward = tri.mean(1) * [1, 1, 0]
    assert (np.einsum("nd,nd->n", normal, outward) > 0).mean() > 0.99
    radius = np.linalg.norm(verts[:, :2], axis=1).reshape(RINGS, SEGMENTS)
    assert (radius[1:] >= 0.97 * radius[:-1]).all()  # only the folds' 2.5% may narrow a ring
    # the legs in the skirt's height range are inside it
    column = np.minimum((np.arctan2(v[:, 0], -v[:, 1]) % (2 * np.pi) / (2 * np.pi) * SEGMENTS).astype(int), SEGMENTS - 1)
    row = np.clip(np.rint(-v[:, 2] / 0.4 * (RINGS - 1)).astype(int), 0, RINGS - 1)
    legs = covered & (v[:, 2] < -0.05)
    assert (np.linalg.norm(v[legs, :2], axis=1) < radius[row[legs], column[legs]]).mean() > 0.99
    assert uv.shape == (len(verts), 2)


def test_hair_curtain_hangs_outside_the_head_and_faces_outwards(dressed):
    f = dressed.fields
    verts, faces, carriers = hair_curtain(f, 0.1)
    ear = 0.5 * (f.joints["coco:left_ear"] + f.joints["coco:right_ear"])
    tri = verts[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert (np.einsum("nd,nd->n", normal, (tri.mean(1) - ear) * [1, 1, 0]) > 0).all()
    head = f.rest[(f.head + f.neck) > 0.5]
    assert cKDTree(head).query(verts)[0].min() > 0.005  # never inside the head or neck
    assert verts[:, 2].min() == pytest.approx(ear[2] - 0.1) and (f.head[carriers] > 0.9).all()
    assert (verts[:, 1] > f.joints["eye.L"][1] + 0.04).all()  # the face stays open


def test_ground_truth_files_are_byte_stable(tmp_path, monkeypatch):
    arrays = {"garment_mask": np.eye(4, 3, dtype=np.uint8), "landmarks": np.zeros((32, 3), np.float32), "garment_category": "tee"}
    write_truth(tmp_path / "a.npz", "garment", arrays)
    later = zipfile.time.time() + 3600.0
    monkeypatch.setattr(zipfile.time, "time", lambda: later)  # an hour later
    write_truth(tmp_path / "b.npz", "garment", arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = read_truth(tmp_path / "b.npz")
    assert back["kind"] == "garment" and back["garment_category"] == "tee"
    np.testing.assert_array_equal(back["garment_mask"], arrays["garment_mask"])
    with pytest.raises(ValueError, match="missing"):
        write_truth(tmp_path / "c.npz", "garment", {"landmarks": arrays["landmarks"]})
