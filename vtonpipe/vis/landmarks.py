"""Landmarks drawing: the 32 garment landmarks with their ids, the garment's outline through them."""

from __future__ import annotations

import math
from typing import Mapping

import cv2
import numpy as np

from ..converters.landmarks import ABSENT, NUM_LANDMARKS, OCCLUDED, side_ids
from ..schemas.landmarks import LandmarksRecord
from . import register_drawer

#: the garment's outline through the landmarks, clockwise on the image of a garment seen from the
#: front: neckline, left side out along the sleeve's exterior and back along its interior, hem,
#: right side
OUTLINE: tuple[int, ...] = (
    6, 5, 4, 3, 2, 1,
    *(side_ids("left")[p] for p in ("shoulder", "upper_arm_exterior", "elbow_exterior", "lower_arm_exterior", "sleeve_end_exterior",
                                    "sleeve_end_interior", "lower_arm_interior", "elbow_interior", "upper_arm_interior", "armpit")),
    27, 29, 30, 31, 28,
    *(side_ids("right")[p] for p in ("armpit", "upper_arm_interior", "elbow_interior", "lower_arm_interior", "sleeve_end_interior",
                                     "sleeve_end_exterior", "lower_arm_exterior", "elbow_exterior", "upper_arm_exterior", "shoulder")),
)  # fmt: skip
#: RGB per id: the neckline blue, the wearer's left side red, the right side green, waist and hem orange
COLOURS: tuple[tuple[int, int, int], ...] = tuple(
    (40, 90, 255) if k <= 6 else (230, 30, 60) if k <= 16 else (20, 170, 60) if k <= 26 else (255, 150, 0) for k in range(NUM_LANDMARKS)
)
MIN_HEIGHT = 640  # px: pictures are drawn at least this tall so the ids are legible


def draw_landmarks(image: np.ndarray, landmarks: np.ndarray, ids: bool = True) -> np.ndarray:
    """``image`` (RGB uint8) with ``landmarks`` (32, 3) drawn, upscaled by an integer factor to at
    least ``MIN_HEIGHT`` px: the outline through consecutive present points, visible points as
    filled discs, occluded ones as rings, absent ones not at all; with ``ids``, each point's id."""
    scale = max(1, math.ceil(MIN_HEIGHT / image.shape[0]))
    out = cv2.resize(image, (image.shape[1] * scale, image.shape[0] * scale), interpolation=cv2.INTER_CUBIC) if scale > 1 else image.copy()
    attr = np.round(landmarks[:, 2]).astype(int)
    # pixel-centre frame: image pixel (x, y) spans scale * (x + 0.5) +- scale / 2 in the picture
    xy = np.round(scale * (landmarks[:, :2] + 0.5) - 0.5).astype(int)
    chain = [k for k in OUTLINE if attr[k] != ABSENT]
    for a, b in zip(chain, chain[1:] + chain[:1]):
        cv2.line(out, tuple(xy[a]), tuple(xy[b]), (255, 255, 255), 1, cv2.LINE_AA)
    radius = max(2, round(1.5 * scale))
    for k in np.flatnonzero(attr != ABSENT):
        p = tuple(xy[k])
        if attr[k] == OCCLUDED:
            cv2.circle(out, p, radius, COLOURS[k], 1, cv2.LINE_AA)
        else:
            cv2.circle(out, p, radius, COLOURS[k], -1, cv2.LINE_AA)
            cv2.circle(out, p, radius, (255, 255, 255), 1, cv2.LINE_AA)
        if ids:
            cv2.putText(out, str(k), (p[0] + radius + 1, p[1] - radius), cv2.FONT_HERSHEY_SIMPLEX, 0.3 + 0.05 * scale, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(out, str(k), (p[0] + radius + 1, p[1] - radius), cv2.FONT_HERSHEY_SIMPLEX, 0.3 + 0.05 * scale, COLOURS[k], 1, cv2.LINE_AA)
    return out


@register_drawer("landmarks")
def draw_landmarks_record(image: np.ndarray, record: LandmarksRecord, images: Mapping[str, np.ndarray]) -> np.ndarray:
    return draw_landmarks(image, record.landmarks)
