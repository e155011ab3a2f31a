"""``vtonpipe pack``: join the ingest tables and every annotation stage into training shards.

One row per pair (``packed/<split>/``), carrying the images' bytes and every annotation of the
source, target and garment images plus the pair-level ones (schema: :mod:`vtonpipe.schemas.packed`).
A pair whose images lack an annotation (the stage failed on them) is left out and counted in the
build manifest ``packed/manifest.json``, which also records every table's and stage's schema
version, shards (sha256, rows) and provenance.
"""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..annotators import annotator_specs
from ..io import write_json_atomic
from ..schemas.packed import NAME as PACKED, VERSION as PACKED_VERSION, packed_schema
from .context import AnnotationContext
from .layout import BuildLayout
from .progress import progress_bar
from .store import MANIFEST, ShardReader, ShardWriter, manifest_summary, read_manifest

ROLE_COLUMNS = {"source": "source_image_id", "target": "target_image_id", "garment": "garment_image_id"}
ROLE_KIND = {"source": "person", "target": "person", "garment": "garment"}


@dataclass
class PackResult:
    rows: dict[str, int]
    dropped: dict[str, int]
    manifest: Path


def stages_present(layout: BuildLayout, names: Sequence[str] | None = None) -> list[str]:
    """Annotator stages with a complete shard set in the build (restricted to ``names`` if given)."""
    specs = annotator_specs()
    found = [n for n in sorted(specs) if (layout.annotation(n) / MANIFEST).exists() and read_manifest(layout.annotation(n)).get("complete")]
    if names is not None:
        missing = sorted(set(names) - set(found))
        if missing:
            raise FileNotFoundError(f"stages {missing} have no complete output in {layout.root}: run `vtonpipe annotate` first")
        found = [n for n in found if n in names]
    return found


def pack(build: str | Path, *, annotators: Sequence[str] | None = None, rows_per_shard: int = 64, include_images: bool = True, show_progress: bool = True) -> PackResult:
    layout = BuildLayout(build)
    ctx = AnnotationContext(build)
    specs = annotator_specs()
    stages = stages_present(layout, annotators)
    readers = {n: ShardReader(layout.annotation(n)) for n in stages}
    for r in readers.values():
        r.verify()

    components: dict[str, dict[str, Any]] = {}
    for n in stages:
        spec = specs[n]
        version = {"name": spec.schema.name, "version": spec.schema.version}
        if spec.level == "pair":
            components[f"pair.{n}"] = version
        else:
            for role, kind in ROLE_KIND.items():
                if kind in spec.kinds:
                    components[f"{role}.{n}"] = version
    schema = packed_schema(components)

    out_root = layout.packed
    if out_root.exists():
        shutil.rmtree(out_root)
    by_split: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in ctx.pairs:
        by_split[p["split"]].append(p)

    rows_written: dict[str, int] = {}
    dropped: Counter[str] = Counter()
    with progress_bar("pack", total=len(ctx.pairs), enabled=show_progress) as advance:
        for split, pairs in sorted(by_split.items()):
            writer = ShardWriter(out_root / split, schema, name=f"packed/{split}", extra={"components": components})
            pending: list[dict[str, Any]] = []
            for p in pairs:
                row, reason = _pair_row(p, ctx, readers, specs, include_images)
                advance(1)
                if row is None:
                    dropped[reason] += 1
                    continue
                pending.append(schema.validate(row))
                if len(pending) == rows_per_shard:
                    writer.write_shard(pending, validated=True)
                    pending = []
            if pending:
                writer.write_shard(pending, validated=True)
            writer.finish()
            rows_written[split] = writer.manifest["rows"]

    build_manifest = {
        "format": "vtonpipe-build",
        "vtonpipe_version": __version__,
        "dataset_root": str(ctx.dataset_root),
        "tables": {name: manifest_summary(read_manifest(d)) for name, d in (("images", layout.images), ("pairs", layout.pairs))},
        "annotations": {n: manifest_summary(readers[n].manifest) for n in stages},
        "packed": {
            "schema": {"name": PACKED, "version": PACKED_VERSION},
            "components": components,
            "include_images": include_images,
            "splits": {s: manifest_summary(read_manifest(out_root / s)) for s in rows_written},
            "pairs_dropped": dict(dropped),
        },
    }
    write_json_atomic(out_root / MANIFEST, build_manifest)
    return PackResult(rows_written, dict(dropped), out_root / MANIFEST)


def _pair_row(p: dict[str, Any], ctx: AnnotationContext, readers: dict[str, ShardReader], specs: dict[str, Any], include_images: bool) -> tuple[dict[str, Any] | None, str]:
    row: dict[str, Any] = {"pair_id": p["pair_id"], "split": p["split"], "dataset": p["dataset"], "paired": p["paired"]}
    for role, col in ROLE_COLUMNS.items():
        image_id = p[col]
        row[f"{role}.image_id"] = image_id
        row[f"{role}.image"] = ctx.image_path(image_id).read_bytes() if (image_id and include_images) else None
    for name, reader in readers.items():
        spec = specs[name]
        if spec.level == "pair":
            targets = {"pair": p["pair_id"]}
        else:
            targets = {role: p[col] for role, col in ROLE_COLUMNS.items() if p[col] and ROLE_KIND[role] in spec.kinds}
        for role, item_id in targets.items():
            if item_id not in reader:
                return None, f"missing {name} for {role}"
            rec = reader.get(item_id)
            for k, v in rec.items():
                if k != spec.schema.key[0]:
                    row[f"{role}.{name}.{k}"] = v
    return row, ""
