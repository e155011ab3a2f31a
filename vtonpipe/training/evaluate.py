"""``vtonpipe eval``: a trained try-on run evaluated on a build's split, paired and unpaired.

Paired pairs (the garment tried on is the one the target person wears) are compared with the
target image: SSIM, PSNR, L1, masked SSIM on the face and on the non-garment region, and the warp
mIoU (:func:`vtonpipe.training.tryon.tryon_metrics`), averaged over the pairs. Unpaired pairs have
no reference image: only the distribution metrics (FID / KID / IS against the split's target
images, :mod:`vtonpipe.training.distribution`; LPIPS needs the reference, so paired only) apply
to them, and those are computed only when asked for (``--metric``), with the weight files present. The result goes to ``metrics.json`` (default
``<run>/eval/metrics.json``).

:func:`evaluate_predictions` takes any predictor, so a benchmark scores baselines (copy-paste,
the target itself) with the same code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import write_json_atomic
from .data import PackedPairs
from .distribution import DISTRIBUTION_METRICS, WEIGHT_FILES, DistributionMetrics
from .stream import PackedPairStream, make_loader
from .trained import load_trained
from .tryon import tryon_metrics

#: a predictor: batch (on the device) -> (try-on (B, 3, H, W) in [0, 1], warped mask (B, 1, H, W))
Predictor = Callable[[Mapping[str, Any]], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Evaluation:
    """Per-sample metrics of the paired pairs (name -> (n,) float64) and the pair counts."""

    paired: dict[str, np.ndarray] = field(default_factory=dict)
    pairs: int = 0
    paired_pairs: int = 0
    distribution: dict[str, dict[str, float | None]] = field(default_factory=lambda: {"paired": {}, "unpaired": {}})

    def means(self) -> dict[str, float | None]:
        """Mean of each metric over the paired pairs (None when there are none)."""
        return {k: float(np.mean(v)) if len(v) else None for k, v in self.paired.items()}


def evaluate_predictions(
    pairs: PackedPairs,
    predict: Predictor,
    *,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    workers: int = 0,
    distribution: DistributionMetrics | None = None,
) -> Evaluation:
    """Run ``predict`` over every pair of ``pairs`` in order (no gradients) and collect the
    :func:`~vtonpipe.training.tryon.tryon_metrics` of the paired ones (and, with
    ``distribution``, its metrics of the paired and the unpaired ones)."""
    device = torch.device(device)
    stream = PackedPairStream(pairs, batch_size, shuffle=False, epochs=1)
    out = Evaluation()
    values: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for batch in make_loader(stream, workers=workers):
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            tryon, warped_mask = predict(batch)
            paired = batch["paired"].bool().cpu().numpy()
            out.pairs += len(paired)
            out.paired_pairs += int(paired.sum())
            for k, v in tryon_metrics(tryon, warped_mask, batch).items():
                values.setdefault(k, []).append(v.double().cpu().numpy()[paired])
            if distribution is not None:
                distribution.add(tryon, batch["target_image"], batch["paired"])
    out.paired = {k: np.concatenate(v) for k, v in values.items()}
    if distribution is not None:
        out.distribution = distribution.results()
    return out


def _why_not(metric: str) -> str:
    """One short line for ``metrics.json``: the missing weight files (``vtonpipe doctor`` has the
    full hints), or that the metric was not asked for."""
    missing = [f.relpath for f in WEIGHT_FILES[metric] if f.problem()]
    return f"missing weights: {', '.join(missing)} (vtonpipe doctor)" if missing else "not requested (--metric)"


def evaluate_run(
    run: str | os.PathLike,
    build: str | os.PathLike,
    *,
    split: str = "test",
    device: str = "cpu",
    batch_size: int = 8,
    workers: int = 0,
    distribution: Sequence[str] = (),
    out: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Evaluate the try-on run ``run`` (run directory or checkpoint) on ``build``'s ``split`` at
    the resolution it was trained at; ``distribution``: any of FID / KID / IS / LPIPS (their
    weight files are checked first: :class:`~vtonpipe.core.MissingWeightsError` names the
    missing ones). Writes and returns the metrics record."""
    unknown = [m for m in distribution if m not in DISTRIBUTION_METRICS]
    if unknown:
        raise ValueError(f"unknown distribution metrics {unknown}; known: {', '.join(DISTRIBUTION_METRICS)}")
    networks = DistributionMetrics(distribution, device) if distribution else None
    trained = load_trained(run, device=device, kind="tryon")
    data = trained.train.data()
    pairs = PackedPairs(build, split, trained.task.needs(), data)

    def predict(batch):
        result = trained.task.infer(trained.modules, batch)
        return result["tryon"], result["warped_mask"]

    evaluation = evaluate_predictions(pairs, predict, batch_size=batch_size, device=device, workers=workers, distribution=networks)
    run_dir = Path(run) if Path(run).is_dir() else Path(run).parent.parent
    record = {
        "run": str(run),
        "model": trained.model,
        "step": trained.step,
        "build": str(build),
        "split": split,
        "resolution": [data.height, data.width],
        "notes": trained.task.notes(),
        "paired": {"pairs": evaluation.paired_pairs, **evaluation.means(), **evaluation.distribution["paired"]},
        "unpaired": {"pairs": evaluation.pairs - evaluation.paired_pairs, **evaluation.distribution["unpaired"]},
        "not_computed": {m: _why_not(m) for m in DISTRIBUTION_METRICS if m not in distribution},
    }
    write_json_atomic(Path(out) if out else run_dir / "eval" / "metrics.json", record)
    return record
