"""SPG-VTON's clothes warping module (CWM) and its conductible cycle-consistency loss (Hu et al.,
"SPG-VTON: Semantic Prediction Guidance for Multi-pose Virtual Try-on", Sec. III-C).

Two geometric matching networks (Rocco et al.'s GMM as CP-VTON uses it: feature extraction,
correlation, regression of thin-plate-spline parameters):

- GMM 1 estimates ``theta_1`` between the in-shop garment mask ``M^C`` and the target garment
  mask and warps: ``M^C_w = T_theta1(M^C)``, ``C_w = T_theta1(C)``;
- GMM 2 estimates ``theta_2`` between ``M^C_w`` and ``M^C`` and warps back:
  ``M^C_hat = T_theta2(M^C_w)``, ``C_hat = T_theta2(C_w)``.

The paper feeds GMM 1 the clothes mask predicted by its semantic prediction module; without that
module (this stage trains the warp alone) the target's garment region takes its place, which is
the paper's own ablation "w/o M_p^c" (Sec. IV, variant 7). ``theta`` is represented by where each
of the ``grid_size x grid_size`` regular control points (normalised coordinates on the target
grid) reads the image being warped; the regressors start at zero offsets, the identity warp.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .ops import (
    ThinPlateSpline,
    WarpLosses,
    WarpOutput,
    correlation,
    identity_grid,
    l1,
    normalize_channels,
    tps_control_points,
    warp_by_flow,
)


@dataclass(frozen=True)
class TPSConfig:
    """Network settings; the input size is fixed (the correlation has one channel per feature cell).

    - ``height``, ``width``: input size (multiples of ``2 ** len(channels)``).
    - ``channels``: widths of the stride-2 feature stages (features at ``1 / 2 ** len(channels)``),
      followed by two 3x3 convolutions at the last width, as CP-VTON's extractor.
    - ``regression_channels``: the two 3x3 convolutions before the linear regression layer.
    - ``grid_size``: TPS control points per side (CP-VTON: 5).

    The default (256 x 192, about 0.8 M parameters per GMM) trains on CPU."""

    height: int = 256
    width: int = 192
    channels: tuple[int, ...] = (16, 32, 64, 64)
    regression_channels: tuple[int, int] = (64, 32)
    grid_size: int = 5


@dataclass
class TPSOutput(WarpOutput):
    """:class:`WarpOutput` (``flow`` = ``T_theta1``'s flow, ``level_flows = [flow]``, ``warped`` =
    ``C_w``) plus ``theta1`` / ``theta2`` ``(B, K, 2)`` (control points' normalised source
    positions), ``warped_mask`` ``M^C_w``, ``cycle_flow`` (``T_theta2`` on the garment grid, reading
    the target grid), ``cycle_mask`` ``M^C_hat`` and ``cycle_garment`` ``C_hat``, masks
    ``(B, 1, H, W)`` in ``[0, 1]``, images ``(B, C, H, W)``."""

    theta1: Tensor
    theta2: Tensor
    warped_mask: Tensor
    cycle_flow: Tensor
    cycle_mask: Tensor
    cycle_garment: Tensor


class FeatureExtraction(nn.Module):
    """``(B, in_channels, H, W)`` -> ``(B, channels[-1], H / 2^n, W / 2^n)``: n stride-2 4x4
    convolutions and two 3x3 convolutions, ReLU after each."""

    def __init__(self, in_channels: int, channels: tuple[int, ...]):
        super().__init__()
        layers: list[nn.Module] = []
        for c in channels:
            layers += [nn.Conv2d(in_channels, c, 4, 2, 1), nn.ReLU()]
            in_channels = c
        for _ in range(2):
            layers += [nn.Conv2d(in_channels, in_channels, 3, 1, 1), nn.ReLU()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class GeometricMatching(nn.Module):
    """One GMM: ``forward(moving, fixed)``, both ``(B, 1, H, W)`` masks -> ``theta`` ``(B, K, 2)``,
    the normalised position in ``moving`` that each control point of the ``fixed`` grid reads.

    Features of both (separate extractors) are channel-normalised; the correlation holds, at each
    ``fixed`` feature cell, the (ReLU'd, normalised) similarities to every ``moving`` cell; the
    regressor (two 3x3 convs, a linear layer starting at zero) adds offsets to the control points."""

    def __init__(self, config: TPSConfig):
        super().__init__()
        stride = 2 ** len(config.channels)
        if config.height % stride or config.width % stride:
            raise ValueError(f"TPS input {config.height}x{config.width} must be a multiple of {stride}")
        h, w = config.height // stride, config.width // stride
        self.extract_moving = FeatureExtraction(1, config.channels)
        self.extract_fixed = FeatureExtraction(1, config.channels)
        r0, r1 = config.regression_channels
        self.regression = nn.Sequential(
            nn.Conv2d(h * w, r0, 3, 1, 1),
            nn.ReLU(),
            nn.Conv2d(r0, r1, 3, 1, 1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(r1 * h * w, 2 * config.grid_size**2),
        )
        nn.init.zeros_(self.regression[-1].weight)
        nn.init.zeros_(self.regression[-1].bias)
        self.register_buffer("control", tps_control_points(config.grid_size), persistent=False)

    def forward(self, moving: Tensor, fixed: Tensor) -> Tensor:
        a = normalize_channels(self.extract_moving(moving))
        b = normalize_channels(self.extract_fixed(fixed))
        h, w = b.shape[-2:]
        corr = correlation(b, a).transpose(1, 2).reshape(b.shape[0], -1, h, w)  # (B, N_moving, h, w)
        corr = normalize_channels(torch.relu(corr))
        return self.control + self.regression(corr).view(-1, len(self.control), 2)


class TPSWarp(nn.Module):
    """SPG-VTON's CWM: ``forward(garment, garment_mask, target_mask)`` -> :class:`TPSOutput`.

    - ``garment`` ``(B, C, H, W)`` in ``[0, 1]``: the in-shop garment ``C`` (image x mask);
    - ``garment_mask`` ``(B, 1, H, W)`` in ``{0, 1}``: ``M^C``;
    - ``target_mask`` ``(B, 1, H, W)``: the target person's garment mask (``M_p^C``'s stand-in).

    ``(H, W)`` must equal the config's size."""

    def __init__(self, config: TPSConfig = TPSConfig()):
        super().__init__()
        self.config = config
        self.gmm1 = GeometricMatching(config)
        self.gmm2 = GeometricMatching(config)
        self.tps = ThinPlateSpline(tps_control_points(config.grid_size), config.height, config.width)

    def _flow(self, theta: Tensor) -> Tensor:
        return self.tps(theta) - identity_grid(self.config.height, self.config.width, device=theta.device)

    def forward(self, garment: Tensor, garment_mask: Tensor, target_mask: Tensor) -> TPSOutput:
        if tuple(garment.shape[-2:]) != (self.config.height, self.config.width):
            raise ValueError(f"TPSWarp is built for {self.config.height}x{self.config.width}, got {tuple(garment.shape[-2:])}")
        theta1 = self.gmm1(garment_mask, target_mask)
        flow = self._flow(theta1)
        warped_mask = warp_by_flow(garment_mask, flow)
        theta2 = self.gmm2(warped_mask, garment_mask)
        cycle_flow = self._flow(theta2)
        warped = warp_by_flow(garment, flow)
        return TPSOutput(
            flow=flow,
            level_flows=[flow],
            warped=warped,
            theta1=theta1,
            theta2=theta2,
            warped_mask=warped_mask,
            cycle_flow=cycle_flow,
            cycle_mask=warp_by_flow(warped_mask, cycle_flow),
            cycle_garment=warp_by_flow(warped, cycle_flow),
        )


@dataclass(frozen=True)
class TPSLossConfig:
    """``lambda_3`` of Eq. 9 (the paper's 20); ``cycle=False`` is the ablation "w/o Cycle"
    (``L_cond = E||C_w - C_t||_1``)."""

    weight_cond: float = 20.0
    cycle: bool = True


def conductible_cycle_loss(warped: Tensor, target_garment: Tensor, cycle_garment: Tensor, garment: Tensor) -> tuple[Tensor, Tensor]:
    """The two terms of Eq. 8, ``L_cond = E[||C_w - C_t||_1] + E[||C_hat - C||_1]``, as per-element
    means: ``(E|C_w - C_t|, E|C_hat - C|)``."""
    return l1(warped, target_garment), l1(cycle_garment, garment)


def tps_losses(output: TPSOutput, garment: Tensor, target_garment: Tensor, config: TPSLossConfig = TPSLossConfig()) -> WarpLosses:
    """Eq. 9, ``L_cwm = lambda_3 L_cond`` (Eq. 8). ``garment``: ``C``, the network's input garment;
    ``target_garment``: ``C_t``, the target image times its garment region, ``(B, C, H, W)``.
    Terms: ``warp_l1`` (``E|C_w - C_t|``), ``cycle_l1`` (``E|C_hat - C|``, logged also when the
    ablation leaves it out), ``cond``."""
    warp_l1, cycle_l1 = conductible_cycle_loss(output.warped, target_garment, output.cycle_garment, garment)
    cond = warp_l1 + cycle_l1 if config.cycle else warp_l1
    return WarpLosses(total=config.weight_cond * cond, terms={"warp_l1": warp_l1, "cycle_l1": cycle_l1, "cond": cond})
