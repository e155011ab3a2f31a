"""Detection operators in plain PyTorch: anchors, box coding, NMS and ROIAlign.

Boxes are ``(x0, y0, x1, y1)`` float tensors in detectron2's continuous pixel frame: the image
spans ``[0, W] x [0, H]`` and pixel ``(i, j)`` covers ``[i, i + 1] x [j, j + 1]`` (its centre is
at ``(i + 0.5, j + 0.5)``). Semantics follow detectron2 / torchvision exactly (cited per function).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


# -- anchors -----------------------------------------------------------------------------------
def cell_anchors(size: float, ratios: Sequence[float]) -> torch.Tensor:
    """(A, 4) anchors of area ``size**2`` centred on 0, one per aspect ratio ``h / w``.

    As ``DefaultAnchorGenerator.generate_cell_anchors``: ``w = sqrt(size**2 / r)``, ``h = r * w``.
    """
    out = []
    for r in ratios:
        w = math.sqrt(size * size / r)
        h = r * w
        out.append([-w / 2, -h / 2, w / 2, h / 2])
    return torch.tensor(out, dtype=torch.float32)


def grid_anchors(cell: torch.Tensor, grid_hw: tuple[int, int], stride: int, offset: float = 0.0) -> torch.Tensor:
    """(H * W * A, 4) anchors of a feature map: location-major, anchor-minor (detectron2's order)."""
    h, w = grid_hw
    xs = torch.arange(w, dtype=torch.float32, device=cell.device) * stride + offset * stride
    ys = torch.arange(h, dtype=torch.float32, device=cell.device) * stride + offset * stride
    sy, sx = torch.meshgrid(ys, xs, indexing="ij")
    shifts = torch.stack([sx, sy, sx, sy], dim=-1).reshape(-1, 1, 4)
    return (shifts + cell.reshape(1, -1, 4)).reshape(-1, 4)


# -- box coding --------------------------------------------------------------------------------
class BoxTransform:
    """R-CNN box coding ``(dx, dy, dw, dh)`` (detectron2 ``Box2BoxTransform``).

    ``dx = wx * (cx' - cx) / w``, ``dw = ww * log(w' / w)``; decoding clamps ``dw, dh`` to
    ``scale_clamp`` so a box grows at most ``exp(scale_clamp)`` times.
    """

    def __init__(self, weights: Sequence[float], scale_clamp: float = math.log(1000.0 / 16)):
        self.weights = tuple(float(w) for w in weights)
        self.scale_clamp = scale_clamp

    def get_deltas(self, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        """(N, 4) deltas that map boxes ``src`` (N, 4) onto ``dst`` (N, 4)."""
        wx, wy, ww, wh = self.weights
        sw, sh = src[:, 2] - src[:, 0], src[:, 3] - src[:, 1]
        scx, scy = src[:, 0] + 0.5 * sw, src[:, 1] + 0.5 * sh
        dw, dh = dst[:, 2] - dst[:, 0], dst[:, 3] - dst[:, 1]
        dcx, dcy = dst[:, 0] + 0.5 * dw, dst[:, 1] + 0.5 * dh
        return torch.stack([wx * (dcx - scx) / sw, wy * (dcy - scy) / sh, ww * torch.log(dw / sw), wh * torch.log(dh / sh)], dim=1)

    def apply_deltas(self, deltas: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Decode (N, 4) ``deltas`` relative to (N, 4) ``boxes``; float32 throughout."""
        deltas, boxes = deltas.float(), boxes.float()
        wx, wy, ww, wh = self.weights
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        cx, cy = boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h
        dw = torch.clamp(deltas[:, 2] / ww, max=self.scale_clamp)
        dh = torch.clamp(deltas[:, 3] / wh, max=self.scale_clamp)
        pcx, pcy = deltas[:, 0] / wx * w + cx, deltas[:, 1] / wy * h + cy
        pw, ph = torch.exp(dw) * w, torch.exp(dh) * h
        return torch.stack([pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph], dim=1)


def clip_boxes(boxes: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Boxes clamped to ``[0, W] x [0, H]`` (``Boxes.clip``)."""
    h, w = hw
    x = boxes[:, 0::2].clamp(0, w)
    y = boxes[:, 1::2].clamp(0, h)
    return torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], dim=1)


def nonempty(boxes: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """(N,) bool: width and height both above ``threshold`` (``Boxes.nonempty``)."""
    return ((boxes[:, 2] - boxes[:, 0]) > threshold) & ((boxes[:, 3] - boxes[:, 1]) > threshold)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, M) intersection over union of boxes ``a`` (N, 4) and ``b`` (M, 4)."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    return inter / (box_area(a)[:, None] + box_area(b)[None, :] - inter)


# -- non-maximum suppression -------------------------------------------------------------------
def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_thresh: float) -> torch.Tensor:
    """Greedy NMS as torchvision's kernel: visit boxes by decreasing score (stable sort), drop
    every later box whose IoU with a kept one is ``> iou_thresh``. Kept indices, best first."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    overlap = (box_iou(boxes[order], boxes[order]) > iou_thresh).cpu().numpy()
    suppressed = np.zeros(len(order), bool)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlap[i]
    return order[torch.as_tensor(keep, device=order.device)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_thresh: float) -> torch.Tensor:
    """NMS within each group id (class or FPN level); kept indices sorted by decreasing score."""
    members = [torch.nonzero(groups == g).squeeze(1) for g in torch.unique(groups)]
    kept = [idx[nms(boxes[idx], scores[idx], iou_thresh)] for idx in members]
    keep = torch.cat(kept) if kept else torch.empty(0, dtype=torch.int64, device=boxes.device)
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]


# -- ROIAlign ----------------------------------------------------------------------------------
def bilinear_grid(feature: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """Sample ``feature`` (C, H, W) bilinearly on K outer-product grids: (K, C, Sy, Sx).

    ``ys`` (K, Sy) and ``xs`` (K, Sx) are pixel-index coordinates (pixel ``(i, j)`` at ``x = i``,
    ``y = j``), clamped to ``[0, W - 1] x [0, H - 1]`` (so the border value extends outwards).
    """
    c, h, w = feature.shape
    k, sy, sx = ys.shape[0], ys.shape[1], xs.shape[1]
    gy = 2 * ys.clamp(0, h - 1) / max(h - 1, 1) - 1
    gx = 2 * xs.clamp(0, w - 1) / max(w - 1, 1) - 1
    grid = torch.stack([gx[:, None, :].expand(k, sy, sx), gy[:, :, None].expand(k, sy, sx)], dim=-1)
    out = F.grid_sample(feature[None], grid.reshape(1, k * sy, sx, 2), mode="bilinear", padding_mode="border", align_corners=True)
    return out.reshape(c, k, sy, sx).transpose(0, 1)


def roi_align(
    feature: torch.Tensor,
    boxes: torch.Tensor,
    output_size: int,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
    max_samples: int = 1 << 24,
) -> torch.Tensor:
    """ROIAlign of ``boxes`` (R, 4, image px) on one image's ``feature`` (C, H, W): (R, C, P, P).

    torchvision's ``roi_align`` kernel (what detectron2's ``ROIAlign`` calls): the box is scaled
    by ``spatial_scale`` and, when ``aligned``, shifted by -0.5 so that feature pixel ``i`` sits at
    continuous ``i + 0.5`` (legacy ``aligned=False`` instead forces boxes to at least 1x1). Each of
    the P x P bins averages ``sampling_ratio**2`` regularly spaced bilinear samples; a sample
    beyond one pixel outside the map (``y < -1`` or ``y > H``, same for x) counts as 0, one
    within that margin takes the border value. Boxes go in chunks of at most ``max_samples``
    sampled values.
    """
    if sampling_ratio < 1:
        raise ValueError(f"sampling_ratio must be >= 1 (adaptive sampling is not used by this model), got {sampling_ratio}")
    c, h, w = feature.shape
    p, g = output_size, sampling_ratio
    out = feature.new_zeros((len(boxes), c, p, p))
    offset = 0.5 if aligned else 0.0
    # sample positions in bin units along each axis: sample ix of bin k at k + (ix + 0.5) / g
    steps = (torch.arange(p, device=feature.device, dtype=torch.float32)[:, None] + (torch.arange(g, device=feature.device) + 0.5)[None, :] / g).reshape(-1)
    chunk = max(1, max_samples // (c * (p * g) ** 2))
    for s in range(0, len(boxes), chunk):
        b = boxes[s : s + chunk].float() * spatial_scale - offset
        size = b[:, 2:] - b[:, :2]
        if not aligned:
            size = size.clamp(min=1.0)
        bin_wh = size / p
        xs = b[:, 0:1] + steps[None, :] * bin_wh[:, 0:1]  # (k, P * g)
        ys = b[:, 1:2] + steps[None, :] * bin_wh[:, 1:2]
        samples = bilinear_grid(feature, ys, xs)  # (k, C, P*g, P*g)
        inside = ((ys >= -1) & (ys <= h))[:, :, None] & ((xs >= -1) & (xs <= w))[:, None, :]
        samples = samples * inside[:, None].to(samples.dtype)
        out[s : s + chunk] = samples.reshape(len(b), c, p, g, p, g).mean(dim=(3, 5))
    return out


def assign_levels(boxes: torch.Tensor, min_level: int, max_level: int, canonical_size: int, canonical_level: int) -> torch.Tensor:
    """FPN level index (0 = ``min_level``) of each box: ``floor(k0 + log2(sqrt(area) / s0))``."""
    size = torch.sqrt(box_area(boxes))
    level = torch.floor(canonical_level + torch.log2(size / canonical_size + 1e-8))
    return level.clamp(min_level, max_level).long() - min_level


def multilevel_roi_align(
    features: Sequence[torch.Tensor],
    strides: Sequence[int],
    boxes: torch.Tensor,
    output_size: int,
    sampling_ratio: int,
    aligned: bool,
    canonical_size: int,
    canonical_level: int,
) -> torch.Tensor:
    """ROIPooler: each box pooled from the FPN level its size selects. ``features``: (C, H, W) each."""
    if len(features) == 1:
        return roi_align(features[0], boxes, output_size, 1.0 / strides[0], sampling_ratio, aligned)
    levels = assign_levels(boxes, int(math.log2(strides[0])), int(math.log2(strides[-1])), canonical_size, canonical_level)
    out = features[0].new_zeros((len(boxes), features[0].shape[0], output_size, output_size))
    for i, (feature, stride) in enumerate(zip(features, strides)):
        idx = torch.nonzero(levels == i).squeeze(1)
        if len(idx):
            out[idx] = roi_align(feature, boxes[idx], output_size, 1.0 / stride, sampling_ratio, aligned)
    return out
