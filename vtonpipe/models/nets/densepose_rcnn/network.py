"""DensePose R-CNN R50-FPN as ``torch.nn`` modules named like detectron2's, so its checkpoint
loads key for key (``backbone.bottom_up.res2.0.conv1.norm.running_var``...).

Inference only, one image at a time. Feature maps are ``(1, C, H, W)`` float32 on the padded
input; boxes are ``(N, 4)`` ``x0, y0, x1, y1`` in the resized input's pixel-edge frame (see
:mod:`.ops`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import DensePoseRCNNConfig
from .ops import (
    BoxTransform,
    batched_nms,
    cell_anchors,
    clip_boxes,
    grid_anchors,
    multilevel_roi_align,
    nonempty,
    roi_align,
)


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics: ``(x - mean) / sqrt(var + eps) * weight + bias``."""

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.eps = eps
        for name in ("weight", "bias", "running_mean", "running_var"):
            self.register_buffer(name, torch.zeros(channels))

    def scale_shift(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel ``(scale, shift)`` with ``bn(x) = x * scale + shift``."""
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        return scale, self.bias - self.running_mean * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self.scale_shift()
        return x * scale[:, None, None] + shift[:, None, None]


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` followed by an optional ``norm`` child and ReLU (detectron2's ``Conv2d``)."""

    def __init__(self, *args, norm: nn.Module | None = None, relu: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        if self.norm is not None:
            x = self.norm(x)
        return F.relu(x, inplace=True) if self.relu else x


def fold_frozen_bn(model: nn.Module) -> None:
    """Fold every ``Conv2d`` + ``FrozenBatchNorm2d`` pair into the convolution (same outputs)."""
    for m in model.modules():
        if isinstance(m, Conv2d) and isinstance(m.norm, FrozenBatchNorm2d):
            scale, shift = m.norm.scale_shift()
            m.weight = nn.Parameter(m.weight.detach() * scale[:, None, None, None], requires_grad=False)
            m.bias = nn.Parameter(shift.detach() if m.bias is None else m.bias.detach() * scale + shift, requires_grad=False)
            m.norm = None


# -- backbone ----------------------------------------------------------------------------------
class BasicStem(nn.Module):
    """7x7/2 conv + FrozenBN + ReLU, then 3x3/2 max pool: stride 4."""

    def __init__(self, cfg: DensePoseRCNNConfig):
        super().__init__()
        c = cfg.stem_channels
        self.conv1 = Conv2d(3, c, 7, stride=2, padding=3, bias=False, norm=FrozenBatchNorm2d(c, cfg.frozen_bn_eps), relu=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(self.conv1(x), kernel_size=3, stride=2, padding=1)


class BottleneckBlock(nn.Module):
    """1x1 (carries the stride, MSRA style) -> 3x3 -> 1x1 with a projection shortcut when needed."""

    def __init__(self, cin: int, cout: int, mid: int, stride: int, eps: float):
        super().__init__()
        self.shortcut = Conv2d(cin, cout, 1, stride=stride, bias=False, norm=FrozenBatchNorm2d(cout, eps)) if cin != cout else None
        self.conv1 = Conv2d(cin, mid, 1, stride=stride, bias=False, norm=FrozenBatchNorm2d(mid, eps), relu=True)
        self.conv2 = Conv2d(mid, mid, 3, padding=1, bias=False, norm=FrozenBatchNorm2d(mid, eps), relu=True)
        self.conv3 = Conv2d(mid, cout, 1, bias=False, norm=FrozenBatchNorm2d(cout, eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        return F.relu(self.conv3(self.conv2(self.conv1(x))) + shortcut, inplace=True)


class ResNet(nn.Module):
    """Stem + res2..res5; returns the four stage outputs (strides 4, 8, 16, 32)."""

    def __init__(self, cfg: DensePoseRCNNConfig):
        super().__init__()
        self.stem = BasicStem(cfg)
        cin, mid = cfg.stem_channels, cfg.bottleneck_channels
        self.stage_names = []
        for i, (n, cout) in enumerate(zip(cfg.blocks_per_stage, cfg.stage_channels)):
            blocks = [BottleneckBlock(cin if b == 0 else cout, cout, mid, 2 if (b == 0 and i > 0) else 1, cfg.frozen_bn_eps) for b in range(n)]
            self.add_module(f"res{i + 2}", nn.Sequential(*blocks))
            self.stage_names.append(f"res{i + 2}")
            cin, mid = cout, mid * 2

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        out = []
        for name in self.stage_names:
            x = getattr(self, name)(x)
            out.append(x)
        return out


class FPN(nn.Module):
    """Feature pyramid p2..p5 (lateral 1x1 + nearest x2 top-down sum + 3x3 output), p6 = p5[::2, ::2]."""

    def __init__(self, cfg: DensePoseRCNNConfig):
        super().__init__()
        self.bottom_up = ResNet(cfg)
        c = cfg.fpn_channels
        for level, cin in zip(range(2, 6), cfg.stage_channels):
            self.add_module(f"fpn_lateral{level}", Conv2d(cin, c, 1))
            self.add_module(f"fpn_output{level}", Conv2d(c, c, 3, padding=1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c2, c3, c4, c5 = self.bottom_up(x)
        prev = self.fpn_lateral5(c5)
        outs = [self.fpn_output5(prev)]
        for level, c in ((4, c4), (3, c3), (2, c2)):
            prev = getattr(self, f"fpn_lateral{level}")(c) + F.interpolate(prev, scale_factor=2.0, mode="nearest")
            outs.insert(0, getattr(self, f"fpn_output{level}")(prev))
        outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))  # LastLevelMaxPool -> p6
        return outs


# -- RPN ---------------------------------------------------------------------------------------
class StandardRPNHead(nn.Module):
    def __init__(self, channels: int, num_anchors: int):
        super().__init__()
        self.conv = Conv2d(channels, channels, 3, padding=1, relu=True)
        self.objectness_logits = nn.Conv2d(channels, num_anchors, 1)
        self.anchor_deltas = nn.Conv2d(channels, num_anchors * 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (H*W*A,) and deltas (H*W*A, 4) of one level, location-major like the anchors."""
        t = self.conv(x)
        logits = self.objectness_logits(t)[0].permute(1, 2, 0).reshape(-1)
        deltas = self.anchor_deltas(t)[0]
        a, h, w = deltas.shape[0] // 4, deltas.shape[1], deltas.shape[2]
        return logits, deltas.reshape(a, 4, h, w).permute(2, 3, 0, 1).reshape(-1, 4)


class RPN(nn.Module):
    """Region proposals: per-level top-k, decode, clip, drop empty boxes, per-level NMS, top-k."""

    def __init__(self, cfg: DensePoseRCNNConfig):
        super().__init__()
        self.cfg = cfg
        self.rpn_head = StandardRPNHead(cfg.fpn_channels, len(cfg.anchor_ratios))
        self.transform = BoxTransform(cfg.rpn_box_weights, cfg.box_scale_clamp)

    def forward(self, features: list[torch.Tensor], image_hw: tuple[int, int]) -> torch.Tensor:
        """(R, 4) proposals, best objectness first, for p2..p6 ``features``."""
        cfg = self.cfg
        boxes, scores, levels = [], [], []
        for i, (x, size) in enumerate(zip(features, cfg.anchor_sizes)):
            logits, deltas = self.rpn_head(x)
            stride = 2 ** (i + 2)
            anchors = grid_anchors(cell_anchors(size, cfg.anchor_ratios).to(x.device), tuple(x.shape[-2:]), stride, cfg.anchor_offset)
            top, idx = logits.topk(min(cfg.rpn_pre_nms_topk, len(logits)))
            boxes.append(self.transform.apply_deltas(deltas[idx], anchors[idx]))
            scores.append(top)
            levels.append(torch.full_like(idx, i))
        boxes, scores, levels = torch.cat(boxes), torch.cat(scores), torch.cat(levels)
        valid = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores)
        boxes, scores, levels = clip_boxes(boxes[valid], image_hw), scores[valid], levels[valid]
        keep = nonempty(boxes, cfg.rpn_min_box_size)
        boxes, scores, levels = boxes[keep], scores[keep], levels[keep]
        keep = batched_nms(boxes, scores, levels, cfg.rpn_nms_thresh)[: cfg.rpn_post_nms_topk]
        return boxes[keep]


# -- ROI heads ---------------------------------------------------------------------------------
class FastRCNNConvFCHead(nn.Module):
    def __init__(self, in_features: int, fc_dim: int, num_fc: int):
        super().__init__()
        for k in range(num_fc):
            self.add_module(f"fc{k + 1}", nn.Linear(in_features if k == 0 else fc_dim, fc_dim))
        self.num_fc = num_fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for k in range(self.num_fc):
            x = F.relu(getattr(self, f"fc{k + 1}")(x))
        return x


class FastRCNNOutputLayers(nn.Module):
    """Class logits (K + 1, background last) and class-specific box deltas (4 K)."""

    def __init__(self, fc_dim: int, num_classes: int):
        super().__init__()
        self.cls_score = nn.Linear(fc_dim, num_classes + 1)
        self.bbox_pred = nn.Linear(fc_dim, num_classes * 4)


class Decoder(nn.Module):
    """Panoptic-FPN semantic head: each of p2..p5 goes through ``log2(stride / 4)`` (at least one)
    3x3 conv + ReLU blocks, each followed by a bilinear x2 upsampling while above stride 4; the
    sum goes through a 1x1 ``predictor``. Output: (1, 256, H / 4, W / 4)."""

    def __init__(self, cfg: DensePoseRCNNConfig):
        super().__init__()
        c = cfg.decoder_channels
        for level in range(2, 6):
            stride = 2**level
            ops: list[nn.Module] = []
            for k in range(max(1, level - int(math.log2(cfg.decoder_stride)))):
                ops.append(Conv2d(cfg.fpn_channels if k == 0 else c, c, 3, padding=1, relu=True))
                if stride != cfg.decoder_stride:
                    ops.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.add_module(f"p{level}", nn.Sequential(*ops))
        self.predictor = Conv2d(c, cfg.decoder_out_channels, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = sum(getattr(self, f"p{level}")(f) for level, f in zip(range(2, 6), features))
        return self.predictor(x)


class DensePoseV1ConvXHead(nn.Module):
    def __init__(self, cfg: DensePoseRCNNConfig, in_channels: int):
        super().__init__()
        self.num_convs = cfg.dp_num_convs
        for i in range(cfg.dp_num_convs):
            cin = in_channels if i == 0 else cfg.dp_conv_dim
            self.add_module(f"body_conv_fcn{i + 1}", Conv2d(cin, cfg.dp_conv_dim, cfg.dp_conv_kernel, padding=cfg.dp_conv_kernel // 2, relu=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.num_convs):
            x = getattr(self, f"body_conv_fcn{i + 1}")(x)
        return x


@dataclass
class DensePoseCharts:
    """DensePose chart predictor outputs of N boxes, each on an S x S grid over its box
    (S = 112; cell centres at ``box_x0 + (k + 0.5) * box_w / S``).

    ``coarse_segm`` (N, 2, S, S) foreground logits; ``fine_segm`` (N, 25, S, S) part logits
    (0 background); ``u``, ``v`` (N, 25, S, S) chart coordinates per part (nominally 0..1).
    """

    coarse_segm: torch.Tensor
    fine_segm: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor


class DensePoseChartPredictor(nn.Module):
    """Four stride-2 transposed convs (28 -> 56) then bilinear x2 (56 -> 112)."""

    def __init__(self, cfg: DensePoseRCNNConfig):
        super().__init__()
        k, cin, parts = cfg.dp_deconv_kernel, cfg.dp_conv_dim, cfg.dp_num_patches + 1
        self.up_scale = cfg.dp_up_scale
        self.ann_index_lowres = nn.ConvTranspose2d(cin, cfg.dp_coarse_channels, k, stride=2, padding=k // 2 - 1)
        self.index_uv_lowres = nn.ConvTranspose2d(cin, parts, k, stride=2, padding=k // 2 - 1)
        self.u_lowres = nn.ConvTranspose2d(cin, parts, k, stride=2, padding=k // 2 - 1)
        self.v_lowres = nn.ConvTranspose2d(cin, parts, k, stride=2, padding=k // 2 - 1)

    def forward(self, x: torch.Tensor) -> DensePoseCharts:
        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=self.up_scale, mode="bilinear", align_corners=False)

        return DensePoseCharts(up(self.ann_index_lowres(x)), up(self.index_uv_lowres(x)), up(self.u_lowres(x)), up(self.v_lowres(x)))


class DensePoseROIHeads(nn.Module):
    def __init__(self, cfg: DensePoseRCNNConfig):
        super().__init__()
        self.cfg = cfg
        self.box_head = FastRCNNConvFCHead(cfg.fpn_channels * cfg.box_pooler_resolution**2, cfg.box_fc_dim, cfg.box_num_fc)
        self.box_predictor = FastRCNNOutputLayers(cfg.box_fc_dim, cfg.num_classes)
        self.decoder = Decoder(cfg)
        self.densepose_head = DensePoseV1ConvXHead(cfg, cfg.decoder_out_channels)
        self.densepose_predictor = DensePoseChartPredictor(cfg)
        self.transform = BoxTransform(cfg.box_weights, cfg.box_scale_clamp)

    def detect(
        self, features: list[torch.Tensor], proposals: torch.Tensor, image_hw: tuple[int, int], score_thresh: float, nms_thresh: float, max_detections: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Person boxes (N, 4) and scores (N,), best first (``fast_rcnn_inference_single_image``)."""
        cfg = self.cfg
        pooled = multilevel_roi_align(
            [f[0] for f in features[:4]], (4, 8, 16, 32), proposals, cfg.box_pooler_resolution,
            cfg.box_pooler_sampling_ratio, cfg.box_pooler_aligned, cfg.canonical_box_size, cfg.canonical_level,
        )
        x = self.box_head(pooled)
        scores = F.softmax(self.box_predictor.cls_score(x), dim=-1)[:, : cfg.num_classes]
        deltas = self.box_predictor.bbox_pred(x).reshape(-1, 4)
        boxes = self.transform.apply_deltas(deltas, proposals.repeat_interleave(cfg.num_classes, dim=0)).reshape(-1, cfg.num_classes, 4)
        valid = torch.isfinite(boxes).flatten(1).all(dim=1) & torch.isfinite(scores).all(dim=1)
        boxes = clip_boxes(boxes[valid].reshape(-1, 4), image_hw).reshape(-1, cfg.num_classes, 4)
        scores = scores[valid]
        rows, classes = torch.nonzero(scores > score_thresh, as_tuple=True)
        boxes, scores = boxes[rows, classes], scores[rows, classes]
        keep = batched_nms(boxes, scores, classes, nms_thresh)[:max_detections]
        return boxes[keep], scores[keep]

    def charts(self, features: list[torch.Tensor], boxes: torch.Tensor) -> DensePoseCharts:
        """DensePose outputs for ``boxes`` (N, 4) pooled from the decoder's stride-4 map."""
        cfg = self.cfg
        merged = self.decoder(features[:4])
        pooled = roi_align(merged[0], boxes, cfg.dp_pooler_resolution, 1.0 / cfg.decoder_stride, cfg.dp_pooler_sampling_ratio, cfg.dp_pooler_aligned)
        return self.densepose_predictor(self.densepose_head(pooled))


class DensePoseRCNN(nn.Module):
    """``backbone`` (ResNet-50 FPN), ``proposal_generator`` (RPN), ``roi_heads`` (box + DensePose)."""

    def __init__(self, cfg: DensePoseRCNNConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or DensePoseRCNNConfig()
        self.backbone = FPN(cfg)
        self.proposal_generator = RPN(cfg)
        self.roi_heads = DensePoseROIHeads(cfg)
