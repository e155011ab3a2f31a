"""Fitting a rendered body to the observed person mask, shared by the IUV and flow renders."""

from __future__ import annotations

import numpy as np


def snap_sources(body: np.ndarray, mask: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where a render of the body pixels ``body`` (H, W) bool grows to fit the person ``mask``
    (H, W) {0, 1}: ``fill`` (H, W) bool, the mask pixels off the body within ``radius`` px of it
    (Euclidean, pixel centres), and ``(iy, ix)`` (H, W) int, each pixel's nearest body pixel, whose
    values a filled pixel takes. ``body`` must hold a pixel (the callers leave an empty render as it is)."""
    from scipy import ndimage

    distance, (iy, ix) = ndimage.distance_transform_edt(~body, return_indices=True)
    return np.asarray(mask).astype(bool) & ~body & (distance <= radius), iy, ix
