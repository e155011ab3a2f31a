"""Where a try-on task's warped garment comes from: a trained warp model, the garments it
inferred, or the SMPL-flow oracle.

The try-on tasks' ``warp`` setting is either

- the path of a trained warp run directory or checkpoint (``vtonpipe train warp --model M``):
  the model is loaded frozen (:func:`~vtonpipe.training.trained.load_trained`) and its task's
  ``infer(modules, batch)`` gives ``warped_garment`` (B, 3, H, W) and ``warped_mask``
  (B, 1, H, W); or
- the path of an ``inferred_warp`` shard stage (``vtonpipe infer warp --model M --split S``): the
  warped garments a trained warp model wrote for the split's pairs, read by pair id and resized
  to the batch's resolution (bilinear; the mask too), with no warp model run during training; or
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

import numpy as np
import torch
import torch.nn.functional as F

from ..models.warp.ops import warp_by_flow
from ..pipeline.store import MANIFEST, ShardReader, read_manifest
from ..schemas.inferred import WARP_SCHEMA
from .data import MissingPriorError
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
        self.inferred: ShardReader | None = None
        self.trained: TrainedModel | None = None
        if spec != SMPL_FLOW:
            if (Path(spec) / MANIFEST).exists() and read_manifest(spec)["schema"]["name"] == WARP_SCHEMA.name:
                self.inferred = ShardReader(spec)
            else:
                self.trained = load_trained(Path(spec), kind="warp")
        self._device: torch.device | None = None

    def needs(self) -> set[str]:
        """Batch keys the warp reads."""
        if self.inferred is not None:
            return set()  # rows by pair id
        if self.trained is None:
            return {"source_image", "source_garment_region", "smpl_flow", "visibility"}
        return set(self.trained.task.needs())

    def describe(self) -> str:
        """One line for a run's notes: which warp the try-on model was trained on."""
        if self.inferred is not None:
            run = self.inferred.manifest.get("inferred", {})
            return f"warped garment: read from the inferred_warp stage {self.spec} ({run.get('model')} model of {run.get('run')})"
        if self.trained is None:
            return "warped garment: the smpl_flow oracle (the source person's garment region warped by the SMPL flow), no trained warp model"
        return f"warped garment: frozen {self.trained.kind}/{self.trained.model} model from {self.trained.path} (step {self.trained.step})"

    def _read_inferred(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        missing = [p for p in batch["pair_id"] if p not in self.inferred]
        if missing:
            split = self.inferred.manifest.get("inferred", {}).get("split", "<split>")
            raise MissingPriorError(
                f"{len(missing)} pairs of the batch (e.g. {missing[0]}) are not in the inferred_warp stage {self.spec} (split {split}): "
                "run `vtonpipe infer warp --model M --split S --out DIR` for the split being read"
            )
        rows = [self.inferred.get(p) for p in batch["pair_id"]]
        garment = torch.from_numpy(np.stack([r["warped_garment"] for r in rows])).permute(0, 3, 1, 2).float() / 255
        mask = torch.from_numpy(np.stack([r["warped_mask"] for r in rows]))[:, None].float() / 255
        size = next(v for v in batch.values() if isinstance(v, torch.Tensor) and v.dim() == 4).shape[-2:]
        if garment.shape[-2:] != size:
            garment = F.interpolate(garment, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
            mask = F.interpolate(mask, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
        device = next(v.device for v in batch.values() if isinstance(v, torch.Tensor))
        return garment.to(device), mask.to(device)

    @torch.no_grad()
    def __call__(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(warped garment (B, 3, H, W) in [0, 1], warped mask (B, 1, H, W) in [0, 1]) on the
        target grid of ``batch``."""
        if self.inferred is not None:
            return self._read_inferred(batch)
        if self.trained is None:
            return smpl_flow_warp(batch["source_image"], batch["source_garment_region"], batch["smpl_flow"], batch["visibility"])
        device = batch["garment_image"].device if "garment_image" in batch else next(v.device for v in batch.values() if isinstance(v, torch.Tensor))
        if self._device != device:
            for m in self.trained.modules.values():
                m.to(device)
            self._device = device
        out = self.trained.task.infer(self.trained.modules, batch)
        return out["warped_garment"].float(), out["warped_mask"].float()
