"""The stage runner: plans a stage (:mod:`vtonpipe.pipeline.plan`), runs its backend on batches
in one or several worker processes, and commits the rows as shards, atomically and resumably.

An interrupted run loses at most one unflushed shard; added images cost only their own work;
items with the same inputs (a duplicated image, two pairs of the same two people) are computed
once. Per-item failures are recorded in ``failures/`` and never stop the run. One run writes a
stage at a time (:mod:`vtonpipe.pipeline.lock`): a second refuses, naming the first.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from ..annotators import get_annotator
from ..core import (
    AnnotationFailure,
    AnnotatorSpec,
    Backend,
    ImageItem,
    PairItem,
    canonical_json,
    params_hash,
)
from ..progress import progress_bar
from ..schemas.tables import FAILURES
from .config import StageConfig
from .context import AnnotationContext
from .layout import BuildLayout
from .lock import directory_lock
from .plan import KEY_COLUMNS, StageKey, StagePlan, StoredRow, plan_stage
from .store import ShardReader, ShardWriter, write_table


class StageError(RuntimeError):
    """A stage that cannot run (an upstream stage it reads has not run) or could not finish (a
    worker process died)."""


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
            raise StageError(f"{backend.spec.name}/{backend.name} needs the {name!r} annotations: run `vtonpipe annotate {name}` first")
        out[name] = sorted({f"{p['backend']}/{p['version']}/{p['params_hash']}" for p in ctx.provenance(name)})
    return out


def item_ids(spec: AnnotatorSpec, ctx: AnnotationContext) -> list[str]:
    """The ids this stage covers: images of the spec's kinds, or pairs that have the roles it needs."""
    if spec.level == "image":
        return sorted(i for i, r in ctx.images.items() if r["kind"] in spec.kinds)
    return sorted(p["pair_id"] for p in ctx.pairs if spec.applies_to(p))


def run_stage(
    build: str | Path,
    config: StageConfig,
    *,
    retry_failed: bool = False,
    recompute: bool = False,
    dataset_root: str | Path | None = None,
    show_progress: bool = True,
    backend: Backend | None = None,
) -> StageResult:
    """Annotate every item of ``build`` as ``config`` says and write ``annotations/<annotator>/``.

    Rows already there for the same inputs and configuration are kept (``recompute`` discards
    them: for a backend whose code changed without a version bump); failures are kept unless
    ``retry_failed``. A stage whose failure rate exceeds ``config.max_failure_rate`` still writes
    every row it computed; the result says it is ``over_budget`` and the caller decides.
    ``backend``: the configured backend when the caller has built it already.
    """
    spec = get_annotator(config.annotator)
    b = backend or config.make_backend()
    b.check_available()
    layout = BuildLayout(build)
    ctx = AnnotationContext(build, dataset_root)
    upstream = upstream_fingerprint(ctx, b)
    key = StageKey(spec.name, b.name, b.version, params_hash({"params": b.params, "upstream": upstream}))
    inputs = {i: b.input_sha256(i, ctx) for i in item_ids(spec, ctx)}

    with directory_lock(layout.annotation(config.stage or spec.name)):
        return _run_locked(
            build,
            config,
            spec,
            b,
            layout,
            key,
            ctx,
            upstream,
            inputs,
            retry_failed=retry_failed,
            recompute=recompute,
            dataset_root=dataset_root,
            show_progress=show_progress,
        )


def _run_locked(
    build: str | Path,
    config: StageConfig,
    spec: AnnotatorSpec,
    b: Backend,
    layout: BuildLayout,
    key: StageKey,
    ctx: AnnotationContext,
    upstream: dict[str, list[str]],
    inputs: dict[str, str],
    *,
    retry_failed: bool,
    recompute: bool,
    dataset_root: str | Path | None,
    show_progress: bool,
) -> StageResult:
    commit = StageCommit(layout, spec, key, b.params, config.rows_per_shard, stage=config.stage)
    plan = plan_stage(inputs, commit.stored_rows(), commit.stored_failures(), key, recompute=recompute, retry_failed=retry_failed)
    result = StageResult(spec.name, b.name, commit.directory, total=len(inputs), max_failure_rate=config.max_failure_rate)
    result.skipped = len(plan.done) + len(plan.failed_before)
    result.failed_before = len(plan.failed_before)
    for reason in plan.failed_before.values():
        result.count_failure(reason)
    commit.start(plan, inputs)

    for item_id, place in plan.copy.items():
        commit.copy(item_id, place)
        result.reused += 1
    if plan.representatives:
        worker = WorkerSpec(spec.name, b.name, type(b).__module__, dict(b.params), config.device, str(build), str(dataset_root) if dataset_root else None)
        with progress_bar(f"{spec.name}/{b.name}", total=len(plan.representatives), enabled=show_progress) as advance:
            try:
                for batch in run_batches(plan.representatives, config.batch_size, config.workers, worker, config.scheduler):
                    for rep, outcome in batch:
                        for i in plan.compute[inputs[rep]]:
                            if isinstance(outcome, AnnotationFailure):
                                commit.fail(i, outcome)
                                result.count_failure(outcome.reason)
                            else:
                                commit.add(i, outcome)
                                if i == rep:
                                    result.computed += 1
                                else:
                                    result.reused += 1
                        advance(1)
            except BrokenProcessPool as e:
                commit.flush()  # keep what the live workers finished; the rerun does the rest
                raise StageError(f"{spec.name}: a worker process died ({e}); the {result.computed} rows computed are kept, rerun to resume") from None
    commit.finish(
        plan,
        provenance=[{**key.as_dict(), "params": b.params, "upstream": upstream, "weights_sha256": b.weights_sha256(), "packages": b.packages(), **b.provenance()}],
        result=result,
    )
    return result


class StageCommit:
    """The writing side of a stage run: reads what is stored, appends rows and failures in shards
    of ``rows_per_shard`` (each written atomically, the manifest last), drops what the plan says
    and marks the directory complete."""

    def __init__(self, layout: BuildLayout, spec: AnnotatorSpec, key: StageKey, params: Mapping[str, Any], rows_per_shard: int, *, stage: str | None = None):
        self.spec = spec
        self.key = key
        name = stage or spec.name
        self.directory = layout.annotation(name)
        self.failures_dir = layout.failures(name)
        self.rows_per_shard = rows_per_shard
        self.writer = ShardWriter(self.directory, spec.schema, name=name)
        self._provenance = {**key.as_dict(), "params": canonical_json(params)}
        self._pending: list[dict[str, Any]] = []
        self._failures: list[dict[str, Any]] = []
        self._inputs: Mapping[str, str] = {}

    def stored_rows(self) -> Iterator[StoredRow]:
        """Every row of the stage directory, by key (reads only the key columns)."""
        id_col = self.spec.id_column
        for s in self.writer.shards:
            t = pq.read_table(self.directory / s.file, columns=[id_col, *KEY_COLUMNS])
            cols = {c: t.column(c).to_pylist() for c in t.column_names}
            for r in range(t.num_rows):
                key = StageKey(cols["annotator"][r], cols["backend"][r], cols["version"][r], cols["params_hash"][r])
                yield StoredRow(cols[id_col][r], cols["input_sha256"][r], key, s.file, r)

    def stored_failures(self) -> list[dict[str, Any]]:
        """The recorded failures of this configuration."""
        if not (self.failures_dir / "manifest.json").exists():
            return []
        config = self.key.as_dict()
        return [f for f in ShardReader(self.failures_dir) if all(f[k] == v for k, v in config.items())]

    def start(self, plan: StagePlan, inputs: Mapping[str, str]) -> None:
        self._inputs = inputs
        self._failures = list(plan.failures)
        self._reader: ShardReader | None = ShardReader(self.directory) if plan.copy else None

    def add(self, item_id: str, record: Any) -> None:
        """Append the row of ``item_id`` (a record of the annotator's type, or a stored row's payload)."""
        payload = record if isinstance(record, dict) else self.spec.schema.payload_of(record)
        row = {**payload, self.spec.id_column: item_id, "input_sha256": self._inputs[item_id], **self._provenance}
        self._pending.append(self.spec.schema.validate(row))
        self._flush()

    def copy(self, item_id: str, place: tuple[str, int]) -> None:
        """Append a copy, under ``item_id``, of the stored row at ``place`` (same inputs)."""
        assert self._reader is not None
        file, row = place
        stored = self._reader.row_at(next(n for n, s in enumerate(self._reader.shards) if s.file == file), row)
        self.add(item_id, {k: stored[k] for k in self.spec.schema.payload})

    def fail(self, item_id: str, failure: AnnotationFailure) -> None:
        self._failures.append(
            {"item_id": item_id, "input_sha256": self._inputs[item_id], **self.key.as_dict(), "error": failure.reason, "message": failure.message}
        )

    def flush(self) -> None:
        """Write every pending row and failure now (the directory stays incomplete)."""
        self._flush(force=True)

    def _flush(self, force: bool = False) -> None:
        while len(self._pending) >= self.rows_per_shard or (force and self._pending):
            chunk, self._pending = self._pending[: self.rows_per_shard], self._pending[self.rows_per_shard :]
            self.writer.write_shard(chunk, validated=True)
            write_table(self.failures_dir, FAILURES, self._failures)

    def finish(self, plan: StagePlan, *, provenance: list[dict[str, Any]], result: StageResult) -> None:
        """Write what is pending, drop the plan's stale shards and rows, complete the manifest."""
        self._flush(force=True)
        write_table(self.failures_dir, FAILURES, self._failures)
        if self._reader is not None:
            self._reader.close()
        if plan.drop_files:
            self.writer.drop_shards(plan.drop_files)
        for file, rows in plan.drop_rows.items():
            self.writer.rewrite_shard(file, drop_rows=rows)
        self.writer.finish(
            provenance=provenance,
            counts={"items": result.total, "failed": result.failed, "failures_by_reason": result.failures_by_reason},
            level=self.spec.level,
            kinds=list(self.spec.kinds),
        )


# -- execution: batches in this process or in worker processes ---------------------------------
@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs to build its context and backend (once). ``module``: where the
    backend class is defined, imported first so that backends registered outside vtonpipe (a
    lab's own, a test's) exist in spawned workers too."""

    annotator: str
    backend: str
    module: str
    params: dict[str, Any]
    device: str
    build: str
    dataset_root: str | None


_WORKER: dict[str, Any] = {}


def worker_state(worker: WorkerSpec, threads: int) -> dict[str, Any]:
    """What a worker builds once: the context and the backend of ``worker``, with ``threads`` torch
    threads."""
    import torch

    torch.set_num_threads(threads)
    importlib.import_module(worker.module)
    return {
        "ctx": AnnotationContext(worker.build, worker.dataset_root),
        "backend": StageConfig(worker.annotator, worker.backend, worker.params, device=worker.device).make_backend(),
        "spec": get_annotator(worker.annotator),
    }


def _init_worker(worker: WorkerSpec, threads: int) -> None:
    _WORKER.update(worker_state(worker, threads))


def _item(spec: AnnotatorSpec, ctx: AnnotationContext, item_id: str) -> ImageItem | PairItem:
    if spec.level == "image":
        row = ctx.images[item_id]
        return ImageItem(item_id, row["sha256"], row["kind"], ctx.load_image(item_id), row.get("category"))
    p = ctx.pair(item_id)
    return PairItem(p["pair_id"], p["source_image_id"], p["target_image_id"], p["garment_image_id"], p["split"])


def _annotate_batch(ids: Sequence[str]) -> list[tuple[str, Any]]:
    return annotate_batch(_WORKER, ids)


def annotate_batch(state: Mapping[str, Any], ids: Sequence[str]) -> list[tuple[str, Any]]:
    """The backend of ``state`` (:func:`worker_state`) on ``ids``: one (id, record or
    AnnotationFailure) per id."""
    ctx: AnnotationContext = state["ctx"]
    backend: Backend = state["backend"]
    out: list[tuple[str, Any]] = []
    items: list[ImageItem | PairItem] = []
    for i in ids:
        try:
            items.append(_item(state["spec"], ctx, i))
        except AnnotationFailure as f:  # an image that cannot be decoded
            out.append((i, f))
    if items:
        out += list(zip([it.pair_id if isinstance(it, PairItem) else it.image_id for it in items], backend.run(items, ctx)))
    return out


def _chunks(seq: Sequence[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(seq), n):
        yield list(seq[i : i + n])


def run_batches(ids: Sequence[str], batch_size: int, workers: int, worker: WorkerSpec, scheduler: str = "local") -> Iterator[list[tuple[str, Any]]]:
    """Results of ``ids`` in batches of ``batch_size``, in completion order: with ``scheduler``
    ``local``, in this process (``workers <= 1``) or in ``workers`` spawned processes; otherwise on
    a Dask cluster (:mod:`vtonpipe.pipeline.cluster`). Every worker builds the backend once; at
    most two batches per worker are in flight (memory does not grow with the dataset)."""
    if scheduler != "local":
        from .cluster import dask_batches

        yield from dask_batches(ids, batch_size, worker, scheduler, workers)
        return
    cpus = os.cpu_count() or 1
    if workers <= 1:
        _init_worker(worker, cpus)
        try:
            for chunk in _chunks(ids, batch_size):
                yield _annotate_batch(chunk)
        finally:
            _WORKER.clear()
        return
    threads = max(1, cpus // workers)
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker, initargs=(worker, threads)) as pool:
        running = set()
        for chunk in _chunks(ids, batch_size):
            running.add(pool.submit(_annotate_batch, chunk))
            if len(running) >= 2 * workers:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    yield fut.result()
        for fut in running:
            yield fut.result()
