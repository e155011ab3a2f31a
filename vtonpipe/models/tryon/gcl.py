"""3D-GCL's try-on generator (Sec. 3.1, 3.4): ``g(I_t | G')``, a StyleGAN2-like generator whose
style normalisation is replaced by spatially-adaptive normalisation (SPADE), trained with the
adversarial, L1 and perceptual losses of Eq. 8.

The paper leaves the architecture to its supplement; here: an encoder (stride-2 3x3 convs,
LeakyReLU 0.2) of the conditioning input takes the place of StyleGAN2's learned constant, and the
synthesis network is StyleGAN2's "skip" generator: per resolution, x2 bilinear upsampling and two
3x3 convs each followed by noise injection, SPADE (conditioned on the agnostic person and the
warped garment resized to that resolution) and LeakyReLU 0.2, with a 1x1 ``toRGB`` whose output
is added to the upsampled RGB of the coarser level. Noise is injected in training mode only (its
expectation, zero, at evaluation, so inference is deterministic). The discriminator is the shared
multi-scale PatchGAN conditioned on the generator's inputs (StyleGAN2's residual discriminator is
not reproduced). The paper gives no loss weights; :class:`GCLConfig` documents ours.

Inputs (batch keys of the training contract): ``agnostic``: the garment-agnostic target person
(from ``target_image`` + ``target_parsing`` [+ ``target_keypoints``] with
:mod:`vtonpipe.models.tryon.agnostic`); ``warped_garment``: the garment warped onto the target by
a warp model (3D-GCL: its 3D-aware global correspondence). Target: ``target_image``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .common import ConvBlock, SpatiallyAdaptiveNorm, to_signed, to_unit
from .discriminators import (
    GanKind,
    MultiScaleDiscriminator,
    adversarial_g_loss,
    multiscale_patch_discriminator,
)
from .perceptual import PerceptualLoss


@dataclass(frozen=True)
class GCLConfig:
    """3D-GCL generator settings. The defaults are a small network that trains on CPU at
    256 x 192 (0.5 M generator parameters); :meth:`paper_scale` widens it; :meth:`tiny`
    is for tests.

    ``base_channels`` widths double per level up to ``max_channels``; ``num_down`` stride-2
    levels (256 x 192 -> 16 x 12 for 4); ``spade_hidden``: SPADE's shared conv width;
    ``spade_stats``: SPADE's parameter-free statistics (``batch``, as SPADE); ``noise``: StyleGAN2
    noise inputs. Losses (Eq. 8; the paper gives no values): ``gan`` kind (StyleGAN2's
    non-saturating loss, [25]) and ``lambda_adv``, ``lambda_l1``, ``lambda_perc``. Discriminator:
    multi-scale PatchGAN with ``d_channels``, ``d_layers``, ``d_scales``.
    """

    base_channels: int = 16
    max_channels: int = 64
    num_down: int = 4
    spade_hidden: int = 16
    spade_stats: Literal["batch", "instance"] = "batch"
    noise: bool = True
    gan: GanKind = "nonsaturating"
    lambda_adv: float = 1.0
    lambda_l1: float = 10.0
    lambda_perc: float = 10.0
    d_channels: int = 16
    d_layers: int = 3
    d_scales: int = 2

    @classmethod
    def paper_scale(cls) -> "GCLConfig":
        """StyleGAN2 / SPADE widths (64 .. 512, SPADE hidden 128, 64-channel discriminator)."""
        return cls(base_channels=64, max_channels=512, num_down=5, spade_hidden=128, d_channels=64)

    @classmethod
    def tiny(cls) -> "GCLConfig":
        return cls(base_channels=8, max_channels=16, num_down=2, spade_hidden=8, d_channels=8, d_layers=2, d_scales=1)


class NoiseInjection(nn.Module):
    """StyleGAN2's per-layer noise: ``x + strength * n``, ``n ~ N(0, 1)`` (B, 1, H, W), ``strength``
    a learned scalar starting at 0. Identity in eval mode."""

    def __init__(self):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return x + self.strength * torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)


class SynthesisLayer(nn.Module):
    """conv 3x3 -> noise -> SPADE(cond) -> LeakyReLU 0.2."""

    def __init__(self, cin: int, cout: int, cond_channels: int, cfg: GCLConfig):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.noise = NoiseInjection() if cfg.noise else nn.Identity()
        self.norm = SpatiallyAdaptiveNorm(cout, cond_channels, cfg.spade_hidden, stats=cfg.spade_stats)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.norm(self.noise(self.conv(x)), cond), 0.2)


class SynthesisBlock(nn.Module):
    """x2 bilinear upsampling, two :class:`SynthesisLayer`, and the ``toRGB`` skip (1x1 conv)."""

    def __init__(self, cin: int, cout: int, cond_channels: int, cfg: GCLConfig, *, upsample: bool = True):
        super().__init__()
        self.upsample = upsample
        self.layer0 = SynthesisLayer(cin, cout, cond_channels, cfg)
        self.layer1 = SynthesisLayer(cout, cout, cond_channels, cfg)
        self.to_rgb = nn.Conv2d(cout, 3, 1)

    def forward(self, x: torch.Tensor, rgb: torch.Tensor | None, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = self.layer1(self.layer0(x, cond), cond)
        out = self.to_rgb(x)
        if rgb is not None:
            out = out + F.interpolate(rgb, size=out.shape[-2:], mode="bilinear", align_corners=False)
        return x, out


class GCLGenerator(nn.Module):
    """``forward(agnostic, warped_garment) -> try-on image``.

    ``agnostic``, ``warped_garment``: (B, 3, H, W) in [0, 1], H and W divisible by
    ``2 ** num_down``. Returns (B, 3, H, W) in [0, 1] (``(tanh(rgb) + 1) / 2`` of the summed
    ``toRGB`` outputs).
    """

    def __init__(self, cfg: GCLConfig = GCLConfig()):
        super().__init__()
        self.cfg = cfg
        widths = [min(cfg.base_channels * 2**i, cfg.max_channels) for i in range(cfg.num_down + 1)]
        cond_channels = 6
        self.stem = ConvBlock(cond_channels, widths[0], norm="none", act="lrelu")
        self.down = nn.ModuleList(ConvBlock(widths[i], widths[i + 1], stride=2, norm="none", act="lrelu") for i in range(cfg.num_down))
        blocks = [SynthesisBlock(widths[-1], widths[-1], cond_channels, cfg, upsample=False)]
        blocks += [SynthesisBlock(widths[i + 1], widths[i], cond_channels, cfg) for i in reversed(range(cfg.num_down))]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, agnostic: torch.Tensor, warped_garment: torch.Tensor) -> torch.Tensor:
        h, w = agnostic.shape[-2:]
        step = 2**self.cfg.num_down
        if h % step or w % step:
            raise ValueError(f"image size {h}x{w} must be divisible by {step} (num_down={self.cfg.num_down})")
        cond = to_signed(torch.cat([agnostic, warped_garment], dim=1))
        x = self.stem(cond)
        for down in self.down:
            x = down(x)
        rgb = None
        for block in self.blocks:
            x, rgb = block(x, rgb, cond)
        return to_unit(torch.tanh(rgb))


def make_discriminator(cfg: GCLConfig = GCLConfig()) -> MultiScaleDiscriminator:
    """Multi-scale PatchGAN on :func:`discriminator_input` (9 channels)."""
    return multiscale_patch_discriminator(9, ndf=cfg.d_channels, n_layers=cfg.d_layers, num_scales=cfg.d_scales)


def discriminator_input(image: torch.Tensor, agnostic: torch.Tensor, warped_garment: torch.Tensor) -> torch.Tensor:
    """The conditional discriminator's input: (B, 9, H, W) = image (real ``target_image`` or the
    generator's output), agnostic person, warped garment."""
    return torch.cat([image, agnostic, warped_garment], dim=1)


def generator_loss(output: torch.Tensor, target: torch.Tensor, fake_outs: list[list[torch.Tensor]], perceptual: PerceptualLoss, cfg: GCLConfig = GCLConfig()) -> dict[str, torch.Tensor]:
    """Eq. 8: ``L_g = lambda_adv L_adv + lambda_l1 L_l1 + lambda_perc L_perc``.

    ``output``, ``target``: (B, 3, H, W) in [0, 1]; ``fake_outs``: the discriminator's outputs on
    :func:`discriminator_input` of ``output``. Returns ``{"total", "adv", "l1",
    "perceptual_<name>"}`` (``name`` the perceptual loss used: ``vgg19`` or ``pyramid_l1``);
    ``l1`` is the mean absolute error.
    """
    adv = adversarial_g_loss(fake_outs, cfg.gan)
    l1 = (output - target).abs().mean()
    perc = perceptual(output, target)
    total = cfg.lambda_adv * adv + cfg.lambda_l1 * l1 + cfg.lambda_perc * perc
    return {"total": total, "adv": adv, "l1": l1, f"perceptual_{perceptual.name}": perc}
