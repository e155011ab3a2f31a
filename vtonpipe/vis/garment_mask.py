"""Garment mask drawing: the image with the background dimmed and the garment box."""

from __future__ import annotations

from typing import Mapping

import cv2
import numpy as np

from ..schemas.garment_mask import GarmentMaskRecord
from . import register_drawer


def overlay_mask(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = (255, 0, 255), alpha: float = 0.45) -> np.ndarray:
    """``image`` with ``mask`` (H, W in {0, 1}) tinted in ``colour`` and its outline drawn."""
    out = image.astype(np.float32)
    m = mask.astype(bool)
    out[m] = (1 - alpha) * out[m] + alpha * np.asarray(colour, np.float32)
    out = out.astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, colour, 1)
    return out


@register_drawer("garment_mask")
def draw_garment_mask(image: np.ndarray, record: GarmentMaskRecord, images: Mapping[str, np.ndarray]) -> np.ndarray:
    out = overlay_mask(image, record.mask, (0, 200, 255))
    x0, y0, x1, y1 = (int(v) for v in record.bbox)
    cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (255, 80, 0), 1)
    return out
