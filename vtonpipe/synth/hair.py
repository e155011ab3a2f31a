"""Longer hair: a curtain of hair falling from the back and sides of the head, moving with it, and
locks falling over the front of the shoulders onto the chest, moving with the torso.

Scalp hair is a region of the body surface (:func:`~vtonpipe.synth.garments.hair_field`); hair
that falls below the head stands off the neck, so it gets its own mesh, built once on the rest
body and moved rigidly with the head (the rest-to-posed rigid fit of the head's vertices). The
curtain is a grid of rings around the vertical through the ears' midpoint, from above the ears
down to ``length`` below them, over the back and the sides (``HAIR_OPENING`` radians either side of
the face stay open). At each height and azimuth it lies ``thickness`` outside the widest point of
the head at or above that height, as hair falls straight down from where the head is widest.

A lock (:func:`hair_locks`) is a strip on the front of the rest body from the curtain's lower
edge beside the neck down over the shoulder to ``reach`` below the shoulders, narrowing to its
tip; each of its vertices is a point of the body surface (a face and barycentrics, found by a ray
from the front), so it follows the posed torso, ``LOCK_OFFSET`` outside it.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter, maximum_filter1d

from ..models.render.raster import EmbreeMesh
from .fields import BodyFields

RINGS, SEGMENTS = 12, 72
#: a lock's grid (rows top to tip, columns across), its lateral extent from the body's midline
#: (m) at the top and at the tip, and how far it stands off the body (m)
LOCK_ROWS, LOCK_COLUMNS = 16, 6
LOCK_TOP, LOCK_TIP = (0.04, 0.125), (0.07, 0.095)
LOCK_OFFSET = 0.012
WEDGES = 180  # azimuth bins of the head's envelope
HAIR_OPENING = 1.35  # rad: half the angle of the face's opening, from the front


def hair_curtain(fields: BodyFields, length: float, thickness: float = 0.014) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rest-pose curtain: vertices (RINGS * SEGMENTS, 3), faces (F, 3) wound outwards, and the
    head vertices (indices) that carry it. ``length``: m below the ears' midpoint."""
    f = fields
    ear = 0.5 * (f.joints["coco:left_ear"] + f.joints["coco:right_ear"])
    head = np.flatnonzero((f.head + f.neck) > 0.5)
    rel = f.rest[head] - ear
    azim = np.arctan2(rel[:, 0], -rel[:, 1])  # 0 = front, positive towards the person's left
    radius = np.hypot(rel[:, 0], rel[:, 1])
    theta = np.linspace(HAIR_OPENING, 2 * np.pi - HAIR_OPENING, SEGMENTS)
    heights = np.linspace(0.045, -length, RINGS)
    wedge = np.minimum(((azim % (2 * np.pi)) / (2 * np.pi) * WEDGES).astype(int), WEDGES - 1)
    envelope = np.zeros((RINGS, WEDGES))
    for i, z in enumerate(heights):
        above = rel[:, 2] >= z
        np.maximum.at(envelope[i], wedge[above], radius[above])
    envelope = maximum_filter1d(envelope, 9, axis=1, mode="wrap")
    envelope = gaussian_filter(envelope, (0.0, 3.0), mode="wrap")
    sample = np.minimum((theta / (2 * np.pi) * WEDGES).astype(int), WEDGES - 1)
    r = envelope[:, sample] + thickness  # (RINGS, SEGMENTS)
    verts = np.stack([ear[0] + r * np.sin(theta), ear[1] - r * np.cos(theta), ear[2] + np.broadcast_to(heights[:, None], r.shape)], -1).reshape(-1, 3)
    r0 = np.arange(RINGS - 1)[:, None] * SEGMENTS
    a = np.arange(SEGMENTS - 1)[None]
    p00, p01, p10, p11 = r0 + a, r0 + a + 1, r0 + SEGMENTS + a, r0 + SEGMENTS + a + 1
    faces = np.concatenate([np.stack([p00, p10, p01], -1).reshape(-1, 3), np.stack([p01, p10, p11], -1).reshape(-1, 3)])
    carriers = np.flatnonzero(f.head > 0.9)
    return verts, faces, carriers


def rigid_fit(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares rotation R (3, 3) and translation t (3,) with ``target ~ source @ R.T + t`` (Kabsch)."""
    cs, ct = source.mean(0), target.mean(0)
    u, _, vt = np.linalg.svd((source - cs).T @ (target - ct))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    R = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return R, ct - R @ cs


def hair_locks(fields: BodyFields, faces: np.ndarray, mesh: EmbreeMesh, length: float, reach: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rest-pose locks over both shoulders for hair ``length`` m below the ears reaching ``reach``
    m below the shoulders: each vertex as a body face (N,) and barycentrics (N, 3) (``faces``
    (F, 3) the body's, ``mesh`` the rest body's Embree scene), the locks' faces (M, 3) wound
    outwards, and each vertex's azimuth about the head (N,) rad (the strands' pattern coordinate,
    as on the curtain)."""
    f = fields
    ear = 0.5 * (f.joints["coco:left_ear"] + f.joints["coco:right_ear"])
    shoulder_z = 0.5 * (f.joints["coco:left_shoulder"][2] + f.joints["coco:right_shoulder"][2])
    t = np.linspace(0.0, 1.0, LOCK_ROWS)[:, None]
    tip = shoulder_z - reach
    taper = np.sqrt(t)  # narrowing most towards the tip
    inner = LOCK_TOP[0] + taper * (LOCK_TIP[0] - LOCK_TOP[0])
    outer = LOCK_TOP[1] + taper * (LOCK_TIP[1] - LOCK_TOP[1])
    across = inner + np.linspace(0.0, 1.0, LOCK_COLUMNS)[None] * (outer - inner)
    face_ids, barys, azims, grids = [], [], [], []
    front = lambda x, z: mesh.cast_rays(np.stack([x, np.full_like(x, -1.0), z], -1), np.tile([0.0, 1.0, 0.0], (len(x), 1)))  # noqa: E731
    for side in (1.0, -1.0):  # the person's left (x > 0), then right
        # each column starts where a ray from the front first meets the body below the curtain's
        # lower edge (beside the neck, or on the shoulder's top), and ends at the tip
        heights = np.arange(ear[2] - length, tip, -0.002)
        top_x = ear[0] + side * np.repeat(across[0], len(heights))
        hits = front(top_x, np.tile(heights, LOCK_COLUMNS))[0].reshape(LOCK_COLUMNS, len(heights)) >= 0
        if not hits.any(1).all():
            raise ValueError("a hair lock's column misses the body")
        start = heights[hits.argmax(1)]
        z = start[None] + t * (tip - start[None])
        x = (ear[0] + side * across).reshape(-1)
        face, bary, distance = front(x, z.reshape(-1))
        if (face < 0).any():
            raise ValueError("a hair lock's ray missed the body")
        grid = _grid_faces(LOCK_ROWS, LOCK_COLUMNS)
        points = np.einsum("nk,nkc->nc", bary, f.rest[faces[face]])
        normal = np.cross(points[grid[:, 1]] - points[grid[:, 0]], points[grid[:, 2]] - points[grid[:, 0]])
        if normal[:, 1].sum() > 0:  # facing the back: turn every face over
            grid = grid[:, ::-1]
        grids.append(grid + sum(len(g) for g in face_ids))
        face_ids.append(face)
        barys.append(bary)
        azims.append(np.arctan2(x - ear[0], -(distance - 1.0 - ear[1])))
    return np.concatenate(face_ids), np.concatenate(barys), np.concatenate(grids), np.concatenate(azims)


def _grid_faces(rows: int, columns: int) -> np.ndarray:
    """Two triangles per cell of a ``rows`` x ``columns`` vertex grid (row-major), all wound alike."""
    r = np.arange(rows - 1)[:, None] * columns
    c = np.arange(columns - 1)[None]
    p00, p01, p10, p11 = r + c, r + c + 1, r + columns + c, r + columns + c + 1
    return np.concatenate([np.stack([p00, p10, p01], -1).reshape(-1, 3), np.stack([p01, p10, p11], -1).reshape(-1, 3)])
