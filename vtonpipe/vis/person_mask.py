"""Person mask drawing: person tinted with its box, face oval tinted with its box."""

from __future__ import annotations

from typing import Mapping

import cv2
import numpy as np

from ..schemas.person_mask import PersonMaskRecord
from . import register_drawer
from .garment_mask import overlay_mask


@register_drawer("person_mask")
def draw_person_mask(image: np.ndarray, record: PersonMaskRecord, images: Mapping[str, np.ndarray]) -> np.ndarray:
    out = overlay_mask(image, record.mask, (0, 170, 255))
    x0, y0, x1, y1 = (int(v) for v in record.bbox)
    cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (0, 90, 255), 1)
    if record.face_mask is not None:
        out = overlay_mask(out, record.face_mask, (255, 60, 160))
        x0, y0, x1, y1 = (int(v) for v in record.face_bbox)
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (255, 0, 120), 1)
    return out
