"""Warping models trained on one build, judged on the held-out pairs of another (issue 10, 4a).

Trains ``gcl`` (temperature 0.1; ``gcl-t0.01``: the official 0.01), ``gcl`` without its 3D losses
(the paper's ablation: no ``L_o``, no ``L_f``; the SMPL flow is not read), ``tps`` and ``sal`` on ``--train``'s packed train split with one short
schedule each (the steps below, batch 4, 128 x 96, Adam 5e-4, one CPU thread), then evaluates
each on ``--test``'s pairs at the same resolution against two references computed in the same
loop (each run stops at its steps or after ``--minutes`` of wall time, whichever comes first; the
table gives the steps it reached):

- the **identity warp**: the model's input garment not moved (3D-GCL warps the garment the
  source person wears; SPG-VTON and SAL-VTON the in-shop garment, which is in its own frame);
- the **oracle**: the SMPL flow's own warp of the source person's garment
  (:func:`vtonpipe.training.warp.smpl_flow_warp`), the supervision 3D-GCL learns from.

Metrics (:func:`vtonpipe.training.warp.warp_metrics`, means over the pairs): the IoU of the
warped garment mask with the target's garment region (mIoU), and the L1 and SSIM of the warped
garment against the target garment (the target image on that region, black elsewhere).

Runs go to ``--runs/<name>/`` and resume (a rerun trains only what is missing, then evaluates).

    python benchmarks/bench_warp.py [--train /work/bench_data/bench0] [--test /work/bench_data/bench1]
                                    [--split all|test] [--runs /work/bench_runs/warp/bench]
                                    [--models gcl,gcl-no3d,tps,sal,gcl-t0.01] [--scale 1.0] [--minutes 8] [--extend]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from pathlib import Path

import torch

from vtonpipe.training.checkpoint import LAST
from vtonpipe.training.data import DataConfig, PackedPairs
from vtonpipe.training.stream import PackedPairStream, make_loader
from vtonpipe.training.task import get_task
from vtonpipe.training.trained import load_trained
from vtonpipe.training.trainer import Trainer
from vtonpipe.training.warp import SMPL_FLOW_WARP_NEEDS, masked, smpl_flow_warp, warp_metrics

SCHEDULE = {
    "batch_size": 4,
    "height": 128,
    "width": 96,
    "workers": 0,
    "lr": 0.0005,
    "log_every": 50,
    "checkpoint_every": 250,
    "grid_every": 500,
    "keep_checkpoints": 1,
}
#: run name -> (model, settings, optimiser steps at most; ``--minutes`` may stop a run earlier)
#: gcl at temperature 0.1 (3D-GCL's official 0.01 makes the softmax of Eq. 1 nearly one-hot from the
#: start, so L_o barely moves in a short schedule: run "gcl-t0.01" for the official value)
RUNS = {
    "gcl": ("gcl", {"temperature": 0.1}, 760),
    "gcl-no3d": ("gcl", {"temperature": 0.1, "use_3d_losses": False}, 760),
    "tps": ("tps", {"match_height": 128, "match_width": 96}, 2000),
    "sal": ("sal", {}, 400),
    "gcl-t0.01": ("gcl", {}, 760),
}
#: what the identity warp moves: the garment the model warps and its mask (batch keys)
IDENTITY = {"gcl": ("source_image", "source_garment_region"), "tps": ("garment_image", "garment_mask"), "sal": ("garment_image", "garment_mask")}
EXTRA_NEEDS = SMPL_FLOW_WARP_NEEDS | {"target_image", "target_garment_region"} | {k for pair in IDENTITY.values() for k in pair}


def checkpoint_step(run_dir: Path) -> int:
    last = run_dir / "checkpoints" / LAST
    return int(torch.load(last, weights_only=True)["step"]) if last.exists() else 0


def train(name: str, build: Path, runs: Path, scale: float, minutes: float, extend: bool) -> tuple[Path, int, float | None]:
    """Train run ``name`` to its steps or for ``minutes`` of wall time, whichever comes first (SIGINT
    then stops the trainer after the current step, with a checkpoint). A run stopped by its budget
    before (its ``<runs>/<name>.json`` written at its checkpoint's step) is final unless ``extend``:
    it then resumes with a fresh budget. Returns (run dir, steps trained, wall seconds of its
    training over every call, None if unknown)."""
    model, settings, steps = RUNS[name]
    steps = max(1, round(steps * scale))
    run_dir = runs / name
    done = runs / f"{name}.json"
    previous = json.loads(done.read_text()) if done.exists() else None
    step = checkpoint_step(run_dir)
    seconds_before = previous["train_seconds"] if previous and previous["steps"] == step else None
    if step >= steps or (seconds_before is not None and step > 0 and not extend):
        return run_dir, step, seconds_before
    timer = threading.Timer(minutes * 60, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    try:
        Trainer(get_task("warp", model), build, settings={**SCHEDULE, **settings, "steps": steps}, run_dir=run_dir, device="cpu", resume=True).fit()
    finally:
        timer.cancel()
    return run_dir, checkpoint_step(run_dir), (seconds_before or 0.0) + time.perf_counter() - t0


def evaluate(run_dir: Path, build: Path, splits: list[str]) -> dict[str, dict[str, float]]:
    """Mean metrics over ``build``'s ``splits`` of the trained warp, its identity warp and the oracle."""
    trained = load_trained(run_dir, kind="warp")
    image, mask = IDENTITY[trained.model]
    data = DataConfig(height=SCHEDULE["height"], width=SCHEDULE["width"])
    sums: dict[str, dict[str, float]] = {"model": {}, "identity": {}, "oracle": {}}
    count = 0
    with torch.no_grad():
        for split in splits:
            pairs = PackedPairs(build, split, set(trained.task.needs()) | EXTRA_NEEDS, data)
            for batch in make_loader(PackedPairStream(pairs, 8, shuffle=False, epochs=1)):
                results = {
                    "model": trained.task.evaluate(trained.modules, batch),
                    "identity": warp_metrics(masked(batch[image], batch[mask]), batch[mask], batch),
                    "oracle": warp_metrics(*smpl_flow_warp(batch), batch),
                }
                for which, values in results.items():
                    for k, v in values.items():
                        sums[which][k] = sums[which].get(k, 0.0) + float(v.sum())
                count += len(batch["pair_id"])
    return {which: {k: v / count for k, v in values.items()} | {"pairs": count} for which, values in sums.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, default=Path("/work/bench_data/bench0"), help="build to train on (its train split)")
    parser.add_argument("--test", type=Path, default=Path("/work/bench_data/bench1"), help="held-out build to evaluate on")
    parser.add_argument(
        "--split",
        choices=("test", "all"),
        default="all",
        help="pairs of --test to evaluate: its test split or every pair (the default: a build held out entirely)",
    )
    parser.add_argument("--runs", type=Path, default=Path("/work/bench_runs/warp/bench"))
    parser.add_argument("--models", default=",".join(RUNS), help=f"runs to train and evaluate, of {list(RUNS)}")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every run's steps (a quick check: 0.05)")
    parser.add_argument("--minutes", type=float, default=8.0, help="wall-time budget of each training run (it stops early, with a checkpoint)")
    parser.add_argument("--extend", action="store_true", help="resume runs an earlier budget stopped, with a fresh budget")
    args = parser.parse_args()
    torch.set_num_threads(1)
    splits = ["train", "test"] if args.split == "all" else ["test"]
    rows = []
    for name in args.models.split(","):
        run_dir, steps, seconds = train(name, args.train, args.runs, args.scale, args.minutes, args.extend)
        result = evaluate(run_dir, args.test, splits)
        rows.append((name, steps, seconds, result))
        (args.runs / f"{name}.json").write_text(json.dumps({"steps": steps, "train_seconds": seconds, **result}, indent=1))
    pairs = rows[0][3]["model"]["pairs"]
    print(
        f"\nheld-out pairs: {pairs} ({args.test.name} {args.split}); trained on {args.train.name} train, {SCHEDULE['height']}x{SCHEDULE['width']}, batch {SCHEDULE['batch_size']}"
    )
    print("| warp | steps | train s | mIoU | L1 | SSIM | mIoU / identity | L1 / identity | mIoU / oracle |")
    print("|---|---|---|---|---|---|---|---|---|")
    shown = set()
    for name, steps, seconds, result in rows:
        model = RUNS[name][0]
        for which, label in (("identity", f"identity ({'source' if model == 'gcl' else 'in-shop'} garment)"), ("oracle", "SMPL-flow oracle")):
            if label not in shown:
                shown.add(label)
                r = result[which]
                print(f"| {label} | - | - | {r['miou']:.3f} | {r['l1']:.4f} | {r['ssim']:.3f} | - | - | - |")
        m, i, o = result["model"], result["identity"], result["oracle"]
        took = "-" if seconds is None else f"{seconds:.0f}"
        print(
            f"| {name} | {steps} | {took} | {m['miou']:.3f} | {m['l1']:.4f} | {m['ssim']:.3f} | {m['miou'] / i['miou']:.2f}x | {m['l1'] / i['l1']:.2f}x | {m['miou'] / o['miou']:.2f}x |"
        )


if __name__ == "__main__":
    main()
