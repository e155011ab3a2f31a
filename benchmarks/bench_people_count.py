"""How well the ``keypoints`` backend ``mediapipe`` counts people (``num_people``), one process.

MediaPipe Pose sees one person; the row's count comes from
:class:`vtonpipe.models.nets.mediapipe.PeopleCounter` (faces and person-size silhouettes).
Images: the person photos of ``vtonpipe sample --people N --seed S`` (256 x 192), each alone
and composed with the next ones (person images i, i + 7, i + 14, ... of the sorted list) side by
side, 1 to 4 people per image; then two people overlapping: the second pasted over the first
(its ground-truth person mask) at 0.7, 0.5 and 0.35 of a width to the right, so that the
silhouettes touch or merge. Prints, per set, how many rows got each count (or failed: Pose finds
no person on some of the widest images), how often and how fast the counter alone is right, and
how many images fail ``no_person`` against how many Pose misses without the backend's retries
(lower confidence, tiles, a border; :meth:`MediaPipeKeypoints.detect`).

    python benchmarks/bench_people_count.py [--people 24] [--seed 0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from vtonpipe.annotators.keypoints import MediaPipeKeypoints
from vtonpipe.core import ImageItem
from vtonpipe.datasets.sample_truth import image_truth_path, read_truth
from vtonpipe.io import read_image
from vtonpipe.models.nets.mediapipe import PeopleCounter
from vtonpipe.synth import write_sample


def side_by_side(images: list[np.ndarray], i: int, k: int) -> np.ndarray:
    return np.hstack([images[(i + 7 * j) % len(images)] for j in range(k)])


def overlapping(images: list[np.ndarray], masks: list[np.ndarray], i: int, shift: float) -> np.ndarray:
    """Person image i with person image i + 7 pasted over it (its person mask) ``shift`` widths to the right."""
    first, j = images[i], (i + 7) % len(images)
    second, mask = images[j], masks[j]
    dx = int(shift * first.shape[1])
    canvas = np.concatenate([first, np.repeat(first[:, -1:], dx + second.shape[1] - first.shape[1], axis=1)], axis=1)
    canvas[:, dx : dx + second.shape[1]][mask] = second[mask]
    return canvas


def histogram(counts: list[int]) -> str:
    values, n = np.unique(counts, return_counts=True)
    return ", ".join(f"{v}: {c}" for v, c in zip(values, n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "raw"
        write_sample(root, people=args.people, seed=args.seed)
        paths = sorted((root / "all").glob("*=person_*.jpg"))
        images = [read_image(p) for p in paths]
        masks = [read_truth(image_truth_path(root, p.relative_to(root).as_posix()))["person_mask"].astype(bool) for p in paths]
    backend = MediaPipeKeypoints()
    backend.ensure_setup()
    no_retry = MediaPipeKeypoints({"retry_detection_confidence": None})  # Pose once at the default confidence
    no_retry.ensure_setup()
    counter = PeopleCounter()
    print(f"keypoints/mediapipe num_people on vtonpipe sample --people {args.people} --seed {args.seed} ({len(images)} person images)")
    for k in (1, 2, 3, 4):
        composed = [side_by_side(images, i, k) for i in range(len(images))]
        rows = backend.annotate([ImageItem(str(i), "0" * 64, "person", c) for i, c in enumerate(composed)], ctx=None)
        counts = [getattr(r, "reason", None) or r.num_people for r in rows]
        missed = sum(no_retry.detect(c) is None for c in composed)
        t0 = time.perf_counter()
        alone = [counter(c) for c in composed]
        per_image = (time.perf_counter() - t0) / len(composed)
        print(
            f"  {k} side by side ({composed[0].shape[0]}x{composed[0].shape[1]}): right {counts.count(k)}/{len(counts)} | counts {histogram(counts)} | "
            f"counter alone right {alone.count(k)}/{len(alone)}, {per_image * 1000:.0f} ms/image | "
            f"no_person {counts.count('no_person')} (Pose without the retries: {missed})"
        )
    for shift in (0.7, 0.5, 0.35):
        rows = backend.annotate([ImageItem(str(i), "0" * 64, "person", overlapping(images, masks, i, shift)) for i in range(len(images))], ctx=None)
        counts = [getattr(r, "reason", None) or r.num_people for r in rows]
        print(f"  2 overlapping, {shift:.2f} widths apart: right {counts.count(2)}/{len(counts)} | counts {histogram(counts)}")


if __name__ == "__main__":
    main()
