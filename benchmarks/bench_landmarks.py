"""Accuracy of the 32 garment landmarks on held-out renders: ``geometric`` (the offline default),
the untrained ``sal-hrnet`` network and the network trained by ``vtonpipe train landmarks``.

Held-out data: a sample built with another seed than the training one (``--eval-build``: its
ingest tables and the ``groundtruth`` landmark rows of its images; ``--geometric-build``: a build
of the same images whose ``landmarks`` stage ran with ``geometric``, e.g. the default DAG's). The
network is trained on ``--train-build`` (packed pairs whose landmarks are ``groundtruth`` rows) in
this process by the generic trainer, into ``--run-dir`` (resumed when it already holds a run, so
a second call only evaluates); the untrained network is the same network at its initial weights
(the trainer's seed). Both are decoded as the ``sal-hrnet`` annotator decodes (DARK; a person
through the person branch with its paired garment; flip test with ``--flip-test``). Baseline
decoding: the trained network with the argmax cell moved a quarter cell towards its higher
neighbour (HRNet's decoder, vtonpipe's before DARK), :class:`QuarterCellPredictor`.

Metrics per image, then averaged over images (garment images; person images by MPV view word,
``front`` up to 25 degrees of turn, ``side`` up to 120, ``back`` beyond: ``vtonpipe sample
--back-views SHARE`` renders back views, the default sample has none):
mean px error on the points visible in the ground truth and not predicted absent (the images are
256 x 192, the error is in their frame) and the attribute accuracy over the 32 points (garments:
present / absent; people: visible / occluded / absent). ``coverage``: the share of the images a
method gave landmarks for (geometric fails some).

    OMP_NUM_THREADS=1 python benchmarks/bench_landmarks.py \\
        --train-build /work/bench_runs/lmtrain/lmb0 --eval-build /work/bench_runs/lmtrain/lmb1 \\
        --geometric-build /work/bench_data/bench1 --run-dir /work/bench_runs/lmtrain/run1600 --steps 1600 \\
        --flip-test --set height=128 --set width=96 --set hrnet_width=12 ...   (docs/LANDMARKS.md)
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import yaml

from vtonpipe.converters.landmarks import ABSENT, NO_LANDMARK_CATEGORIES
from vtonpipe.models.landmarks.decode import LandmarkPredictor, rescale_points
from vtonpipe.models.landmarks.hrnet import SALLandmarkNet, build_from_checkpoint
from vtonpipe.pipeline.context import AnnotationContext
from vtonpipe.pipeline.store import ShardReader, read_manifest
from vtonpipe.training.checkpoint import seed_everything
from vtonpipe.training.config import split_settings
from vtonpipe.training.metrics import landmark_attribute_accuracy, landmark_point_error
from vtonpipe.training.task import get_task
from vtonpipe.training.trainer import Trainer


def stage_rows(build: Path, backend: str) -> dict[str, np.ndarray]:
    """image id -> landmarks (32, 3) of ``build``'s landmarks stage, checked to be ``backend``'s."""
    directory = build / "annotations" / "landmarks"
    made_by = {p["backend"] for p in read_manifest(directory).get("provenance", [])}
    if made_by != {backend}:
        raise SystemExit(f"{directory} holds rows of {sorted(made_by)}, not {backend!r}")
    return {r["image_id"]: np.asarray(r["landmarks"], np.float32) for r in ShardReader(directory)}


def group_of(ctx: AnnotationContext, image_id: str) -> str:
    row = ctx.images[image_id]
    if row["kind"] == "garment":
        return "garment"
    stem = Path(row["path"]).stem
    return "person back" if stem.endswith("_back") else "person side" if stem.endswith("_side") else "person front"


def quarter_cell_decode(heatmaps: torch.Tensor) -> torch.Tensor:
    """Baseline decoding ``(B, K, h, w)`` -> ``(B, K, 2)`` cells: the argmax cell moved a quarter
    cell towards its higher neighbour on each axis (where it has both and they differ)."""
    b, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(b, k, h * w)
    index = flat.argmax(-1)
    y, x = index // w, index % w

    def at(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return flat.gather(-1, (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).unsqueeze(-1)).squeeze(-1)

    xf = x.to(heatmaps.dtype) + torch.where((x > 0) & (x < w - 1), 0.25 * torch.sign(at(y, x + 1) - at(y, x - 1)), 0.0)
    yf = y.to(heatmaps.dtype) + torch.where((y > 0) & (y < h - 1), 0.25 * torch.sign(at(y + 1, x) - at(y - 1, x)), 0.0)
    return torch.stack([xf, yf], -1)


class QuarterCellPredictor(LandmarkPredictor):
    """The annotator's predictor with :func:`quarter_cell_decode` in place of DARK (the baseline)."""

    def _landmarks(self, maps: torch.Tensor, attributes: torch.Tensor, frame: tuple[int, int]) -> torch.Tensor:
        xy = rescale_points(quarter_cell_decode(maps), self._heatmap_size(), frame)
        xy = torch.where((attributes == ABSENT)[..., None], 0.0, xy)
        return torch.cat([xy, attributes[..., None].to(xy.dtype)], -1)


def network_rows(
    net: SALLandmarkNet,
    input_size: tuple[int, int],
    heatmap_sigma: float,
    ctx: AnnotationContext,
    ids: list[str],
    flip: bool,
    batch: int = 16,
    predictor_cls: type[LandmarkPredictor] = LandmarkPredictor,
) -> dict[str, np.ndarray]:
    """The network's landmarks of ``ids`` as the sal-hrnet annotator computes them (``predictor_cls``
    :class:`QuarterCellPredictor` for the baseline decoding)."""
    predictor = predictor_cls(net, input_size, heatmap_sigma, flip=flip)
    garments = [i for i in ids if ctx.images[i]["kind"] == "garment"]
    people = [i for i in ids if ctx.images[i]["kind"] == "person" and ctx.garments_of(i)]
    out: dict[str, np.ndarray] = {}
    for start in range(0, len(garments), batch):
        chunk = garments[start : start + batch]
        out.update(zip(chunk, predictor.garments([ctx.load_image(i) for i in chunk])))
    for start in range(0, len(people), batch):
        chunk = people[start : start + batch]
        worn = [ctx.load_image(min(ctx.garments_of(i))) for i in chunk]
        out.update(zip(chunk, predictor.people([ctx.load_image(i) for i in chunk], worn)))
    return out


def score(ctx: AnnotationContext, truth: dict[str, np.ndarray], predicted: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per group (and ``all``): mean px error, attribute accuracy, coverage, image count."""
    per: dict[str, list[tuple[float, float]]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    for image_id, lm in truth.items():
        group = group_of(ctx, image_id)
        counts[group] += 1
        counts["all"] += 1
        if image_id not in predicted:
            continue
        t, p = torch.from_numpy(lm)[None], torch.from_numpy(predicted[image_id])[None]
        err = float(landmark_point_error(p, t)[0])
        acc = float(landmark_attribute_accuracy(p, t, garment=group == "garment")[0])
        per[group].append((err, acc))
        per["all"].append((err, acc))
    out = {}
    for group in sorted(counts):
        values = np.array(per[group], np.float64).reshape(-1, 2)
        out[group] = {
            "px_error": float(np.nanmean(values[:, 0])) if len(values) else float("nan"),
            "attribute_accuracy": float(values[:, 1].mean()) if len(values) else float("nan"),
            "coverage": len(values) / counts[group],
            "images": counts[group],
        }
    return out


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its reaped children (the data-loader workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-build", type=Path, required=True)
    ap.add_argument("--eval-build", type=Path, required=True, help="held-out build with groundtruth landmark rows")
    ap.add_argument("--geometric-build", type=Path, required=True, help="build of the same images with geometric landmark rows")
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="train.landmarks setting (YAML value)")
    ap.add_argument("--flip-test", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    while not (args.geometric_build / "packed" / "manifest.json").exists():  # the shared bench build may still be running
        print(f"waiting for {args.geometric_build}/packed/manifest.json")
        time.sleep(30)

    settings = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.overrides)}
    task_cls = get_task("landmarks", "sal-hrnet")
    train_cfg, task_cfg = split_settings({**settings, "steps": args.steps}, task_cls.Config)
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    last = args.run_dir / "checkpoints" / "last.pt"
    resume = last.exists()
    trained_step = torch.load(last, map_location="cpu", weights_only=True)["step"] if resume else 0
    if trained_step < args.steps:
        Trainer(task_cls, args.train_build, settings={**settings, "steps": args.steps}, run_dir=args.run_dir, device="cpu", resume=resume).fit()
    train_seconds, train_cpu_seconds = time.perf_counter() - t0, cpu_seconds() - cpu0
    trained, input_size, heatmap_sigma = build_from_checkpoint(torch.load(last, map_location="cpu", weights_only=True))
    seed_everything(train_cfg.seed)  # the trainer's initial weights
    untrained = task_cls(task_cfg).build()["net"]

    ctx = AnnotationContext(args.eval_build)
    truth = {i: lm for i, lm in stage_rows(args.eval_build, "groundtruth").items() if ctx.images[i].get("category") not in NO_LANDMARK_CATEGORIES}
    ids = sorted(truth)
    methods = {
        "geometric": {i: lm for i, lm in stage_rows(args.geometric_build, "geometric").items() if i in truth},
        "sal-hrnet untrained": network_rows(untrained, input_size, heatmap_sigma, ctx, ids, args.flip_test),
        f"sal-hrnet trained ({args.steps} steps), quarter-cell decoding": network_rows(
            trained, input_size, heatmap_sigma, ctx, ids, args.flip_test, predictor_cls=QuarterCellPredictor
        ),
        f"sal-hrnet trained ({args.steps} steps)": network_rows(trained, input_size, heatmap_sigma, ctx, ids, args.flip_test),
    }
    results = {name: score(ctx, truth, rows) for name, rows in methods.items()}
    groups = ["all", "garment", "person front", "person side", "person back"]
    groups = [g for g in groups if g == "all" or any(group_of(ctx, i) == g for i in ids)]
    print(
        f"held-out: {args.eval_build} ({len(ids)} images); trained on {args.train_build} for {args.steps} steps "
        f"at {input_size[0]}x{input_size[1]} ({train_seconds / 60:.1f} wall min, {train_cpu_seconds / 60:.1f} CPU min in this call); run {args.run_dir}"
    )
    print("| method | " + " | ".join(f"{g} px | {g} attr" for g in groups) + " |")
    print("|---|" + "---|---|" * len(groups))
    for name, r in results.items():
        cells = [
            f"{r[g]['px_error']:.2f} | {r[g]['attribute_accuracy']:.3f}" + ("" if r[g]["coverage"] == 1 else f" ({r[g]['coverage']:.0%} of images)")
            for g in groups
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("images: " + ", ".join(f"{g} {results['geometric'][g]['images']}" for g in groups))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "results": results,
                    "steps": args.steps,
                    "settings": settings,
                    "input_size": input_size,
                    "train_seconds": train_seconds,
                    "train_cpu_seconds": train_cpu_seconds,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
