"""Classical, offline segmentation of an in-shop garment photographed on a plain background.

As "Down to the Last Detail" did for MPV: estimate the background colour from the image border,
threshold the colour distance to it, clean up with morphology, and refine the boundary with
GrabCut. Works on product shots (garment flat or on an invisible mannequin, near-uniform
background); it is not meant for cluttered scenes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class GarmentMask:
    mask: np.ndarray  # (H, W) uint8 in {0, 1}
    background_rgb: np.ndarray  # (3,) uint8, the estimated background colour
    threshold: float  # colour distance (CIELAB delta E) separating garment from background


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill regions of 0 not connected to the image border."""
    h, w = mask.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)
    padded[1:-1, 1:-1] = mask
    flood = padded.copy()
    cv2.floodFill(flood, np.zeros((h + 4, w + 4), np.uint8), (0, 0), 1)
    holes = (flood == 0).astype(np.uint8)[1:-1, 1:-1]
    return mask | holes


def segment_garment(
    image: np.ndarray,
    *,
    border: int = 4,
    blur_sigma: float = 1.0,
    min_delta_e: float = 2.0,
    mad_factor: float = 4.0,
    min_component: float = 0.01,
    grabcut_iters: int = 3,
) -> GarmentMask:
    """Segment the garment in an RGB uint8 (H, W, 3) product image.

    ``border``: width in px of the frame used to estimate the background; the Lab image is
    smoothed by a Gaussian of ``blur_sigma`` px (JPEG noise would otherwise hide a light garment
    on a light background, a few delta E apart); pixels whose CIELAB distance to the background
    median exceeds ``max(min_delta_e, mad_factor * MAD)`` seed the
    garment; components smaller than ``min_component`` of the image are dropped; GrabCut then
    refines the boundary for ``grabcut_iters`` iterations (0 disables it).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    b = max(1, min(border, h // 4, w // 4))
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0  # OpenCV scales L to 0..255
    if blur_sigma > 0:
        lab = cv2.GaussianBlur(lab, (0, 0), blur_sigma)
    ring = np.concatenate([lab[:b].reshape(-1, 3), lab[-b:].reshape(-1, 3), lab[:, :b].reshape(-1, 3), lab[:, -b:].reshape(-1, 3)])
    bg = np.median(ring, axis=0)
    dist = np.linalg.norm(lab - bg, axis=2)
    ring_dist = np.linalg.norm(ring - bg, axis=1)
    mad = float(np.median(np.abs(ring_dist - np.median(ring_dist))))
    thr = max(min_delta_e, float(np.median(ring_dist)) + mad_factor * 1.4826 * mad)
    fg = (dist > thr).astype(np.uint8)

    k = max(3, (min(h, w) // 100) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, kernel)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, kernel)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_component * h * w
    fg = keep[labels].astype(np.uint8)
    fg = _fill_holes(fg)

    if grabcut_iters > 0 and fg.any() and not fg.all():
        gc = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
        gc[fg == 1] = cv2.GC_PR_FGD
        gc[cv2.erode(fg, kernel, iterations=2) == 1] = cv2.GC_FGD
        near = cv2.dilate(fg, kernel, iterations=3)
        gc[near == 0] = cv2.GC_BGD
        gc[:b], gc[-b:], gc[:, :b], gc[:, -b:] = cv2.GC_BGD, cv2.GC_BGD, cv2.GC_BGD, cv2.GC_BGD
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.grabCut(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), gc, None, bgd, fgd, grabcut_iters, cv2.GC_INIT_WITH_MASK)
        fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
        fg = _fill_holes(cv2.morphologyEx(fg, cv2.MORPH_OPEN, kernel))
    bg_rgb = cv2.cvtColor(np.uint8([[[bg[0] * 255 / 100, bg[1], bg[2]]]]).clip(0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)[0, 0]
    return GarmentMask(mask=fg, background_rgb=bg_rgb, threshold=thr)
