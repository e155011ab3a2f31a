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
from .geometry import SurfaceStrip, front_hits, front_strip

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


def hair_locks(fields: BodyFields, mesh: EmbreeMesh, length: float, reach: float) -> tuple[SurfaceStrip, np.ndarray]:
    """Rest-pose locks over both shoulders for hair ``length`` m below the ears reaching ``reach``
    m below the shoulders (``mesh``: the rest body's Embree scene), and each point's azimuth about
    the head (N,) rad (the strands' pattern coordinate, as on the curtain)."""
    f = fields
    ear = 0.5 * (f.joints["coco:left_ear"] + f.joints["coco:right_ear"])
    shoulder_z = 0.5 * (f.joints["coco:left_shoulder"][2] + f.joints["coco:right_shoulder"][2])
    t = np.linspace(0.0, 1.0, LOCK_ROWS)[:, None]
    tip = shoulder_z - reach
    taper = np.sqrt(t)  # narrowing most towards the tip
    inner = LOCK_TOP[0] + taper * (LOCK_TIP[0] - LOCK_TOP[0])
    outer = LOCK_TOP[1] + taper * (LOCK_TIP[1] - LOCK_TOP[1])
    across = inner + np.linspace(0.0, 1.0, LOCK_COLUMNS)[None] * (outer - inner)
    strips = []
    for side in (1.0, -1.0):  # the person's left (x > 0), then right
        # each column starts where a ray from the front first meets the body below the curtain's
        # lower edge (beside the neck, or on the shoulder's top), and ends at the tip
        heights = np.arange(ear[2] - length, tip, -0.002)
        hits = front_hits(mesh, ear[0] + side * np.repeat(across[0], len(heights)), np.tile(heights, LOCK_COLUMNS))[0] >= 0
        hits = hits.reshape(LOCK_COLUMNS, len(heights))
        if not hits.any(1).all():
            raise ValueError("a hair lock's column misses the body")
        start = heights[hits.argmax(1)]
        strips.append(front_strip(mesh, ear[0] + side * across, start[None] + t * (tip - start[None])))
    locks = SurfaceStrip.join(strips)
    return locks, np.arctan2(locks.rest[:, 0] - ear[0], -(locks.rest[:, 1] - ear[1]))
