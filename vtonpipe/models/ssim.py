"""SSIM (Wang et al. 2004): the map ``vtonpipe.training.metrics.ssim`` averages and the
``ssim`` stand-in perceptual loss (:mod:`vtonpipe.models.tryon.perceptual`) minimises."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 1-D Gaussian ``(size,)`` centred on the middle tap (SSIM's window)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).float()


def ssim_map(x: torch.Tensor, y: torch.Tensor, *, data_range: float = 1.0, window: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Per-pixel SSIM ``(B, H - window + 1, W - window + 1)``, averaged over channels.

    Wang et al. 2004: local means, variances and covariance under an ``window`` x ``window``
    Gaussian of ``sigma`` px ('valid' filtering: only windows inside the image),
    ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2`` with ``L = data_range``; entry ``(i, j)`` belongs to the
    window centred on pixel ``(i + window // 2, j + window // 2)``.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"expected two (B, C, H, W) images of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < window:
        raise ValueError(f"images {tuple(x.shape[-2:])} are smaller than the {window} px SSIM window")
    c = x.shape[1]
    g = gaussian_window(window, sigma).to(x.device, torch.float64)
    kx = g.view(1, 1, 1, -1).expand(c, 1, 1, window)
    ky = g.view(1, 1, -1, 1).expand(c, 1, window, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kx, groups=c), ky, groups=c)

    x, y = x.double(), y.double()  # variances as E[x^2] - E[x]^2: float32 cancels too much
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.mean(1).float()
