"""The stage runner: batches items, calls a backend, writes shards atomically, resumes.

Rows are keyed by ``(input_sha256, annotator, backend, version, params_hash)``. A rerun reads the
keys already in the stage directory and computes only what is missing, so an interrupted run
loses at most one unflushed shard and added images cost only their own work. Items with the same
inputs (a duplicated image, two pairs of the same two people) are computed once.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import traceback
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import pyarrow.parquet as pq

from ..annotators.base import (
    AnnotationFailure,
    AnnotatorSpec,
    Backend,
    ImageItem,
    PairItem,
    canonical_json,
    get_annotator,
    get_backend,
    params_hash,
)
from ..schemas import FAILURES, SchemaError
from .context import AnnotationContext
from .layout import BuildLayout
from .progress import progress_bar
from .store import ShardReader, ShardWriter, write_table

log = logging.getLogger(__name__)

KEY_COLUMNS = ("input_sha256", "annotator", "backend", "version", "params_hash")


class StageError(RuntimeError):
    """A stage that cannot run (missing upstream stage) or that failed too many items."""


#: the failure reason of an item whose upstream stage has no row for it: the failure is the
#: upstream stage's, so it is recorded here but not counted against this stage's budget
MISSING_UPSTREAM = "missing_upstream"


@dataclass
class StageResult:
    """What one stage run did. ``skipped``: items an earlier run already did (``failed_before`` of
    them failed then); ``failed`` counts every failed item, earlier runs' included, and
    ``failures_by_reason`` splits them by reason."""

    annotator: str
    backend: str
    directory: Path
    total: int
    max_failure_rate: float = 1.0
    computed: int = 0
    reused: int = 0
    skipped: int = 0
    failed_before: int = 0
    failed: int = 0
    failures_by_reason: dict[str, int] = field(default_factory=dict)

    def count_failure(self, reason: str) -> None:
        self.failed += 1
        self.failures_by_reason[reason] = self.failures_by_reason.get(reason, 0) + 1

    @property
    def failure_rate(self) -> float:
        """Share of the items whose upstream rows exist that failed in this stage."""
        upstream_missing = self.failures_by_reason.get(MISSING_UPSTREAM, 0)
        own = self.total - upstream_missing
        return (self.failed - upstream_missing) / own if own else 0.0

    @property
    def over_budget(self) -> bool:
        return self.failure_rate > self.max_failure_rate


def upstream_fingerprint(ctx: AnnotationContext, backend: Backend) -> dict[str, list[str]]:
    """backend/version/params_hash of every upstream stage a backend reads; part of its own params_hash."""
    out = {}
    for name in backend.requires:
        if not ctx.has(name):
            raise StageError(f"{backend.annotator}/{backend.name} needs the {name!r} annotations: run `vtonpipe annotate {name}` first")
        out[name] = sorted({f"{p['backend']}/{p['version']}/{p['params_hash']}" for p in ctx.provenance(name)})
    return out


def item_ids(spec: AnnotatorSpec, ctx: AnnotationContext) -> list[str]:
    """The ids this stage covers: images of the spec's kinds, or pairs that have the roles it needs."""
    if spec.level == "image":
        return sorted(i for i, r in ctx.images.items() if r["kind"] in spec.kinds)
    return sorted(p["pair_id"] for p in ctx.pairs if spec.applies_to(p))


# -- worker side -------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(annotator: str, backend: str, params: Mapping[str, Any], device: str, build: str, dataset_root: str | None, threads: int) -> None:
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    ctx = AnnotationContext(build, dataset_root)
    b = get_backend(annotator, backend)(params, device=device)
    _WORKER.update(ctx=ctx, backend=b, spec=get_annotator(annotator))


def _make_item(spec: AnnotatorSpec, ctx: AnnotationContext, item_id: str) -> ImageItem | PairItem:
    if spec.level == "image":
        row = ctx.images[item_id]
        return ImageItem(item_id, row["sha256"], row["kind"], ctx.load_image(item_id), row.get("category"))
    p = ctx.pair(item_id)
    return PairItem(p["pair_id"], p["source_image_id"], p["target_image_id"], p["garment_image_id"], p["split"])


def _annotate_batch(item_ids_: Sequence[str]) -> list[tuple[str, dict[str, Any] | AnnotationFailure]]:
    """Run the worker's backend on ``item_ids_``; one (id, record-or-failure) per id, in order."""
    ctx: AnnotationContext = _WORKER["ctx"]
    b: Backend = _WORKER["backend"]
    spec: AnnotatorSpec = _WORKER["spec"]
    b.ensure_setup()
    out: list[tuple[str, Any]] = []
    items, ids = [], []
    for i in item_ids_:
        try:
            items.append(_make_item(spec, ctx, i))
            ids.append(i)
        except AnnotationFailure as f:
            out.append((i, f))
    if not items:
        return out
    try:
        results = b.annotate(items, ctx)
        if len(results) != len(items):
            raise RuntimeError(f"backend returned {len(results)} results for {len(items)} items")
    except Exception:  # isolate the item that breaks the batch
        results = []
        for item in items:
            try:
                results.extend(b.annotate([item], ctx))
            except AnnotationFailure as f:
                results.append(f)
            except Exception as e:  # noqa: BLE001 - recorded per item, never lost
                log.debug("item failed: %s", traceback.format_exc())
                results.append(AnnotationFailure(f"error:{type(e).__name__}", str(e)[:2000]))
    for i, r in zip(ids, results):
        if not isinstance(r, AnnotationFailure):
            try:
                spec.schema.validate({**_dummy_key(spec), **r})
            except SchemaError as e:
                r = AnnotationFailure("schema_error", str(e))
        out.append((i, r))
    return out


def _dummy_key(spec: AnnotatorSpec) -> dict[str, str]:
    return {k: "" for k in spec.schema.key}


# -- main side ---------------------------------------------------------------------------------
def _chunks(seq: Sequence[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(seq), n):
        yield list(seq[i : i + n])


def _existing_keys(directory: Path, id_col: str, shards: Iterable[Any]) -> Iterator[tuple[str, dict[str, Any], str, int]]:
    for s in shards:
        t = pq.read_table(directory / s.file, columns=[id_col, *KEY_COLUMNS])
        cols = {c: t.column(c).to_pylist() for c in t.column_names}
        for r in range(t.num_rows):
            yield cols[id_col][r], {k: cols[k][r] for k in KEY_COLUMNS}, s.file, r


def run_stage(
    build: str | Path,
    annotator: str,
    backend: str | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    batch_size: int = 8,
    workers: int = 1,
    rows_per_shard: int = 256,
    retry_failed: bool = False,
    recompute: bool = False,
    max_failure_rate: float = 1.0,
    device: str = "cpu",
    dataset_root: str | Path | None = None,
    show_progress: bool = True,
) -> StageResult:
    """Annotate every item of ``build`` with ``annotator`` and write ``annotations/<annotator>/``.

    Rows already there for the same inputs and configuration are kept (``recompute`` discards
    them: for a backend whose code changed without a version bump); failures are kept unless
    ``retry_failed``.
    """
    spec = get_annotator(annotator)
    cls = get_backend(annotator, backend)
    b = cls(params, device=device)
    b.check_available()
    layout = BuildLayout(build)
    ctx = AnnotationContext(build, dataset_root)
    upstream = upstream_fingerprint(ctx, b)
    phash = params_hash({"params": b.params, "upstream": upstream})
    config = {"annotator": spec.name, "backend": cls.name, "version": cls.version, "params_hash": phash}
    id_col = spec.schema.key[0]

    ids = item_ids(spec, ctx)
    inputs = {i: b.input_sha256(i, ctx) for i in ids}
    directory = layout.annotation(annotator)
    writer = ShardWriter(directory, spec.schema, name=annotator)

    # What is already there: rows of this configuration, by id and by input.
    done: set[tuple[str, str]] = set()  # (id, input) rows of this configuration
    stored_inputs: dict[str, tuple[str, int]] = {}
    stale_files: set[str] = set()  # shards of another configuration
    stale_rows: dict[str, list[int]] = defaultdict(list)  # rows whose id now has other inputs
    for item_id, key, file, r in _existing_keys(directory, id_col, writer.shards):
        if recompute or {k: key[k] for k in config} != config:
            stale_files.add(file)
            continue
        stored_inputs[key["input_sha256"]] = (file, r)
        if item_id in inputs and inputs[item_id] != key["input_sha256"]:
            stale_rows[file].append(r)
        else:
            done.add((item_id, key["input_sha256"]))

    failures = _load_failures(layout.failures(annotator), config)
    if retry_failed or recompute:
        failures = []
    known_failed = {(f["item_id"], f["input_sha256"]): f["error"] for f in failures}

    result = StageResult(spec.name, cls.name, directory, total=len(ids), max_failure_rate=max_failure_rate)
    todo_by_input: dict[str, list[str]] = defaultdict(list)
    reuse: list[str] = []
    for i in ids:
        if (i, inputs[i]) in done:
            result.skipped += 1
        elif (i, inputs[i]) in known_failed:
            result.skipped += 1
            result.failed_before += 1
            result.count_failure(known_failed[(i, inputs[i])])
        elif inputs[i] in stored_inputs:
            reuse.append(i)
        else:
            todo_by_input[inputs[i]].append(i)
    representatives = [group[0] for group in todo_by_input.values()]

    pending: list[dict[str, Any]] = []
    provenance_row = {**config, "params": canonical_json(b.params)}

    def flush(force: bool = False) -> None:
        while len(pending) >= rows_per_shard or (force and pending):
            chunk, pending[:] = pending[:rows_per_shard], pending[rows_per_shard:]
            writer.write_shard(chunk, validated=True)
        _write_failures(layout.failures(annotator), failures)

    def emit(item_id: str, record: Mapping[str, Any]) -> None:
        row = spec.schema.validate({**record, id_col: item_id, "input_sha256": inputs[item_id], **provenance_row})
        pending.append(row)
        flush()

    def fail(item_id: str, f: AnnotationFailure) -> None:
        failures.append({"item_id": item_id, "input_sha256": inputs[item_id], **config, "error": f.reason, "message": f.message})
        result.count_failure(f.reason)

    if reuse:
        reader = ShardReader(directory)
        shard_pos = {s.file: n for n, s in enumerate(reader.shards)}
        for i in reuse:
            file, r = stored_inputs[inputs[i]]
            row = reader._row(shard_pos[file], r)
            emit(i, {k: v for k, v in row.items() if k not in spec.schema.key})
            result.reused += 1
        reader.close()

    if representatives:
        init_args = (spec.name, cls.name, dict(b.params), device, str(build), str(dataset_root) if dataset_root else None)
        with progress_bar(f"{spec.name}/{cls.name}", total=len(representatives), enabled=show_progress) as advance:
            for batch_out in _run_batches(representatives, batch_size, workers, init_args):
                for rep, rec in batch_out:
                    for i in todo_by_input[inputs[rep]]:
                        if isinstance(rec, AnnotationFailure):
                            fail(i, rec)
                        else:
                            emit(i, rec)
                            if i == rep:
                                result.computed += 1
                            else:
                                result.reused += 1
                    advance(1)
    flush(force=True)
    if stale_files:
        writer.drop_shards(stale_files)
    for file, rows in stale_rows.items():
        writer.rewrite_shard(file, drop_rows=rows)
    weights = b.weights_sha256()
    writer.finish(
        provenance=[{**config, "params": b.params, "upstream": upstream, "weights_sha256": weights, "packages": b.packages()}],
        counts={"items": result.total, "failed": result.failed, "failures_by_reason": result.failures_by_reason},
        level=spec.level,
        kinds=list(spec.kinds),
    )
    return result


def _run_batches(ids: Sequence[str], batch_size: int, workers: int, init_args: tuple) -> Iterator[list[tuple[str, Any]]]:
    cpus = os.cpu_count() or 1
    if workers <= 1:
        _init_worker(*init_args, threads=cpus)
        try:
            for chunk in _chunks(ids, batch_size):
                yield _annotate_batch(chunk)
        finally:
            _WORKER.clear()
        return
    threads = max(1, cpus // workers)
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=(*init_args, threads)) as pool:
        chunks = iter(_chunks(ids, batch_size))
        running = set()
        for chunk in chunks:  # keep at most 2 batches per worker in flight
            running.add(pool.submit(_annotate_batch, chunk))
            if len(running) >= 2 * workers:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    yield fut.result()
        for fut in running:
            yield fut.result()


def _load_failures(directory: Path, config: Mapping[str, str]) -> list[dict[str, Any]]:
    if not (directory / "manifest.json").exists():
        return []
    rows = list(ShardReader(directory))
    return [r for r in rows if all(r[k] == v for k, v in config.items())]


def _write_failures(directory: Path, failures: list[dict[str, Any]]) -> None:
    write_table(directory, FAILURES, failures)
