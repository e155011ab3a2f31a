"""``vtonpipe show PAIR --warp RUN_DIR``: a trained warp of one packed pair drawn next to the SMPL
flow's own warp of it (the oracle of :func:`vtonpipe.training.warp.smpl_flow_warp`).

The pair is read from the build's packed shards (any split) and decoded at the resolution the
model was trained at, as the trainer would; the panels are the model's input garment, its warped
garment and flow, the SMPL-flow warp and flow, and the target garment (the target image on its
garment region), each warp titled with its IoU against that region (short titles: ``compose``
cuts them to the panel's width).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate

from ..pipeline.store import ShardReader
from ..vis.panel import failure_panel
from .data import DataConfig, MissingPriorError, PackedPairs
from .trained import load_trained
from .warp import SMPL_FLOW_WARP_NEEDS, flow_colours, smpl_flow_warp, target_garment, warp_metrics


def find_pair(build: str | os.PathLike, pair_id: str) -> tuple[str, int]:
    """(split, index in :class:`~vtonpipe.training.data.PackedPairs`) of ``pair_id`` in ``build``'s
    packed shards; ``KeyError`` when no split holds it."""
    packed = Path(build) / "packed"
    for directory in sorted(p for p in packed.iterdir() if p.is_dir()) if packed.is_dir() else []:
        reader = ShardReader(directory, verify=False)
        offset = 0
        for i, shard in enumerate(reader.shards):
            ids = reader.read_columns(i, ["pair_id"]).column("pair_id").to_pylist()
            if pair_id in ids:
                return directory.name, offset + ids.index(pair_id)
            offset += shard.rows
    raise KeyError(f"pair {pair_id!r} is not in the packed shards of {build} (run `vtonpipe pack`, or pick a pair id of packed/<split>/)")


def _picture(images: torch.Tensor) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)`` of the first image of ``(1, 1 or 3, H, W)`` in [0, 1]."""
    return (images[0].float().clamp(0, 1).expand(3, -1, -1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)


def warp_panels(build: str | os.PathLike, pair_id: str, run: str | os.PathLike) -> list[tuple[str, np.ndarray]]:
    """(title, RGB picture) panels of trained warp ``run`` (run directory or checkpoint) on ``pair_id``."""
    trained = load_trained(run, kind="warp")
    train = torch.load(trained.path, map_location="cpu", weights_only=True)["config"]["train"]
    data = DataConfig(height=train["height"], width=train["width"])
    split, index = find_pair(build, pair_id)
    needs = set(trained.task.needs()) | {"target_image", "target_garment_region"}
    try:
        batch = default_collate([PackedPairs(build, split, needs | SMPL_FLOW_WARP_NEEDS, data).sample(index)])
        smpl_flow_missing = None
    except MissingPriorError as e:  # e.g. a single-pose build: no SMPL flow to compare with
        batch = default_collate([PackedPairs(build, split, needs, data).sample(index)])
        smpl_flow_missing = str(e)
    name = f"{trained.model}@{trained.step}"
    with torch.no_grad():
        result = trained.task.warp(trained.modules, batch)
    iou = float(warp_metrics(result.warped, result.warped_mask, batch)["miou"][0])
    truth = _picture(target_garment(batch))
    panels = [
        (f"{name} input", _picture(result.garment)),
        (f"{name} IoU {iou:.2f}", _picture(result.warped)),
        (f"{name} flow", _picture(flow_colours(result.output.flow))),
    ]
    if smpl_flow_missing is None:
        warped, mask = smpl_flow_warp(batch)
        oracle_iou = float(warp_metrics(warped, mask, batch)["miou"][0])
        panels += [(f"SMPL IoU {oracle_iou:.2f}", _picture(warped)), ("SMPL flow", _picture(flow_colours(batch["smpl_flow"])))]
    else:
        panels.append(("SMPL warp", failure_panel(truth, "no SMPL flow", smpl_flow_missing)))
    panels.append(("target", truth))
    return panels
