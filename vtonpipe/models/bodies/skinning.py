"""Linear blend skinning on the CPU's cores for posing without gradients.

anny skins with warp, whose CPU kernels run on one thread: posing a batch of 96 bodies took 47 ms
there, about a third of the ``smpl_flow`` stage's time on the sample's pair structure.
:func:`with_parallel_cpu_skinning` wraps anny's skinning function so that CPU calls that need no
gradient run :func:`skin` (numba, the batch split over the torch threads) and every other
call (gradients, CUDA) keeps anny's own. The two agree to float32 rounding (tests/test_anny_body.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch


@numba.njit(nogil=True, cache=True)
def _skin(rest: np.ndarray, weights: np.ndarray, indices: np.ndarray, transforms: np.ndarray, out: np.ndarray, start: int, stop: int) -> None:
    """Skin bodies ``start:stop`` of the batch into ``out`` (B, V, 3)."""
    shared = rest.shape[0] == 1
    for b in range(start, stop):
        r = 0 if shared else b
        for v in range(out.shape[1]):
            x, y, z = rest[r, v, 0], rest[r, v, 1], rest[r, v, 2]
            ox = oy = oz = 0.0
            for k in range(weights.shape[1]):
                w = weights[v, k]
                if w != 0:
                    t = transforms[b, indices[v, k]]
                    ox += w * (t[0, 0] * x + t[0, 1] * y + t[0, 2] * z + t[0, 3])
                    oy += w * (t[1, 0] * x + t[1, 1] * y + t[1, 2] * z + t[1, 3])
                    oz += w * (t[2, 0] * x + t[2, 1] * y + t[2, 2] * z + t[2, 3])
            out[b, v, 0], out[b, v, 1], out[b, v, 2] = ox, oy, oz


def skin(vertices: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """Skinned vertices (B, V, 3): rest ``vertices`` (B or 1, V, 3), each moved by the blend of its
    bones' ``transforms`` (B, J, 4, 4) with ``weights`` / bone ``indices`` (V, K) (a leading axis of
    1 is accepted, as anny passes them). CPU tensors, no gradient; float64 stays float64, other
    types are computed in float32. The batch is split over ``torch.get_num_threads()`` threads
    (the compiled loop releases the GIL)."""
    weights, indices = weights.reshape(weights.shape[-2:]), indices.reshape(indices.shape[-2:])
    batch = max(len(vertices), len(transforms))
    real = np.float64 if vertices.dtype == torch.float64 else np.float32
    args = (
        vertices.detach().contiguous().numpy().astype(real, copy=False),
        weights.detach().contiguous().numpy().astype(real, copy=False),
        indices.detach().contiguous().numpy().astype(np.int64, copy=False),
        transforms.detach().expand(batch, -1, -1, -1).contiguous().numpy().astype(real, copy=False),
        np.empty((batch, vertices.shape[1], 3), real),
    )
    bounds = np.linspace(0, batch, min(batch, torch.get_num_threads()) + 1).astype(int)
    if len(bounds) <= 2:
        _skin(*args, 0, batch)
    else:
        with ThreadPoolExecutor(len(bounds) - 1) as pool:
            list(pool.map(lambda a_b: _skin(*args, *a_b), itertools.pairwise(bounds)))
    return torch.from_numpy(args[-1]).to(vertices.dtype)


def with_parallel_cpu_skinning(anny_skinning: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """anny's skinning function (keyword arguments ``bone_weights``, ``bone_indices``,
    ``bone_transforms``) that runs :func:`skin` on CPU tensors when no gradient is asked for."""

    def skinning(vertices: torch.Tensor, bone_weights: torch.Tensor, bone_indices: torch.Tensor, bone_transforms: torch.Tensor) -> torch.Tensor:
        needs_grad = torch.is_grad_enabled() and (vertices.requires_grad or bone_transforms.requires_grad)
        if needs_grad or vertices.device.type != "cpu" or bone_transforms.device.type != "cpu":
            return anny_skinning(vertices, bone_weights=bone_weights, bone_indices=bone_indices, bone_transforms=bone_transforms)
        return skin(vertices, bone_weights, bone_indices, bone_transforms)

    return skinning
