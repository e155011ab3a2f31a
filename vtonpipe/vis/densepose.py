"""DensePose IUV drawings: the IUV channels as colours, and detectron2's ``dp_segm`` picture.

``dp_segm`` is what ``apply_net.py show ... dp_segm`` draws with detectron2's
``DensePoseResultsFineSegmentationVisualizer`` (``projects/DensePose/densepose/vis/
densepose_results.py`` and ``vis/base.py`` ``MatrixVisualizer``): the part index I is scaled by
``255 / 24`` (``val_scale = 255.0 / DensePoseDataRelative.N_PART_LABELS``), truncated to
``uint8`` and mapped through an OpenCV colormap (``cv2.COLORMAP_PARULA`` by default), background
left as the underlying image. VITON-HD's ``image-densepose`` is this picture on a black image
with ``alpha = 1`` (IDM-VTON's preprocessing sets ``inplace=False, alpha=1``; HR-VITON issue #36:
"set alpha = 1 and change tile_img into black_background").
"""

from __future__ import annotations

from typing import Mapping

import cv2
import numpy as np

from ..schemas.densepose import DenseposeRecord
from . import register_drawer

N_PART_LABELS = 24


def _check_iuv(iuv: np.ndarray) -> None:
    if iuv.ndim != 3 or iuv.shape[2] != 3 or iuv.dtype != np.uint8:
        raise ValueError(f"expected IUV uint8 (H, W, 3), got {iuv.dtype} {iuv.shape}")


def part_levels(i: np.ndarray) -> np.ndarray:
    """Part index 0..24 -> colormap input 0..255 exactly as detectron2: ``uint8(float32(I) * 255 / 24)``."""
    return (i.astype(np.float32) * np.float32(255.0 / N_PART_LABELS)).clip(0, 255).astype(np.uint8)


def iuv_image(iuv: np.ndarray) -> np.ndarray:
    """The IUV channels as an RGB ``uint8`` picture: R = I scaled to 0..255 (``part_levels``),
    G = U, B = V; background black."""
    _check_iuv(iuv)
    out = iuv.copy()
    out[..., 0] = part_levels(iuv[..., 0])
    out[iuv[..., 0] == 0] = 0
    return out


def dp_segm(iuv: np.ndarray, cmap: int = cv2.COLORMAP_PARULA) -> np.ndarray:
    """detectron2's ``dp_segm`` colours of the part index on black (VITON-HD ``image-densepose``):
    RGB ``uint8 (H, W, 3)``, ``colormap(part_levels(I))`` where ``I > 0``, 0 elsewhere."""
    _check_iuv(iuv)
    i = iuv[..., 0]
    out = cv2.applyColorMap(part_levels(i), cmap)[..., ::-1].copy()
    out[i == 0] = 0
    return out


@register_drawer("densepose")
def draw_densepose(image: np.ndarray, record: DenseposeRecord, images: Mapping[str, np.ndarray]) -> np.ndarray:
    """``dp_segm`` blended over the image (``alpha`` 0.7, as apply_net shows it) with the person
    box, beside the IUV picture."""
    iuv = record.iuv
    body = iuv[..., 0] > 0
    overlay = image.copy()
    overlay[body] = (0.3 * image[body] + 0.7 * dp_segm(iuv)[body]).astype(np.uint8)
    x0, y0, x1, y1 = (float(v) for v in record.bbox)  # pixel-centre frame: first/last pixel centres inside
    cv2.rectangle(overlay, (int(np.ceil(x0)), int(np.ceil(y0))), (int(np.ceil(x1)) - 1, int(np.ceil(y1)) - 1), (18, 127, 15), 1)
    return np.concatenate([overlay, iuv_image(iuv)], axis=1)
