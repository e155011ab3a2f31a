"""Annotator stages on a Dask cluster: ``vtonpipe annotate --scheduler processes|tcp://HOST:PORT``.

``processes`` starts a :class:`distributed.LocalCluster` of ``workers`` single-threaded worker
processes on loopback for the stage; an address joins a running cluster (``dask scheduler`` and
``dask worker`` processes, or dask-jobqueue on SLURM). Each worker process builds the stage's
context and backend once, on its first batch, and keeps it for the stage's later batches. Stages
whose device is CUDA ask for one unit of the worker resource ``GPU`` per batch (start GPU workers
with ``--resources GPU=1``). Batches go out a few per worker at a time and their results come
back to this process, which writes the shards as they complete (workers read the build's
images themselves: the build must be on a file system every worker sees): memory stays bounded by the
batches in flight, not by the dataset. A lost worker's batches are rerun elsewhere by Dask.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from ..core import canonical_json
from .runner import WorkerSpec, annotate_batch, worker_state

#: worker process -> the states it built, by WorkerSpec (a worker may serve several stages)
_STATES: dict[str, dict[str, Any]] = {}


def _annotate_on_worker(worker: WorkerSpec, ids: Sequence[str]) -> list[tuple[str, Any]]:
    """Run on a Dask worker: ``worker``'s backend (built on this worker's first batch) on ``ids``."""
    from distributed import get_worker

    key = canonical_json(dataclasses.asdict(worker))
    state = _STATES.get(key)
    if state is None:
        w = get_worker()
        threads = getattr(getattr(w, "state", w), "nthreads", 1)
        state = _STATES[key] = worker_state(worker, max(1, int(threads)))
    return annotate_batch(state, ids)


@contextlib.contextmanager
def dask_client(scheduler: str, workers: int, *, gpu: bool = False) -> Iterator[Any]:
    """A :class:`distributed.Client`: of a LocalCluster of ``workers`` processes (``processes``),
    or of the cluster at address ``scheduler``."""
    from distributed import Client, LocalCluster

    if scheduler == "processes":
        cluster = LocalCluster(
            n_workers=max(1, workers),
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            resources={"GPU": 1} if gpu else None,
        )
        with cluster, Client(cluster) as client:
            yield client
        return
    if "://" not in scheduler:
        raise ValueError(f"scheduler must be local, processes or a Dask address like tcp://host:8786, got {scheduler!r}")
    with Client(scheduler, timeout="30s") as client:
        yield client


def dask_batches(ids: Sequence[str], batch_size: int, worker: WorkerSpec, scheduler: str, workers: int) -> Iterator[list[tuple[str, Any]]]:
    """Results of ``ids`` in batches of ``batch_size`` from Dask workers, as they complete."""
    from distributed import as_completed

    gpu = worker.device.startswith("cuda")
    chunks = iter([list(ids[i : i + batch_size]) for i in range(0, len(ids), batch_size)])
    with dask_client(scheduler, workers, gpu=gpu) as client:
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        resources = {"GPU": 1} if gpu else None
        pending = as_completed()

        def submit() -> bool:
            chunk = next(chunks, None)
            if chunk is None:
                return False
            pending.add(client.submit(_annotate_on_worker, worker, chunk, pure=False, resources=resources))
            return True

        for _ in range(2 * n_workers):
            if not submit():
                break
        for future in pending:
            result = future.result()
            future.release()
            submit()
            yield result
