"""Helpers of the training tests: short runs in this process, CLI runs in child processes, and
comparisons of their results.

Children are forked from a multiprocessing fork server that has imported torch, its compiler
stack and the test-only tasks once: each child starts in milliseconds (a fresh interpreter spends
seconds importing torch), and it inherits none of the threads other tests leave in the pytest
process (forking a multi-threaded process can deadlock the child)."""

from __future__ import annotations

import csv
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Sequence

import pytest
import torch
import training_tasks  # noqa: F401  (registers tryon/tiny)

from vtonpipe.training.checkpoint import load_checkpoint
from vtonpipe.training.task import get_task
from vtonpipe.training.trainer import Trainer

FAST = dict(batch_size=2, workers=0, height=16, width=12, log_every=1, grid_every=0, checkpoint_every=100)


def read_log(run_dir: Path, columns=("l1", "g_loss", "d_loss", "epoch")) -> list[dict]:
    with (run_dir / "log.csv").open() as f:
        return [{"step": int(r["step"]), **{c: float(r[c]) for c in columns if r.get(c)}} for r in csv.DictReader(f)]


def final_params(run_dir: Path, kind: str = "tryon", model: str = "tiny") -> dict[str, torch.Tensor]:
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt", kind=kind, model=model)
    return {f"{m}.{k}": v for m, sd in state["modules"].items() for k, v in sd.items()}


def assert_same_curve(a: list[dict], b: list[dict], tol: float = 1e-6) -> None:
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b):
        for k in ra:
            assert ra[k] == pytest.approx(rb[k], abs=tol), (ra["step"], k)


def assert_same_params(a: dict, b: dict, tol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=tol), k


def fit(build, out, *, resume=False, **settings):
    return Trainer(get_task("tryon", "tiny"), build, settings={**FAST, **settings}, run_dir=out, resume=resume).fit()


_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["torch", "torch._dynamo", "torch.utils.tensorboard", "vtonpipe.cli", "vtonpipe.training.trainer", "training_tasks"])


def _cli(argv: Sequence[str], env: dict[str, str], log: str) -> None:
    import faulthandler

    from vtonpipe.cli import main

    with open(log, "w") as out:  # the fork server's stdout is not the current test's
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
    faulthandler.dump_traceback_later(90)  # a child still running then shows where it is stuck
    torch.set_num_threads(1)
    os.environ.update(env)
    code = 0
    try:
        main(list(argv), prog_name="vtonpipe")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def launch(args: Sequence[str], workdir: Path, env: dict[str, str] | None = None, *, task: tuple[str, str] = ("tryon", "tiny")) -> multiprocessing.Process:
    """``vtonpipe train KIND --model MODEL ARGS`` (``task``, default the test-only tryon/tiny) in a
    child process with ``env`` set (e.g. the RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT torchrun
    exports); no params.yaml. Its output goes to ``workdir/child-<n>.log`` (:func:`child_logs`)."""
    argv = ["--params", str(workdir / "no-params.yaml"), "train", task[0], "--model", task[1], *args]
    log = workdir / f"child-{len(list(workdir.glob('child-*.log')))}.log"
    log.touch()
    proc = _CONTEXT.Process(target=_cli, args=(argv, {"OMP_NUM_THREADS": "1", **(env or {})}, str(log)))
    proc.start()
    return proc


def child_logs(workdir: Path) -> str:
    """Everything the children launched in ``workdir`` printed (for assertion messages)."""
    return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(workdir.glob("child-*.log")))


def settings_args(**settings) -> list[str]:
    return [a for k, v in {**FAST, **settings}.items() for a in ("--set", f"{k}={list(v) if isinstance(v, tuple) else v}")]


def wait_for(predicate, procs: Sequence[multiprocessing.Process], timeout: float = 120.0) -> None:
    t0 = time.time()
    while not predicate():
        for p in procs:
            if not p.is_alive():
                raise AssertionError(f"process ended early with code {p.exitcode}")
        if time.time() - t0 > timeout:
            raise AssertionError("timed out")
        time.sleep(0.02)


def finish(procs: Sequence[multiprocessing.Process], timeout: float = 120.0) -> list[int | None]:
    """Exit codes once every process ended (those still running after ``timeout`` are killed: None)."""
    for p in procs:
        p.join(timeout)
    codes = [p.exitcode for p in procs]
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    return codes
