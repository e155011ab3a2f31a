"""Training checkpoints: ``checkpoints/step-XXXXXXX.pt`` and ``last.pt`` in a run directory.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so it loads with
``torch.load(..., weights_only=True)``:

``format``, ``version``, ``kind``, ``model``, ``step``; ``modules`` (name -> state dict),
``optimizers``, ``schedulers`` (group -> state dict), ``scaler`` (GradScaler state), ``rng``
(one :func:`rng_state` per rank, rank order), ``data`` (the training stream's position, seed and
batch), ``config`` (the resolved settings).
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import atomic_path

FORMAT = "vtonpipe-train-checkpoint"
VERSION = 1
LAST = "last.pt"
_STEP_RE = re.compile(r"^step-(\d+)\.pt$")


class CheckpointError(IOError):
    """A checkpoint that is missing, not a vtonpipe checkpoint, or of another model."""


def rng_state() -> dict[str, Any]:
    """This process's random states: Python's, NumPy's global one, torch's CPU and CUDA generators."""
    np_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)), "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]), "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937", "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]}, "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class CheckpointDir:
    """The ``checkpoints/`` folder of a run: numbered checkpoints, ``last.pt``, pruning."""

    def __init__(self, directory: str | os.PathLike, keep: int = 3):
        self.directory = Path(directory)
        self.keep = keep

    def path(self, step: int) -> Path:
        return self.directory / f"step-{step:07d}.pt"

    def steps(self) -> list[int]:
        if not self.directory.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.directory.iterdir() if (m := _STEP_RE.match(p.name)))

    @property
    def last(self) -> Path | None:
        p = self.directory / LAST
        return p if p.exists() else None

    def save(self, state: dict[str, Any]) -> Path:
        """Write ``state`` as ``step-<state['step']>.pt`` (atomically), point ``last.pt`` at it, and
        keep only the newest ``keep`` numbered checkpoints (0 keeps all)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(int(state["step"]))
        with atomic_path(path) as tmp:
            torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
        with atomic_path(self.directory / LAST) as tmp:
            tmp.unlink()  # the placeholder atomic_path made
            try:
                os.link(path, tmp)
            except OSError:  # file systems without hard links
                shutil.copyfile(path, tmp)
        if self.keep:
            for step in self.steps()[: -self.keep]:
                self.path(step).unlink()
        return path


def load_checkpoint(path: str | os.PathLike, *, kind: str, model: str, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """A checkpoint written by :class:`CheckpointDir`, checked to belong to ``kind``/``model``."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a vtonpipe training checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {state.get('version')} is not known (expected {VERSION})")
    if (state.get("kind"), state.get("model")) != (kind, model):
        raise CheckpointError(f"{path} is a checkpoint of {state.get('kind')}/{state.get('model')}, not {kind}/{model}")
    return state
