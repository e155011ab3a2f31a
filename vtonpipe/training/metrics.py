"""Image and mask metrics shared by every trainer's evaluation, one value per sample.

Images are float ``(B, C, H, W)`` with values in ``[0, data_range]`` (1 for the data layer's
images); masks are ``(B, 1, H, W)`` (or ``(B, H, W)``) in {0, 1}; label maps int ``(B, H, W)``.
Each function returns a float32 ``(B,)`` tensor so that evaluation can average over samples and
across distributed ranks.
"""

from __future__ import annotations

import torch

from ..converters.landmarks import ABSENT, VISIBLE
from ..models.ssim import ssim_map


def _mask4(mask: torch.Tensor) -> torch.Tensor:
    return (mask[:, None] if mask.dim() == 3 else mask).float()


def ssim(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None, *, data_range: float = 1.0, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean SSIM per sample ``(B,)``; with ``mask``, the mean over the windows centred on mask
    pixels (NaN for a sample whose mask holds no window centre)."""
    s = ssim_map(x, y, data_range=data_range, window=window, sigma=sigma)
    if mask is None:
        return s.flatten(1).mean(1)
    r = window // 2
    m = _mask4(mask)[:, 0, r : r + s.shape[1], r : r + s.shape[2]]
    return (s * m).flatten(1).sum(1) / m.flatten(1).sum(1)


def _masked_mean(err: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    err = err.float()
    if mask is None:
        return err.flatten(1).mean(1)
    m = _mask4(mask).expand_as(err)
    return (err * m).flatten(1).sum(1) / m.flatten(1).sum(1)


def l1(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute difference per sample ``(B,)`` over all channels (of the mask's pixels)."""
    return _masked_mean((x - y).abs(), mask)


def mse(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared difference per sample ``(B,)`` over all channels (of the mask's pixels)."""
    return _masked_mean((x - y) ** 2, mask)


def psnr(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None, *, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per sample ``(B,)`` in dB: ``10 log10(L^2 / MSE)``, ``L = data_range``."""
    return 10 * torch.log10(data_range**2 / mse(x, y, mask))


def mask_iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Intersection over union of binary masks per sample ``(B,)`` (1 where both are empty).
    Masks are thresholded at 0.5; their mean over samples is the mIoU of a warped-garment evaluation."""
    p, t = _mask4(pred) > 0.5, _mask4(target) > 0.5
    inter = (p & t).flatten(1).sum(1).float()
    union = (p | t).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def label_miou(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean over classes of the per-class IoU of label maps ``(B, H, W)``, per sample ``(B,)``;
    classes absent from both maps of a sample are left out of its mean."""
    classes = torch.arange(num_classes, device=pred.device).view(1, -1, 1)
    p = pred.flatten(1)[:, None, :] == classes
    t = target.flatten(1)[:, None, :] == classes
    inter = (p & t).sum(2).float()
    union = (p | t).sum(2).float()
    present = union > 0
    return (torch.where(present, inter / union.clamp_min(1), torch.zeros_like(union))).sum(1) / present.sum(1)


def landmark_point_error(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean distance (px) per sample between predicted and true landmarks ``(B, 32, 3)`` (x, y px,
    attribute 0 visible / 1 occluded / 2 absent) over the points visible in ``truth`` and not
    predicted absent (a point predicted absent has no position; :func:`landmark_attribute_accuracy`
    counts that error). NaN for a sample without such a point."""
    used = (truth[..., 2].round() == VISIBLE) & (pred[..., 2].round() != ABSENT)
    dist = (pred[..., :2] - truth[..., :2]).float().norm(dim=-1)
    count = used.sum(-1)
    total = torch.where(used, dist, 0.0).sum(-1)
    return torch.where(count > 0, total / count.clamp(min=1), torch.nan).float()


def landmark_attribute_accuracy(pred: torch.Tensor, truth: torch.Tensor, *, garment: bool = False) -> torch.Tensor:
    """Share of the 32 points per sample whose predicted attribute equals the true one
    (landmarks ``(B, 32, 3)``); ``garment``: only present / absent compared (an in-shop garment
    image has no occluded class)."""
    p, t = pred[..., 2].round().long(), truth[..., 2].round().long()
    if garment:
        p, t = p == ABSENT, t == ABSENT
    return (p == t).float().mean(-1)
