"""LPIPS (Zhang et al. 2018, v0.1, AlexNet) in pure PyTorch.

``d(x, y) = sum_l mean_{h, w} w_l . (n(f_l(x)) - n(f_l(y)))^2`` over the five ReLU outputs
``f_l`` of torchvision's AlexNet ``features`` (relu1 .. relu5), ``n`` the unit-normalisation of
each pixel's feature vector over the channels (``f / (|f| + 1e-10)``), ``w_l`` the learned
non-negative 1 x 1 channel weights (``lin0`` .. ``lin4``); the inputs are scaled to [-1, 1] and
then shifted and scaled by LPIPS's ``ScalingLayer`` constants.

Weights: torchvision's ``alexnet-owt-7be5be79.pth`` (keys ``features.{0,3,6,8,10}.*``, the
``classifier.*`` keys ignored) and LPIPS's ``alex.pth`` (keys ``lin{l}.model.1.weight``,
``(1, C_l, 1, 1)``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

#: LPIPS ScalingLayer: input (in [-1, 1]) -> (input - shift) / scale
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
CHANNELS = (64, 192, 384, 256, 256)
#: indices in AlexNet ``features`` of the five ReLUs whose outputs LPIPS compares
TAPS = (1, 4, 7, 9, 11)


def _alexnet_features() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(),
    )


class LPIPS(nn.Module):
    """``forward(x, y)``: images ``(B, 3, H, W)`` in [0, 1] -> distances ``(B,)``. Frozen, eval mode."""

    def __init__(self):
        super().__init__()
        self.features = _alexnet_features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPS:
        """Always in eval mode."""
        return super().train(False)

    def load(self, alexnet: Mapping[str, torch.Tensor], lins: Mapping[str, torch.Tensor]) -> LPIPS:
        """Load torchvision AlexNet and LPIPS linear-layer state dicts (strict on the keys used)."""
        self.features.load_state_dict({k.removeprefix("features."): v for k, v in alexnet.items() if k.startswith("features.")})
        for i, lin in enumerate(self.lins):
            lin.weight.copy_(lins[f"lin{i}.model.1.weight"])
        return self

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = ((x * 2 - 1) - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in TAPS:
                out.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros(x.shape[0])
        for lin, fx, fy in zip(self.lins, self._taps(x), self._taps(y), strict=True):
            total = total + lin((fx - fy) ** 2).mean((1, 2, 3))
        return total
