"""Garment warping networks of the reference papers, as plain ``torch.nn.Module``s and loss functions.

- :mod:`.gcl`: 3D-GCL's global correspondence + GACRM refinement (SMPL-flow supervised);
- :mod:`.tps`: SPG-VTON's clothes warping module (two geometric matching networks, TPS, cycle);
- :mod:`.sal`: SAL-VTON's landmark-based deformable patch warping (global + local flows, fusion);
- :mod:`.ops`: shared warping utilities and the common :class:`~.ops.WarpOutput` / :class:`~.ops.WarpLosses`.

Every model's ``forward`` returns a :class:`~.ops.WarpOutput` (final flow ``(B, 2, H, W)`` in
pixels, target grid -> garment pixels; per-level flows; the warped garment).
"""

from .gcl import GCLConfig, GCLLossConfig, GCLOutput, GCLWarp, gcl_losses
from .ops import WarpLosses, WarpOutput
from .sal import SALConfig, SALLossConfig, SALOutput, SALWarp, sal_losses
from .tps import TPSConfig, TPSLossConfig, TPSOutput, TPSWarp, tps_losses

__all__ = [
    "GCLConfig", "GCLLossConfig", "GCLOutput", "GCLWarp", "gcl_losses",
    "SALConfig", "SALLossConfig", "SALOutput", "SALWarp", "sal_losses",
    "TPSConfig", "TPSLossConfig", "TPSOutput", "TPSWarp", "tps_losses",
    "WarpLosses", "WarpOutput",
]  # fmt: skip
