"""Skirts: a draped tube around the hips and legs of the posed body.

A skirt stands off the legs, so it cannot be a region of the body surface. It is a grid mesh of
``RINGS`` horizontal rings of ``SEGMENTS`` points from the top's hem (where it tucks under the
top) down to the skirt's hem, rebuilt for every pose from the posed body: each ring follows the
body's cross-section at its height near the waist and blends into the convex envelope of the legs
further down (a skirt spans the gap between the legs), never narrowing downwards, plus the
skirt's ``flare`` and a few soft folds (2.5% of the radius at the hem).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d

RINGS, SEGMENTS = 14, 120


def _wrap_fill(r: np.ndarray) -> np.ndarray:
    """Fill NaNs of a circular profile by periodic linear interpolation."""
    ok = np.isfinite(r)
    idx = np.arange(len(r))
    good = idx[ok]
    return np.interp(idx, np.concatenate([good - len(r), good, good + len(r)]), np.tile(r[ok], 3))


def skirt_mesh(
    vertices: np.ndarray,
    covered: np.ndarray,
    centre: np.ndarray,
    top: float,
    hem: float,
    flare: float,
    ease: float = 0.006,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The skirt around posed ``vertices`` (V, 3) (body frame, ``+Z`` up, m).

    ``covered`` (V,) bool: the hip and leg vertices the skirt goes round (no arms); ``centre``
    (2,) the pelvis' (x, y); ``top`` and ``hem``: heights (m) of the skirt's top ring and hem.
    Returns vertices ((RINGS * SEGMENTS, 3), ring-major from the top), faces (F, 3) wound
    outwards, and pattern coordinates (RINGS * SEGMENTS, 2) m: (arc length around, height).
    """
    pts = vertices[covered]
    theta = 2 * np.pi * np.arange(SEGMENTS) / SEGMENTS  # 0 = front (-Y), towards the person's left (+X)
    direction = np.stack([np.sin(theta), -np.cos(theta)], 1)
    rel = pts[:, :2] - centre
    ang = np.arctan2(rel[:, 0], -rel[:, 1]) % (2 * np.pi)
    radius = np.linalg.norm(rel, axis=1)
    bins = np.minimum((ang / (2 * np.pi) * SEGMENTS).astype(int), SEGMENTS - 1)
    heights = np.linspace(top, hem, RINGS)
    band = 0.5 * abs(top - hem) / (RINGS - 1) + 0.015
    profile = np.zeros(SEGMENTS)
    rings = []
    for i, z in enumerate(heights):
        near = np.abs(pts[:, 2] - z) < band
        wedge = np.full(SEGMENTS, -np.inf)
        np.maximum.at(wedge, bins[near], radius[near])
        wedge = _wrap_fill(np.where(np.isfinite(wedge), wedge, np.nan))
        support = (rel[near] @ direction.T).max(0) if near.any() else wedge  # convex envelope of the slice
        s = i / (RINGS - 1)
        drape = min(1.0, s / 0.35) ** 2
        r = (1 - drape) * maximum_filter1d(wedge, 5, mode="wrap") + drape * support
        profile = np.maximum(profile, gaussian_filter1d(r, 2.5 + 4 * s, mode="wrap"))  # never narrower than above
        folds = 1.0 + 0.025 * s * np.sin(7 * theta + 1.3)
        rad = (profile + ease + flare * s**1.5) * folds
        rings.append(np.column_stack([centre[0] + rad * direction[:, 0], centre[1] + rad * direction[:, 1], np.full(SEGMENTS, z)]))
    verts = np.concatenate(rings)
    r0 = np.arange(RINGS - 1)[:, None] * SEGMENTS
    a = np.arange(SEGMENTS)[None]
    b = (a + 1) % SEGMENTS
    p00, p01, p10, p11 = r0 + a, r0 + b, r0 + SEGMENTS + a, r0 + SEGMENTS + b
    # theta grows towards +X (clockwise seen from above), rings go down: (p00, p10, p01) faces outwards
    faces = np.concatenate([np.stack([p00, p10, p01], -1).reshape(-1, 3), np.stack([p01, p10, p11], -1).reshape(-1, 3)])
    mean_radius = np.linalg.norm(verts[:, :2] - centre, axis=1).reshape(RINGS, SEGMENTS).mean(1, keepdims=True)
    uv = np.column_stack([(theta[None] * mean_radius).ravel(), verts[:, 2]])
    return verts, faces, uv
