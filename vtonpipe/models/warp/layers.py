"""Convolutional building blocks shared by the warping networks."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def conv_block(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (padding 1) + LeakyReLU(0.2)."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1), nn.LeakyReLU(0.2))


class FlowHead(nn.Module):
    """Residual flow predictor: ``(B, in_channels, h, w)`` -> ``(B, 2, h, w)`` in pixels of the grid.

    A 3x3 conv block and a 3x3 convolution that starts at zero (an untrained head adds no motion).
    The output is predicted in units of the grid size and scaled by ``max(h, w)``, so a step of
    the optimiser moves the flow by a similar fraction of the image at every level (predicting
    pixels directly, a 1e-3 weight step moves a flow by ~1e-3 px: thousands of steps per pixel)."""

    def __init__(self, in_channels: int, hidden_channels: int):
        super().__init__()
        self.body = conv_block(in_channels, hidden_channels)
        self.out = nn.Conv2d(hidden_channels, 2, 3, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body(x)) * max(x.shape[-2:])


class ResidualBlock(nn.Module):
    """``x -> LeakyReLU(x + conv(LeakyReLU(conv(x))))``, shape-preserving."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(channels, channels, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x + self.body(x), 0.2)


class PyramidEncoder(nn.Module):
    """Fully convolutional feature pyramid (an FPN): ``(B, in_channels, H, W)`` -> one feature map
    per stage, **coarse to fine**, each ``(B, out_channels, H / 2^l, W / 2^l)`` for
    ``l = n .. 1`` (``n = len(channels)``).

    Stage ``l`` is a stride-2 3x3 convolution to ``channels[l - 1]`` and a residual block; the
    top-down path adds each stage's lateral 1x1 projection to the upsampled coarser output and
    smooths it with a 3x3 convolution."""

    def __init__(self, in_channels: int, channels: tuple[int, ...], out_channels: int):
        super().__init__()
        widths = (in_channels, *channels)
        self.down = nn.ModuleList(
            nn.Sequential(conv_block(widths[i], widths[i + 1], 2), ResidualBlock(widths[i + 1])) for i in range(len(channels))
        )
        self.lateral = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in channels)
        self.smooth = nn.ModuleList(conv_block(out_channels, out_channels) for _ in channels)

    def forward(self, x: Tensor) -> list[Tensor]:
        skips = []
        for stage in self.down:
            x = stage(x)
            skips.append(x)
        outputs: list[Tensor] = []
        for level in reversed(range(len(skips))):
            lateral = self.lateral[level](skips[level])
            if outputs:
                lateral = lateral + F.interpolate(outputs[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False)
            outputs.append(self.smooth[level](lateral))
        return outputs
