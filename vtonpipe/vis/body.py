"""Body fit drawing: the fitted mesh's silhouette (rasterised at pixel centres) with its outline,
and the fit's projected COCO-18 joints."""

from __future__ import annotations

from typing import Mapping

import cv2
import numpy as np

from ..models.bodies.posed import posed_mesh
from ..models.render.raster import rasterize
from ..schemas.body import BodyRecord
from . import register_drawer
from .keypoints import draw_skeleton

BODY_COLOUR = (70, 140, 255)
OUTLINE_COLOUR = (20, 40, 120)


@register_drawer("body")
def draw_body(image: np.ndarray, record: BodyRecord, images: Mapping[str, np.ndarray]) -> np.ndarray:
    """The fitted body's silhouette blended over the image (alpha 0.45) with its outline, and the
    fit's projected joints (``joints_2d``, those the fit used) as an OpenPose skeleton."""
    h, w = image.shape[:2]
    mesh = posed_mesh(record, w, h)
    mask = rasterize(mesh.vertices, mesh.faces, mesh.camera).mask
    out = image.copy()
    out[mask] = (0.55 * image[mask] + 0.45 * np.array(BODY_COLOUR)).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, OUTLINE_COLOUR, 1, cv2.LINE_AA)
    return draw_skeleton(out, np.asarray(record.joints_2d, np.float32), max(2, round(min(h, w) / 64)))
