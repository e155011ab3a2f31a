"""``vtonpipe pack``: join the ingest tables and every annotation stage into training shards.

One row per pair (``packed/<split>/``), carrying the images' bytes and every annotation of the
source, target and garment images plus the pair-level ones (schema: :mod:`vtonpipe.schemas.packed`).

An annotation that does not apply to a pair (no target person on a single-pose dataset, so no
target keypoints and no ``smpl_flow``) leaves its columns null; ``packed/manifest.json`` lists
such absent columns under ``absent`` with the count and the reason. A pair whose *applicable*
annotations failed (no person found, fit diverged) is dropped and counted under
``pairs_dropped`` by stage, role and failure reason. The manifest also records every table's and
stage's schema version, shards (sha256, rows) and provenance.
"""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..annotators import annotator_specs
from ..core import PAIR_ROLES, ROLE_KIND, AnnotatorSpec
from ..io import write_json_atomic
from ..progress import progress_bar
from ..schemas.packed import NAME as PACKED
from ..schemas.packed import VERSION as PACKED_VERSION
from ..schemas.packed import packed_schema
from .context import AnnotationContext
from .layout import BuildLayout
from .store import MANIFEST, ShardReader, ShardWriter, manifest_summary, read_manifest


@dataclass
class PackResult:
    """Rows written per split; pairs dropped per reason; columns left null per component
    (``{"pair.smpl_flow": {"pairs": n, "reason": "not_applicable", "detail": ...}}``)."""

    rows: dict[str, int]
    dropped: dict[str, int]
    manifest: Path
    absent: dict[str, dict[str, Any]]


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
    failures = {n: _failure_reasons(layout, n) for n in stages}

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
    absent: dict[str, dict[str, Any]] = {}
    with progress_bar("pack", total=len(ctx.pairs), enabled=show_progress) as advance:
        for split, pairs in sorted(by_split.items()):
            writer = ShardWriter(out_root / split, schema, name=f"packed/{split}", extra={"components": components})
            pending: list[dict[str, Any]] = []
            for p in pairs:
                row, reason, not_applicable = _pair_row(p, ctx, readers, specs, failures, include_images)
                advance(1)
                if row is None:
                    dropped[reason] += 1
                    continue
                for prefix, detail in not_applicable.items():
                    entry = absent.setdefault(prefix, {"pairs": 0, "reason": "not_applicable", "detail": detail})
                    entry["pairs"] += 1
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
            "absent": absent,
        },
    }
    write_json_atomic(out_root / MANIFEST, build_manifest)
    return PackResult(rows_written, dict(dropped), out_root / MANIFEST, absent)


def _failure_reasons(layout: BuildLayout, name: str) -> dict[str, str]:
    """item id -> failure reason recorded by stage ``name``."""
    directory = layout.failures(name)
    if not (directory / MANIFEST).exists():
        return {}
    return {f["item_id"]: f["error"] for f in ShardReader(directory)}


def _not_applicable(spec: AnnotatorSpec, missing_roles: list[str]) -> str:
    needs = " and ".join(spec.roles)
    return f"{spec.name} needs the pair's {needs} images; these pairs have no {' or '.join(missing_roles)} image"


def _pair_row(
    p: dict[str, Any],
    ctx: AnnotationContext,
    readers: dict[str, ShardReader],
    specs: dict[str, AnnotatorSpec],
    failures: dict[str, dict[str, str]],
    include_images: bool,
) -> tuple[dict[str, Any] | None, str, dict[str, str]]:
    """(row, "", absent components) for a packable pair; (None, drop reason, {}) for a pair whose
    applicable annotations failed. Components that do not apply stay null in the row."""
    row: dict[str, Any] = {"pair_id": p["pair_id"], "split": p["split"], "dataset": p["dataset"], "paired": p["paired"]}
    for role, col in PAIR_ROLES.items():
        image_id = p[col]
        row[f"{role}.image_id"] = image_id
        row[f"{role}.image"] = ctx.image_path(image_id).read_bytes() if (image_id and include_images) else None
    absent: dict[str, str] = {}
    for name, reader in readers.items():
        spec = specs[name]
        if spec.level == "pair":
            missing = [r for r in spec.roles if not p[PAIR_ROLES[r]]]
            if missing:
                absent[f"pair.{name}"] = _not_applicable(spec, missing)
                continue
            targets = {"pair": p["pair_id"]}
        else:
            roles = [role for role, kind in ROLE_KIND.items() if kind in spec.kinds]
            for role in roles:
                if not p[PAIR_ROLES[role]]:
                    absent[f"{role}.{name}"] = f"these pairs have no {role} image"
            targets = {role: p[PAIR_ROLES[role]] for role in roles if p[PAIR_ROLES[role]]}
        for role, item_id in targets.items():
            if item_id not in reader:
                why = failures[name].get(item_id, "not computed")
                return None, f"{name} failed for {role}: {why}", {}
            rec = reader.get(item_id)
            for k, v in rec.items():
                if k != spec.schema.key[0]:
                    row[f"{role}.{name}.{k}"] = v
    return row, "", absent
