"""Loading detectron2's ``model_final_162be9.pkl`` state dict into :class:`DensePoseRCNN`.

Every parameter and FrozenBN statistic of the model must be in the checkpoint with its exact
shape; nothing else may be, except buffers detectron2 saved in some versions that this port
derives from the configuration (checked for equality instead of loaded): the RPN cell anchors
(persistent buffers before detectron2 made them non-persistent in May 2021) and
``pixel_mean`` / ``pixel_std``.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from .config import DensePoseRCNNConfig
from .network import DensePoseRCNN, fold_frozen_bn
from .ops import cell_anchors


class CheckpointMismatchError(ValueError):
    """A state dict whose names or shapes are not those of densepose_rcnn_R_50_FPN_s1x."""


def derived_buffers(cfg: DensePoseRCNNConfig) -> dict[str, np.ndarray]:
    """Checkpoint entries this port computes from ``cfg`` (allowed in a checkpoint, never required)."""
    out = {f"proposal_generator.anchor_generator.cell_anchors.{i}": cell_anchors(s, cfg.anchor_ratios).numpy() for i, s in enumerate(cfg.anchor_sizes)}
    out["pixel_mean"] = np.asarray(cfg.pixel_mean_bgr, np.float32).reshape(3, 1, 1)
    out["pixel_std"] = np.asarray(cfg.pixel_std_bgr, np.float32).reshape(3, 1, 1)
    return out


def expected_shapes(cfg: DensePoseRCNNConfig | None = None) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every entry the checkpoint must hold (built without allocating weights)."""
    with torch.device("meta"):
        model = DensePoseRCNN(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _listing(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def check_state_dict(state: Mapping[str, np.ndarray], cfg: DensePoseRCNNConfig | None = None) -> None:
    """Raise :class:`CheckpointMismatchError` naming missing, unexpected and mis-shaped entries."""
    cfg = cfg or DensePoseRCNNConfig()
    expected = expected_shapes(cfg)
    derived = derived_buffers(cfg)
    problems = []
    missing = sorted(set(expected) - set(state))
    if missing:
        problems.append(f"missing {len(missing)} entries: {_listing(missing)}")
    unexpected = sorted(set(state) - set(expected) - set(derived))
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} entries: {_listing(unexpected)}")
    shapes = [f"{k} {tuple(state[k].shape)} (expected {expected[k]})" for k in sorted(set(expected) & set(state)) if tuple(state[k].shape) != expected[k]]
    if shapes:
        problems.append(f"wrong shapes: {_listing(shapes)}")
    for k in sorted(set(derived) & set(state)):
        if state[k].shape != derived[k].shape or not np.allclose(state[k], derived[k], atol=1e-3):
            problems.append(f"{k} = {np.asarray(state[k]).ravel().tolist()} differs from the configuration's {derived[k].ravel().tolist()}")
    if problems:
        raise CheckpointMismatchError(
            "not a densepose_rcnn_R_50_FPN_s1x checkpoint (detectron2 model_final_162be9.pkl): " + "; ".join(problems)
        )


def build_model(state: Mapping[str, np.ndarray], *, device: str | torch.device = "cpu", cfg: DensePoseRCNNConfig | None = None) -> DensePoseRCNN:
    """A checked, eval-mode :class:`DensePoseRCNN` on ``device`` with FrozenBN folded into the convs."""
    cfg = cfg or DensePoseRCNNConfig()
    check_state_dict(state, cfg)
    with torch.device("meta"):
        model = DensePoseRCNN(cfg)
    names = model.state_dict().keys()
    tensors = {k: torch.from_numpy(np.ascontiguousarray(state[k], dtype=np.float32)) for k in names}
    model.load_state_dict(tensors, strict=True, assign=True)
    model.requires_grad_(False)
    fold_frozen_bn(model)
    return model.to(device).eval()
