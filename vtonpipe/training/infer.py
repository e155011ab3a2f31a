"""``vtonpipe infer``: a trained model's outputs for every pair of a split, as PNG files and as a
shard stage (:mod:`vtonpipe.schemas.inferred`).

The run's checkpoint (``RUN/checkpoints/last.pt``) is rebuilt with the settings it was trained
with; the split's pairs are decoded from ``packed/<split>/`` at the training resolution, in shard
order, and fed to :meth:`Task.infer`. Paired inference uses each pair's own garment; unpaired
inference gives pair ``i`` the garment inputs (every ``garment_*`` batch key) of pair ``i + 1``
of the split (the last takes the first's), the usual unpaired protocol of try-on papers.

Output, ``OUT`` (default ``BUILD/inferred/<kind>/<model>/<split>`` with ``-unpaired`` appended):
``png/<pair_id>/<output>.png`` for every output the task returns, plus the stage's shards and
manifest. Pairs already in the stage with the same checkpoint and settings are skipped, so an
interrupted run resumes; another checkpoint's rows are replaced.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import default_collate

from .. import __version__
from ..core.params import canonical_json, params_hash
from ..io import atomic_path, sha256_bytes, sha256_file
from ..pipeline.store import ShardReader, ShardWriter
from ..progress import progress_bar
from ..schemas.inferred import INFERRED_SCHEMAS
from .data import PackedPairs
from .trained import TrainedModel, load_trained

log = logging.getLogger(__name__)


class InferError(RuntimeError):
    """Inference that cannot run as asked (no such split, one pair only for unpaired, ...)."""


@dataclass(frozen=True)
class InferResult:
    out: Path
    pairs: int  # pairs in the split
    computed: int  # pairs inferred by this call (the others were already in the stage)


def default_out(build: str | os.PathLike, kind: str, model: str, split: str, unpaired: bool) -> Path:
    return Path(build) / "inferred" / kind / model / (f"{split}-unpaired" if unpaired else split)


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` in [0, 1] -> uint8 ``(H, W, C)`` (``(H, W)`` for one channel)."""
    a = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return a[..., 0] if a.shape[2] == 1 else a


def _record(kind: str, outputs: dict[str, torch.Tensor], i: int) -> dict[str, Any]:
    """The schema payload of sample ``i`` of a batch of task outputs."""
    if kind == "warp":
        return {
            "warped_garment": _to_uint8(outputs["warped_garment"][i]),
            "warped_mask": _to_uint8(outputs["warped_mask"][i]),
            "flow": outputs["flow"][i].detach().float().permute(1, 2, 0).contiguous().cpu().numpy(),
        }
    mask = outputs.get("composition_mask")
    return {"tryon": _to_uint8(outputs["tryon"][i]), "composition_mask": None if mask is None else _to_uint8(mask[i])}


def _write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def _png_outputs(outputs: dict[str, torch.Tensor], i: int) -> dict[str, np.ndarray]:
    """Every image-like output (1 or 3 channels) of sample ``i`` as uint8; flows are drawn by
    ``vtonpipe show``, not written as PNG."""
    return {name: _to_uint8(t[i]) for name, t in outputs.items() if t.dim() == 4 and t.shape[1] in (1, 3) and name != "flow"}


def infer(
    run: str | os.PathLike,
    build: str | os.PathLike,
    *,
    kind: str,
    split: str = "test",
    unpaired: bool = False,
    out: str | os.PathLike | None = None,
    device: str = "cpu",
    batch_size: int = 8,
    rows_per_shard: int = 64,
) -> InferResult:
    """Infer every pair of ``build``'s ``split`` with the trained ``kind`` model in ``run``."""
    trained = load_trained(run, device=device, kind=kind)
    if kind not in INFERRED_SCHEMAS:
        raise InferError(f"`vtonpipe infer` writes warp and tryon outputs, not {kind}")
    task = trained.task
    split_dir = Path(build) / "packed" / split
    if not split_dir.is_dir():
        raise InferError(f"{split_dir} does not exist: pack the build first (`vtonpipe pack`)")
    pairs = PackedPairs(build, split, task.needs(), trained.train.data())
    n = len(pairs)
    if unpaired and n < 2:
        raise InferError(f"unpaired inference needs at least two pairs; {split_dir} has {n}")
    out = Path(out) if out is not None else default_out(build, kind, task.model, split, unpaired)
    schema = INFERRED_SCHEMAS[kind]
    params = {
        "checkpoint": str(trained.path),
        "checkpoint_sha256": sha256_file(trained.path),
        "step": trained.step,
        "model_config": dataclasses.asdict(task.config),
        "height": trained.train.height,
        "width": trained.train.width,
        "split": split,
        "unpaired": unpaired,
    }
    key = {"annotator": f"infer.{kind}", "backend": task.model, "version": __version__, "params_hash": params_hash(params), "params": canonical_json(params)}

    writer = ShardWriter(
        out, schema, extra={"inferred": {"kind": kind, "model": task.model, "run": str(run), "build": str(build), "split": split, "unpaired": unpaired}}
    )
    done: set[str] = set()
    stale: list[str] = []
    if writer.shards:
        reader = ShardReader(out)
        for i, info in enumerate(writer.shards):
            hashes = set(reader.read_columns(i, ["params_hash"]).column("params_hash").to_pylist())
            if hashes == {key["params_hash"]}:
                done.update(reader.read_columns(i, ["pair_id"]).column("pair_id").to_pylist())
            else:
                stale.append(info.file)
        reader.close()
        if stale:
            log.info("%s: replacing %d shards of another checkpoint or settings", out, len(stale))
            writer.drop_shards(stale)
    with ShardReader(split_dir) as packed:  # pair ids and shard hashes, in PackedPairs' order
        pair_ids = [p for i in range(len(packed.shards)) for p in packed.read_columns(i, ["pair_id"]).column("pair_id").to_pylist()]
        shard_sha = [s["sha256"] for s in packed.manifest["shards"]]

    todo = [i for i in range(n) if pair_ids[i] not in done]
    pending: list[dict[str, Any]] = []
    with torch.no_grad(), progress_bar(f"infer {kind} {task.model}", len(todo)) as advance:
        for start in range(0, len(todo), batch_size):
            indices = todo[start : start + batch_size]
            batch = _batch(pairs, indices, unpaired)
            outputs = task.infer(trained.modules, _to(batch, device))
            for j, index in enumerate(indices):
                pair_id = batch["pair_id"][j]
                for name, image in _png_outputs(outputs, j).items():
                    _write_png(out / "png" / pair_id / f"{name}.png", image)
                shard, _ = pairs.locate(index)
                pending.append({"pair_id": pair_id, "input_sha256": sha256_bytes(f"{shard_sha[shard]}/{pair_id}".encode()), **key, **_record(kind, outputs, j)})
            if len(pending) >= rows_per_shard:
                writer.write_shard(pending)
                pending = []
            advance(len(indices))
    if pending:
        writer.write_shard(pending)
    writer.finish()
    return InferResult(out, n, len(todo))


def _batch(pairs: PackedPairs, indices: list[int], unpaired: bool) -> dict[str, Any]:
    samples = [pairs.sample(i) for i in indices]
    if unpaired:
        for sample, i in zip(samples, indices):
            partner = pairs.sample((i + 1) % len(pairs))
            sample.update({k: v for k, v in partner.items() if k.startswith("garment_")})
            sample["paired"] = False
    return default_collate(samples)


def _to(batch: dict[str, Any], device: str) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


__all__ = ["InferError", "InferResult", "TrainedModel", "default_out", "infer"]
