"""Helpers of the training tests: short runs in this process, CLI runs in forked processes (the
test-only tasks registered, torch already imported: a child starts in milliseconds, where a fresh
interpreter spends seconds importing torch and its compiler stack), comparisons of their results."""

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


def final_params(run_dir: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt", kind="tryon", model="tiny")
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


def _cli(argv: Sequence[str], env: dict[str, str]) -> None:
    from vtonpipe.cli import main

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


def launch(args: Sequence[str], workdir: Path, env: dict[str, str] | None = None) -> multiprocessing.Process:
    """``vtonpipe train tryon --model tiny ARGS`` in a forked process with ``env`` set (e.g. the
    RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT torchrun exports); no params.yaml."""
    import torch._dynamo  # noqa: F401  (what every torch optimiser imports: once here, not per child)
    import torch.utils.tensorboard  # noqa: F401

    argv = ["--params", str(workdir / "no-params.yaml"), "train", "tryon", "--model", "tiny", *args]
    proc = multiprocessing.get_context("fork").Process(target=_cli, args=(argv, {"OMP_NUM_THREADS": "1", **(env or {})}))
    proc.start()
    return proc


def settings_args(**settings) -> list[str]:
    return [a for k, v in {**FAST, **settings}.items() for a in ("--set", f"{k}={v}")]


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
