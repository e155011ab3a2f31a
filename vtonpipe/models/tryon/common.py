"""Building blocks shared by the try-on generators: value-range conversion, conv blocks, the
spatially-adaptive normalisation (SPADE, LASNL), the garment composition, head crops, and the
training-schedule record.

Conventions (the training contract): images are float32 ``(B, 3, H, W)`` in [0, 1]; masks
``(B, 1, H, W)`` in {0, 1} (or soft in [0, 1]); designs that work in [-1, 1] convert with
:func:`to_signed` / :func:`to_unit`. Image coordinates are (x, y) pixels, x right, y down, pixel
centres at integers (docs/CONVENTIONS.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Norm = Literal["instance", "batch", "none"]
Act = Literal["relu", "lrelu", "tanh", "none"]


def to_signed(image: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1]."""
    return image * 2.0 - 1.0


def to_unit(image: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]."""
    return (image + 1.0) * 0.5


def norm_layer(kind: Norm, channels: int) -> nn.Module:
    """Instance norm (affine, as pix2pix), batch norm, or identity."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be instance, batch or none, not {kind!r}")


def activation(kind: Act) -> nn.Module:
    layers = {"relu": nn.ReLU, "lrelu": lambda: nn.LeakyReLU(0.2), "tanh": nn.Tanh, "none": nn.Identity}
    if kind not in layers:
        raise ValueError(f"activation must be one of {sorted(layers)}, not {kind!r}")
    return layers[kind]()


class ConvBlock(nn.Sequential):
    """Conv ``k x k`` (padding ``dilation * (k // 2)``, so stride 1 keeps the size) -> norm -> activation."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, *, dilation: int = 1, norm: Norm = "instance", act: Act = "relu"):
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, padding=dilation * (k // 2), dilation=dilation, bias=norm != "batch"),
            norm_layer(norm, cout),
            activation(act),
        )


class ResBlock(nn.Module):
    """``x + conv-norm-relu-conv-norm(x)`` (pix2pix / pix2pixHD residual block, 3x3 convs)."""

    def __init__(self, channels: int, norm: Norm = "instance"):
        super().__init__()
        self.body = nn.Sequential(ConvBlock(channels, channels, norm=norm), ConvBlock(channels, channels, norm=norm, act="none"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpBlock(nn.Sequential):
    """Nearest x2 upsampling followed by a :class:`ConvBlock` (no checkerboard of transposed convs)."""

    def __init__(self, cin: int, cout: int, *, norm: Norm = "instance", act: Act = "relu"):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), ConvBlock(cin, cout, norm=norm, act=act))


def resize_to(x: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """``x`` (B, C, h, w) resampled to ``size`` = (H, W); identity when already that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


# -- spatially-adaptive normalisation ----------------------------------------------------------
class SpatiallyAdaptiveNorm(nn.Module):
    """``gamma(c)[k, y, x] * (F[n, k, y, x] - mu) / sigma + beta(c)[k, y, x]``.

    The parameter-free normalisation's statistics are per channel over the batch (``stats="batch"``:
    SPADE, Park et al. 2019, Eq. 1, which uses batch norm) or per sample and channel
    (``stats="instance"``: SAL-VTON's LASNL, Eq. 12). The modulation maps come from the condition
    ``c`` resized (bilinear) to the feature's size: a shared ``hidden``-channel conv + ReLU (SPADE's
    shared MLP; LASNL's ``C_com``, Eq. 10), then one conv each for gamma and beta (``C_gamma``,
    ``C_beta``, Eq. 11). All convs are ``kernel x kernel``, padding ``kernel // 2``. ``C_gamma``'s
    bias starts at 1 so that a fresh layer is a plain normalisation (an initialisation choice; the
    equation is applied as written, not as SPADE's code's ``1 + gamma``).

    Batch statistics follow :class:`torch.nn.BatchNorm2d` (running estimates used in eval mode);
    ``eps`` is added to the variance.

    ``x``: (B, C, H, W) features; ``cond``: (B, C_cond, H', W') any resolution. Returns (B, C, H, W).
    """

    def __init__(self, channels: int, cond_channels: int, hidden: int = 64, *, stats: Literal["batch", "instance"] = "batch", kernel: int = 3, eps: float = 1e-5):
        super().__init__()
        if stats == "batch":
            self.param_free: nn.Module = nn.BatchNorm2d(channels, affine=False, eps=eps)
        elif stats == "instance":
            self.param_free = nn.InstanceNorm2d(channels, affine=False, eps=eps)
        else:
            raise ValueError(f"stats must be batch or instance, not {stats!r}")
        self.stats = stats
        pad = kernel // 2
        self.shared = nn.Sequential(nn.Conv2d(cond_channels, hidden, kernel, padding=pad), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, channels, kernel, padding=pad)
        self.beta = nn.Conv2d(hidden, channels, kernel, padding=pad)
        nn.init.zeros_(self.beta.bias)
        nn.init.ones_(self.gamma.bias)

    def modulation(self, cond: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(gamma, beta), each (B, C, H, W), from ``cond`` resized to ``size``."""
        shared = self.shared(resize_to(cond, size))
        return self.gamma(shared), self.beta(shared)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.modulation(cond, tuple(x.shape[-2:]))
        return gamma * self.param_free(x) + beta


# -- composition -------------------------------------------------------------------------------
def compose(warped_garment: torch.Tensor, rendered: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``warped_garment * M + rendered * (1 - M)``: SPG-VTON Eq. 10 (``C_w``, ``I_r``) and Down to
    the Last Detail Eq. 4 (``C~^w_pt``, ``I~_r``).

    ``warped_garment``, ``rendered``: (B, 3, H, W) in [0, 1]; ``mask``: (B, 1, H, W) in [0, 1]
    (1 takes the garment). Returns (B, 3, H, W) in [0, 1].
    """
    return warped_garment * mask + rendered * (1.0 - mask)


def split_image_and_mask(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A 4-channel generator output (B, 4, H, W) of unbounded values -> image (B, 3, H, W) in
    [0, 1] (``(tanh + 1) / 2``) and mask (B, 1, H, W) in [0, 1] (sigmoid)."""
    if out.shape[1] != 4:
        raise ValueError(f"expected a 4-channel output (RGB + mask), got {tuple(out.shape)}")
    return to_unit(torch.tanh(out[:, :3])), torch.sigmoid(out[:, 3:])


def init_mask_output(conv: nn.Conv2d, mask_init: float) -> None:
    """Start a 4-channel (RGB + mask, :func:`split_image_and_mask`) generator's last ``conv`` with
    the mask at ``mask_init`` everywhere: the mask channel's weights zeroed and its bias set to
    ``logit(mask_init)``, so that a composition (:func:`compose`) starts from the rendered image
    (the papers give no initialisation). ``mask_init`` in (0, 1)."""
    if not 0.0 < mask_init < 1.0:
        raise ValueError(f"mask_init must lie in (0, 1), got {mask_init}")
    if conv.out_channels != 4 or conv.bias is None:
        raise ValueError("expected the last convolution of a 4-channel generator, with a bias")
    with torch.no_grad():
        conv.weight[3].zero_()
        conv.bias[3] = math.log(mask_init / (1.0 - mask_init))


# -- crops -------------------------------------------------------------------------------------
def mask_boxes(mask: torch.Tensor, *, margin: float = 0.1, aspect: float | None = None) -> torch.Tensor:
    """Box around each mask's nonzero pixels: (B, 4) float ``(x0, y0, x1, y1)``.

    The box edges are pixel edges (a mask spanning columns ``a..b`` gives ``x0 = a - 0.5``,
    ``x1 = b + 0.5``), widened by ``margin`` times the box size on every side and then, when
    ``aspect`` (height / width) is given, grown about its centre along the short side to that
    aspect. An empty mask gives the whole image. The box may extend past the image (crops pad
    with zeros there). ``mask``: (B, 1, H, W).
    """
    b, _, h, w = mask.shape
    boxes = torch.empty(b, 4, dtype=torch.float32, device=mask.device)
    for i in range(b):
        ys, xs = torch.nonzero(mask[i, 0] > 0, as_tuple=True)
        if len(xs) == 0:
            boxes[i] = torch.tensor([-0.5, -0.5, w - 0.5, h - 0.5])
            continue
        x0, x1 = xs.min().item() - 0.5, xs.max().item() + 0.5
        y0, y1 = ys.min().item() - 0.5, ys.max().item() + 0.5
        mx, my = margin * (x1 - x0), margin * (y1 - y0)
        x0, x1, y0, y1 = x0 - mx, x1 + mx, y0 - my, y1 + my
        if aspect is not None:
            cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
            bw, bh = max(bw, bh / aspect), max(bh, bw * aspect)
            x0, x1, y0, y1 = cx - bw / 2, cx + bw / 2, cy - bh / 2, cy + bh / 2
        boxes[i] = torch.tensor([x0, y0, x1, y1])
    return boxes


def crop_and_resize(x: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear crops of ``x`` (B, C, H, W) inside ``boxes`` (B, 4) ``(x0, y0, x1, y1)`` (pixel-edge
    coordinates, see :func:`mask_boxes`) resampled to ``size`` = (h, w): (B, C, h, w).

    Crop pixel ``j`` samples ``x`` at ``x0 + (j + 0.5) (x1 - x0) / w`` (likewise rows); outside
    the image it reads zeros. Differentiable in ``x``.
    """
    h, w = size
    b, _, height, width = x.shape
    dev = x.device
    j = (torch.arange(w, device=dev, dtype=x.dtype) + 0.5) / w
    i = (torch.arange(h, device=dev, dtype=x.dtype) + 0.5) / h
    bx = boxes.to(x.dtype)
    px = bx[:, 0:1] + j[None] * (bx[:, 2:3] - bx[:, 0:1])  # (B, w) pixel-centre x
    py = bx[:, 1:2] + i[None] * (bx[:, 3:4] - bx[:, 1:2])  # (B, h)
    gx = (px + 0.5) / width * 2 - 1
    gy = (py + 0.5) / height * 2 - 1
    grid = torch.stack([gx[:, None, :].expand(b, h, w), gy[:, :, None].expand(b, h, w)], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def paste_crop(image: torch.Tensor, crop: torch.Tensor, boxes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Put ``crop`` (B, C, h, w) back into ``image`` (B, C, H, W) at ``boxes`` (the inverse of
    :func:`crop_and_resize`, bilinear), blended by ``mask`` (B, 1, H, W) in [0, 1]:
    ``image * (1 - m) + pasted * m`` with ``m = mask`` inside the box and 0 outside."""
    b, _, height, width = image.shape
    dev, dt = image.device, image.dtype
    xs = torch.arange(width, device=dev, dtype=dt)
    ys = torch.arange(height, device=dev, dtype=dt)
    bx = boxes.to(dt)
    gx = (xs[None] + 0.5 - (bx[:, 0:1] + 0.5)) / (bx[:, 2:3] - bx[:, 0:1]) * 2 - 1  # (B, W)
    gy = (ys[None] + 0.5 - (bx[:, 1:2] + 0.5)) / (bx[:, 3:4] - bx[:, 1:2]) * 2 - 1  # (B, H)
    grid = torch.stack([gx[:, None, :].expand(b, height, width), gy[:, :, None].expand(b, height, width)], dim=-1)
    pasted = F.grid_sample(crop, grid, mode="bilinear", padding_mode="border", align_corners=False)
    inside = ((gx.abs() <= 1)[:, None, :] & (gy.abs() <= 1)[:, :, None]).to(dt)[:, None]
    m = mask * inside
    return image * (1 - m) + pasted * m


# -- schedules ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Phase:
    """One phase of a multi-phase training schedule, as data for the trainer.

    ``train``: the modules whose parameters the phase optimises (generators and discriminators);
    ``frozen``: modules run in eval mode without gradients to produce the phase's inputs;
    ``losses``: names of the loss groups summed into the generators' objective (each model module
    maps a name to its loss function); ``steps``: the paper's iteration count (None: the paper
    gives none, the trainer's config decides); ``batch_size``: the paper's (None: not given).
    """

    name: str
    train: tuple[str, ...]
    frozen: tuple[str, ...]
    losses: tuple[str, ...]
    steps: int | None = None
    batch_size: int | None = None
