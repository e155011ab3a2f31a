"""Accuracy of the ``parsing`` backend ``geometric`` on colour and on grayscale photos, same code.

Renders ``vtonpipe sample --people N --seed S`` (256 x 192) for each seed, makes a grayscale copy
of it (every image converted to 8-bit luma, ITU-R 601, saved as JPEG quality 95; the ground truth
copied), and runs the default upstream backends (keypoints ``mediapipe``, person_mask
``mediapipe``, garment_mask ``classical``) then ``parsing geometric`` on each, scored against the
sample's exact LIP labels like ``vtonpipe bench accuracy`` (the confusion summed over the seeds).
A third row parses the grayscale photos with the colour build's upstream rows (keypoints, masks),
which separates the parser's loss from MediaPipe's. Prints mIoU and pixel accuracy per set and
the per-class IoU.

    python benchmarks/bench_parsing_grayscale.py [--people 24] [--seed 0 ...] [--work DIR]

params.yaml's sample is ``--people 24 --seed 0`` (the default), the held-out set of
:mod:`vtonpipe.annotators.parsing_geometric` ``--people 4 --seed 20 21 22``. ``--work`` keeps the
builds (a later run reuses the rendered samples and upstream rows; parsing is always recomputed).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from vtonpipe.bench.metrics import SegmentationIoU
from vtonpipe.converters.labels import LIP_LABELS
from vtonpipe.datasets.sample_truth import image_truth_path, read_truth
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.context import AnnotationContext
from vtonpipe.pipeline.ingest import ingest
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.pipeline.store import ShardReader
from vtonpipe.synth import write_sample

UPSTREAM = (("keypoints", "mediapipe"), ("person_mask", "mediapipe"), ("garment_mask", "classical"))


def grayscale_copy(raw: Path, out: Path) -> None:
    """Copy the sample ``raw`` to ``out`` with every image of ``all/`` converted to 8-bit grayscale."""
    shutil.copytree(raw, out, ignore=shutil.ignore_patterns("*.jpg"))
    for path in sorted((raw / "all").glob("*.jpg")):
        with Image.open(path) as im:
            im.convert("L").save(out / "all" / path.name, quality=95)


def build(raw: Path, folder: Path, upstream_from: Path | None = None) -> Path:
    """Ingest ``raw`` into ``folder``, annotate upstream (or copy ``upstream_from``'s upstream
    annotations: the same image ids), then parse (recomputed)."""
    if not (folder / "ingest").exists():
        ingest("sample", raw, folder, layout_name="mpv", show_progress=False)
    for annotator, backend in UPSTREAM:
        if upstream_from is not None:
            target = folder / "annotations" / annotator
            if not target.exists():
                shutil.copytree(upstream_from / "annotations" / annotator, target)
        else:
            run_stage(folder, StageConfig(annotator, backend), show_progress=False)
    run_stage(folder, StageConfig("parsing", "geometric"), recompute=True, show_progress=False)
    return folder


def score(folder: Path, iou: SegmentationIoU) -> int:
    """Add the parsing rows of build ``folder`` against their ground truth to ``iou``; returns the
    person images without a row (failed)."""
    ctx = AnnotationContext(folder)
    rows = ShardReader(folder / "annotations" / "parsing")
    missing = 0
    for image_id, image in sorted(ctx.images.items()):
        if image["kind"] != "person":
            continue
        if image_id not in rows:
            missing += 1
            continue
        iou.update(rows.get(image_id)["parsing"], read_truth(image_truth_path(ctx.dataset_root, image["path"]))["parsing"])
    return missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=24)
    parser.add_argument("--seed", type=int, nargs="+", default=[0])
    parser.add_argument("--work", type=Path, help="keep the builds here (default: a temporary folder)")
    args = parser.parse_args()
    sets = {name: SegmentationIoU(len(LIP_LABELS)) for name in ("colour", "grayscale", "grayscale, colour upstream")}
    missing = dict.fromkeys(sets, 0)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seed:
            work = (args.work or Path(tmp)) / f"seed{seed}-people{args.people}"
            colour_raw, gray_raw = work / "raw", work / "raw-gray"
            if not colour_raw.exists():
                write_sample(colour_raw, people=args.people, seed=seed)
            if not gray_raw.exists():
                grayscale_copy(colour_raw, gray_raw)
            colour = build(colour_raw, work / "colour")
            folders = {
                "colour": colour,
                "grayscale": build(gray_raw, work / "gray"),
                "grayscale, colour upstream": build(gray_raw, work / "gray-colour-upstream", upstream_from=colour),
            }
            for name, folder in folders.items():
                missing[name] += score(folder, sets[name])
    per_class = {name: iou.per_class_iou() for name, iou in sets.items()}
    classes = [c for c in range(len(LIP_LABELS)) if np.isfinite(per_class["colour"][c])]
    seeds = " ".join(map(str, args.seed))
    print(f"parsing/geometric on vtonpipe sample --people {args.people} --seed {seeds} (256x192)")
    print(f"{'set':28s} {'mIoU':>6s} {'pixacc':>6s} {'failed':>6s}  " + " ".join(f"{LIP_LABELS[c][:8]:>8s}" for c in classes))
    for name, iou in sets.items():
        metrics = iou.result()
        cells = " ".join(f"{per_class[name][c]:8.3f}" for c in classes)
        print(f"{name:28s} {metrics['miou']:6.3f} {metrics['pixel_accuracy']:6.3f} {missing[name]:6d}  {cells}")


if __name__ == "__main__":
    main()
