"""3D-GCL's correspondence estimation network and its losses (Huang et al., "Towards Hard-pose
Virtual Try-on via 3D-aware Global Correspondence Learning", Sec. 3).

The network warps the garment a *source* person wears onto a *target* person:

- two fully convolutional pyramid encoders, a source branch fed with the source DensePose IUV
  and the source garment (image x garment region) and a target branch fed with the target IUV,
  each giving features at 1/8, 1/4 and 1/2 of the input resolution (an FPN-style top-down path);
- the global correspondence ``o`` (Eq. 1): the softmax, over source cells and with a temperature,
  of the correlation of the channel-normalised 1/8 features; ``f_0`` is the flow of each target
  cell to its arg-max source cell, and ``o G`` warps the 1/8-downsampled garment ``G``;
- one GACRM per finer level (Eq. 2): a ConvGRU fed with the target features and the source
  features warped by the upsampled flow ``f_l^u``, predicting the residual flow,
  ``f_{l+1} = f_l^u + h(x_{l+1}, y_{l+1}, f_l^u)``.

Facts from the official code (huangzy225/3D-GCL): temperature 0.01, correlation at 1/8, GACRMs at
1/4 and 1/2 with 2 ConvGRU iterations, positional (centred L2) feature normalisation before the
correlation, garment = LIP 5/6/7 (the data layer's ``source_garment_region``).

Correspondence convention (as :func:`vtonpipe.models.render.flow.correspondence_ground_truth`): ``o`` is
``(B, N, N)`` with rows the *target* cells and columns the *source* cells, ``N = H/8 x W/8``
row-major, each row summing to 1, so ``o @ G`` (``G`` ``(N, C)``) warps the source onto the target.
The paper writes Eq. 1 as ``x_i y_j`` with ``x`` the source features; the official code and Eq. 4
index rows by the target, which is what is used here.

Ablation switches (the paper's Table 3): ``GCLConfig.global_correspondence=False`` drops the
correlation (a GACRM at 1/8 then refines from the zero flow, so every level is a refinement);
``GCLLossConfig.use_3d_losses=False`` drops ``L_r = L_o + L_f``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..render.flow import VISIBLE, correspondence_ground_truth
from ..render.iuv import PART_NAMES
from .layers import FlowHead, PyramidEncoder, conv_block
from .ops import (
    PERCEPTUAL_STAND_IN,
    Perceptual,
    WarpLosses,
    WarpOutput,
    correlation,
    identity_grid,
    image_losses,
    normalize_channels,
    resize_flow,
    warp_by_flow,
)

#: DensePose part ids 0 (background) .. 24
NUM_IUV_PARTS = len(PART_NAMES) + 1
#: channels of :func:`iuv_encoding`: one-hot part id + U + V
IUV_CHANNELS = NUM_IUV_PARTS + 2
#: the global correspondence's resolution, 1/8 of the input (the paper's S)
STRIDE = 8


@dataclass(frozen=True)
class GCLConfig:
    """Network settings. The default (0.42 M parameters) trains on CPU at 256 x 192: about 1 s
    per pair and step (forward + backward, one thread).

    - ``channels``: encoder widths at 1/2, 1/4, 1/8 of the input.
    - ``feature_channels``: width of the pyramid features every level outputs (correlation and
      GACRM inputs).
    - ``hidden_channels``: ConvGRU state width.
    - ``gru_iterations``: ConvGRU iterations per GACRM (official: 2).
    - ``temperature``: softmax temperature of Eq. 1 on cosine similarities (official: 0.01; on
      a coarse grid the softmax is then nearly one-hot from initialisation and L_o's gradient
      vanishes: on the tests' 4 x 3 grid L_o did not move in 30 steps, it does at 0.1).
    - ``global_correspondence``: False for the ablation without Eq. 1.
    """

    channels: tuple[int, int, int] = (16, 32, 64)
    feature_channels: int = 32
    hidden_channels: int = 16
    gru_iterations: int = 2
    temperature: float = 0.01
    global_correspondence: bool = True


@dataclass
class GCLOutput(WarpOutput):
    """:class:`WarpOutput` plus

    - ``correspondence``: ``o`` ``(B, N, N)`` (rows target cells, columns source cells, rows sum
      to 1), ``None`` without global correspondence;
    - ``level_warped``: the garment warped at each level, coarse to fine, each ``(B, 3, h_l,
      w_l)``: level 0 is ``o G`` at 1/8 (without global correspondence, the 1/8 garment warped
      by the 1/8 GACRM's flow), the others the level-downsampled garment warped by
      ``level_flows[l]``.

    ``level_flows`` is ``[f_0 (1/8), f_1 (1/4), f_2 (1/2)]``; ``flow`` is ``f_2`` upsampled to the
    input resolution and ``warped`` the full-resolution garment warped by it."""

    correspondence: Tensor | None
    level_warped: list[Tensor]


def iuv_encoding(iuv_i: Tensor, iuv_uv: Tensor) -> Tensor:
    """Network input from a DensePose IUV map: ``(B, 27, H, W)`` float.

    ``iuv_i`` ``(B, H, W)`` int64 part ids 0..24, ``iuv_uv`` ``(B, 2, H, W)`` in ``[0, 1]``. Returns
    the one-hot part id (25 channels, background included) and U, V (zero on the background)."""
    one_hot = F.one_hot(iuv_i.long(), NUM_IUV_PARTS).permute(0, 3, 1, 2).to(iuv_uv.dtype)
    return torch.cat([one_hot, iuv_uv * (iuv_i > 0).unsqueeze(1).to(iuv_uv.dtype)], dim=1)


def global_correspondence(target_features: Tensor, source_features: Tensor, temperature: float) -> Tensor:
    """Eq. 1 with the temperature softmax: ``o = softmax_j(y_i . x_j / T)``, ``(B, N_t, N_s)``.

    ``target_features`` ``(B, C, h, w)`` (``y``) and ``source_features`` ``(B, C, h', w')`` (``x``),
    channel-normalised (:func:`~.ops.normalize_channels`) so the dot products are cosines. Row
    ``i`` (a target cell) is a distribution over the source cells. Computed in float32 (also
    under autocast: a half-precision cosine divided by 0.01 would be off by ~0.1-0.4)."""
    with torch.autocast(target_features.device.type, enabled=False):
        return torch.softmax(correlation(target_features.float(), source_features.float()) / temperature, dim=-1)


def correspondence_flow(o: Tensor, height: int, width: int) -> Tensor:
    """``f_0``: the flow ``(B, 2, h, w)`` from each target cell to its arg-max source cell, in cells.

    ``o`` ``(B, h*w, h*w)`` on an ``h x w`` grid (row-major). Not differentiable (arg-max); float32."""
    best = o.argmax(dim=-1)  # (B, N)
    source = torch.stack([best % width, torch.div(best, width, rounding_mode="floor")], dim=1).float()
    return source.view(-1, 2, height, width) - identity_grid(height, width, device=o.device)


def apply_correspondence(o: Tensor, image: Tensor, height: int, width: int) -> Tensor:
    """``o G``: warp ``image`` ``(B, C, h', w')`` (the source grid) with ``o`` ``(B, h*w, h'*w')``
    -> ``(B, C, h, w)``."""
    return torch.einsum("bij,bcj->bci", o, image.flatten(2)).reshape(image.shape[0], image.shape[1], height, width)


class ConvGRU(nn.Module):
    """Convolutional GRU cell: state ``h`` ``(B, hidden, h, w)``, input ``(B, input, h, w)``."""

    def __init__(self, hidden_channels: int, input_channels: int):
        super().__init__()
        self.update = nn.Conv2d(hidden_channels + input_channels, hidden_channels, 3, 1, 1)
        self.reset = nn.Conv2d(hidden_channels + input_channels, hidden_channels, 3, 1, 1)
        self.candidate = nn.Conv2d(hidden_channels + input_channels, hidden_channels, 3, 1, 1)

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        hx = torch.cat([h, x], dim=1)
        z = torch.sigmoid(self.update(hx))
        r = torch.sigmoid(self.reset(hx))
        q = torch.tanh(self.candidate(torch.cat([r * h, x], dim=1)))
        return (1 - z) * h + z * q


class GACRM(nn.Module):
    """Geometry-aware correspondence refinement module, ``h`` of Eq. 2.

    ``forward(source, target, flow)``: level features ``x_l`` (source) and ``y_l`` (target)
    ``(B, C, h, w)`` and the upsampled flow ``f^u`` ``(B, 2, h, w)`` in pixels of this level;
    returns the refined flow ``f^u + h(x, y, f^u)`` (same shape). Each of ``iterations`` ConvGRU
    steps reads the target features, the source features warped by the current flow and the
    flow (divided by the level size), and adds a residual predicted from the state
    (:class:`~.layers.FlowHead`: in units of the level size, starting at zero, so an untrained
    module returns ``f^u``)."""

    def __init__(self, feature_channels: int, hidden_channels: int, iterations: int):
        super().__init__()
        self.iterations = iterations
        self.context = nn.Conv2d(2 * feature_channels, 2 * hidden_channels, 3, 1, 1)
        self.motion = nn.Sequential(conv_block(2 * feature_channels + 2, hidden_channels), conv_block(hidden_channels, hidden_channels))
        self.gru = ConvGRU(hidden_channels, 2 * hidden_channels)
        self.head = FlowHead(hidden_channels, hidden_channels)

    def forward(self, source: Tensor, target: Tensor, flow: Tensor) -> Tensor:
        h, w = flow.shape[-2:]
        state, context = torch.chunk(self.context(torch.cat([target, warp_by_flow(source, flow)], dim=1)), 2, dim=1)
        state, context = torch.tanh(state), F.relu(context)
        for _ in range(self.iterations):
            motion = self.motion(torch.cat([target, warp_by_flow(source, flow), flow / max(h, w)], dim=1))
            state = self.gru(state, torch.cat([motion, context], dim=1))
            flow = flow + self.head(state)
        return flow


class GCLWarp(nn.Module):
    """3D-GCL's correspondence estimation subnetwork (see the module docstring).

    ``forward(source_iuv_i, source_iuv_uv, source_garment, target_iuv_i, target_iuv_uv)``:

    - ``source_iuv_i`` / ``target_iuv_i`` ``(B, H, W)`` int64 part ids 0..24;
    - ``source_iuv_uv`` / ``target_iuv_uv`` ``(B, 2, H, W)`` in ``[0, 1]``;
    - ``source_garment`` ``(B, 3, H, W)`` in ``[0, 1]``: the source image times its garment region
      (black elsewhere), the image that is warped;

    ``H`` and ``W`` multiples of 8. Returns a :class:`GCLOutput` whose flows map the target grid
    to source pixels."""

    def __init__(self, config: GCLConfig = GCLConfig()):
        super().__init__()
        self.config = config
        c = config
        self.source_encoder = PyramidEncoder(IUV_CHANNELS + 3, c.channels, c.feature_channels)
        self.target_encoder = PyramidEncoder(IUV_CHANNELS, c.channels, c.feature_channels)
        levels = 2 if c.global_correspondence else 3  # without Eq. 1, a GACRM at 1/8 too
        self.gacrms = nn.ModuleList(GACRM(c.feature_channels, c.hidden_channels, c.gru_iterations) for _ in range(levels))

    def forward(
        self, source_iuv_i: Tensor, source_iuv_uv: Tensor, source_garment: Tensor, target_iuv_i: Tensor, target_iuv_uv: Tensor
    ) -> GCLOutput:
        height, width = source_garment.shape[-2:]
        if height % STRIDE or width % STRIDE:
            raise ValueError(f"GCLWarp needs an input size that is a multiple of {STRIDE}, got {height}x{width}")
        source = self.source_encoder(torch.cat([iuv_encoding(source_iuv_i, source_iuv_uv), source_garment], dim=1))
        target = self.target_encoder(iuv_encoding(target_iuv_i, target_iuv_uv))
        h8, w8 = height // STRIDE, width // STRIDE
        garment_8 = F.avg_pool2d(source_garment, STRIDE)
        level_flows: list[Tensor] = []
        level_warped: list[Tensor] = []
        o = None
        gacrms = iter(self.gacrms)
        if self.config.global_correspondence:
            o = global_correspondence(normalize_channels(target[0]), normalize_channels(source[0]), self.config.temperature)
            flow = correspondence_flow(o, h8, w8)
            level_flows.append(flow)
            level_warped.append(apply_correspondence(o, garment_8, h8, w8))
        else:
            flow = next(gacrms)(source[0], target[0], source_garment.new_zeros(source_garment.shape[0], 2, h8, w8, dtype=torch.float32))
            level_flows.append(flow)
            level_warped.append(warp_by_flow(garment_8, flow))
        for level, gacrm in zip((1, 2), gacrms, strict=True):
            size = source[level].shape[-2:]
            flow = gacrm(source[level], target[level], resize_flow(flow, size))
            level_flows.append(flow)
            level_warped.append(warp_by_flow(F.avg_pool2d(source_garment, STRIDE >> level), flow))
        full = resize_flow(flow, (height, width))
        return GCLOutput(
            flow=full, level_flows=level_flows, warped=warp_by_flow(source_garment, full), correspondence=o, level_warped=level_warped
        )


@dataclass(frozen=True)
class GCLLossConfig:
    """Weights of Eq. 7, ``L_c = lambda_r L_r + lambda_l1 L_l1 + lambda_perc L_perc`` (the paper
    gives no values; these follow the official code's 1/4 and 1/2 level weights: L1 x 5, VGG x 5 x
    0.2, its L_o x 10 and L_f x 30 folded into one lambda_r). ``use_3d_losses=False`` is the ablation
    without ``L_r`` (Eq. 3). ``weight_3d`` is lambda_r."""

    weight_3d: float = 10.0
    weight_l1: float = 5.0
    weight_perceptual: float = 1.0
    use_3d_losses: bool = True


def batch_correspondence_ground_truth(smpl_flow: Tensor, visibility: Tensor) -> list[Tensor]:
    """``o_gt`` (Eq. 4) per batch item: sparse ``(N, N)`` on the 1/8 grid, by
    :func:`vtonpipe.models.render.flow.correspondence_ground_truth` (its conventions: rows target cells,
    only cells whose centre pixel is visible, bilinear weights of the 4 source cells).

    ``smpl_flow`` ``(B, 2, H, W)`` target -> source pixels, ``visibility`` ``(B, H, W)`` int64."""
    flows = smpl_flow.detach().permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)
    vis = visibility.detach().cpu().numpy().astype(np.uint8)
    return [correspondence_ground_truth(f, v, stride=STRIDE).to(smpl_flow.device) for f, v in zip(flows, vis, strict=True)]


def correspondence_loss(o: Tensor, o_gt: list[Tensor], garment: Tensor) -> Tensor:
    """Eq. 5, ``L_o = ||M . (o_gt - o) G||_1`` with ``M = [o_gt > 0]``.

    ``o`` ``(B, N, N)``; ``o_gt`` per item sparse ``(N, N)``; ``garment`` ``G`` ``(B, C, h, w)``
    (the source garment on the 1/8 grid, ``N = h w``). The norm is divided by the element count
    ``B N C`` (a mean, as the official code's ``L1Loss``)."""
    b, c = garment.shape[:2]
    n = o.shape[1]
    o = o.float()
    g = garment.flatten(2).transpose(1, 2).float()  # (B, N, C)
    total = o.new_zeros(())
    for item in range(b):
        rows, cols = o_gt[item].indices()
        difference = o_gt[item].values() - o[item, rows, cols]  # M . (o_gt - o) on its support
        residual = o.new_zeros(n, c).index_add_(0, rows, difference.unsqueeze(1) * g[item, cols])
        total = total + residual.abs().sum()
    return total / (b * n * c)


def flow_loss(refined_flows: list[Tensor], smpl_flow: Tensor, visibility: Tensor) -> Tensor:
    """Eq. 6, ``L_f = sum_l ||V . (f_gt - f_l)||_1`` over the refined flows ``f_1..f_L``.

    Each ``f_l`` ``(B, 2, h_l, w_l)`` (pixels of its level) is resized to the SMPL flow's grid
    (:func:`~.ops.resize_flow`); ``smpl_flow`` ``(B, 2, H, W)`` pixels; ``V`` = ``visibility == 0``
    (visible in the source). Differences are measured in normalised image units (``dx * 2 / W``,
    ``dy * 2 / H``: the grid_sample frame, so the loss does not depend on the resolution) and each
    level's norm is divided by the element count ``B 2 H W``."""
    height, width = smpl_flow.shape[-2:]
    unit = smpl_flow.new_tensor([2.0 / width, 2.0 / height]).view(1, 2, 1, 1)
    v = (visibility == VISIBLE).unsqueeze(1).to(smpl_flow.dtype)
    return sum(((smpl_flow - resize_flow(f, (height, width))) * unit * v).abs().mean() for f in refined_flows)


def gcl_losses(
    output: GCLOutput,
    source_garment: Tensor,
    target_garment: Tensor,
    smpl_flow: Tensor,
    visibility: Tensor,
    config: GCLLossConfig = GCLLossConfig(),
    perceptual: Perceptual | None = None,
) -> WarpLosses:
    """Eq. 7 for one batch.

    ``source_garment`` ``(B, 3, H, W)``: the network's input garment; ``target_garment``: the
    target image times the target's garment region (the ground-truth warp), same shape;
    ``smpl_flow`` ``(B, 2, H, W)`` and ``visibility`` ``(B, H, W)`` from the data layer.
    ``L_l1`` and ``L_perc`` compare ``output.level_warped`` with the target garment downsampled
    (average pooling) to each level. ``perceptual``: a VGG-19 perceptual loss; ``None`` leaves the
    perceptual term out and records its stand-in. Terms: ``l1``, ``perceptual``, ``correspondence``
    (``L_o``), ``flow`` (``L_f``); ``total`` the weighted sum."""
    height = target_garment.shape[-2]
    pairs = [(warped, F.avg_pool2d(target_garment, height // warped.shape[-2])) for warped in output.level_warped]
    l1_sum, perceptual_sum = image_losses(pairs, perceptual)
    terms = {"l1": l1_sum}
    total = config.weight_l1 * l1_sum
    stand_ins = {}
    if perceptual_sum is None:
        stand_ins["perceptual"] = PERCEPTUAL_STAND_IN
    else:
        terms["perceptual"] = perceptual_sum
        total = total + config.weight_perceptual * perceptual_sum
    if config.use_3d_losses:
        refined = output.level_flows if output.correspondence is None else output.level_flows[1:]
        terms["flow"] = flow_loss(refined, smpl_flow, visibility)
        l_r = terms["flow"]
        if output.correspondence is not None:
            o_gt = batch_correspondence_ground_truth(smpl_flow, visibility)
            terms["correspondence"] = correspondence_loss(output.correspondence, o_gt, F.avg_pool2d(source_garment, STRIDE))
            l_r = l_r + terms["correspondence"]
        total = total + config.weight_3d * l_r
    return WarpLosses(total=total, terms=terms, stand_ins=stand_ins)
