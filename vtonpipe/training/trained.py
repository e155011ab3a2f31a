"""A trained model loaded back from a run's checkpoint, for inference, evaluation and as a frozen
part of another model (the try-on generators warp the garment with a trained warp model)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .checkpoint import FORMAT, LAST, CheckpointError
from .config import TrainConfig, resolve
from .task import Task, get_task


@dataclass
class TrainedModel:
    """A task with its modules in eval mode, on ``device``, gradients off; ``train`` holds the
    trainer settings it was trained with (its resolution, heatmap sizes)."""

    task: Task
    modules: dict[str, nn.Module]
    train: TrainConfig
    step: int
    path: Path

    @property
    def kind(self) -> str:
        return self.task.kind

    @property
    def model(self) -> str:
        return self.task.model


def checkpoint_path(path: str | os.PathLike) -> Path:
    """``path`` itself, or ``path/checkpoints/last.pt`` when ``path`` is a run directory."""
    path = Path(path)
    return path / "checkpoints" / LAST if path.is_dir() else path


def load_trained(path: str | os.PathLike, *, device: torch.device | str = "cpu", kind: str | None = None) -> TrainedModel:
    """The model saved in checkpoint (or run directory) ``path``, rebuilt with the settings it was
    trained with; ``kind`` checks what the checkpoint holds (e.g. ``"warp"``)."""
    file = checkpoint_path(path)
    if not file.exists():
        raise CheckpointError(f"no checkpoint at {file}: train one with `vtonpipe train {kind or '<kind>'} ...` (it writes <run dir>/checkpoints/last.pt)")
    state = torch.load(file, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{file} is not a vtonpipe training checkpoint")
    if kind is not None and state["kind"] != kind:
        raise CheckpointError(f"{file} holds a {state['kind']}/{state['model']} model, not a {kind} model")
    task_cls = get_task(state["kind"], state["model"])
    task = task_cls(resolve(task_cls.Config, state["config"]["model_config"]))
    modules = task.build()
    for name, module in modules.items():
        module.load_state_dict(state["modules"][name])
        module.to(device).eval().requires_grad_(False)
    return TrainedModel(task, modules, resolve(TrainConfig, state["config"]["train"]), int(state["step"]), file)
