"""Body flow and visibility on a tiny hand-checked mesh, and 3D-GCL's o_gt (Eq. 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vtonpipe.models.bodies.camera import PinholeCamera
from vtonpipe.models.render.binned import BinnedMesh
from vtonpipe.models.render.flow import (
    BACKGROUND,
    HIDDEN,
    VISIBLE,
    body_flow,
    correspondence_ground_truth,
)
from vtonpipe.models.render.raster import rasterize

CAM = PinholeCamera(100.0, 100.0, 23.5, 15.5, 48, 32)
FACES = np.array([[0, 1, 2], [0, 2, 3]])


def square(x0, x1, y0, y1, z):
    """A camera-facing square, corners in camera coordinates (metres)."""
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], np.float64)


def test_translation_gives_constant_flow():
    target = square(-0.1, 0.1, -0.06, 0.06, 2.0)
    source = target + [0.04, 0.0, 0.0]  # 0.04 m at 2 m = 2 px to the right with fx = 100
    flow, vis = body_flow(rasterize(target, FACES, CAM), FACES, source, CAM)
    body = vis != BACKGROUND
    # the square covers x in [-0.1, 0.1] m -> pixels 23.5 +- 5 -> columns 19..28
    assert body.sum() == 10 * 6 and body[13:19, 19:29].all()
    np.testing.assert_allclose(flow[body], np.tile([2.0, 0.0], (60, 1)), atol=1e-4)
    assert (vis[body] == VISIBLE).all() and (flow[~body] == 0).all()


def test_depth_change_scales_the_flow_and_rotation_is_exact():
    target = square(-0.1, 0.1, -0.06, 0.06, 2.0)
    source = target * [1, 1, 2]  # twice as far: the image of every point halves its offset from the centre
    flow, vis = body_flow(rasterize(target, FACES, CAM), FACES, source, CAM)
    yy, xx = np.nonzero(vis == VISIBLE)
    np.testing.assert_allclose(flow[yy, xx, 0], (xx - CAM.cx) * 0.5 - (xx - CAM.cx), atol=1e-4)
    np.testing.assert_allclose(flow[yy, xx, 1], (yy - CAM.cy) * 0.5 - (yy - CAM.cy), atol=1e-4)


def test_occluded_and_out_of_image_points_are_hidden():
    target = square(-0.1, 0.1, -0.06, 0.06, 2.0)
    occluder = square(-0.2, 0.0, -0.2, 0.2, 1.0)  # covers the left half of the source square
    scene = BinnedMesh(np.concatenate([target, occluder]), np.concatenate([FACES, FACES + 4]), CAM)
    flow, vis = body_flow(rasterize(target, FACES, CAM), FACES, target, CAM, occluders=scene)
    body = vis != BACKGROUND
    cols = np.nonzero(body.any(0))[0]
    left, right = cols[cols < CAM.cx], cols[cols > CAM.cx]
    assert (vis[:, left][body[:, left]] == HIDDEN).all()
    assert (vis[:, right][body[:, right]] == VISIBLE).all()
    # moved out of the source image entirely
    far = target + [2.0, 0.0, 0.0]
    _, vis = body_flow(rasterize(target, FACES, CAM), FACES, far, CAM)
    assert (vis[body] == HIDDEN).all() and (vis[~body] == BACKGROUND).all()


def test_correspondence_ground_truth_eq4():
    h, w = 32, 48
    vis = np.full((h, w), BACKGROUND, np.uint8)
    vis[8:24, 8:32] = VISIBLE
    flow = np.zeros((h, w, 2), np.float32)
    flow[..., 0] = 8.0  # one low-res cell to the right
    o = correspondence_ground_truth(flow, vis, stride=8).to_dense()
    assert o.shape == (24, 24)
    ws = w // 8
    rows = torch.nonzero(o.sum(1)).squeeze(1).tolist()
    assert rows == [r * ws + c for r in (1, 2) for c in (1, 2, 3)]
    for i in rows:
        assert o[i, i + 1] == pytest.approx(1.0) and o[i].sum() == pytest.approx(1.0)
    # half a cell: bilinear weights split evenly; o @ G equals bilinear sampling of G
    flow[..., 0] = 4.0
    o = correspondence_ground_truth(flow, vis, stride=8).to_dense()
    g = torch.arange(24, dtype=torch.float32)[:, None]
    warped = o @ g
    for i in rows:
        assert o[i, i] == pytest.approx(0.5) and o[i, i + 1] == pytest.approx(0.5)
        assert warped[i, 0] == pytest.approx(i + 0.5)
    with pytest.raises(ValueError, match="multiple of the stride"):
        correspondence_ground_truth(flow[:30], vis[:30])
