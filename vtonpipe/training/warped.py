"""Where a try-on task's warped garment comes from: a trained warp model, or the SMPL-flow oracle.

The try-on tasks' ``warp`` setting is either

- the path of a trained warp run directory or checkpoint (``vtonpipe train warp --model M``):
  the model is loaded frozen (:func:`~vtonpipe.training.trained.load_trained`) and its task's
  ``infer(modules, batch)`` gives ``warped_garment`` (B, 3, H, W) and ``warped_mask``
  (B, 1, H, W); or
- :data:`SMPL_FLOW` (``"smpl_flow"``): an oracle needing no trained model. The batch's
  ``smpl_flow`` maps target pixels to *source person* pixels (not to the in-shop garment's
  frame), so the oracle warps the garment as the source person wears it: ``source_image``
  times ``source_garment_region`` and that region, sampled at the flow
  (:func:`vtonpipe.models.warp.ops.warp_by_flow`), kept where the target pixel is visible in the
  source (``visibility == 0``), the region thresholded at 0.5. For a paired sample (the garment is
  the source person's) this is the ground-truth warp of the in-shop garment up to occlusions;
  for an unpaired one it is the source's garment, not the in-shop one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from ..models.warp.ops import warp_by_flow
from .trained import TrainedModel, load_trained

SMPL_FLOW = "smpl_flow"
#: ``visibility`` value of a target pixel seen in the source (vtonpipe.training.data)
VISIBLE = 0


def smpl_flow_warp(
    source_image: torch.Tensor, source_garment_region: torch.Tensor, smpl_flow: torch.Tensor, visibility: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The oracle warp (module docstring): ``source_image`` (B, 3, H, W) in [0, 1],
    ``source_garment_region`` (B, 1, H, W) {0, 1}, ``smpl_flow`` (B, 2, H, W) target -> source
    pixels, ``visibility`` (B, H, W) int64. Returns the warped garment (B, 3, H, W) in [0, 1], zero
    off its mask, and the mask (B, 1, H, W) {0, 1}."""
    visible = (visibility == VISIBLE)[:, None]
    mask = ((warp_by_flow(source_garment_region, smpl_flow) > 0.5) & visible).to(source_image.dtype)
    garment = warp_by_flow(source_image * source_garment_region, smpl_flow).to(source_image.dtype) * mask
    return garment, mask


class WarpSource:
    """The warped garment of a batch, from ``spec`` (:data:`SMPL_FLOW` or a trained warp run
    directory / checkpoint path). A trained model is loaded once, on the CPU, and moved to the
    batches' device on first use; it runs in eval mode without gradients."""

    def __init__(self, spec: str):
        self.spec = spec
        self.trained: TrainedModel | None = None if spec == SMPL_FLOW else load_trained(Path(spec), kind="warp")
        self._device: torch.device | None = None

    def needs(self) -> set[str]:
        """Batch keys the warp reads."""
        if self.trained is None:
            return {"source_image", "source_garment_region", "smpl_flow", "visibility"}
        return set(self.trained.task.needs())

    def describe(self) -> str:
        """One line for a run's notes: which warp the try-on model was trained on."""
        if self.trained is None:
            return "warped garment: the smpl_flow oracle (the source person's garment region warped by the SMPL flow), no trained warp model"
        return f"warped garment: frozen {self.trained.kind}/{self.trained.model} model from {self.trained.path} (step {self.trained.step})"

    @torch.no_grad()
    def __call__(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(warped garment (B, 3, H, W) in [0, 1], warped mask (B, 1, H, W) in [0, 1]) on the
        target grid of ``batch``."""
        if self.trained is None:
            return smpl_flow_warp(batch["source_image"], batch["source_garment_region"], batch["smpl_flow"], batch["visibility"])
        device = batch["garment_image"].device if "garment_image" in batch else next(v.device for v in batch.values() if isinstance(v, torch.Tensor))
        if self._device != device:
            for m in self.trained.modules.values():
                m.to(device)
            self._device = device
        out = self.trained.task.infer(self.trained.modules, batch)
        return out["warped_garment"].float(), out["warped_mask"].float()
