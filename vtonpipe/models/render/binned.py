"""Exact ray casting from a camera's centre, compiled with numba: the ``binned`` raster backend.

A mesh given in a camera's frame is turned into each face's ray/triangle coefficients in pixel
coordinates (the edge functions of :func:`~vtonpipe.models.render.raster._pixel_coefficients`,
here in float64: for the ray through image point ``(x, y)``, ``e_i = a_i x + b_i y + c_i``, a hit
when ``e_0, e_1, e_2`` share the sign of ``e_3``, barycentrics ``e_i / e_3``, depth
``Z = det / e_3 > 0``), and every face is binned by its projected bounding box on a grid of
``cell x cell`` pixel cells over the image. A query is the ray from the camera centre through any
image point ``(x, y)`` (x, y in pixels, docs/CONVENTIONS.md): it tests the faces of its cell only
and keeps the nearest hit (ties go to the lower face index, as in the ``torch`` backend). Faces
entirely behind the camera are dropped; a face crossing ``Z = 0`` is tested by every query.

Rasterisation queries the pixel centres; ``smpl_flow``'s visibility queries the source-image
projections of the target's surface points (:func:`vtonpipe.models.render.flow.body_flow`). Unlike
an Embree scene, which ``embreex`` fills element by element from Python (about 20 ms for the
27k-face anny body, before its BVH build), binning costs about a millisecond, so a body is cheap
to cast against once per image. Rays from any other origin than the camera centre need
:class:`~vtonpipe.models.render.raster.EmbreeMesh`.
"""

from __future__ import annotations

import numba
import numpy as np

from ..bodies.camera import PinholeCamera


@numba.njit(cache=True, nogil=True)
def _coefficients(vertices, faces, fx, fy, cx, cy, closed):
    """(F, 13) float64: columns 0-3, 4-7, 8-11 the x, y and constant coefficients of e_0..e_3, 12 det.

    ``det = v0 . (v1 x v2)`` is six times the signed volume of the face's tetrahedron with the
    camera centre; their sum is the mesh's (> 0: outward normals). With ``closed``, the faces
    turned away from the camera (det of the volume's sign) get only their det (they are never
    hit); returns the coefficients and that sign (0.0 without ``closed``)."""
    out = np.zeros((len(faces), 13))
    volume = 0.0
    for f in range(len(faces)):
        a, b, c = vertices[faces[f, 0]], vertices[faces[f, 1]], vertices[faces[f, 2]]
        det = a[0] * (b[1] * c[2] - b[2] * c[1]) + a[1] * (b[2] * c[0] - b[0] * c[2]) + a[2] * (b[0] * c[1] - b[1] * c[0])
        out[f, 12] = det
        volume += det
    back_sign = (1.0 if volume > 0 else -1.0) if closed else 0.0
    n = np.empty((4, 3))
    for f in range(len(faces)):
        if out[f, 12] * back_sign > 0:
            continue
        a0, a1, a2 = vertices[faces[f, 0], 0], vertices[faces[f, 0], 1], vertices[faces[f, 0], 2]
        b0, b1, b2 = vertices[faces[f, 1], 0], vertices[faces[f, 1], 1], vertices[faces[f, 1], 2]
        c0, c1, c2 = vertices[faces[f, 2], 0], vertices[faces[f, 2], 1], vertices[faces[f, 2], 2]
        # corner normals v_j x v_k (cyclic) and the face normal (v1 - v0) x (v2 - v0)
        n[0, 0], n[0, 1], n[0, 2] = b1 * c2 - b2 * c1, b2 * c0 - b0 * c2, b0 * c1 - b1 * c0
        n[1, 0], n[1, 1], n[1, 2] = c1 * a2 - c2 * a1, c2 * a0 - c0 * a2, c0 * a1 - c1 * a0
        n[2, 0], n[2, 1], n[2, 2] = a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0
        for k in range(3):
            n[3, k] = n[0, k] + n[1, k] + n[2, k]
        for i in range(4):
            a, b = n[i, 0] / fx, n[i, 1] / fy
            out[f, i] = a
            out[f, 4 + i] = b
            out[f, 8 + i] = n[i, 2] - a * cx - b * cy
        out[f, 12] = a0 * n[0, 0] + a1 * n[0, 1] + a2 * n[0, 2]
    return out, back_sign


SKIPPED, BOXED, CROSSING = 0, 1, 2


@numba.njit(cache=True, nogil=True)
def _face_boxes(vertices, faces, coef, fx, fy, cx, cy, width, height, back_sign):
    """Per face its projected bounding box (F, 4) float64 ``xmin, ymin, xmax, ymax`` (pixels) and
    state (F,) int8: SKIPPED (degenerate, edge-on, behind the camera, off the image, or turned away
    from the camera: det of sign ``back_sign``, 0 for none), BOXED, or CROSSING (a corner at
    Z <= 0: every query tests it)."""
    xy = np.empty((len(vertices), 2))
    for v in range(len(vertices)):
        z = vertices[v, 2]
        xy[v, 0] = fx * vertices[v, 0] / z + cx if z > 0 else 0.0
        xy[v, 1] = fy * vertices[v, 1] / z + cy if z > 0 else 0.0
    boxes = np.zeros((len(faces), 4))
    state = np.zeros(len(faces), np.int8)
    for f in range(len(faces)):
        if coef[f, 12] == 0.0 or coef[f, 12] * back_sign > 0:  # degenerate, seen edge-on, or culled
            continue
        zmin = min(vertices[faces[f, 0], 2], vertices[faces[f, 1], 2], vertices[faces[f, 2], 2])
        zmax = max(vertices[faces[f, 0], 2], vertices[faces[f, 1], 2], vertices[faces[f, 2], 2])
        if zmax <= 0:
            continue
        if zmin <= 0:
            state[f] = CROSSING
            continue
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        xmin, xmax = min(xy[a, 0], xy[b, 0], xy[c, 0]), max(xy[a, 0], xy[b, 0], xy[c, 0])
        ymin, ymax = min(xy[a, 1], xy[b, 1], xy[c, 1]), max(xy[a, 1], xy[b, 1], xy[c, 1])
        # queries lie in [-0.5, width - 0.5) x [-0.5, height - 0.5)
        if xmax < -0.5 or ymax < -0.5 or xmin >= width - 0.5 or ymin >= height - 0.5:
            continue
        boxes[f, 0], boxes[f, 1], boxes[f, 2], boxes[f, 3] = xmin, ymin, xmax, ymax
        state[f] = BOXED
    return boxes, state


@numba.njit(cache=True, nogil=True)
def _bin_faces(boxes, state, width, height, cell):
    """CSR of the BOXED faces in each ``cell x cell`` cell (ascending face ids): ``starts``
    (cells + 1,), ``members``; and the CROSSING faces, which every query tests."""
    ncx, ncy = (width + cell - 1) // cell, (height + cell - 1) // cell
    nf = len(state)
    cells = np.empty((nf, 4), np.int64)  # cell x0, y0, x1, y1 (inclusive): cell = floor((x + 0.5) / cell)
    counts = np.zeros(ncx * ncy + 1, np.int64)
    for f in range(nf):
        if state[f] == BOXED:
            cells[f, 0] = max(0, min(ncx - 1, int(np.floor((boxes[f, 0] + 0.5) / cell))))
            cells[f, 1] = max(0, min(ncy - 1, int(np.floor((boxes[f, 1] + 0.5) / cell))))
            cells[f, 2] = max(0, min(ncx - 1, int(np.floor((boxes[f, 2] + 0.5) / cell))))
            cells[f, 3] = max(0, min(ncy - 1, int(np.floor((boxes[f, 3] + 0.5) / cell))))
            for cy_ in range(cells[f, 1], cells[f, 3] + 1):
                for cx_ in range(cells[f, 0], cells[f, 2] + 1):
                    counts[cy_ * ncx + cx_ + 1] += 1
    starts = np.cumsum(counts)
    fill = starts[:-1].copy()
    members = np.empty(starts[-1], np.int32)
    for f in range(nf):
        if state[f] == BOXED:
            for cy_ in range(cells[f, 1], cells[f, 3] + 1):
                for cx_ in range(cells[f, 0], cells[f, 2] + 1):
                    c = cy_ * ncx + cx_
                    members[fill[c]] = f
                    fill[c] += 1
    return starts, members, np.nonzero(state == CROSSING)[0].astype(np.int32)


@numba.njit(cache=True, nogil=True)
def _raster(coef, boxes, state, width, height):
    """Nearest face at every pixel centre, face by face over the pixel centres of its box (a
    z-buffer; ties go to the lower face id): face id (H*W,) int32, barycentrics, depth."""
    n = width * height
    face_id = np.full(n, -1, np.int32)
    depth = np.full(n, np.inf)
    for f in range(len(state)):
        if state[f] == SKIPPED:
            continue
        if state[f] == BOXED:
            x0, y0 = max(0, int(np.ceil(boxes[f, 0]))), max(0, int(np.ceil(boxes[f, 1])))
            x1, y1 = min(width - 1, int(np.floor(boxes[f, 2]))), min(height - 1, int(np.floor(boxes[f, 3])))
        else:
            x0, y0, x1, y1 = 0, 0, width - 1, height - 1
        for y in range(y0, y1 + 1):
            for x in range(x0, x1 + 1):
                d = _test(coef, f, float(x), float(y))
                p = y * width + x
                if d < depth[p]:
                    depth[p] = d
                    face_id[p] = f
    bary = np.zeros((n, 3), np.float32)
    for p in range(n):
        f = face_id[p]
        if f >= 0:
            x, y = float(p % width), float(p // width)
            e3 = coef[f, 3] * x + coef[f, 7] * y + coef[f, 11]
            for i in range(3):
                bary[p, i] = (coef[f, i] * x + coef[f, 4 + i] * y + coef[f, 8 + i]) / e3
    return face_id, bary, depth.astype(np.float32)


@numba.njit(cache=True, nogil=True)
def _test(coef, f, x, y):
    """Depth of face ``f``'s hit by the ray through ``(x, y)``, ``inf`` when it misses."""
    e3 = coef[f, 3] * x + coef[f, 7] * y + coef[f, 11]
    for i in range(3):
        if (coef[f, i] * x + coef[f, 4 + i] * y + coef[f, 8 + i]) * e3 < 0:
            return np.inf
    depth = coef[f, 12] / e3
    return depth if depth > 0 and np.isfinite(depth) else np.inf


@numba.njit(cache=True, nogil=True)
def _cast(coef, starts, members, everywhere, xs, ys, width, height, cell):
    """Nearest face (int32, -1 for none), barycentrics (N, 3) float32 and depth (N,) float32 per query."""
    ncx = (width + cell - 1) // cell
    ncy = (height + cell - 1) // cell
    n = len(xs)
    face_id = np.full(n, -1, np.int32)
    bary = np.zeros((n, 3), np.float32)
    depth = np.full(n, np.inf, np.float32)
    for q in range(n):
        x, y = xs[q], ys[q]
        c = min(ncy - 1, int(np.floor((y + 0.5) / cell))) * ncx + min(ncx - 1, int(np.floor((x + 0.5) / cell)))
        best, best_face = np.inf, -1
        for m in range(starts[c], starts[c + 1]):
            f = members[m]
            d = _test(coef, f, x, y)
            if d < best or (d == best and f < best_face):
                best, best_face = d, f
        for f in everywhere:
            d = _test(coef, f, x, y)
            if d < best or (d == best and f < best_face):
                best, best_face = d, f
        if best_face >= 0:
            f = best_face
            e3 = coef[f, 3] * x + coef[f, 7] * y + coef[f, 11]
            for i in range(3):
                bary[q, i] = (coef[f, i] * x + coef[f, 4 + i] * y + coef[f, 8 + i]) / e3
            face_id[q] = f
            depth[q] = best
    return face_id, bary, depth


class BinnedMesh:
    """A mesh in ``camera``'s frame (``vertices`` (V, 3) metres, OpenCV axes; ``faces`` (F, 3)),
    ready for rays from the camera centre through points of its image: :meth:`rasterize` (pixel
    centres) and :meth:`cast` (any points; faces binned on first use, ``cell`` pixels a bin). The
    compiled kernels release the GIL: meshes of several images can be cast in threads.

    ``closed``: the mesh is closed and consistently oriented (anny's and SMPL's bodies are) and the
    camera outside it, so a ray's nearest hit is always a face turned towards the camera: the
    faces turned away (``det`` of the sign of the mesh's signed volume) are dropped, about half of
    them, and every query tests fewer faces."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, camera: PinholeCamera, cell: int = 1, *, closed: bool = False):
        vertices = np.ascontiguousarray(vertices, dtype=np.float64)
        faces = np.ascontiguousarray(faces, dtype=np.int64)
        if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"expected vertices (V, 3) and faces (F, 3), got {vertices.shape} and {faces.shape}")
        self.camera, self.cell = camera, int(cell)
        c = camera
        self._coef, back_sign = _coefficients(vertices, faces, c.fx, c.fy, c.cx, c.cy, closed)
        self._boxes, self._state = _face_boxes(vertices, faces, self._coef, c.fx, c.fy, c.cx, c.cy, c.width, c.height, back_sign)
        self._bins = None

    def cast(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest hit of the ray through each image point ``(xs[i], ys[i])`` (pixels, inside
        ``[-0.5, W - 0.5) x [-0.5, H - 0.5)``): face id (N,) int32 (-1: none), barycentrics (N, 3)
        float32 and depth ``Z`` (N,) float32 (``inf``: none)."""
        xs, ys = np.ascontiguousarray(xs, np.float64), np.ascontiguousarray(ys, np.float64)
        c = self.camera
        if len(xs) and (xs.min() < -0.5 or xs.max() >= c.width - 0.5 or ys.min() < -0.5 or ys.max() >= c.height - 0.5):
            raise ValueError(f"query points must lie in the {c.width}x{c.height} image")
        self.bin()
        return _cast(self._coef, *self._bins, xs, ys, c.width, c.height, self.cell)

    def bin(self) -> BinnedMesh:
        """Bin the faces for :meth:`cast` now (else its first call does); returns self."""
        if self._bins is None:
            self._bins = _bin_faces(self._boxes, self._state, self.camera.width, self.camera.height, self.cell)
        return self

    def rasterize(self):
        """The :class:`~vtonpipe.models.render.raster.Raster` of the camera's pixel centres."""
        from .raster import Raster

        h, w = self.camera.height, self.camera.width
        face_id, bary, depth = _raster(self._coef, self._boxes, self._state, w, h)
        return Raster(face_id.reshape(h, w), bary.reshape(h, w, 3), depth.reshape(h, w))
