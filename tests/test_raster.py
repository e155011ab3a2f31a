"""Cameras and the two rasteriser backends: exact hand-made cases, and agreement on an anny body."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vtonpipe.models.bodies.camera import (
    PinholeCamera,
    RigidTransform,
    frame_body,
    look_at,
)
from vtonpipe.models.render.raster import EmbreeMesh, rasterize

BACKENDS = ("embree", "binned", "torch")
# Embree computes barycentrics in float32 from the camera centre: about 1e-3 on the anny body
BARY_TOL = {"embree": 2e-3, "binned": 1e-6, "torch": 2e-5}


def _hits_by_hand(vertices: np.ndarray, camera: PinholeCamera):
    """Per pixel centre: does its ray hit the triangle, the barycentrics and depth (float64 solve)."""
    rays = camera.pixel_rays().astype(np.float64)  # (H, W, 3), Z = 1
    # t * d = l0 v0 + l1 v1 + l2 v2, l0 + l1 + l2 = 1  <=>  [v0 v1 v2 | -d] [l, t] = 0 with a sum row
    h, w = rays.shape[:2]
    bary, depth = np.zeros((h, w, 3)), np.full((h, w), np.inf)
    for j in range(h):
        for i in range(w):
            a = np.zeros((4, 4))
            a[:3, :3], a[:3, 3], a[3, :3] = vertices.T, -rays[j, i], 1.0
            sol = np.linalg.solve(a, [0.0, 0.0, 0.0, 1.0])
            if (sol[:3] >= 0).all() and sol[3] > 0:
                bary[j, i], depth[j, i] = sol[:3], sol[3]
    return np.isfinite(depth), bary, depth


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_triangle_covers_the_pixel_centres_inside_it(backend):
    # fronto-parallel at Z = 2, projecting to the corners (0.5, 0.5), (6.5, 0.5), (0.5, 4.5):
    # pixel (i, j) is covered iff i >= 1, j >= 1 and (i - 0.5) / 6 + (j - 0.5) / 4 <= 1 (no centre
    # lies on an edge), with barycentrics (1 - a - b, a, b), a = (i - 0.5) / 6, b = (j - 0.5) / 4
    camera = PinholeCamera(fx=10.0, fy=10.0, cx=0.0, cy=0.0, width=8, height=6)
    corners = np.array([[0.5, 0.5], [6.5, 0.5], [0.5, 4.5]])
    vertices = np.c_[corners / 10.0 * 2.0, np.full(3, 2.0)]
    r = rasterize(vertices, np.array([[0, 1, 2]]), camera, backend=backend)

    j, i = np.mgrid[0:6, 0:8]
    a, b = (i - 0.5) / 6, (j - 0.5) / 4
    inside = (i >= 1) & (j >= 1) & (a + b <= 1)
    assert inside.sum() == 12  # 5 + 4 + 2 + 1 pixels in rows 1 to 4
    assert r.face_id.dtype == np.int32 and r.bary.dtype == np.float32 and r.depth.dtype == np.float32
    np.testing.assert_array_equal(r.face_id, np.where(inside, 0, -1))
    np.testing.assert_allclose(r.bary[inside], np.stack([1 - a - b, a, b], -1)[inside], atol=1e-5)
    np.testing.assert_array_equal(r.bary[~inside], 0.0)
    np.testing.assert_allclose(r.depth[inside], 2.0, rtol=1e-6)
    assert np.isinf(r.depth[~inside]).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "vertices",
    [
        [[-0.9, -0.6, 1.0], [1.1, -0.2, 3.0], [-0.1, 0.9, 2.0]],  # tilted: perspective-correct barycentrics
        [[-0.5, -0.4, 1.0], [0.8, -0.1, -1.0], [0.0, 0.7, 2.0]],  # one corner behind the camera
    ],
)
def test_tilted_and_near_plane_crossing_triangles_match_an_exact_solve(backend, vertices):
    camera = PinholeCamera(fx=6.0, fy=6.0, cx=5.3, cy=4.1, width=11, height=9)
    vertices = np.array(vertices)
    hit, bary, depth = _hits_by_hand(vertices, camera)
    r = rasterize(vertices, np.array([[0, 1, 2]]), camera, backend=backend)
    assert 10 < hit.sum() < hit.size
    np.testing.assert_array_equal(r.mask, hit)
    np.testing.assert_allclose(r.bary[hit], bary[hit], atol=1e-5)
    np.testing.assert_allclose(r.depth[hit], depth[hit], rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_triangles_behind_edge_on_or_degenerate_are_never_hit(backend):
    camera = PinholeCamera(fx=5.0, fy=5.0, cx=4.0, cy=4.0, width=9, height=9)
    vertices = np.array([
        [-1.0, -1.0, -1.0], [1.0, -1.0, -2.0], [0.0, 1.0, -1.5],  # behind the camera
        [0.0, -1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 3.0],  # in the plane X = 0, through the centre
        [-1.0, 0.0, 2.0], [0.0, 0.0, 2.0], [1.0, 0.0, 2.0],  # collinear corners
        [0.3, 0.3, 1.0], [0.3, 0.3, 1.0], [0.3, 0.3, 1.0],  # one point
    ])  # fmt: skip
    r = rasterize(vertices, np.arange(12).reshape(4, 3), camera, backend=backend)
    assert not r.mask.any()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_nearest_face_wins_whatever_the_order(backend):
    camera = PinholeCamera(fx=4.0, fy=4.0, cx=3.5, cy=3.5, width=8, height=8)
    far = np.array([[-3.0, -3.0, 4.0], [3.0, -3.0, 4.0], [0.0, 3.0, 4.0]])
    near = far * [0.25, 0.25, 0.5]  # covers the middle of the image at Z = 2
    for order, near_id in (((far, near), 1), ((near, far), 0)):
        r = rasterize(np.concatenate(order), np.array([[0, 1, 2], [3, 4, 5]]), camera, backend=backend)
        # pixel centres (3, 3) and (4, 3) lie inside the near face's projection (2, 2), (5, 2), (3.5, 5)
        assert (r.face_id[3, 3:5] == near_id).all()
        np.testing.assert_allclose(r.depth[3, 3:5], 2.0, rtol=1e-6)
        far_only = np.isclose(r.depth, 4.0, rtol=1e-6)
        assert far_only.sum() >= 8 and (r.face_id[far_only] == 1 - near_id).all()


def test_interpolated_hit_points_project_onto_the_pixel_centres(anny_view):
    vertices_cam, faces, camera = anny_view
    r = rasterize(vertices_cam, faces, camera, backend="torch")
    points = r.interpolate(vertices_cam.astype(np.float32), faces)  # (H, W, 3)
    ys, xs = np.nonzero(r.mask)
    np.testing.assert_allclose(camera.project(points[ys, xs]), np.c_[xs, ys], atol=2e-3)
    np.testing.assert_allclose(points[ys, xs, 2], r.depth[ys, xs], rtol=1e-5)
    assert (points[~r.mask] == 0).all()


@pytest.fixture(scope="module")
def anny_view(anny_body):
    vertices = anny_body()[0].detach().numpy().astype(np.float64)
    camera, pose = frame_body(vertices, width=192, height=256, azimuth_deg=30.0)
    return pose.apply(vertices), anny_body.faces, camera


@pytest.fixture(scope="module")
def anny_body():
    from vtonpipe.models.bodies.anny import AnnyBody

    return AnnyBody()


@pytest.mark.parametrize("backend", ["torch", "binned"])
@pytest.mark.parametrize("size", [(192, 256), (384, 512)])
def test_backends_agree_on_an_anny_body(anny_body, size, backend):
    vertices = anny_body(pose={"upperarm01.L": (0.0, -0.9, 0.0), "lowerarm01.R": (-0.5, 0.0, 1.0)})[0].detach().numpy()
    camera, pose = frame_body(vertices, width=size[0], height=size[1], azimuth_deg=-20.0, elevation_deg=10.0)
    vertices_cam = pose.apply(vertices.astype(np.float64))
    ref = rasterize(vertices_cam, anny_body.faces, camera, backend="embree")
    out = rasterize(torch.as_tensor(vertices_cam), torch.as_tensor(anny_body.faces), camera, backend=backend)
    assert ref.mask.mean() > 0.15
    same = ref.face_id == out.face_id
    assert same.mean() >= 0.999 and same[ref.mask | out.mask].mean() >= 0.99
    both = same & ref.mask
    np.testing.assert_allclose(out.bary[both], ref.bary[both], atol=BARY_TOL["embree"])
    np.testing.assert_allclose(out.depth[both], ref.depth[both], rtol=1e-5)
    assert (ref.mask ^ out.mask).sum() <= 0.001 * ref.mask.sum()


def test_one_embree_scene_renders_several_views(anny_body):
    vertices = anny_body()[0].detach().numpy().astype(np.float64)
    mesh = EmbreeMesh(vertices, anny_body.faces)
    for azimuth in (0.0, 135.0):
        camera, pose = frame_body(vertices, width=96, height=128, azimuth_deg=azimuth)
        shared = mesh.rasterize(camera, pose)
        own = rasterize(pose.apply(vertices), anny_body.faces, camera)
        assert (shared.face_id == own.face_id).mean() > 0.999
        both = (shared.face_id == own.face_id) & own.mask
        np.testing.assert_allclose(shared.depth[both], own.depth[both], rtol=1e-5)


def test_binned_casts_through_any_image_point_and_crossing_faces():
    from vtonpipe.models.render.binned import BinnedMesh

    camera = PinholeCamera(10.0, 10.0, 3.5, 2.5, 8, 6)
    # a fronto-parallel triangle at Z = 2 covering x in [0.5, 6.5], y in [0.5, 4.5] of the image, and
    # behind it at Z ~ 4 a big one whose third corner lies behind the camera (it crosses Z = 0)
    vertices = np.array([[-0.6, -0.4, 2.0], [0.6, -0.4, 2.0], [-0.6, 0.4, 2.0], [-50.0, -1.0, 4.0], [50.0, -1.0, 4.0], [0.0, 100.0, -1.0]])
    mesh = BinnedMesh(vertices, np.array([[0, 1, 2], [3, 4, 5]]), camera)
    xs, ys = np.array([1.25, 4.0, 6.49, 2.0]), np.array([1.0, 1.5, 4.4, 3.0])
    face, bary, depth = mesh.cast(xs, ys)
    # in the near triangle's coordinates u = (x - 0.5) / 6, v = (y - 0.5) / 4, (6.49, 4.4) lies beyond u + v = 1
    assert face.tolist() == [0, 0, 1, 0]
    np.testing.assert_allclose(depth[[0, 1, 3]], 2.0, rtol=1e-6)
    u = (xs[0] - 0.5) / 6.0  # the near triangle's barycentrics at (1.25, 1.0): v1 weight along x, v2 along y
    v = (ys[0] - 0.5) / 4.0
    np.testing.assert_allclose(bary[0], [1 - u - v, u, v], atol=1e-6)
    # the far plane Z = 4 - 5 (Y + 1) / 101 along the ray Y = Z (y - cy) / fy
    np.testing.assert_allclose(depth[2], (4 - 5 / 101) / (1 + 5 * 0.19 / 101), rtol=1e-6)
    with pytest.raises(ValueError, match="must lie in"):
        mesh.cast(np.array([8.0]), np.array([1.0]))


@pytest.mark.parametrize("flip", [False, True])
def test_closed_mesh_drops_its_back_faces_and_hits_the_same_faces(anny_body, flip):
    """A closed body seen from outside: only faces turned to the camera are ever the nearest hit,
    whichever way the mesh is wound (``flip`` reverses every face)."""
    from vtonpipe.models.render.binned import BOXED, BinnedMesh

    vertices = anny_body(pose={"upperarm01.L": (0.0, -0.9, 0.0), "lowerarm01.R": (-0.5, 0.0, 1.0)})[0].detach().numpy()
    camera, pose = frame_body(vertices, width=192, height=256, azimuth_deg=-20.0, elevation_deg=10.0)
    vertices_cam, faces = pose.apply(vertices.astype(np.float64)), anny_body.faces[:, ::-1] if flip else anny_body.faces
    every, closed = BinnedMesh(vertices_cam, faces, camera), BinnedMesh(vertices_cam, faces, camera, closed=True)
    kept, all_ = (closed._state == BOXED).sum(), (every._state == BOXED).sum()
    assert 0.4 * all_ < kept < 0.6 * all_
    a, b = every.rasterize(), closed.rasterize()
    assert a.mask.mean() > 0.15 and np.array_equal(a.face_id, b.face_id)
    np.testing.assert_array_equal(a.depth, b.depth)
    ys, xs = np.nonzero(a.mask)
    points = (xs + 0.3, ys - 0.2)  # rays through other points than the pixel centres
    for x, y in zip(every.cast(*points), closed.cast(*points)):
        np.testing.assert_array_equal(x, y)


def test_unknown_backend_is_refused():
    camera = PinholeCamera(1.0, 1.0, 0.0, 0.0, 2, 2)
    with pytest.raises(ValueError, match="unknown raster backend"):
        rasterize(np.zeros((3, 3)), np.array([[0, 1, 2]]), camera, backend="opengl")


# ---------------------------------------------------------------------------------------------
# cameras


def test_projection_follows_the_conventions_in_numpy_and_torch():
    camera = PinholeCamera(fx=500.0, fy=400.0, cx=95.5, cy=127.5, width=192, height=256)
    points = np.array([[0.0, 0.0, 3.0], [0.3, -0.2, 2.0]])
    expected = np.array([[95.5, 127.5], [500 * 0.15 + 95.5, -400 * 0.1 + 127.5]])
    np.testing.assert_allclose(camera.project(points), expected)
    t = torch.tensor(points, requires_grad=True)
    projected = camera.project(t)
    np.testing.assert_allclose(projected.detach().numpy(), expected)
    projected[1, 0].backward()  # d(fx X / Z) / d(X, Y, Z) = (fx / Z, 0, -fx X / Z^2)
    np.testing.assert_allclose(t.grad[1].numpy(), [250.0, 0.0, -500 * 0.3 / 4])
    np.testing.assert_allclose(camera.K @ points[1] / points[1, 2], [*expected[1], 1.0])


def test_scaled_camera_keeps_pixel_edges_and_projects_consistently():
    camera = PinholeCamera(fx=300.0, fy=310.0, cx=95.5, cy=127.5, width=192, height=256)
    big = camera.scaled(4)
    assert (big.width, big.height) == (768, 1024)
    points = np.array([[0.1, 0.4, 2.5], [-0.3, -0.6, 3.0]])
    np.testing.assert_allclose(big.project(points), 4 * (camera.project(points) + 0.5) - 0.5)
    # the image edges -0.5 and W - 0.5 map onto each other
    assert 4 * (-0.5 + 0.5) - 0.5 == -0.5 and 4 * (camera.width - 0.5 + 0.5) - 0.5 == big.width - 0.5
    with pytest.raises(ValueError, match="whole number"):
        camera.scaled(0.3)


def test_rigid_transforms_and_look_at():
    pose = look_at(np.array([0.0, -3.0, 1.0]), np.array([0.0, 0.0, 1.0]), up=np.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(pose.R @ pose.R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(pose.R) > 0
    np.testing.assert_allclose(pose.apply(np.array([0.0, 0.0, 1.0])), [0.0, 0.0, 3.0])  # target on the axis
    np.testing.assert_allclose(pose.apply(np.array([0.0, 0.0, 2.0])), [0.0, -1.0, 3.0])  # up is image up (-y)
    np.testing.assert_allclose(pose.apply(np.array([1.0, 0.0, 1.0])), [1.0, 0.0, 3.0])  # +X is image right
    np.testing.assert_allclose(pose.inverse().apply(pose.apply(np.array([0.2, 0.5, -1.0]))), [0.2, 0.5, -1.0])
    np.testing.assert_allclose(pose.matrix @ [1.0, 2.0, 3.0, 1.0], [*pose.apply(np.array([1.0, 2.0, 3.0])), 1.0])
    t = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    np.testing.assert_allclose(pose.apply(t).numpy(), pose.apply(t.numpy()))
    assert isinstance(RigidTransform(np.eye(3), np.zeros(3)).apply(t), torch.Tensor)


@pytest.mark.parametrize("azimuth", [0.0, 90.0, 180.0, 250.0])
@pytest.mark.parametrize("size", [(192, 256), (384, 512), (768, 1024)])
def test_frame_body_fits_the_person_with_its_margin(anny_body, azimuth, size):
    vertices = anny_body()[0].detach().numpy().astype(np.float64)
    width, height = size
    camera, pose = frame_body(vertices, width=width, height=height, azimuth_deg=azimuth, margin=0.05)
    xy = camera.project(pose.apply(vertices))
    lo, hi = xy.min(0), xy.max(0)
    pad = np.array([0.05 * width, 0.05 * height])
    edges = np.array([-0.5, -0.5]), np.array([width - 0.5, height - 0.5])
    assert (lo >= edges[0] + pad - 1e-6).all() and (hi <= edges[1] - pad + 1e-6).all()
    # tight: a standing person fills the height up to the margin, and is centred
    np.testing.assert_allclose([lo[1] - edges[0][1], edges[1][1] - hi[1]], pad[1], rtol=1e-4)
    np.testing.assert_allclose((lo + hi) / 2, [camera.cx, camera.cy], atol=1e-3 * height)


def test_frame_body_azimuth_sees_the_right_side():
    # a front view puts the person's left (+X) on the image right; 90 degrees looks at their left side
    points = np.array([[0.2, 0.0, 0.0], [-0.2, 0.0, 0.0], [0.0, -0.1, 0.0], [0.0, 0.0, 0.9], [0.0, 0.0, -0.9]])
    camera, pose = frame_body(points, width=192, height=256, azimuth_deg=0.0)
    left, right, front = pose.apply(points)[:3]
    assert camera.project(left)[0] > camera.project(right)[0] and front[2] < left[2]
    camera, pose = frame_body(points, width=192, height=256, azimuth_deg=90.0)
    left, right = pose.apply(points)[:2]
    assert left[2] < right[2]  # the left side is nearer
    camera, pose = frame_body(points, width=192, height=256, elevation_deg=30.0)
    forward = pose.R[2]  # the optical axis in the body frame: towards +Y (the front), 30 degrees down
    np.testing.assert_allclose(forward, [0.0, np.cos(np.radians(30.0)), -np.sin(np.radians(30.0))], atol=1e-12)
