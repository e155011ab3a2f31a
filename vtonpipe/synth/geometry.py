"""Mesh helpers: cutting a mesh along the zero level set of a per-vertex field; rays from anywhere;
strips lying on a body's front (hair locks, a bag's strap)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models.render.raster import EmbreeMesh
from .fields import vertex_normals


@dataclass
class ClippedMesh:
    """The part of a mesh where a field is positive.

    ``vertices`` (N, 3), ``faces`` (M, 3); ``parent`` (M,) the face of the original mesh each face
    lies in; ``corner_bary`` (M, 3, 3): barycentrics, within the parent face, of each face's three
    corners (row k = corner k), so that a point with barycentrics ``b`` on face ``m`` has
    barycentrics ``b @ corner_bary[m]`` on its parent.
    """

    vertices: np.ndarray
    faces: np.ndarray
    parent: np.ndarray
    corner_bary: np.ndarray

    def parent_bary(self, face: np.ndarray, bary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Parent faces (N,) and barycentrics (N, 3) of points on faces ``face`` (N,) at ``bary`` (N, 3)."""
        return self.parent[face], np.einsum("nk,nkc->nc", bary, self.corner_bary[face])


def clip_mesh(vertices: np.ndarray, faces: np.ndarray, field: np.ndarray) -> ClippedMesh:
    """Cut ``faces`` (F, 3) of ``vertices`` (V, 3) to where the per-vertex ``field`` (V,),
    interpolated linearly over each face, is positive.

    Faces with all corners inside are kept; faces crossing the zero level set are cut along the
    straight segment between their edge crossings into one or two faces (orientation kept). The
    crossing on an edge is computed from the edge's lower-numbered vertex, so the two faces
    sharing an edge meet exactly (no cracks).
    """
    inside = field[faces] > 0  # (F, 3)
    count = inside.sum(1)
    eye = np.eye(3)
    out_parent, out_bary = [], []

    keep = np.flatnonzero(count == 3)
    out_parent.append(keep)
    out_bary.append(np.broadcast_to(eye, (len(keep), 3, 3)))

    def crossing(f: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(n, 3) barycentrics in faces ``f`` of the field's zero on edge (corner a, corner b)."""
        va, vb = faces[f, a], faces[f, b]
        lo = np.where(va < vb, a, b)
        hi = np.where(va < vb, b, a)
        fl, fh = field[faces[f, lo]], field[faces[f, hi]]
        t = fl / (fl - fh)
        bary = np.zeros((len(f), 3))
        rows = np.arange(len(f))
        bary[rows, lo] = 1.0 - t
        bary[rows, hi] = t
        return bary

    for n_in in (1, 2):
        f = np.flatnonzero(count == n_in)
        # rotate each face so that corner 0 is the odd one out (the lone inside or outside corner)
        odd = np.argmax(inside[f] if n_in == 1 else ~inside[f], axis=1)
        c0, c1, c2 = odd, (odd + 1) % 3, (odd + 2) % 3
        p01, p02 = crossing(f, c0, c1), crossing(f, c0, c2)
        e0, e1, e2 = eye[c0], eye[c1], eye[c2]
        if n_in == 1:
            tris = [np.stack([e0, p01, p02], 1)]
        else:  # quad c1 c2 p02 p01
            tris = [np.stack([e1, e2, p02], 1), np.stack([e1, p02, p01], 1)]
        for t in tris:
            out_parent.append(f)
            out_bary.append(t)

    parent = np.concatenate(out_parent)
    corner_bary = np.concatenate(out_bary).astype(np.float64)
    points = np.einsum("mkc,mcd->mkd", corner_bary, vertices[faces[parent]])  # (M, 3, 3)
    return ClippedMesh(points.reshape(-1, 3), np.arange(3 * len(parent)).reshape(-1, 3), parent, corner_bary)


def crossings(mesh: EmbreeMesh, origins: np.ndarray, targets: np.ndarray, max_crossings: int = 16) -> np.ndarray:
    """(N,) how many times each segment from ``origins`` to ``targets`` (N, 3) crosses ``mesh``."""
    d = targets - origins
    length = np.linalg.norm(d, axis=1)
    d = d / length[:, None]
    travelled = np.zeros(len(d))
    count = np.zeros(len(d), np.int64)
    active = np.ones(len(d), bool)
    for _ in range(max_crossings):
        if not active.any():
            break
        t = mesh.first_hit(origins[active] + travelled[active, None] * d[active], d[active])
        ahead = travelled[active] + t < length[active]
        idx = np.flatnonzero(active)
        count[idx[ahead]] += 1
        travelled[idx[ahead]] += t[ahead] + 1e-5
        active[idx[~ahead]] = False
    return count


@dataclass
class SurfaceStrip:
    """A grid of points on a body's surface, each a body face ``face`` (N,) and barycentrics
    ``bary`` (N, 3), so it follows the body into any pose; ``faces`` (M, 3) the grid's triangles,
    wound towards the body's front (-y) at rest; ``rest`` (N, 3) the points on the rest body."""

    face: np.ndarray
    bary: np.ndarray
    faces: np.ndarray
    rest: np.ndarray

    def posed(self, vertices: np.ndarray, body_faces: np.ndarray, offset: float) -> np.ndarray:
        """(N, 3) the points on the body ``vertices`` (V, 3, any pose and frame), ``offset`` m out
        along its normals."""
        on_body = np.einsum("nk,nkc->nc", self.bary, vertices[body_faces[self.face]])
        normal = np.einsum("nk,nkc->nc", self.bary, vertex_normals(vertices, body_faces)[body_faces[self.face]])
        return on_body + offset * normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)

    @staticmethod
    def join(strips: list[SurfaceStrip]) -> SurfaceStrip:
        starts = np.cumsum([0, *(len(s.face) for s in strips[:-1])])
        return SurfaceStrip(
            np.concatenate([s.face for s in strips]),
            np.concatenate([s.bary for s in strips]),
            np.concatenate([s.faces + o for s, o in zip(strips, starts)]),
            np.concatenate([s.rest for s in strips]),
        )


def front_hits(mesh: EmbreeMesh, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first hit (face, barycentrics, rest point; face -1 where none) of rays from in front of
    the rest body (``mesh``, body frame: front -y) at ``x``, ``z`` (N,) m, travelling towards +y."""
    origins = np.stack([x, np.full_like(x, -1.0), z], -1)
    face, bary, distance = mesh.cast_rays(origins, np.tile([0.0, 1.0, 0.0], (len(x), 1)))
    return face, bary, origins + np.minimum(distance, 1e3)[:, None] * np.array([0.0, 1.0, 0.0])


def front_strip(mesh: EmbreeMesh, x: np.ndarray, z: np.ndarray) -> SurfaceStrip:
    """The strip of body points seen from the front at the grid ``x``, ``z`` (rows, columns) m
    (:func:`front_hits`); ValueError where a ray misses the body."""
    rows, columns = x.shape
    face, bary, rest = front_hits(mesh, x.reshape(-1), z.reshape(-1))
    if (face < 0).any():
        raise ValueError("a ray of a strip on the body's front misses the body")
    r = np.arange(rows - 1)[:, None] * columns
    c = np.arange(columns - 1)[None]
    p00, p01, p10, p11 = r + c, r + c + 1, r + columns + c, r + columns + c + 1
    grid = np.concatenate([np.stack([p00, p10, p01], -1).reshape(-1, 3), np.stack([p01, p10, p11], -1).reshape(-1, 3)])
    normal = np.cross(rest[grid[:, 1]] - rest[grid[:, 0]], rest[grid[:, 2]] - rest[grid[:, 0]])
    if normal[:, 1].sum() > 0:  # facing the back: turn every face over
        grid = grid[:, ::-1]
    return SurfaceStrip(face, bary.astype(np.float64), grid, rest)
