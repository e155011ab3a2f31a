"""Warping utilities shared by the three warping networks (3D-GCL, SPG-VTON's TPS, SAL-VTON).

Frames (docs/CONVENTIONS.md): points are ``(x, y)`` pixels, x right, y down, pixel centres at
integers, an image of width ``W`` spans ``[-0.5, W - 0.5]``. A **flow** is ``(B, 2, h, w)`` float
on a *target* grid, channel 0 = dx, channel 1 = dy, in pixels of that grid: target pixel
``(x, y)`` takes its value from source position ``(x + dx, y + dy)`` (the SMPL flow's
convention, ``vtonpipe.models.render.flow``). ``torch.nn.functional.grid_sample`` with
``align_corners=False`` puts normalised ``-1`` / ``+1`` on the image *edges*, so pixel centre ``x``
is ``(2 x + 1) / W - 1``; every sampler here uses that mapping.

Also here: the output and loss types every warping model returns (:class:`WarpOutput`,
:class:`WarpLosses`), so the trainer, sample grids and ``vtonpipe show`` treat them alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: a perceptual loss: ``(prediction, target)`` images ``(B, 3, H, W)`` in ``[0, 1]`` -> scalar
Perceptual = Callable[[Tensor, Tensor], Tensor]


@dataclass
class WarpOutput:
    """What every warping network's ``forward`` returns (model-specific subclasses add fields).

    - ``flow``: ``(B, 2, H, W)`` at the input resolution, target grid -> garment (or source)
      pixels, in pixels. For SAL-VTON this is the global flow (its fusion is image-level).
    - ``level_flows``: coarse to fine, each ``(B, 2, h_l, w_l)`` in pixels of its own grid
      (:func:`resize_flow` brings one to another resolution).
    - ``warped``: ``(B, C, H, W)``, the garment image as the model warps it onto the target.
    """

    flow: Tensor
    level_flows: list[Tensor]
    warped: Tensor

    def warp_like(self, image: Tensor) -> Tensor:
        """Warp another garment-frame image ``(B, C, H, W)`` (e.g. the garment mask) as ``warped`` was."""
        return warp_by_flow(image, self.flow)


@dataclass
class WarpLosses:
    """A model's training loss: ``total`` (weighted sum, the scalar to back-propagate), the
    unweighted scalar ``terms`` by name (for logs), and ``stand_ins``: for each loss of the paper
    that could not be computed, what stands in for it (e.g. ``{"perceptual": "l1 alone: ..."}``);
    empty when the loss is the paper's."""

    total: Tensor
    terms: dict[str, Tensor]
    stand_ins: dict[str, str] = field(default_factory=dict)


def identity_grid(height: int, width: int, *, device=None, dtype=torch.float32) -> Tensor:
    """Pixel-centre coordinates ``(2, H, W)``: ``[0, y, x] = x``, ``[1, y, x] = y``."""
    ys = torch.arange(height, device=device, dtype=dtype)
    xs = torch.arange(width, device=device, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y])


def pixels_to_normalized(points: Tensor, height: int, width: int) -> Tensor:
    """``(..., 2)`` pixel ``(x, y)`` -> grid_sample coordinates (``align_corners=False``)."""
    scale = points.new_tensor([2.0 / width, 2.0 / height])
    return (points + 0.5) * scale - 1.0


def normalized_to_pixels(points: Tensor, height: int, width: int) -> Tensor:
    """Inverse of :func:`pixels_to_normalized`."""
    scale = points.new_tensor([width / 2.0, height / 2.0])
    return (points + 1.0) * scale - 0.5


def sample_at(image: Tensor, points: Tensor) -> Tensor:
    """Bilinear samples of ``image`` ``(B, C, H, W)`` at pixel positions ``points`` ``(B, h, w, 2)``.

    Returns ``(B, C, h, w)``; positions outside the image read zeros (beyond half a pixel outside,
    bilinear blending with zero at the border). Positions are used in float32 at least (half
    precision cannot hold pixel coordinates: at x = 200 its step is 0.125 px); the image and
    result take the wider of the two dtypes."""
    height, width = image.shape[-2:]
    dtype = torch.promote_types(torch.promote_types(image.dtype, points.dtype), torch.float32)
    grid = pixels_to_normalized(points.to(dtype), height, width)
    return F.grid_sample(image.to(dtype), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def warp_by_flow(source: Tensor, flow: Tensor) -> Tensor:
    """Warp ``source`` ``(B, C, Hs, Ws)`` onto the flow's target grid.

    ``flow`` ``(B, 2, h, w)`` is in pixels of ``source``'s grid when ``(h, w) == (Hs, Ws)``; in
    general target pixel ``(x, y)`` reads source position ``(x + dx, y + dy)`` in source pixels.
    Returns ``(B, C, h, w)``; an integer flow reproduces shifted pixels exactly. Positions are
    formed in float32 (also under autocast)."""
    h, w = flow.shape[-2:]
    points = identity_grid(h, w, device=flow.device).unsqueeze(0) + flow.float()
    return sample_at(source, points.permute(0, 2, 3, 1))


def resize_flow(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """Resample a flow ``(B, 2, h, w)`` to ``size = (H, W)`` bilinearly AND scale its vectors.

    In the pixel-centre frame a grid resized by ``s`` maps pixel ``x`` to ``(x + 0.5) s - 0.5``,
    so displacements scale by exactly ``W / w`` (x) and ``H / h`` (y)."""
    h, w = flow.shape[-2:]
    height, width = size
    resized = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    return resized * resized.new_tensor([width / w, height / h]).view(1, 2, 1, 1)


def scale_points(points: Tensor, factor: float) -> Tensor:
    """Pixel ``(x, y)`` points ``(..., 2)`` of a grid into a grid ``factor`` times as large
    (``x' = (x + 0.5) * factor - 0.5``, the data layer's keypoint rule)."""
    return (points + 0.5) * factor - 0.5


def normalize_channels(features: Tensor, eps: float = 1e-6) -> Tensor:
    """Centre each position's feature vector over channels and scale it to unit L2 norm.

    ``(B, C, ...)`` -> same shape; dot products of two outputs are cosines in ``[-1, 1]`` (the
    positional normalisation 3D-GCL's official code applies before its correlation)."""
    centred = features - features.mean(dim=1, keepdim=True)
    return centred / (centred.norm(dim=1, keepdim=True) + eps)


def correlation(target: Tensor, source: Tensor) -> Tensor:
    """Global correlation volume: ``(B, C, h, w)`` x ``(B, C, h', w')`` -> ``(B, h*w, h'*w')``.

    Entry ``[b, i, j]`` is the dot product of target position ``i`` and source position ``j``
    (both row-major). Normalise the features first (:func:`normalize_channels`) for cosines."""
    return torch.einsum("bci,bcj->bij", target.flatten(2), source.flatten(2))


def tps_control_points(grid_size: int, *, device=None, dtype=torch.float32) -> Tensor:
    """``grid_size x grid_size`` regular control points ``(K, 2)`` ``(x, y)`` in normalised
    coordinates, spanning ``[-1, 1]`` (the image edges), row-major."""
    t = torch.linspace(-1.0, 1.0, grid_size, device=device, dtype=dtype)
    ys, xs = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1)


def _tps_kernel(r2: Tensor) -> Tensor:
    """Thin-plate radial basis ``U = r^2 log r^2`` (Bookstein 1989), 0 at ``r = 0``."""
    return torch.where(r2 > 0, r2 * torch.log(r2.clamp_min(1e-12)), torch.zeros_like(r2))


class ThinPlateSpline(nn.Module):
    """Thin-plate-spline sampling grids (Bookstein 1989) for fixed control points and image size.

    ``control`` ``(K, 2)``: control points on the *target* grid, normalised ``(x, y)``
    coordinates (:func:`tps_control_points`). ``forward(displaced)``: ``displaced`` ``(B, K, 2)``,
    the normalised source position each control point reads; returns the sampling grid in
    source pixels ``(B, 2, H, W)`` (``[:, 0]`` x, ``[:, 1]`` y) of the TPS that interpolates
    ``control -> displaced`` exactly (affine part + ``U = r^2 log r^2`` kernel), evaluated at every
    target pixel centre. ``displaced == control`` gives :func:`identity_grid`; subtract it for the
    flow. The TPS is linear in ``displaced``: the ``(H W, K)`` map is solved once (float64) and
    applied in float32, also under autocast."""

    def __init__(self, control: Tensor, height: int, width: int):
        super().__init__()
        self.height, self.width = height, width
        c = control.detach().to(torch.float64)
        k = len(c)
        p = torch.cat([torch.ones(k, 1, dtype=c.dtype), c], dim=1)  # (K, 3)
        system = torch.zeros(k + 3, k + 3, dtype=c.dtype)
        system[:k, :k] = _tps_kernel(torch.cdist(c, c).square())
        system[:k, k:] = p
        system[k:, :k] = p.T
        pixels = identity_grid(height, width, dtype=c.dtype).permute(1, 2, 0).reshape(-1, 2)
        points = pixels_to_normalized(pixels, height, width)
        basis = torch.cat([_tps_kernel(torch.cdist(points, c).square()), torch.ones(len(points), 1, dtype=c.dtype), points], dim=1)
        # coefficients = inverse(system) @ [displaced; 0], so the grid is basis @ inverse[:, :K] @ displaced
        self.register_buffer("interpolation", (basis @ torch.linalg.inv(system)[:, :k]).float(), persistent=False)

    def forward(self, displaced: Tensor) -> Tensor:
        with torch.autocast(displaced.device.type, enabled=False):
            mapped = torch.einsum("nk,bkd->bnd", self.interpolation, displaced.float())
        mapped = normalized_to_pixels(mapped, self.height, self.width)
        return mapped.reshape(-1, self.height, self.width, 2).permute(0, 3, 1, 2)


def charbonnier(x: Tensor, *, alpha: float = 0.45, eps: float = 1e-3) -> Tensor:
    """Generalised Charbonnier penalty ``(x^2 + eps^2)^alpha``, elementwise (Sun, Roth and
    Black 2010, "Secrets of optical flow"; alpha 0.45, eps 1e-3 there)."""
    return (x.square() + eps * eps).pow(alpha)


def spatial_gradients(x: Tensor) -> tuple[Tensor, Tensor]:
    """Forward differences of ``(B, C, H, W)``: ``dx`` ``(B, C, H, W-1)``, ``dy`` ``(B, C, H-1, W)``."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def l1(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean absolute difference (the ``||.||_1`` of the papers' losses divided by the element count)."""
    return (prediction - target).abs().mean()


def image_losses(pairs: list[tuple[Tensor, Tensor]], perceptual: Perceptual | None) -> tuple[Tensor, Tensor | None]:
    """Summed L1 and (when ``perceptual`` is given) summed perceptual loss over ``(prediction,
    target)`` image pairs; the perceptual sum is ``None`` without a perceptual module."""
    l1_sum = sum(l1(p, t) for p, t in pairs)
    perc_sum = None if perceptual is None else sum(perceptual(p, t) for p, t in pairs)
    return l1_sum, perc_sum


PERCEPTUAL_STAND_IN = "l1 alone (no VGG-19 weights supplied, perceptual term omitted)"
