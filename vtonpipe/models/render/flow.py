"""Dense correspondence between two posed bodies of the same mesh topology.

For every target-image pixel on the body, the surface point under it (triangle + barycentrics)
is found on the source body, projected into the source image, and tested for occlusion by casting
the source camera's ray to it: this gives 3D-GCL's SMPL flow and DIAF's three-state visibility. Flows follow
docs/CONVENTIONS.md: on the target grid, ``flow[y, x] = (x_s - x, y_s - y)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import torch

from ..bodies.camera import PinholeCamera
from .binned import BinnedMesh
from .iuv import hidden_hands
from .raster import Raster
from .snap import snap_sources, variational_refinement

VISIBLE, HIDDEN, BACKGROUND = 0, 1, 2


@numba.njit(cache=True, nogil=True)
def _project_hits(face_id, bary, faces, vertices, fx, fy, cx, cy):
    """Source-image position ``(x, y)`` px and depth ``Z`` (float64 (N,) each) of the surface points
    ``sum_k bary[n, k] vertices[faces[face_id[n], k]]``; x, y are inf or nan where ``Z <= 0``."""
    n = len(face_id)
    xs, ys, zs = np.empty(n), np.empty(n), np.empty(n)
    for q in range(n):
        f = face_id[q]
        px = py = pz = 0.0
        for k in range(3):
            v, b = faces[f, k], np.float64(bary[q, k])
            px += b * vertices[v, 0]
            py += b * vertices[v, 1]
            pz += b * vertices[v, 2]
        zs[q] = pz
        xs[q] = fx * px / pz + cx if pz != 0.0 else (np.nan if px == 0.0 else np.copysign(np.inf, px * fx))
        ys[q] = fy * py / pz + cy if pz != 0.0 else (np.nan if py == 0.0 else np.copysign(np.inf, py * fy))
    return xs, ys, zs


@dataclass(frozen=True)
class HandsBehind:
    """A source body's hands that its photo shows behind the body (:func:`hands_behind_body`):
    their ``faces`` (F,) bool, the body without them (``without``, a :class:`BinnedMesh` for the
    source camera) and the source pixels (Hs, Ws) bool they cover as fitted (``pixels``)."""

    faces: np.ndarray
    without: BinnedMesh
    pixels: np.ndarray


def body_flow(
    target: Raster,
    faces: np.ndarray,
    source_vertices: np.ndarray,
    source_camera: PinholeCamera,
    *,
    occluders: BinnedMesh | None = None,
    hands_behind: HandsBehind | None = None,
    depth_tolerance: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray]:
    """Flow (H, W, 2) float32 and visibility (H, W) uint8 from the target image to the source.

    ``target``: raster of the target body in the target image; ``source_vertices`` (V, 3): the
    source body's vertices in the source camera frame (same topology ``faces`` (F, 3)). A target
    pixel's surface point is *visible* in the source when it projects inside the source image and
    the source camera's ray to it meets no surface more than ``depth_tolerance`` metres before it
    (exact ray casting against ``occluders``, a :class:`BinnedMesh` for the source camera; default:
    the source body itself); otherwise it is *hidden* (self-occluded or outside). Background
    pixels get visibility 2 and zero flow. ``hands_behind``: the source's hands the photo shows
    behind its body (:class:`HandsBehind`): their surface points are hidden, and a ray through
    their pixels (the pixel a point rounds to) is cast against the body without them, so they
    hide nothing.
    """
    h, w = target.face_id.shape
    hit = target.mask
    yy, xx = np.nonzero(hit)
    xs, ys, z = _project_hits(target.face_id[hit], target.bary[hit], faces, source_vertices, source_camera.fx, source_camera.fy, source_camera.cx, source_camera.cy)
    flow = np.zeros((h, w, 2), np.float32)
    flow[yy, xx, 0] = xs - xx
    flow[yy, xx, 1] = ys - yy

    inside = (z > 0) & (xs >= -0.5) & (xs < source_camera.width - 0.5) & (ys >= -0.5) & (ys < source_camera.height - 0.5)
    visible = np.zeros(len(z), bool)
    if inside.any():
        occluders = occluders or BinnedMesh(source_vertices, faces, source_camera)
        x, y = xs[inside], ys[inside]
        first_z = occluders.cast(x, y)[2].astype(np.float64)
        if hands_behind is not None:
            through = hands_behind.pixels[np.rint(y).astype(np.int64), np.rint(x).astype(np.int64)]
            if through.any():
                first_z[through] = hands_behind.without.cast(x[through], y[through])[2]
        # along the ray through (x, y) a point at depth Z lies Z * |d| away, d = ((x - cx)/fx, (y - cy)/fy, 1)
        ray_length = np.sqrt(((x - source_camera.cx) / source_camera.fx) ** 2 + ((y - source_camera.cy) / source_camera.fy) ** 2 + 1.0)
        visible[inside] = (z[inside] - first_z) * ray_length <= depth_tolerance
    if hands_behind is not None:
        visible &= ~hands_behind.faces[target.face_id[hit]]

    visibility = np.full((h, w), BACKGROUND, np.uint8)
    visibility[hit] = np.where(visible, VISIBLE, HIDDEN)
    return flow, visibility


def hand_pixels(raster: Raster, hand_face: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels whose hit face is a hand face (``hand_face`` (F,) bool)."""
    hit = raster.face_id >= 0
    return hit & hand_face[np.where(hit, raster.face_id, 0)]


def hands_behind_body(raster: Raster, hands: np.ndarray, parsing: np.ndarray, share: float) -> np.ndarray:
    """(K,) bool: which of a body's hands (``hands`` (K, F) bool, each hand's faces) the photo shows
    behind the body, whole: at least ``share`` of the hand's pixels in ``raster`` are on upper-body
    clothing of the LIP ``parsing`` (H, W) (:func:`~vtonpipe.models.render.iuv.hidden_hands`). A hand
    the fit put over the belly or the hips that the photo hides behind them; a hand in front of the
    body whose fitted outline only spills onto the clothing around it is not."""
    out = np.zeros(len(hands), bool)
    for k, hand_face in enumerate(hands):
        pixels = hand_pixels(raster, hand_face)
        if pixels.any():
            out[k] = hidden_hands(pixels, parsing)[pixels].mean() >= share
    return out


def raster_hands_behind(raster: Raster, without_hands: Raster, hand_face: np.ndarray, hidden: np.ndarray) -> Raster:
    """A body's ``raster`` with the ``hidden`` (H, W) bool hand pixels taken away, as
    ``densepose/render``'s :func:`~vtonpipe.models.render.iuv.hands_behind` does to its IUV: there
    (the :func:`hand_pixels` the LIP parsing calls upper-body clothing,
    :func:`~vtonpipe.models.render.iuv.hidden_hands`) it takes the hit of ``without_hands``, the same
    body rasterised with the faces ``~hand_face`` only (``hand_face`` (F,) bool; its face ids count
    those faces)."""
    kept = np.flatnonzero(~hand_face)
    behind = np.where(without_hands.face_id >= 0, kept[np.maximum(without_hands.face_id, 0)], -1)
    return Raster(
        face_id=np.where(hidden, behind, raster.face_id).astype(raster.face_id.dtype),
        bary=np.where(hidden[..., None], without_hands.bary, raster.bary),
        depth=np.where(hidden, without_hands.depth, raster.depth),
    )


def snap_flow_to_mask(flow: np.ndarray, visibility: np.ndarray, mask: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """A pair's flow (H, W, 2) float32 and visibility (H, W) uint8 (:func:`body_flow`) fitted to
    the target's observed person ``mask`` (H, W) {0, 1}, as
    :func:`~vtonpipe.models.render.iuv.snap_to_mask` fits an IUV render: no body outside the mask
    (background, zero flow), and mask pixels off the body within ``radius`` px of it (a fit a
    pixel too thin or too far to one side) take their nearest body pixel's flow and visibility.
    0: unchanged."""
    if radius <= 0:
        return flow, visibility
    body = visibility != BACKGROUND
    if not body.any():
        return flow, visibility
    fill, iy, ix = snap_sources(body, mask, radius)
    flow, visibility = flow.copy(), visibility.copy()
    flow[fill] = flow[iy[fill], ix[fill]]
    visibility[fill] = visibility[iy[fill], ix[fill]]
    outside = ~np.asarray(mask).astype(bool)
    flow[outside] = 0.0
    visibility[outside] = BACKGROUND
    return flow, visibility


#: ``cv2.VariationalRefinement`` settings of :func:`refine_flow_photometric` on gray levels in
#: [0, 1]: smoothness ``alpha``, gradient constancy ``gamma``, colour constancy ``delta``, one pass
#: of 5 fixed-point x 5 SOR iterations (the harder seed-12 sample's flows: EPE 2.614 -> 2.504 px;
#: alpha 10 / 50 2.516 / 2.517, two passes 2.497; docs/BODY_FIT.md, stop 32)
PHOTOMETRIC_REFINEMENT = {"alpha": 20.0, "gamma": 20.0, "delta": 5.0, "fixed_point_iterations": 5, "sor_iterations": 5}


def refine_flow_photometric(flow: np.ndarray, visibility: np.ndarray, target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """A pair's flow (H, W, 2) float32 (:func:`body_flow`) refined by the photos themselves on the
    pixels visible in the source (state 0): ``cv2.VariationalRefinement``
    (:data:`PHOTOMETRIC_REFINEMENT`) from this flow moves it so that the target photo ``target``
    (H, W, 3) RGB uint8 matches the ``source`` photo (any size) sampled through it, in gray level
    and gradient, with a smoothness term. The fitted bodies place every part; the photos' texture
    (a garment's print and folds, the same clothes in both photos) corrects it by a pixel or two.
    Other pixels keep their flow; off the body the smoothness term sees each pixel's nearest body
    pixel's flow, not zero."""
    import cv2
    from scipy import ndimage

    body = visibility != BACKGROUND
    if not body.any():
        return flow
    h, w = visibility.shape
    hs, ws = source.shape[:2]
    # one canvas for both photos (the refinement wants equal sizes): the target's grid, grown to the source's
    ch, cw = max(h, hs), max(w, ws)

    def gray(image: np.ndarray) -> np.ndarray:
        canvas = np.zeros((ch, cw), np.float32)
        canvas[: image.shape[0], : image.shape[1]] = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        return canvas

    _, (iy, ix) = ndimage.distance_transform_edt(~body, return_indices=True)
    refined = np.zeros((ch, cw, 2), np.float32)
    refined[:h, :w] = flow[iy, ix]
    variational_refinement(PHOTOMETRIC_REFINEMENT).calc(gray(target), gray(source), refined)
    out = flow.copy()
    visible = visibility == VISIBLE
    out[visible] = refined[:h, :w][visible]
    return out


def correspondence_ground_truth(flow: np.ndarray, visibility: np.ndarray, stride: int = 8) -> torch.Tensor:
    """3D-GCL's pseudo ground-truth global correspondence ``o_gt`` (its Eq. 4), sparse (N, N).

    Target and source grids are the full-resolution grid downsampled by ``stride`` (N = H/s x W/s,
    row-major). For each low-resolution target cell ``i`` whose centre lies on a visible body pixel,
    the flow there, scaled by ``1/stride``, gives its source position; the four source cells around
    it receive their bilinear interpolation weights ``w_j`` at ``o[i, j]`` (weights of cells
    outside the grid are dropped), so that ``o @ G`` warps a downsampled source image ``G``
    (N x C) as bilinear sampling with the flow would. Rows of other cells are empty.
    """
    h, w = visibility.shape
    if h % stride or w % stride:
        raise ValueError(f"image size {h}x{w} is not a multiple of the stride {stride}")
    hs, ws = h // stride, w // stride
    # centre of low-res cell (r, c) in full-res pixel coordinates
    cy = (np.arange(hs) + 0.5) * stride - 0.5
    cx = (np.arange(ws) + 0.5) * stride - 0.5
    py, px = np.rint(cy).astype(int), np.rint(cx).astype(int)
    grid_y, grid_x = np.meshgrid(py, px, indexing="ij")
    vis = visibility[grid_y, grid_x] == VISIBLE
    target_cell = np.nonzero(vis.ravel())[0]
    f = flow[grid_y, grid_x][vis]  # (M, 2) full-res px
    ty, tx = np.meshgrid(cy, cx, indexing="ij")
    sx = (tx[vis] + f[:, 0] + 0.5) / stride - 0.5  # source position in low-res cell coordinates
    sy = (ty[vis] + f[:, 1] + 0.5) / stride - 0.5
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    ax, ay = sx - x0, sy - y0
    rows, cols, vals = [], [], []
    for dx, dy, weight in ((0, 0, (1 - ax) * (1 - ay)), (1, 0, ax * (1 - ay)), (0, 1, (1 - ax) * ay), (1, 1, ax * ay)):
        xj, yj = x0 + dx, y0 + dy
        ok = (xj >= 0) & (xj < ws) & (yj >= 0) & (yj < hs) & (weight > 0)
        rows.append(target_cell[ok])
        cols.append((yj * ws + xj)[ok])
        vals.append(weight[ok])
    n = hs * ws
    indices = torch.from_numpy(np.stack([np.concatenate(rows), np.concatenate(cols)])).long()
    values = torch.from_numpy(np.concatenate(vals)).float()
    return torch.sparse_coo_tensor(indices, values, (n, n), check_invariants=True).coalesce()
