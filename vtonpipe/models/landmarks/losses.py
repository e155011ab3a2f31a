"""Training losses of the landmark network (SAL-VTON Sec. 3.1): heatmap regression and attribute
classification.

SAL-VTON trains its landmark HRNet with a heatmap regression loss and a cross-entropy on the
landmark attributes (the paper names binary cross-entropy for the heatmaps; vtonpipe uses the
mean squared error of HRNet's pose training, as issue 9 asks). The task that trains the network
weighs and sums the two.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...converters.landmarks import ABSENT
from .hrnet import NOT_PRESENT, PRESENT


def heatmap_mse(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every heatmap value: ``mean((predicted - target)^2)``, both
    ``(B, 32, h, w)`` (targets from :func:`~vtonpipe.models.landmarks.decode.heatmap_targets`:
    Gaussians peaking at 1, absent points all zero, so the network learns to leave them flat)."""
    if predicted.shape != target.shape:
        raise ValueError(f"heatmaps {tuple(predicted.shape)} and targets {tuple(target.shape)} differ in shape")
    return F.mse_loss(predicted, target)


def garment_attribute_targets(attributes: torch.Tensor) -> torch.Tensor:
    """Garment-branch classes ``(B, 32)`` int64 (0 present, 1 absent) of landmark attributes
    ``(B, 32)`` (0 visible, 1 occluded, 2 absent)."""
    return torch.where(attributes.round().long() == ABSENT, NOT_PRESENT, PRESENT)


def attribute_cross_entropy(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of attribute ``logits`` ``(B, 32, C)`` against ``classes`` ``(B, 32)``
    int64, averaged over every point of the batch: ``mean(-log softmax(logits)[class])``.
    Person branch: C = 3, the attributes themselves; garment branch: C = 2,
    :func:`garment_attribute_targets`."""
    if logits.shape[:-1] != classes.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match classes {tuple(classes.shape)}")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), classes.reshape(-1).long())
