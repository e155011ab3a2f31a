"""SAL-VTON's try-on generator (Sec. 3.3): an encoder-decoder with skip connections whose decoder
blocks are normalised by the landmark-aware semantic normalisation layer (LASNL, Eq. 10-12),
driven by the heatmaps of the 32 landmarks ``L_p`` on the try-on person; trained with the
perceptual, feature-matching and adversarial losses of HR-VITON [26].

Architecture (the paper: "encoder-decoder [U-Net] with skip connections ... in the decoder, we
replace the residual block with the proposed LASNL"): encoder of stride-2 3x3 conv blocks
(instance norm, LeakyReLU 0.2); decoder, from the bottleneck up, of :class:`LASNLResBlock` (SPADE's
residual block with LASNL as its normalisation) after x2 upsampling and concatenation with the
encoder feature of that resolution; a 3x3 conv to RGB.

Inputs (contract batch keys): ``person``: SAL-VTON's ``P_o`` is the person wearing another
garment (made by a pretrained parser-based model, which vtonpipe lacks); use the agnostic person
of :func:`vtonpipe.models.tryon.agnostic.agnostic_person` on ``target_image``. ``warped``: the
warped garments ``(W_g, W_l, W_f)`` of SAL-VTON's warp model (Eq. 4-5) concatenated, or one
warped garment (``num_warped=1``). ``landmark_heatmaps``: ``target_landmark_heatmaps`` (B, 32, H, W)
(``L_p``; at inference, those the landmark network predicts). Target: ``target_image``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .common import ConvBlock, SpatiallyAdaptiveNorm, to_signed, to_unit
from .discriminators import (
    GanKind,
    MultiScaleDiscriminator,
    adversarial_g_loss,
    feature_matching_loss,
    multiscale_patch_discriminator,
)
from .perceptual import PerceptualLoss

NUM_LANDMARKS = 32


class LASNL(SpatiallyAdaptiveNorm):
    """Landmark-aware semantic normalisation layer, SAL-VTON Eq. 10-12.

    ``L_s = C_com(L)`` (Eq. 10; 3x3 conv + ReLU: ``shared``), ``gamma, beta = C_gamma(L_s),
    C_beta(L_s)`` (Eq. 11; 3x3 convs: ``gamma``, ``beta``) and ``gamma[k, y, x] * (F[n, k, y, x]
    - mu[n, k]) / sigma[n, k] + beta[k, y, x]`` (Eq. 12) with ``mu``, ``sigma`` the mean and
    standard deviation of sample ``n``, channel ``k`` (instance statistics; biased variance plus
    ``eps`` under the root). The heatmaps are resized (bilinear) to the feature's resolution: a
    :class:`SpatiallyAdaptiveNorm` with instance statistics on the landmark heatmaps.

    ``x``: (B, C, H, W); ``heatmaps``: (B, 32, H', W') in [0, 1]. Returns (B, C, H, W).
    """

    def __init__(self, channels: int, hidden: int = 64, landmarks: int = NUM_LANDMARKS, eps: float = 1e-5):
        super().__init__(channels, landmarks, hidden, stats="instance", eps=eps)


class LASNLResBlock(nn.Module):
    """SPADE's residual block with LASNL: ``shortcut(x) + conv(lrelu(LASNL(conv(lrelu(LASNL(x))))))``;
    ``shortcut`` is identity when ``cin == cout``, else LASNL -> 1x1 conv (no bias)."""

    def __init__(self, cin: int, cout: int, hidden: int, landmarks: int = NUM_LANDMARKS):
        super().__init__()
        mid = min(cin, cout)
        self.norm0 = LASNL(cin, hidden, landmarks)
        self.conv0 = nn.Conv2d(cin, mid, 3, padding=1)
        self.norm1 = LASNL(mid, hidden, landmarks)
        self.conv1 = nn.Conv2d(mid, cout, 3, padding=1)
        self.learned_shortcut = cin != cout
        if self.learned_shortcut:
            self.norm_s = LASNL(cin, hidden, landmarks)
            self.conv_s = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, heatmaps)) if self.learned_shortcut else x
        h = self.conv0(F.leaky_relu(self.norm0(x, heatmaps), 0.2))
        h = self.conv1(F.leaky_relu(self.norm1(h, heatmaps), 0.2))
        return shortcut + h


@dataclass(frozen=True)
class LASNLConfig:
    """SAL-VTON generator settings; defaults small enough for CPU training at 256 x 192,
    :meth:`paper_scale` for HR-VITON-like widths, :meth:`tiny` for tests.

    ``base_channels`` doubling per level to ``max_channels`` over ``num_down`` stride-2 levels;
    ``hidden``: LASNL's ``C_com`` width; ``num_warped``: warped garments in the input (3: ``W_g,
    W_l, W_f``). Losses (HR-VITON's, which SAL-VTON follows): ``gan`` (hinge), ``lambda_adv``,
    ``lambda_fm`` (feature matching, 10), ``lambda_perc`` (VGG, 10). Discriminator: multi-scale
    PatchGAN ``d_channels``, ``d_layers``, ``d_scales``.
    """

    base_channels: int = 16
    max_channels: int = 128
    num_down: int = 4
    hidden: int = 16
    num_warped: int = 3
    gan: GanKind = "hinge"
    lambda_adv: float = 1.0
    lambda_fm: float = 10.0
    lambda_perc: float = 10.0
    d_channels: int = 16
    d_layers: int = 3
    d_scales: int = 2

    @classmethod
    def paper_scale(cls) -> "LASNLConfig":
        return cls(base_channels=64, max_channels=512, num_down=5, hidden=128, d_channels=64)

    @classmethod
    def tiny(cls) -> "LASNLConfig":
        return cls(base_channels=8, max_channels=16, num_down=2, hidden=8, d_channels=8, d_layers=2, d_scales=1)


class LASNLGenerator(nn.Module):
    """``forward(person, warped, landmark_heatmaps) -> try-on image``.

    ``person``: (B, 3, H, W) in [0, 1]; ``warped``: (B, 3 * num_warped, H, W) in [0, 1];
    ``landmark_heatmaps``: (B, 32, H, W) in [0, 1]; H, W divisible by ``2 ** num_down``.
    Returns (B, 3, H, W) in [0, 1].
    """

    def __init__(self, cfg: LASNLConfig = LASNLConfig()):
        super().__init__()
        self.cfg = cfg
        widths = [min(cfg.base_channels * 2**i, cfg.max_channels) for i in range(cfg.num_down + 1)]
        self.stem = ConvBlock(3 + 3 * cfg.num_warped, widths[0], norm="instance", act="lrelu")
        self.down = nn.ModuleList(ConvBlock(widths[i], widths[i + 1], stride=2, norm="instance", act="lrelu") for i in range(cfg.num_down))
        self.bottleneck = LASNLResBlock(widths[-1], widths[-1], cfg.hidden)
        self.up = nn.ModuleList(LASNLResBlock(widths[i + 1] + widths[i], widths[i], cfg.hidden) for i in range(cfg.num_down))
        self.to_rgb = nn.Conv2d(widths[0], 3, 3, padding=1)

    def forward(self, person: torch.Tensor, warped: torch.Tensor, landmark_heatmaps: torch.Tensor) -> torch.Tensor:
        if warped.shape[1] != 3 * self.cfg.num_warped:
            raise ValueError(f"warped has {warped.shape[1]} channels, expected {3 * self.cfg.num_warped} (num_warped={self.cfg.num_warped})")
        if landmark_heatmaps.shape[1] != NUM_LANDMARKS:
            raise ValueError(f"expected {NUM_LANDMARKS} landmark heatmaps, got {landmark_heatmaps.shape[1]}")
        h, w = person.shape[-2:]
        step = 2**self.cfg.num_down
        if h % step or w % step:
            raise ValueError(f"image size {h}x{w} must be divisible by {step} (num_down={self.cfg.num_down})")
        skips = [self.stem(to_signed(torch.cat([person, warped], dim=1)))]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = self.bottleneck(skips[-1], landmark_heatmaps)
        for i in reversed(range(self.cfg.num_down)):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = self.up[i](torch.cat([x, skips[i]], dim=1), landmark_heatmaps)
        return to_unit(torch.tanh(self.to_rgb(F.leaky_relu(x, 0.2))))


def discriminator_input(image: torch.Tensor, person: torch.Tensor, warped: torch.Tensor, landmark_heatmaps: torch.Tensor) -> torch.Tensor:
    """The conditional discriminator's input: image, person, warped garments, heatmaps
    concatenated: (B, 3 + 3 + 3 * num_warped + 32, H, W)."""
    return torch.cat([image, person, warped, landmark_heatmaps], dim=1)


def make_discriminator(cfg: LASNLConfig = LASNLConfig()) -> MultiScaleDiscriminator:
    """Multi-scale PatchGAN on :func:`discriminator_input`."""
    return multiscale_patch_discriminator(6 + 3 * cfg.num_warped + NUM_LANDMARKS, ndf=cfg.d_channels, n_layers=cfg.d_layers, num_scales=cfg.d_scales)


def generator_loss(
    output: torch.Tensor,
    target: torch.Tensor,
    real_outs: list[list[torch.Tensor]],
    fake_outs: list[list[torch.Tensor]],
    perceptual: PerceptualLoss,
    cfg: LASNLConfig = LASNLConfig(),
) -> dict[str, torch.Tensor]:
    """``lambda_adv L_adv + lambda_fm L_fm + lambda_perc L_perc`` (SAL-VTON Sec. 3.3 after
    HR-VITON). ``real_outs`` / ``fake_outs``: the discriminator on :func:`discriminator_input` of
    ``target`` / ``output``. Returns ``{"total", "adv", "feature_matching",
    "perceptual_<name>"}``."""
    adv = adversarial_g_loss(fake_outs, cfg.gan)
    fm = feature_matching_loss(real_outs, fake_outs)
    perc = perceptual(output, target)
    total = cfg.lambda_adv * adv + cfg.lambda_fm * fm + cfg.lambda_perc * perc
    return {"total": total, "adv": adv, "feature_matching": fm, f"perceptual_{perceptual.name}": perc}
