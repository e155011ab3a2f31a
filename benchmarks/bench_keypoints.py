"""Throughput of the default ``keypoints`` and ``person_mask`` backends (MediaPipe), one process.

Compares the backends as the runner uses them (models built once in ``setup()``, then every
image) with a naive loop that builds the backend, hence its MediaPipe graphs, for each image.
Images: matplotlib's grace_hopper.jpg portrait (512 x 600) and mirrored / shifted copies of it.

    python benchmarks/bench_keypoints.py [--images 24] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

from vtonpipe.annotators import get_backend
from vtonpipe.core import AnnotationFailure, ImageItem


def images(n: int) -> list[ImageItem]:
    base = np.asarray(Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB"))
    out = []
    for i in range(n):
        img = base[:, ::-1] if i % 2 else base
        img = np.ascontiguousarray(np.roll(img, 4 * (i // 2), axis=1))  # distinct inputs
        out.append(ImageItem(f"img{i}", f"{i:064x}", "person", img))
    return out


def reused(annotator: str, items: list[ImageItem]) -> float:
    """Seconds to annotate ``items`` with one backend instance (setup once)."""
    t0 = time.perf_counter()
    backend = get_backend(annotator)()
    backend.ensure_setup()
    results = [backend.annotate([item], ctx=None)[0] for item in items]
    elapsed = time.perf_counter() - t0
    assert not any(isinstance(r, AnnotationFailure) for r in results)
    return elapsed


def naive(annotator: str, items: list[ImageItem]) -> float:
    """Seconds to annotate ``items`` building a fresh backend (and its models) per image."""
    t0 = time.perf_counter()
    for item in items:
        backend = get_backend(annotator)()
        backend.ensure_setup()
        backend.annotate([item], ctx=None)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    items = images(args.images)
    for annotator in ("keypoints", "person_mask"):
        reused(annotator, items[:2])  # warm-up: imports, first graph
        fast = min(reused(annotator, items) for _ in range(args.repeat))
        slow = min(naive(annotator, items) for _ in range(args.repeat))
        backend = get_backend(annotator).name
        print(
            f"{annotator}/{backend}: setup once {len(items) / fast:6.1f} img/s | model per image "
            f"{len(items) / slow:6.1f} img/s | ratio {slow / fast:4.1f}x"
        )


if __name__ == "__main__":
    main()
