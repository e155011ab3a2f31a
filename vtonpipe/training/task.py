"""The Task protocol every trainable model implements, the step control it trains through, and the
registry of tasks by ``(kind, model)``.

A task is the thin layer between the data layer's batch dict and a model's networks and losses.
A model helper writes one subclass of :class:`Task` in ``vtonpipe/training/tasks/<kind>_<model>.py``
and decorates it with :func:`register_task`; every module of that package is imported on the
first registry lookup, so ``vtonpipe train <kind> --model <model>`` finds it with no other edit::

    @register_task
    class GCLWarp(Task):
        kind, model = "warp", "gcl"

        @dataclass(frozen=True)
        class Config:
            lr: float = 1e-4
            temperature: float = 0.01

        def needs(self):  # batch keys (vtonpipe.training.data.BATCH_KEYS)
            return {"source_iuv_i", "source_iuv_uv", "target_iuv_i", "target_iuv_uv", "smpl_flow", ...}

        def build(self):
            return {"net": GCLWarpNet(...)}

        def optimizers(self, modules):
            return {"net": torch.optim.Adam(modules["net"].parameters(), lr=self.config.lr)}

        def training_step(self, modules, batch, control):
            out = modules["net"](batch["source_iuv_uv"], ...)
            loss = ...
            control.backward(loss, "net")
            control.step("net")
            return {"loss": loss.detach()}

        def evaluate(self, modules, batch):  # per-sample (B,) metrics
            ...

        def visuals(self, modules, batch):  # name -> (B, 1 or 3, H, W) in [0, 1]
            ...

GAN tasks return several optimiser groups and call ``control.backward(loss, group)`` /
``control.step(group)`` for each in turn: a group's backward accumulates gradients into that
group's parameters only, so a generator loss never leaves gradients on the discriminator.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import torch
from torch import nn

from ..core.registry import Registry


@dataclass(frozen=True)
class NoConfig:
    """The settings of a task that has none of its own."""


class Task:
    """One trainable model: its networks, optimisers, one training step, evaluation and visuals.

    The trainer instantiates the task with its resolved ``Config`` and calls, in this order:
    :meth:`needs` (the batch keys to decode), :meth:`prior_backends` (the backends they must come from),
    :meth:`build` (modules, on the CPU: the trainer
    moves and wraps them), :meth:`optimizers`, :meth:`schedulers`, then per step
    :meth:`training_step`, and :meth:`evaluate` / :meth:`visuals` in eval mode without gradients (``vtonpipe infer`` calls
    :meth:`infer` the same way).
    ``modules`` passed to :meth:`training_step` may be DDP- or torch.compile-wrapped (call them,
    do not reach into their attributes); :meth:`evaluate` and :meth:`visuals` get the plain ones.
    Batches arrive on the training device, as the data layer describes them.
    """

    kind: ClassVar[str]
    model: ClassVar[str]
    Config: ClassVar[type] = NoConfig

    def __init__(self, config: Any = None):
        self.config = self.Config() if config is None else config

    def needs(self) -> set[str]:
        """Batch keys this task reads (they decide which priors the data layer decodes)."""
        raise NotImplementedError

    def prior_backends(self) -> dict[str, str]:
        """Packed component -> the backend whose rows it must hold (``{"landmarks": "groundtruth"}``:
        train on exact labels only); the data layer refuses other rows. None required by default."""
        return {}

    def build(self) -> dict[str, nn.Module]:
        """The task's modules by name (checkpointed under these names)."""
        raise NotImplementedError

    def optimizers(self, modules: Mapping[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        """One optimiser per group name; each parameter belongs to one group at most."""
        raise NotImplementedError

    def schedulers(self, optimizers: Mapping[str, torch.optim.Optimizer]) -> dict[str, Any]:
        """Learning-rate schedulers by group, stepped once per optimiser step (none by default)."""
        return {}

    def training_step(self, modules: Mapping[str, nn.Module], batch: dict[str, Any], control: "StepControl") -> dict[str, torch.Tensor]:
        """Forward, losses, ``control.backward`` and ``control.step``; returns scalar tensors to log."""
        raise NotImplementedError

    def evaluate(self, modules: Mapping[str, nn.Module], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Per-sample metrics: name -> float ``(B,)`` (averaged over the test split by the trainer)."""
        raise NotImplementedError

    def visuals(self, modules: Mapping[str, nn.Module], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Images for the sample grid, by column title: ``(B, 1 or 3, H, W)`` in [0, 1]."""
        raise NotImplementedError

    def infer(self, modules: Mapping[str, nn.Module], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The model's outputs that ``vtonpipe infer`` writes, by name: images ``(B, 3, H, W)`` in
        [0, 1], masks ``(B, 1, H, W)`` in [0, 1], flows ``(B, 2, H, W)`` in pixels of the
        training resolution (on the target grid, pointing to the pixels of the image the model
        warps: the in-shop garment, or the source person for 3D-GCL)."""
        raise NotImplementedError

    def notes(self) -> list[str]:
        """Facts to record in the run's config.json and log (e.g. which loss stands in for a
        perceptual loss whose weights were not supplied)."""
        return []


class StepControl:
    """What a training step calls to back-propagate and step its optimiser groups.

    With ``accumulate = K`` the trainer calls :meth:`Task.training_step` on K micro-batches per
    optimiser step: :meth:`backward` divides each loss by K and adds its gradients, and
    :meth:`step` steps only on the last micro-batch (under DDP, gradients are all-reduced only on
    that one too). On CUDA with AMP, losses are scaled by the run's GradScaler.
    ``global_step`` is the number of optimiser steps taken before the current one (0 on the first;
    a resumed run continues the count), for tasks whose schedule has phases.
    """

    def __init__(self, optimizers: Mapping[str, torch.optim.Optimizer], scaler: torch.amp.GradScaler, accumulate: int):
        self.optimizers = dict(optimizers)
        self.scaler = scaler
        self.accumulate = accumulate
        self.micro_step = 0
        self.global_step = 0
        self.stepped: set[str] = set()
        self._params = {g: [p for pg in opt.param_groups for p in pg["params"] if p.requires_grad] for g, opt in self.optimizers.items()}

    @property
    def last_micro_step(self) -> bool:
        return self.micro_step == self.accumulate - 1

    def _group(self, group: str) -> torch.optim.Optimizer:
        if group not in self.optimizers:
            raise KeyError(f"no optimiser group {group!r}; the task's groups: {sorted(self.optimizers)}")
        return self.optimizers[group]

    def backward(self, loss: torch.Tensor, group: str) -> None:
        """Add the gradients of ``loss / accumulate`` (scaled for AMP) to group ``group``'s parameters only."""
        self._group(group)
        torch.autograd.backward(self.scaler.scale(loss / self.accumulate), inputs=self._params[group])

    def step(self, group: str, *, max_norm: float | None = None) -> bool:
        """Step group ``group``'s optimiser (after clipping its gradient norm to ``max_norm``) and
        clear its gradients; a no-op on micro-batches before the last. True if it stepped."""
        opt = self._group(group)
        if not self.last_micro_step:
            return False
        if max_norm is not None:
            self.scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(self._params[group], max_norm)
        self.scaler.step(opt)
        opt.zero_grad(set_to_none=True)
        self.stepped.add(group)
        return True


#: (kind, model) -> task class; the modules of vtonpipe.training.tasks register theirs on import
TASKS: Registry[tuple[str, str], type[Task]] = Registry("trainable model", builtins="vtonpipe.training.tasks")


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make ``cls`` the task of ``(cls.kind, cls.model)``."""
    from .config import KINDS, TrainConfig

    if cls.kind not in KINDS:
        raise ValueError(f"{cls.__name__}.kind {cls.kind!r} is not one of {list(KINDS)}")
    if not dataclasses.is_dataclass(cls.Config):
        raise TypeError(f"{cls.__name__}.Config must be a dataclass")
    clash = {f.name for f in dataclasses.fields(cls.Config)} & {f.name for f in dataclasses.fields(TrainConfig)}
    if clash:
        raise ValueError(f"{cls.__name__}.Config fields {sorted(clash)} clash with trainer settings of the same name")
    return TASKS.add((cls.kind, cls.model), cls)


def registered_tasks() -> dict[tuple[str, str], type[Task]]:
    """Every task by ``(kind, model)`` (the modules of ``vtonpipe.training.tasks`` imported first)."""
    return dict(TASKS.items())


def get_task(kind: str, model: str | None = None) -> type[Task]:
    """The task of ``kind``/``model``; ``model`` may be omitted when ``kind`` has only one."""
    tasks = registered_tasks()
    models = sorted(m for k, m in tasks if k == kind)
    if model is None:
        if len(models) != 1:
            raise KeyError(f"pick a --model for {kind}: registered models {models}")
        model = models[0]
    if (kind, model) not in tasks:
        raise KeyError(f"no {kind} model {model!r}; registered {kind} models: {models}")
    return tasks[(kind, model)]
