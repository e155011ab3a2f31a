"""DensePose chart outputs of one box -> IUV on the image's pixel grid (docs/CONVENTIONS.md)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .network import DensePoseCharts
from .ops import bilinear_grid


def charts_to_iuv(charts: DensePoseCharts, box: Sequence[float], image_hw: tuple[int, int]) -> np.ndarray:
    """IUV ``uint8 (H, W, 3)`` of one person: ``charts`` of that box (tensors ``(1, C, S, S)``),
    ``box`` ``x0, y0, x1, y1`` in detectron2's pixel-edge frame (the image spans ``[0, W]``).

    Every pixel whose centre lies in the box (``x0 <= i + 0.5 < x1``, same for rows) samples
    the S x S maps bilinearly at its centre (half-pixel convention, border values extended);
    others are background. As detectron2's ``densepose_chart_predictor_output_to_result``:
    ``I = argmax(fine) * (argmax(coarse) > 0)`` and U, V are the ``I`` channel of u, v; here
    they are clipped to [0, 1] and stored as ``round(255 * u)``. For a box with integer edges
    this equals detectron2's ``F.interpolate(..., (h, w), align_corners=False)`` pasted at
    ``[y0:y1, x0:x1]``; detectron2 truncates other boxes to integers, this samples them exactly.
    """
    h, w = image_hw
    x0, y0, x1, y1 = (float(v) for v in box)
    iuv = np.zeros((h, w, 3), np.uint8)
    c0, c1 = max(math.ceil(x0 - 0.5), 0), min(math.ceil(x1 - 0.5), w)
    r0, r1 = max(math.ceil(y0 - 0.5), 0), min(math.ceil(y1 - 0.5), h)
    if c0 >= c1 or r0 >= r1:
        return iuv
    maps = torch.cat([charts.coarse_segm[0], charts.fine_segm[0], charts.u[0], charts.v[0]]).float()
    s = maps.shape[-1]
    dev = maps.device
    xs = (torch.arange(c0, c1, device=dev, dtype=torch.float32) + 0.5 - x0) * (s / (x1 - x0)) - 0.5
    ys = (torch.arange(r0, r1, device=dev, dtype=torch.float32) + 0.5 - y0) * (s / (y1 - y0)) - 0.5
    sampled = bilinear_grid(maps, ys[None], xs[None])[0]  # (C, rows, cols)
    nc, nf = charts.coarse_segm.shape[1], charts.fine_segm.shape[1]
    coarse, fine = sampled[:nc], sampled[nc : nc + nf]
    u, v = sampled[nc + nf : nc + 2 * nf], sampled[nc + 2 * nf :]
    labels = fine.argmax(0) * (coarse.argmax(0) > 0)
    uv = torch.stack([u.gather(0, labels[None])[0], v.gather(0, labels[None])[0]])
    uv = torch.round(uv.clamp(0, 1) * 255) * (labels > 0)
    iuv[r0:r1, c0:c1] = torch.cat([labels[None].to(uv.dtype), uv]).permute(1, 2, 0).cpu().numpy().astype(np.uint8)
    return iuv
