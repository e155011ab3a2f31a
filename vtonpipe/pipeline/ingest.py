"""``vtonpipe ingest``: scan a dataset, hash and decode every image, write the images/pairs tables.

Problems (missing files, duplicates, unreadable images, list lines pointing outside the root)
go to ``ingest/report.json``; they never crash the run, and fail it only when the share of
unusable images or pair lines exceeds ``max_failure_rate``.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..datasets import Problem, get_adapter
from ..io import ImageDecodeError, decode_image, sha256_bytes, write_json_atomic
from ..progress import progress_bar
from ..schemas.tables import IMAGES, PAIRS
from .layout import BuildLayout
from .store import write_table


class IngestError(RuntimeError):
    """Too many unusable images or pair lines (see the report)."""


@dataclass
class IngestResult:
    images: int
    pairs: int
    problems: int
    image_failure_rate: float
    pair_failure_rate: float
    report: Path


def _probe(path: Path) -> tuple[str, int, int]:
    """(sha256, width, height) of an image file; ImageDecodeError if it cannot be decoded."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImageDecodeError(f"cannot read {path}: {e}") from e
    h, w = decode_image(data, name=str(path)).shape[:2]
    return sha256_bytes(data), w, h


def pair_id(dataset: str, split: str, source: str, target: str | None, garment: str | None) -> str:
    key = "\x1f".join([dataset, split, source, target or "", garment or ""])
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def ingest(
    dataset: str,
    root: str | Path,
    build: str | Path,
    *,
    layout_name: str | None = None,
    max_failure_rate: float = 0.05,
    workers: int | None = None,
    show_progress: bool = True,
) -> IngestResult:
    """Ingest the dataset at ``root`` (layout ``layout_name``, default ``dataset``) into ``build``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} does not exist")
    adapter = get_adapter(layout_name or dataset)
    scan = adapter.scan(root)
    problems: list[Problem] = list(scan.problems)

    probed: dict[str, tuple[str, int, int]] = {}
    workers = workers or min(8, (os.cpu_count() or 1) * 2)
    with progress_bar(f"ingest {dataset}", total=len(scan.images), enabled=show_progress) as advance, ThreadPoolExecutor(workers) as pool:
        futures = {e.path: pool.submit(_probe, root / e.path) for e in scan.images}
        for path, fut in futures.items():
            try:
                probed[path] = fut.result()
            except ImageDecodeError as e:
                problems.append(Problem("unreadable_image", path, str(e)))
            advance(1)

    image_rows = [
        {
            "image_id": e.path,
            "path": e.path,
            "sha256": probed[e.path][0],
            "width": probed[e.path][1],
            "height": probed[e.path][2],
            "kind": e.kind,
            "split": e.split,
            "dataset": dataset,
            "category": e.category,
        }
        for e in scan.images
        if e.path in probed
    ]
    by_sha: dict[str, list[str]] = {}
    for r in image_rows:
        by_sha.setdefault(r["sha256"], []).append(r["image_id"])
    problems += [Problem("duplicate_content", ids[0], f"identical bytes: {ids}", fatal=False) for ids in by_sha.values() if len(ids) > 1]

    usable = set(probed)
    pair_rows, dropped = [], 0
    for p in scan.pairs:
        refs = [r for r in (p.source, p.target, p.garment) if r]
        if not all(r in usable for r in refs):
            dropped += 1
            continue
        pair_rows.append(
            {
                "pair_id": pair_id(dataset, p.split, p.source, p.target, p.garment),
                "source_image_id": p.source,
                "target_image_id": p.target,
                "garment_image_id": p.garment,
                "split": p.split,
                "paired": p.paired,
                "dataset": dataset,
            }
        )

    referenced = len(scan.images) + sum(1 for p in problems if p.kind in ("missing_file", "outside_root"))
    image_fail = 1 - len(image_rows) / referenced if referenced else 0.0
    pair_fail = 1 - len(pair_rows) / scan.pair_lines if scan.pair_lines else 0.0
    layout = BuildLayout(build)
    counts = Counter(p.kind for p in problems)
    report = {
        "dataset": dataset,
        "layout": adapter.name,
        "root": str(root),
        "images": len(image_rows),
        "pairs": len(pair_rows),
        "pair_lines": scan.pair_lines,
        "pairs_dropped": dropped,
        "image_failure_rate": round(image_fail, 6),
        "pair_failure_rate": round(pair_fail, 6),
        "max_failure_rate": max_failure_rate,
        "problem_counts": dict(sorted(counts.items())),
        "problems": [asdict(p) for p in problems],
    }
    write_json_atomic(layout.ingest_report, report)
    if image_fail > max_failure_rate or pair_fail > max_failure_rate:
        raise IngestError(
            f"ingest of {dataset} failed: {image_fail:.1%} of images and {pair_fail:.1%} of pair lines are unusable "
            f"(max {max_failure_rate:.1%}); problems {dict(counts)}; see {layout.ingest_report}"
        )
    if not pair_rows:
        raise IngestError(f"ingest of {dataset} produced no usable pairs; see {layout.ingest_report}")
    extra: dict[str, Any] = {"dataset": dataset, "dataset_root": str(root), "layout": adapter.name}
    write_table(layout.images, IMAGES, image_rows, **extra)
    write_table(layout.pairs, PAIRS, pair_rows, **extra)
    return IngestResult(len(image_rows), len(pair_rows), len(problems), image_fail, pair_fail, layout.ingest_report)
