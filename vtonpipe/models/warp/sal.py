"""SAL-VTON's landmark-based deformable patch warping and its losses (Yan et al., "Linking Garment
with Person via Semantically Associated Landmarks for Virtual Try-On", Sec. 3.2).

- Two FPN pyramids with the same structure and separate weights: the garment branch reads the
  garment ``G`` and its 32 landmark heatmaps ``L_g``, the person branch a person representation
  ``P_o`` and the heatmaps of the landmarks ``L_p`` where the garment's landmarks should land.
- **Global flow**, coarse to fine: at level ``i`` the garment features ``g_i`` are warped by the
  upsampled previous flow (``g'_i``; ``g'_0 = g_0``), a conv block on ``[g'_i, p_i]`` refines the
  flow, ``g_i`` warped by it (``g''_i``) and ``p_i`` refine it again to ``f_g^i``, and a conv block
  on ``[g''_i, p_i, m_g^{i-1}, m_l^{i-1}]`` gives the global attention ``m_g^i``.
- **Local flows**: ``pg_i = C_0([p_i, g_i])`` (Eq. 1); deformable patch sizes
  ``sigma(C_1(pg_i)) * I`` (Eq. 2-3, ``I`` = a fifth of the image) around the 32 landmark pairs;
  each patch pair's features are sampled on an ``S x S`` grid, correlated and soft-arg-maxed, so
  every person-patch position gets the garment position it matches; this patch flow is extended
  to the whole grid (edge values beyond the patch), giving ``f_l`` ``(B, 32, 2, h, w)``, and a
  conv block predicts the local attention ``m_l`` ``(B, 32, h, w)``.
- Eq. 4: ``W_l = sum_k softmax_k(m_l) W(G, f_lk)``; Eq. 5: ``W_f = (1 - sigma(m_g)) W_l + sigma(m_g) W_g``.

Landmarks follow ``vtonpipe.converters.landmarks`` (32 points, attribute 0 visible, 1 occluded,
2 absent); a landmark absent on the garment or the person gets no local weight.

The paper does not give its loss weights, its patch sampling, the soft-arg-max temperature or
how the landmark masks of Eq. 9 are drawn; the choices here are documented on the configs. The
hard landmark masks are drawn here (:func:`hard_landmark_mask`) because the converters do not
provide them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...converters.landmarks import ABSENT, NUM_LANDMARKS, VISIBLE
from .layers import FlowHead, PyramidEncoder, conv_block
from .ops import (
    PERCEPTUAL_STAND_IN,
    Perceptual,
    WarpLosses,
    WarpOutput,
    charbonnier,
    identity_grid,
    image_losses,
    normalize_channels,
    resize_flow,
    sample_at,
    scale_points,
    spatial_gradients,
    warp_by_flow,
)


@dataclass(frozen=True)
class SALConfig:
    """Network settings. The default (about 0.9 M parameters) trains on CPU at 256 x 192.

    - ``person_channels``: channels of the person representation ``P_o`` (the paper's is the
      person in other garments from a parser-based teacher, which this pipeline does not make;
      any target-side tensor without the garment's appearance fits, e.g. the agnostic image of
      ``vtonpipe.converters.labels.image_agnostic``, 3 channels).
    - ``channels``: encoder widths of the ``N = len(channels)`` stride-2 stages (paper: N = 5),
      so features at 1/2 .. 1/2^N; input sizes must be multiples of ``2^N``.
    - ``fpn_channels``: width of every pyramid output.
    - ``patch_samples``: ``S``, each deformable patch is sampled on an ``S x S`` grid.
    - ``patch_fraction``: ``I_h / H = I_w / W`` (paper: a fifth).
    - ``local_temperature``: softmax temperature of the patch correlation (cosines).
    """

    person_channels: int = 3
    channels: tuple[int, ...] = (16, 24, 32, 48, 64)
    fpn_channels: int = 24
    patch_samples: int = 8
    patch_fraction: float = 0.2
    local_temperature: float = 0.02


@dataclass
class SALOutput(WarpOutput):
    """:class:`WarpOutput` with ``flow`` = the global flow ``f_g`` at the input resolution,
    ``level_flows`` = the global flow of every level (coarse to fine) and ``warped`` = ``W_f``
    (Eq. 5), plus ``global_warped`` ``W_g``, ``local_warped`` ``W_l`` (Eq. 4), ``local_flows``
    ``(B, 32, 2, H, W)`` pixels, ``local_logits`` ``m_l`` ``(B, 32, H, W)`` (absent landmarks at
    -1e4) and ``global_logit`` ``m_g`` ``(B, 1, H, W)``, all at the input resolution."""

    global_warped: Tensor
    local_warped: Tensor
    local_flows: Tensor
    local_logits: Tensor
    global_logit: Tensor

    def warp_like(self, image: Tensor) -> Tensor:
        """Warp another garment-frame image (e.g. the garment mask) by Eq. 4-5 as ``warped`` was."""
        return fuse(warp_by_flow(image, self.flow), local_warp(image, self.local_flows, self.local_logits), self.global_logit)


def local_warp(garment: Tensor, local_flows: Tensor, local_logits: Tensor) -> Tensor:
    """Eq. 4: ``W_l = sum_k softmax_k(m_l) W(G, f_lk)``.

    ``garment`` ``(B, C, H, W)``; ``local_flows`` ``(B, K, 2, H, W)`` pixels; ``local_logits``
    ``(B, K, H, W)``. Returns ``(B, C, H, W)``."""
    b, k, _, h, w = local_flows.shape
    c = garment.shape[1]
    source = garment.unsqueeze(1).expand(b, k, c, *garment.shape[-2:]).reshape(b * k, c, *garment.shape[-2:])
    warped = warp_by_flow(source, local_flows.reshape(b * k, 2, h, w)).view(b, k, c, h, w)
    return (torch.softmax(local_logits, dim=1).unsqueeze(2) * warped).sum(dim=1)


def fuse(global_warped: Tensor, local_warped: Tensor, global_logit: Tensor) -> Tensor:
    """Eq. 5: ``W_f = (1 - sigma(m_g)) * W_l + sigma(m_g) * W_g``; ``global_logit`` ``(B, 1, H, W)``."""
    weight = torch.sigmoid(global_logit)
    return (1 - weight) * local_warped + weight * global_warped


def patch_points(centres: Tensor, sizes: Tensor, samples: int) -> Tensor:
    """Sample positions of deformable patches: ``centres`` ``(B, K, 2)`` and ``sizes`` ``(B, K, 2)``
    (width, height) in pixels -> ``(B, K, S, S, 2)`` pixel ``(x, y)``; sample ``a`` sits at
    ``centre + ((a + 0.5) / S - 0.5) * size`` (the cell centres of an ``S x S`` split of the patch)."""
    t = (torch.arange(samples, device=centres.device, dtype=centres.dtype) + 0.5) / samples - 0.5
    ty, tx = torch.meshgrid(t, t, indexing="ij")
    offsets = torch.stack([tx, ty], dim=-1)  # (S, S, 2)
    return centres[:, :, None, None, :] + offsets * sizes[:, :, None, None, :]


def _patch_features(features: Tensor, points: Tensor) -> Tensor:
    """``features`` ``(B, C, h, w)`` sampled at ``points`` ``(B, K, S, S, 2)`` -> ``(B K, C, S S)``, channel-normalised."""
    b, k, s = points.shape[:3]
    sampled = sample_at(features, points.reshape(b, k * s, s, 2))  # (B, C, K S, S)
    sampled = sampled.view(b, -1, k, s * s).permute(0, 2, 1, 3).reshape(b * k, -1, s * s)
    return normalize_channels(sampled)


def local_flows(
    person_features: Tensor,
    garment_features: Tensor,
    person_centres: Tensor,
    garment_centres: Tensor,
    person_sizes: Tensor,
    garment_sizes: Tensor,
    samples: int,
    temperature: float,
) -> tuple[Tensor, Tensor]:
    """Local flows from landmark-centred deformable patch pairs (SAL-VTON Fig. 5).

    Features ``(B, C, h, w)`` of one level; centres and sizes ``(B, K, 2)`` in that level's pixels.
    Each person patch position ``u`` matches the garment patch by the softmax (``temperature``) of
    its cosine similarities to the ``S x S`` garment samples; the expected garment position ``q``
    gives the flow ``q - u``. The ``S x S`` patch flow is extended to every pixel of the grid by
    bilinear sampling in patch coordinates (edge values outside). Returns ``flows`` ``(B, K, 2, h,
    w)`` pixels (person grid -> garment pixels) and ``support`` ``(B, K, h, w)`` (1 inside each
    person patch)."""
    b, k = person_centres.shape[:2]
    h, w = person_features.shape[-2:]
    person_centres, garment_centres = person_centres.float(), garment_centres.float()  # pixel positions: float32 (autocast)
    person_sizes, garment_sizes = person_sizes.float(), garment_sizes.float()
    person_points = patch_points(person_centres, person_sizes, samples)
    garment_points = patch_points(garment_centres, garment_sizes, samples)
    similarity = torch.einsum(
        "ncp,ncq->npq", _patch_features(person_features, person_points), _patch_features(garment_features, garment_points)
    )
    matches = torch.softmax(similarity.float() / temperature, dim=-1) @ garment_points.reshape(b * k, samples * samples, 2)
    patch_flow = (matches - person_points.reshape(b * k, samples * samples, 2)).view(b * k, samples, samples, 2).permute(0, 3, 1, 2)
    # every pixel's position in its patch, in grid_sample units of the S x S patch (edges at -1, 1)
    pixels = identity_grid(h, w, device=person_features.device).permute(1, 2, 0)  # (h, w, 2)
    relative = (pixels[None, None] - person_centres[:, :, None, None, :]) / person_sizes[:, :, None, None, :]  # (B, K, h, w, 2)
    flows = F.grid_sample(patch_flow, 2 * relative.reshape(b * k, h, w, 2), mode="bilinear", padding_mode="border", align_corners=False)
    support = (relative.abs() <= 0.5).all(dim=-1).float()
    return flows.view(b, k, 2, h, w), support


class _GlobalLevel(nn.Module):
    """One level of the global flow estimation: two refinements and the global attention."""

    def __init__(self, channels: int, landmarks: int):
        super().__init__()
        self.first = FlowHead(2 * channels, channels)
        self.second = FlowHead(2 * channels, channels)
        self.attention = nn.Sequential(conv_block(2 * channels + 1 + landmarks, channels), nn.Conv2d(channels, 1, 3, 1, 1))

    def forward(self, garment: Tensor, person: Tensor, flow: Tensor | None, previous_attention: Tensor) -> tuple[Tensor, Tensor]:
        if flow is None:
            flow = garment.new_zeros(garment.shape[0], 2, *garment.shape[-2:], dtype=torch.float32)  # flows: float32 (autocast)
            warped = garment  # g'_0 = g_0
        else:
            warped = warp_by_flow(garment, flow)
        flow = flow + self.first(torch.cat([warped, person], dim=1))
        flow = flow + self.second(torch.cat([warp_by_flow(garment, flow), person], dim=1))
        logit = self.attention(torch.cat([warp_by_flow(garment, flow), person, previous_attention], dim=1))
        return flow, logit


class _LocalLevel(nn.Module):
    """One level of the local flow estimation: Eq. 1-3 patch sizes, patch flows, local attention."""

    def __init__(self, channels: int, landmarks: int):
        super().__init__()
        self.landmarks = landmarks
        self.c0 = conv_block(2 * channels, channels)
        self.c1 = nn.Sequential(conv_block(channels, channels), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 4 * landmarks))
        self.attention = nn.Sequential(conv_block(channels + 2 * landmarks, channels), nn.Conv2d(channels, landmarks, 3, 1, 1))

    def patch_sizes(self, pg: Tensor, initial: Tensor) -> tuple[Tensor, Tensor]:
        """Eq. 2-3: person and garment patch (width, height) ``(B, K, 2)`` = ``sigmoid(C_1(pg)) * I``."""
        sizes = torch.sigmoid(self.c1(pg)).view(-1, self.landmarks, 2, 2) * initial
        return sizes[:, :, 0], sizes[:, :, 1]


class SALWarp(nn.Module):
    """SAL-VTON's warping model (see the module docstring).

    ``forward(garment, garment_landmark_heatmaps, garment_landmarks, person,
    person_landmark_heatmaps, person_landmarks)``:

    - ``garment`` ``(B, 3, H, W)`` in ``[0, 1]``: the in-shop garment (image x mask), the image warped;
    - ``garment_landmark_heatmaps`` / ``person_landmark_heatmaps`` ``(B, 32, H, W)`` in ``[0, 1]``;
    - ``garment_landmarks`` / ``person_landmarks`` ``(B, 32, 3)``: ``(x, y)`` pixels, attribute;
    - ``person`` ``(B, person_channels, H, W)``: the person representation.

    ``H``, ``W`` multiples of ``2^N``. Returns a :class:`SALOutput` (person grid -> garment pixels)."""

    def __init__(self, config: SALConfig = SALConfig()):
        super().__init__()
        self.config = config
        k, c = NUM_LANDMARKS, config.fpn_channels
        self.garment_encoder = PyramidEncoder(3 + k, config.channels, c)
        self.person_encoder = PyramidEncoder(config.person_channels + k, config.channels, c)
        self.global_levels = nn.ModuleList(_GlobalLevel(c, k) for _ in config.channels)
        self.local_levels = nn.ModuleList(_LocalLevel(c, k) for _ in config.channels)

    def forward(
        self,
        garment: Tensor,
        garment_landmark_heatmaps: Tensor,
        garment_landmarks: Tensor,
        person: Tensor,
        person_landmark_heatmaps: Tensor,
        person_landmarks: Tensor,
    ) -> SALOutput:
        height, width = garment.shape[-2:]
        stride = 2 ** len(self.config.channels)
        if height % stride or width % stride:
            raise ValueError(f"SALWarp needs an input size that is a multiple of {stride}, got {height}x{width}")
        b, k = garment.shape[0], NUM_LANDMARKS
        garment_features = self.garment_encoder(torch.cat([garment, garment_landmark_heatmaps], dim=1))
        person_features = self.person_encoder(torch.cat([person, person_landmark_heatmaps], dim=1))
        present = (garment_landmarks[..., 2] != ABSENT) & (person_landmarks[..., 2] != ABSENT)  # (B, K)

        flow = global_logit = local_logits = None
        level_flows = []
        for g, p, global_level, local_level in zip(garment_features, person_features, self.global_levels, self.local_levels, strict=True):
            h, w = g.shape[-2:]
            if flow is None:
                previous = g.new_zeros(b, 1 + k, h, w)
            else:
                flow = resize_flow(flow, (h, w))
                previous = torch.cat([torch.sigmoid(global_logit), torch.softmax(local_logits, dim=1)], dim=1)
                previous = F.interpolate(previous, size=(h, w), mode="bilinear", align_corners=False)
            flow, global_logit = global_level(g, p, flow, previous)
            level_flows.append(flow)

            factor = w / width
            pg = local_level.c0(torch.cat([p, g], dim=1))
            initial = g.new_tensor([w, h]) * self.config.patch_fraction
            person_sizes, garment_sizes = local_level.patch_sizes(pg, initial)
            level_local_flows, support = local_flows(
                p, g, scale_points(person_landmarks[..., :2], factor), scale_points(garment_landmarks[..., :2], factor),
                person_sizes, garment_sizes, self.config.patch_samples, self.config.local_temperature,
            )  # fmt: skip
            local_logits = local_level.attention(torch.cat([pg, support, previous[:, 1:]], dim=1))
            local_logits = local_logits.masked_fill(~present[:, :, None, None], -1e4)

        size = (height, width)
        full_flow = resize_flow(flow, size)
        h, w = level_local_flows.shape[-2:]
        full_local = resize_flow(level_local_flows.reshape(b * k, 2, h, w), size).view(b, k, 2, height, width)
        full_local_logits = F.interpolate(local_logits, size=size, mode="bilinear", align_corners=False)
        full_global_logit = F.interpolate(global_logit, size=size, mode="bilinear", align_corners=False)
        global_warped = warp_by_flow(garment, full_flow)
        local_warped = local_warp(garment, full_local, full_local_logits)
        return SALOutput(
            flow=full_flow, level_flows=level_flows, warped=fuse(global_warped, local_warped, full_global_logit),
            global_warped=global_warped, local_warped=local_warped, local_flows=full_local,
            local_logits=full_local_logits, global_logit=full_global_logit,
        )  # fmt: skip


@dataclass(frozen=True)
class SALLossConfig:
    """Loss weights (the paper gives none; L1 1 and VGG 0.2 as the flow-warping works it follows)
    and the Eq. 8 / Eq. 9 details: the generalised Charbonnier ``(x^2 + eps^2)^alpha`` (Sun et al.'s
    alpha 0.45, eps 1e-3) on the global flow's forward differences in its level's pixels, and the
    hard landmark masks as disks of radius ``landmark_radius * H`` around the visible target landmarks."""

    weight_l1: float = 1.0
    weight_perceptual: float = 0.2
    weight_smooth: float = 0.01
    weight_landmark: float = 1.0
    charbonnier_alpha: float = 0.45
    charbonnier_eps: float = 1e-3
    landmark_radius: float = 0.04


def hard_landmark_mask(landmarks: Tensor, height: int, width: int, radius: float) -> Tensor:
    """``M_l`` of Eq. 9: the union of the 0/1 disks of ``radius`` pixels around each *visible*
    landmark. ``landmarks`` ``(B, K, 3)`` (x, y pixels, attribute) -> ``(B, 1, H, W)`` float."""
    pixels = identity_grid(height, width, device=landmarks.device, dtype=landmarks.dtype)  # (2, H, W)
    distance2 = (pixels[None, None] - landmarks[..., :2, None, None]).square().sum(dim=2)  # (B, K, H, W)
    inside = (distance2 <= radius * radius) & (landmarks[..., 2] == VISIBLE)[:, :, None, None]
    return inside.any(dim=1, keepdim=True).to(landmarks.dtype)


def smoothness_loss(level_flows: list[Tensor], alpha: float = 0.45, eps: float = 1e-3) -> Tensor:
    """Eq. 8, ``L_R = sum_i ||grad f_g^i||`` with the generalised Charbonnier penalty: per level,
    the mean penalty of the x and of the y forward differences, summed (a level one pixel wide or
    tall has no differences along that axis and adds nothing for it)."""
    total = level_flows[0].new_zeros(())
    for flow in level_flows:
        for difference in spatial_gradients(flow):
            if difference.numel():
                total = total + charbonnier(difference, alpha=alpha, eps=eps).mean()
    return total


def landmark_loss(local_warped: Tensor, target_garment: Tensor, mask: Tensor) -> Tensor:
    """Eq. 9, ``||(W_l - W_gt) * M_l||_1`` divided by the element count."""
    return ((local_warped - target_garment) * mask).abs().mean()


def sal_losses(
    output: SALOutput,
    target_garment: Tensor,
    target_landmarks: Tensor,
    config: SALLossConfig = SALLossConfig(),
    perceptual: Perceptual | None = None,
) -> WarpLosses:
    """Eq. 6-9 for one batch. ``target_garment`` ``W_gt`` ``(B, 3, H, W)``: the target image times
    its garment region; ``target_landmarks`` ``(B, 32, 3)``: the landmarks on the ground-truth
    person (the masks of Eq. 9). Terms: ``l1`` (Eq. 7), ``perceptual`` (Eq. 6; without a
    perceptual module its stand-in is recorded), ``smooth`` (Eq. 8), ``landmark`` (Eq. 9)."""
    height, width = target_garment.shape[-2:]
    pairs = [(output.global_warped, target_garment), (output.warped, target_garment)]
    l1_sum, perceptual_sum = image_losses(pairs, perceptual)
    mask = hard_landmark_mask(target_landmarks, height, width, config.landmark_radius * height)
    terms = {
        "l1": l1_sum,
        "smooth": smoothness_loss(output.level_flows, config.charbonnier_alpha, config.charbonnier_eps),
        "landmark": landmark_loss(output.local_warped, target_garment, mask),
    }
    total = config.weight_l1 * terms["l1"] + config.weight_smooth * terms["smooth"] + config.weight_landmark * terms["landmark"]
    stand_ins = {}
    if perceptual_sum is None:
        stand_ins["perceptual"] = PERCEPTUAL_STAND_IN
    else:
        terms["perceptual"] = perceptual_sum
        total = total + config.weight_perceptual * perceptual_sum
    return WarpLosses(total=total, terms=terms, stand_ins=stand_ins)
