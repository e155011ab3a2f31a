"""Throughput of the ``parsing`` backend ``geometric`` (offline, no learnt model), one process.

Compares the backend as the runner uses it (one backend and one build context for every image)
with a naive loop that builds both again for each image. The geometric backend has no model to
load, so the difference is only the context (reading the build's tables and opening the upstream
shards) and the backend object: expect a ratio near 1. Also times ``parse_person`` alone (the
algorithm, upstream rows already in memory).

Input: a build with ``keypoints``, ``person_mask`` and ``garment_mask`` annotations (``--build``),
or, by default, a fresh ``vtonpipe sample`` of ``--people`` people at 256 x 192 annotated with the
default upstream backends (MediaPipe, classical) in a temporary folder (not timed).

    python benchmarks/bench_parsing.py [--people 4] [--build DIR] [--body-parts keypoints|densepose] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from vtonpipe.annotators import get_backend
from vtonpipe.core import AnnotationFailure, ImageItem
from vtonpipe.models.classical.geometric_parsing import garment_colours, parse_person
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.context import AnnotationContext
from vtonpipe.pipeline.ingest import ingest
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.synth import write_sample


def sample_build(folder: Path, people: int) -> Path:
    """A sample dataset of ``people`` people, ingested and annotated upstream of parsing."""
    write_sample(folder / "raw", people=people, seed=0)
    build = folder / "build"
    ingest("sample", folder / "raw", build, layout_name="mpv", show_progress=False)
    for annotator in ("keypoints", "person_mask", "garment_mask"):
        run_stage(build, StageConfig(annotator), show_progress=False)
    return build


def person_items(ctx: AnnotationContext) -> list[ImageItem]:
    return [
        ImageItem(i, r["sha256"], "person", ctx.load_image(i), r["category"]) for i, r in sorted(ctx.images.items()) if r["kind"] == "person"
    ]


def reused(build: Path, items: list[ImageItem], params: dict) -> float:
    """Seconds to annotate ``items`` with one context and one backend instance."""
    t0 = time.perf_counter()
    ctx = AnnotationContext(build)
    backend = get_backend("parsing", "geometric")(params)
    backend.ensure_setup()
    results = [backend.annotate([item], ctx)[0] for item in items]
    elapsed = time.perf_counter() - t0
    failed = [r.reason for r in results if isinstance(r, AnnotationFailure)]
    assert not failed, failed
    return elapsed


def naive(build: Path, items: list[ImageItem], params: dict) -> float:
    """Seconds to annotate ``items`` building the context and the backend for each image."""
    t0 = time.perf_counter()
    for item in items:
        backend = get_backend("parsing", "geometric")(params)
        backend.ensure_setup()
        backend.annotate([item], AnnotationContext(build))
    return time.perf_counter() - t0


def algorithm(build: Path, items: list[ImageItem], densepose: bool) -> float:
    """Seconds ``parse_person`` takes over ``items`` with every input already read."""
    ctx = AnnotationContext(build)
    inputs = []
    for item in items:
        pm = ctx.annotation("person_mask", item.image_id)
        garments = [garment_colours(ctx.load_image(g), ctx.annotation("garment_mask", g).mask) for g in ctx.garments_of(item.image_id)]
        iuv = ctx.annotation("densepose", item.image_id).iuv[..., 0] if densepose else None
        inputs.append((item.image, pm.mask, ctx.annotation("keypoints", item.image_id).keypoints, pm.face_mask, iuv, garments))
    t0 = time.perf_counter()
    for image, mask, keypoints, face, iuv, garments in inputs:
        parse_person(image, mask, keypoints, face_mask=face, densepose_i=iuv, garments=garments)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=4, help="sample people (two person images each) when no --build")
    parser.add_argument("--build", type=Path, help="an existing build with the upstream annotations")
    parser.add_argument("--body-parts", choices=("keypoints", "densepose"), default="keypoints")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    params = {"body_parts": args.body_parts}
    with tempfile.TemporaryDirectory() as tmp:
        build = args.build or sample_build(Path(tmp), args.people)
        items = person_items(AnnotationContext(build))
        reused(build, items[:2], params)  # warm-up: imports
        fast = min(reused(build, items, params) for _ in range(args.repeat))
        slow = min(naive(build, items, params) for _ in range(args.repeat))
        alone = min(algorithm(build, items, args.body_parts == "densepose") for _ in range(args.repeat))
        h, w = items[0].image.shape[:2]
        print(
            f"parsing/geometric ({args.body_parts}, {len(items)} images {h}x{w}): context+backend once {len(items) / fast:6.1f} img/s | "
            f"rebuilt per image {len(items) / slow:6.1f} img/s | ratio {slow / fast:4.2f}x | parse_person alone {len(items) / alone:6.1f} img/s"
        )


if __name__ == "__main__":
    main()
