"""Lay titled pictures side by side (what ``vtonpipe show`` writes)."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


def compose(panels: Sequence[tuple[str, np.ndarray]], height: int = 384, header: int = 20, gap: int = 4) -> np.ndarray:
    """One RGB uint8 image: each (title, RGB picture) resized to ``height``, a title strip above."""
    if not panels:
        raise ValueError("nothing to compose")
    tiles = []
    for title, img in panels:
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        w = max(1, round(img.shape[1] * height / img.shape[0]))
        interp = cv2.INTER_NEAREST if img.shape[0] < height else cv2.INTER_AREA
        body = cv2.resize(img, (w, height), interpolation=interp)
        strip = np.full((header, w, 3), 255, np.uint8)
        cv2.putText(strip, title[: max(1, w // 7)], (3, header - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([strip, body], axis=0))
    spacer = np.full((header + height, gap, 3), 255, np.uint8)
    out = [tiles[0]]
    for t in tiles[1:]:
        out += [spacer, t]
    return np.concatenate(out, axis=1)
