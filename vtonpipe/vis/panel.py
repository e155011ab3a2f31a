"""Lay titled pictures side by side (what ``vtonpipe show`` writes)."""

from __future__ import annotations

import textwrap
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


def failure_panel(image: np.ndarray, reason: str, message: str) -> np.ndarray:
    """``image`` dimmed, with a stage's failure ``reason`` and ``message`` written over it (RGB
    uint8, same size): what ``vtonpipe show`` draws for a stage that failed on the item."""
    h, w = image.shape[:2]
    out = (image.astype(np.float32) * 0.35 + 255 * 0.65).astype(np.uint8)
    scale = max(0.3, min(1.0, w / 400))
    line_h = max(10, int(22 * scale))
    chars = max(8, int(w / (9 * scale)))
    lines = ["FAILED", reason, *textwrap.wrap(message, chars)[: max(1, h // line_h - 3)]]
    for n, text in enumerate(lines):
        colour = (200, 0, 0) if n < 2 else (40, 40, 40)
        cv2.putText(out, text, (4, line_h * (n + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale * (1.4 if n == 0 else 1), colour, 1, cv2.LINE_AA)
    return out
