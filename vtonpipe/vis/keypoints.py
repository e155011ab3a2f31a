"""Keypoints drawing: OpenPose-style skeletons (its limb and joint colours) over the image."""

from __future__ import annotations

from typing import Mapping

import cv2
import numpy as np

from ..converters.keypoints import COCO18_SKELETON, OPENPOSE_COLOURS
from ..schemas.keypoints import KeypointsRecord
from . import register_drawer


def draw_skeleton(image: np.ndarray, keypoints: np.ndarray, thickness: int, alpha: float = 0.6) -> np.ndarray:
    """``image`` (RGB uint8) with one COCO-18 pose (18, 3) drawn: bones blended at ``alpha``, joints on top.

    Bones and joints with an undetected end (confidence 0) are skipped.
    """
    found = keypoints[:, 2] > 0
    pts = np.round(keypoints[:, :2]).astype(int)
    bones = image.copy()
    for (a, b), colour in zip(COCO18_SKELETON, OPENPOSE_COLOURS):
        if found[a] and found[b]:
            cv2.line(bones, tuple(pts[a]), tuple(pts[b]), colour, thickness, cv2.LINE_AA)
    out = cv2.addWeighted(image, 1 - alpha, bones, alpha, 0)
    for k in np.flatnonzero(found):
        cv2.circle(out, tuple(pts[k]), max(1, thickness - 1), OPENPOSE_COLOURS[k], -1, cv2.LINE_AA)
    return out


@register_drawer("keypoints")
def draw_keypoints(image: np.ndarray, record: KeypointsRecord, images: Mapping[str, np.ndarray]) -> np.ndarray:
    """Every detected person's skeleton, the main person's (the record's ``keypoints``) thicker."""
    h, w = image.shape[:2]
    thick = max(2, round(min(h, w) / 64))
    out = image
    for pose in record.people[1:]:
        out = draw_skeleton(out, pose, max(1, thick // 2))
    return draw_skeleton(out, record.keypoints, thick)
