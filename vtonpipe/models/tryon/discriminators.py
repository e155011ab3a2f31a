"""Discriminators and adversarial losses shared by the try-on models.

- :class:`PatchDiscriminator`: pix2pix / pix2pixHD's N-layer PatchGAN (4x4 convs, LeakyReLU 0.2),
  returning every layer's output so that the feature-matching loss can read them.
- :class:`MultiScaleDiscriminator`: pix2pixHD's multi-scale wrapper: the same architecture
  applied to the input and to its 2x, 4x... average-pooled copies (separate weights per scale).
- :class:`GlobalLocalDiscriminator`: SPG-VTON's pair of a global discriminator on the whole image
  and a local one on the head (face + hair) crop (Eq. 13-14); both share one architecture.
- Losses on the discriminators' outputs (lists over scales of lists over layers, the last entry
  being the patch prediction): :func:`adversarial_d_loss`, :func:`adversarial_g_loss` for
  ``kind`` ``lsgan`` (Mao et al. 2017, used by SPG-VTON and Down to the Last Detail), ``hinge``
  (HR-VITON's, which SAL-VTON follows) and ``nonsaturating`` (StyleGAN2's logistic loss, 3D-GCL's
  generator [25]); :func:`feature_matching_loss` (pix2pixHD) and :func:`r1_penalty` (Mescheder et
  al. 2018, SPG-VTON's "gradient punishment" [52]).
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .common import Norm, crop_and_resize, mask_boxes, norm_layer

GanKind = Literal["lsgan", "hinge", "nonsaturating"]
GAN_KINDS = ("lsgan", "hinge", "nonsaturating")
#: Outputs of a multi-scale discriminator: per scale, every layer's output (last: patch logits).
DiscriminatorOutputs = list[list[torch.Tensor]]


class PatchDiscriminator(nn.Module):
    """pix2pixHD's ``NLayerDiscriminator``: conv4 s2 -> LReLU; ``n_layers - 1`` x (conv4 s2 ->
    norm -> LReLU), channels doubling up to ``8 * ndf``; conv4 s1 -> norm -> LReLU; conv4 s1 -> 1.

    ``x``: (B, in_channels, H, W) -> list of ``n_layers + 2`` feature maps, the last (B, 1, h, w)
    the patch logits (about H / 2**n_layers - 2; each logit sees a 70 x 70 px patch for
    ``n_layers = 3``).
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: Norm = "instance"):
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, 2, 2), nn.LeakyReLU(0.2))]
        ch = ndf
        for n in range(1, n_layers + 1):
            prev, ch = ch, min(ndf * 2**n, ndf * 8)
            stride = 2 if n < n_layers else 1
            layers.append(nn.Sequential(nn.Conv2d(prev, ch, 4, stride, 2), norm_layer(norm, ch), nn.LeakyReLU(0.2)))
        layers.append(nn.Conv2d(ch, 1, 4, 1, 2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for layer in self.layers:
            x = layer(x)
            outs.append(x)
        return outs


class MultiScaleDiscriminator(nn.Module):
    """``num_scales`` discriminators built by ``make`` (each returning its list of layer
    outputs); scale ``s`` sees the input average-pooled ``s`` times (3x3, stride 2, padding 1,
    padding not counted, as pix2pixHD). ``x``: (B, C, H, W) -> :data:`DiscriminatorOutputs`."""

    def __init__(self, make: Callable[[], nn.Module], num_scales: int = 2):
        super().__init__()
        if num_scales < 1:
            raise ValueError("num_scales must be >= 1")
        self.scales = nn.ModuleList(make() for _ in range(num_scales))

    def forward(self, x: torch.Tensor) -> DiscriminatorOutputs:
        outs = []
        for i, d in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outs.append(d(x))
        return outs


def multiscale_patch_discriminator(
    in_channels: int, *, ndf: int = 64, n_layers: int = 3, num_scales: int = 2, norm: Norm = "instance"
) -> MultiScaleDiscriminator:
    """pix2pixHD's multi-scale PatchGAN of :class:`PatchDiscriminator` (pix2pixHD's and HR-VITON's
    defaults: ``ndf=64, n_layers=3``, 2 scales)."""
    return MultiScaleDiscriminator(lambda: PatchDiscriminator(in_channels, ndf, n_layers, norm), num_scales)


def head_crops(tensors: Sequence[torch.Tensor], head_mask: torch.Tensor, size: tuple[int, int], margin: float = 0.1) -> torch.Tensor:
    """Concatenation along channels of every (B, C_i, H, W) tensor cropped at one box per sample:
    the box of ``head_mask`` (B, 1, H, W) widened by ``margin`` and grown to the aspect of ``size``
    = (h, w), resampled to ``size``: (B, sum C_i, h, w)."""
    boxes = mask_boxes(head_mask, margin=margin, aspect=size[0] / size[1])
    return crop_and_resize(torch.cat(list(tensors), dim=1), boxes, tuple(size))


class GlobalLocalDiscriminator(nn.Module):
    """SPG-VTON's global ``D_g`` and local ``D_l`` discriminators (Eq. 13-14; "D_g and D_l share
    the same structure"), built by ``make(in_channels)``.

    The local discriminator sees crops around the head: :meth:`head_crops` cuts every tensor of
    its input at one box per sample (the box of the head mask, widened by ``margin`` and grown to
    the aspect of ``local_size``), resampled to ``local_size`` = (h, w). Use the same head mask for
    the real and the generated image so both are cut alike.
    """

    def __init__(
        self, make: Callable[[int], nn.Module], global_channels: int, local_channels: int, *, local_size: tuple[int, int] = (64, 64), margin: float = 0.1
    ):
        super().__init__()
        self.global_d = make(global_channels)
        self.local_d = make(local_channels)
        self.local_size = tuple(local_size)
        self.margin = margin

    def head_crops(self, tensors: Sequence[torch.Tensor], head_mask: torch.Tensor) -> torch.Tensor:
        """:func:`head_crops` at this discriminator's ``local_size`` and ``margin``."""
        return head_crops(tensors, head_mask, self.local_size, self.margin)

    def forward(self, global_input: torch.Tensor, local_input: torch.Tensor) -> tuple[DiscriminatorOutputs, DiscriminatorOutputs]:
        """``global_input`` (B, global_channels, H, W), ``local_input`` (B, local_channels, h, w)
        (from :meth:`head_crops`) -> (global outputs, local outputs)."""
        return self.global_d(global_input), self.local_d(local_input)


# -- losses ------------------------------------------------------------------------------------
def _check_kind(kind: str) -> None:
    if kind not in GAN_KINDS:
        raise ValueError(f"GAN loss kind must be one of {GAN_KINDS}, not {kind!r}")


def _predictions(outs: DiscriminatorOutputs) -> list[torch.Tensor]:
    return [scale[-1] for scale in outs]


def adversarial_d_loss(real: DiscriminatorOutputs, fake: DiscriminatorOutputs, kind: GanKind = "lsgan") -> torch.Tensor:
    """The discriminator's loss, averaged over the scales (pixel means within a scale).

    - ``lsgan``: ``((D(real) - 1)^2 + D(fake)^2) / 2`` (pix2pixHD's ``(loss_real + loss_fake) * 0.5``);
    - ``hinge``: ``relu(1 - D(real)) + relu(1 + D(fake))``;
    - ``nonsaturating``: ``softplus(-D(real)) + softplus(D(fake))``.

    ``fake`` should come from detached generator outputs.
    """
    _check_kind(kind)
    losses = []
    for r, f in zip(_predictions(real), _predictions(fake), strict=True):
        if kind == "lsgan":
            losses.append(0.5 * (((r - 1) ** 2).mean() + (f**2).mean()))
        elif kind == "hinge":
            losses.append(F.relu(1 - r).mean() + F.relu(1 + f).mean())
        else:
            losses.append(F.softplus(-r).mean() + F.softplus(f).mean())
    return torch.stack(losses).mean()


def adversarial_g_loss(fake: DiscriminatorOutputs, kind: GanKind = "lsgan") -> torch.Tensor:
    """The generator's adversarial loss, averaged over the scales: ``lsgan`` ``(D(fake) - 1)^2``;
    ``hinge`` ``-D(fake)``; ``nonsaturating`` ``softplus(-D(fake))``."""
    _check_kind(kind)
    losses = []
    for f in _predictions(fake):
        if kind == "lsgan":
            losses.append(((f - 1) ** 2).mean())
        elif kind == "hinge":
            losses.append(-f.mean())
        else:
            losses.append(F.softplus(-f).mean())
    return torch.stack(losses).mean()


def feature_matching_loss(real: DiscriminatorOutputs, fake: DiscriminatorOutputs) -> torch.Tensor:
    """pix2pixHD's discriminator feature-matching loss, as SPADE / HR-VITON weigh it:
    ``(1 / num_scales) * sum_scales sum_layers mean |D_l(fake) - D_l(real)|`` over every layer but
    the last (the prediction); the real features are detached."""
    total = fake[0][0].new_zeros(())
    for r_scale, f_scale in zip(real, fake, strict=True):
        for r, f in zip(r_scale[:-1], f_scale[:-1], strict=True):
            total = total + (f - r.detach()).abs().mean()
    return total / len(fake)


def r1_penalty(real_outs: DiscriminatorOutputs, real_input: torch.Tensor) -> torch.Tensor:
    """Mescheder et al.'s R1: ``mean_b || d sum(D(x_b)) / d x_b ||^2`` for the real input
    ``real_input`` (which must have ``requires_grad``; the sum runs over every scale's patch
    logits). Multiply by ``gamma / 2`` in the discriminator's objective."""
    total = sum(p.sum() for p in _predictions(real_outs))
    (grad,) = torch.autograd.grad(total, real_input, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def discriminator_loss(
    d: nn.Module, real_input: torch.Tensor, fake_input: torch.Tensor, kind: GanKind = "lsgan", *, r1_gamma: float = 0.0
) -> dict[str, torch.Tensor]:
    """One discriminator's objective on a real and a generated input (the latter detached here):
    ``total = adv + r1_gamma / 2 * r1`` with ``adv`` from :func:`adversarial_d_loss` and ``r1``
    from :func:`r1_penalty` (computed only when ``r1_gamma > 0``). Returns ``{"total", "adv"}``
    plus ``"r1"`` when used."""
    real_input = real_input.detach().requires_grad_(r1_gamma > 0)
    real = d(real_input)
    fake = d(fake_input.detach())
    out = {"adv": adversarial_d_loss(real, fake, kind)}
    out["total"] = out["adv"]
    if r1_gamma > 0:
        out["r1"] = r1_penalty(real, real_input)
        out["total"] = out["total"] + 0.5 * r1_gamma * out["r1"]
    return out
