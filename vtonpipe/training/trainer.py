"""The training loop every model shares: ``vtonpipe train <kind> --model <model>``.

A :class:`Trainer` runs one registered :class:`~vtonpipe.training.task.Task` on a build's packed
shards, on the CPU or CUDA (mixed precision with a GradScaler), in one process or under
``torchrun`` (DDP, :mod:`vtonpipe.training.distributed`). The run directory (default
``<build>/runs/<kind>/<model>/``) receives ``config.json``, ``checkpoints/step-XXXXXXX.pt`` and
``last.pt``, ``log.csv``, ``tb/``, ``grids/step-XXXXXXX.png`` and, after the last step, the
test-split evaluation ``metrics.json``; rank 0 alone writes them.

A run is resumable exactly: a checkpoint holds the modules, optimisers, schedulers, scaler, step,
every rank's random state and the training stream's position, so a run stopped (SIGINT/SIGTERM on
any rank: every rank stops at the same step and rank 0 checkpoints) or killed and then resumed
from ``last.pt`` continues the same loss curve.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .. import __version__
from ..io import write_json_atomic
from .checkpoint import (
    CheckpointDir,
    load_checkpoint,
    rng_state,
    seed_everything,
    set_rng_state,
)
from .config import split_settings
from .data import PackedPairs, first_samples
from .distributed import (
    Distributed,
    data_parallel,
    init_distributed,
    rank_seed,
    shutdown,
    sync_batchnorm,
)
from .logging import RunLog
from .stream import PackedPairStream, make_loader
from .task import StepControl, Task

log = logging.getLogger(__name__)


class RunDirError(RuntimeError):
    """A run directory that already holds a run and was not asked to resume."""


@dataclass
class FitResult:
    """How a run ended: the last step, the stopping signal (None when it ran to the end), metrics."""

    step: int
    run_dir: Path
    interrupted: int | None = None
    metrics: dict[str, float] | None = None
    rank: int = 0


def default_run_dir(build: str | Path, kind: str, model: str) -> Path:
    return Path(build) / "runs" / kind / model


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class Trainer:
    """Train ``task_cls`` on ``build``'s packed shards with ``settings`` (the flat
    ``train.<kind>.<model>`` section with its ``--set`` overrides applied)."""

    def __init__(
        self,
        task_cls: type[Task],
        build: str | Path,
        *,
        settings: Mapping[str, Any] | None = None,
        run_dir: str | Path | None = None,
        device: str | None = None,
        resume: bool = False,
        steps: int | None = None,
    ):
        values = dict(settings or {})
        if steps is not None:
            values["steps"] = steps
        self.config, self.task_config = split_settings(values, task_cls.Config)
        self.task_cls = task_cls
        self.build = Path(build)
        self.run_dir = Path(run_dir) if run_dir else default_run_dir(build, task_cls.kind, task_cls.model)
        self.device_name = device
        self.resume = resume
        self.checkpoints = CheckpointDir(self.run_dir / "checkpoints", keep=self.config.keep_checkpoints)
        self._signal: int | None = None

    # -- entry point -------------------------------------------------------------------------
    def fit(self) -> FitResult:
        """Train to ``steps`` (or until SIGINT/SIGTERM), then evaluate on the test split."""
        if not self.resume and self.checkpoints.steps():
            raise RunDirError(f"{self.run_dir} already holds a run's checkpoints: pass --resume to continue it, or another --out")
        d = init_distributed(self.device_name)
        try:
            return self._fit(d)
        finally:
            self.train_modules, self.ddp_modules = {}, []  # DDP reducers go before their process group
            shutdown(d)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without the checkpoint
        log.warning("signal %d: stopping after this step with a checkpoint (Ctrl-C again to abort)", signum)
        self._signal = signum

    @contextlib.contextmanager
    def _stop_on_signals(self):
        """SIGINT / SIGTERM set a flag the loop checks after each step (installed before the
        DataLoader forks its workers, which inherit the handler and so ignore the signal)."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    # -- setup -------------------------------------------------------------------------------
    def _fit(self, d: Distributed) -> FitResult:
        cfg = self.config
        self.dist = d
        self.amp = cfg.amp and d.device.type == "cuda"
        self.amp_dtype = getattr(torch, cfg.amp_dtype)
        task = self.task_cls(self.task_config)
        self.task = task
        needs, backends = set(task.needs()), task.prior_backends()

        seed_everything(cfg.seed)  # identical initial weights on every rank
        modules = {name: sync_batchnorm(m.to(d.device), d) for name, m in task.build().items()}
        optimizers = task.optimizers(modules)
        schedulers = task.schedulers(optimizers)
        scaler = torch.amp.GradScaler(d.device.type, enabled=self.amp and self.amp_dtype == torch.float16)

        last = self.checkpoints.last if self.resume else None
        if last is not None:
            step, position = self._restore(last, modules, optimizers, schedulers, scaler)
        else:
            if self.resume:
                log.info("no checkpoint in %s: starting at step 0", self.checkpoints.directory)
            step, position = 0, 0
            seed_everything(rank_seed(cfg.seed, d.rank))

        self.modules = modules
        self.train_modules: dict[str, nn.Module] = {}
        self.ddp_modules = []
        for name, m in modules.items():
            wrapped = data_parallel(m, d, find_unused_parameters=cfg.find_unused_parameters)
            if wrapped is not m:
                self.ddp_modules.append(wrapped)
            self.train_modules[name] = torch.compile(wrapped) if cfg.compile else wrapped

        data_cfg = cfg.data()
        train_pairs = PackedPairs(self.build, "train", needs, data_cfg, backends)
        test_dir = self.build / "packed" / "test"
        self.test_pairs = PackedPairs(self.build, "test", needs, data_cfg, backends) if test_dir.is_dir() else None
        self.grid_pairs = self.test_pairs if self.test_pairs is not None and len(self.test_pairs) else train_pairs
        self.grid_batch: dict[str, Any] | None = None
        stream = PackedPairStream(train_pairs, cfg.batch_size, seed=cfg.seed, rank=d.rank, world_size=d.world_size, start=position)
        self.train_size = len(train_pairs)

        if d.is_main and last is None:  # a fresh run: no events or grids of an earlier attempt
            for sub in ("tb", "grids"):
                shutil.rmtree(self.run_dir / sub, ignore_errors=True)
        self.runlog = RunLog(self.run_dir, enabled=d.is_main, resume_step=step if last is not None else None)
        if d.is_main:
            self._write_config(needs, len(train_pairs))
            for note in task.notes():
                log.warning("%s/%s: %s", task.kind, task.model, note)
        try:
            with self._stop_on_signals():
                return self._loop(step, stream, optimizers, schedulers, scaler)
        finally:
            self.runlog.close()

    def _restore(self, path: Path, modules: dict, optimizers: dict, schedulers: dict, scaler: torch.amp.GradScaler) -> tuple[int, int]:
        """Load checkpoint ``path`` into the run's objects and this rank's random state; returns
        (step, training stream position)."""
        d = self.dist
        state = load_checkpoint(path, kind=self.task.kind, model=self.task.model, map_location=d.device)
        for name, m in modules.items():
            m.load_state_dict(state["modules"][name])
        for group, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][group])
        for group, sched in schedulers.items():
            sched.load_state_dict(state["schedulers"][group])
        scaler.load_state_dict(state["scaler"])
        step = int(state["step"])
        if len(state["rng"]) == d.world_size:
            set_rng_state(state["rng"][d.rank])
        else:
            log.warning("checkpoint of %d ranks resumed on %d: random states re-seeded", len(state["rng"]), d.world_size)
            seed_everything(rank_seed(self.config.seed + step, d.rank))
        log.info("resumed %s at step %d", path, step)
        return step, int(state["data"]["position"])

    def _write_config(self, needs: set[str], train_pairs: int) -> None:
        write_json_atomic(
            self.run_dir / "config.json",
            {
                "kind": self.task.kind,
                "model": self.task.model,
                "build": str(self.build),
                "train": dataclasses.asdict(self.config),
                "model_config": dataclasses.asdict(self.task.config),
                "needs": sorted(needs),
                "notes": self.task.notes(),
                "world_size": self.dist.world_size,
                "device": str(self.dist.device),
                "amp": self.amp,
                "pairs": {"train": train_pairs, "test": len(self.test_pairs) if self.test_pairs is not None else 0},
                "vtonpipe_version": __version__,
                "torch_version": torch.__version__,
            },
        )

    # -- the loop ----------------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.dist.device.type, dtype=self.amp_dtype, enabled=self.amp)

    def _loop(self, step: int, stream: PackedPairStream, optimizers: dict, schedulers: dict, scaler: torch.amp.GradScaler) -> FitResult:
        cfg, d = self.config, self.dist
        control = StepControl(optimizers, scaler, cfg.accumulate)
        start_step = step
        batches = iter(make_loader(stream, workers=cfg.workers, pin_memory=d.device.type == "cuda"))
        for m in self.modules.values():
            m.train()
        sums: dict[str, torch.Tensor] = {}
        since_log, t_log = 0, time.perf_counter()
        saved_at = step if step else None
        stopped = False
        while step < cfg.steps:
            control.stepped.clear()
            control.global_step = step
            for micro in range(cfg.accumulate):
                control.micro_step = micro
                batch = _to_device(next(batches), d.device)
                with contextlib.ExitStack() as stack:
                    if micro < cfg.accumulate - 1:
                        for m in self.ddp_modules:
                            stack.enter_context(m.no_sync())
                    stack.enter_context(self._autocast())
                    values = self.task.training_step(self.train_modules, batch, control)
                for k, v in values.items():
                    v = torch.as_tensor(v, device=d.device).detach().float() / cfg.accumulate
                    sums[k] = sums.get(k, 0) + v
            if control.stepped:
                scaler.update()
            for sched in schedulers.values():
                sched.step()
            step += 1
            since_log += 1
            stopped = d.any(self._signal is not None)
            if step % cfg.log_every == 0 or step == cfg.steps or stopped:
                now = time.perf_counter()
                self._log_step(step, sums, since_log, now - t_log, stream, start_step, optimizers)
                sums, since_log, t_log = {}, 0, now
            if step % cfg.checkpoint_every == 0 or step == cfg.steps or stopped:
                self._save(step, stream, start_step, optimizers, schedulers, scaler)
                saved_at = step
            if cfg.grid_every and step % cfg.grid_every == 0:
                self._grid(step)
            if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
                self._evaluate(step, max_batches=cfg.eval_batches)
            if stopped:
                break
        if stopped:
            signum = self._signal if self._signal is not None else signal.SIGTERM  # another rank's signal
            log.warning("stopped at step %d (checkpoint %s)", step, self.checkpoints.path(step))
            d.barrier()
            return FitResult(step, self.run_dir, interrupted=int(signum), rank=d.rank)
        if saved_at != step and step > start_step:
            self._save(step, stream, start_step, optimizers, schedulers, scaler)
        if not (cfg.grid_every and step % cfg.grid_every == 0 and step > start_step):
            self._grid(step)
        metrics = self._evaluate(step, final=True) if self.test_pairs is not None and len(self.test_pairs) else None
        d.barrier()
        return FitResult(step, self.run_dir, metrics=metrics, rank=d.rank)

    def _position(self, stream: PackedPairStream, start_step: int, step: int) -> int:
        return stream.position_after((step - start_step) * self.config.accumulate)

    def _log_step(self, step: int, sums: dict[str, torch.Tensor], steps: int, seconds: float, stream: PackedPairStream, start_step: int, optimizers: dict) -> None:
        d, cfg = self.dist, self.config
        names = sorted(sums)
        values: dict[str, float] = {}
        if names:
            mean = d.all_reduce_mean(torch.stack([sums[k] for k in names]) / max(steps, 1))
            values.update(zip(names, mean.tolist()))
        values["epoch"] = self._position(stream, start_step, step) / self.train_size
        values["samples_per_s"] = steps * cfg.accumulate * cfg.batch_size * d.world_size / max(seconds, 1e-9)
        for group, opt in optimizers.items():
            values[f"lr/{group}"] = opt.param_groups[0]["lr"]
        self.runlog.scalars(step, values)
        if d.is_main:
            log.info("step %d %s", step, " ".join(f"{k}={v:.4g}" for k, v in values.items()))

    def _save(self, step: int, stream: PackedPairStream, start_step: int, optimizers: dict, schedulers: dict, scaler: torch.amp.GradScaler) -> None:
        rng = self.dist.gather(rng_state())  # every rank takes part; rank 0 writes
        if not self.dist.is_main:
            return
        self.checkpoints.save(
            {
                "kind": self.task.kind,
                "model": self.task.model,
                "step": step,
                "modules": {name: m.state_dict() for name, m in self.modules.items()},
                "optimizers": {g: o.state_dict() for g, o in optimizers.items()},
                "schedulers": {g: s.state_dict() for g, s in schedulers.items()},
                "scaler": scaler.state_dict(),
                "rng": rng,
                "data": {"position": self._position(stream, start_step, step), "seed": self.config.seed, "shuffle_window": self.config.shuffle_window},
                "config": {"train": dataclasses.asdict(self.config), "model_config": dataclasses.asdict(self.task_config)},
            }
        )
        self.runlog.flush()

    @contextlib.contextmanager
    def _eval_mode(self):
        for m in self.modules.values():
            m.eval()
        try:
            with torch.no_grad(), self._autocast():
                yield
        finally:
            for m in self.modules.values():
                m.train()

    def _grid(self, step: int) -> None:
        if not self.dist.is_main:
            return
        if self.grid_batch is None:
            self.grid_batch = _to_device(first_samples(self.grid_pairs, self.config.grid_samples), self.dist.device)
        with self._eval_mode():
            columns = self.task.visuals(self.modules, self.grid_batch)
        self.runlog.grid(step, columns)

    def _evaluate(self, step: int, *, final: bool = False, max_batches: int = 0) -> dict[str, float] | None:
        """Mean of the task's per-sample metrics over the test split (split between ranks);
        ``final`` writes metrics.json, otherwise the means are logged as ``test/<name>``."""
        if self.test_pairs is None or not len(self.test_pairs):
            return None
        d, cfg = self.dist, self.config
        stream = PackedPairStream(self.test_pairs, cfg.batch_size, rank=d.rank, world_size=d.world_size, shuffle=False, epochs=1)
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, torch.Tensor] = {}
        evaluated = 0
        with self._eval_mode():
            for i, batch in enumerate(make_loader(stream, workers=cfg.workers)):
                if max_batches and i >= max_batches:
                    break
                evaluated += len(batch["pair_id"])
                for k, v in self.task.evaluate(self.modules, _to_device(batch, d.device)).items():
                    v = v.detach().float().flatten()
                    sums[k] = sums.get(k, 0) + torch.nan_to_num(v, nan=0.0).sum()
                    counts[k] = counts.get(k, 0) + (~torch.isnan(v)).sum()
        names = sorted(set().union(*d.gather(sorted(sums))))  # a rank with no test batch has no names
        zero = torch.zeros((), device=d.device)
        parts = [sums.get(k, zero) for k in names] + [counts.get(k, zero) for k in names] + [torch.tensor(evaluated)]
        totals = d.all_reduce_sum(torch.stack([torch.as_tensor(t, device=d.device).float() for t in parts]))
        n = len(names)
        means = {k: float(totals[i] / totals[n + i]) if totals[n + i] > 0 else float("nan") for i, k in enumerate(names)}
        pairs = int(totals[-1])
        if final:
            self.runlog.metrics({"step": step, "split": "test", "pairs": pairs, **means})
        else:
            self.runlog.scalars(step, {f"test/{k}": v for k, v in means.items()})
        return means
