"""Small conversions of binary masks."""

from __future__ import annotations

import numpy as np


def mask_bbox(mask: np.ndarray) -> np.ndarray | None:
    """int32 (x0, y0, x1, y1) px around the non-zero pixels of a (H, W) mask, x1/y1 exclusive;
    None if the mask is empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], np.int32)


def mask_box_edges(mask: np.ndarray) -> np.ndarray | None:
    """float32 (x0, y0, x1, y1): the edges of a (H, W) mask's non-zero pixels in the pixel-centre
    frame (docs/CONVENTIONS.md: ``mask_bbox - 0.5``); None if the mask is empty."""
    box = mask_bbox(mask)
    return None if box is None else box.astype(np.float32) - np.float32(0.5)
