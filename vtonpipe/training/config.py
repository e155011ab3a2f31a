"""Training settings: params.yaml ``train.<kind>.<model>`` (``train.landmarks`` for the landmark
network) plus ``--set key=value`` overrides, resolved once into typed dataclasses.

One flat namespace per model section: keys naming a :class:`TrainConfig` field set the trainer's
settings, the others the task's own ``Config`` dataclass (learning rates, loss weights, ablation
switches). Unknown keys and ill-typed values are errors that list what is accepted.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from .data import DataConfig

#: kinds whose settings section holds one sub-section per model; the others have one section
PER_MODEL_KINDS = ("warp", "tryon")
KINDS = ("warp", "tryon", "landmarks")


class ConfigError(ValueError):
    """A setting that does not exist or does not have the type its dataclass field declares."""


@dataclass(frozen=True)
class TrainConfig:
    """The trainer's settings (shared by every model). Steps count optimiser steps."""

    steps: int = 1000
    batch_size: int = 8  # per rank and per micro-step
    accumulate: int = 1  # micro-batches per optimiser step (gradient accumulation)
    seed: int = 0
    height: int = 256  # training resolution, px
    width: int = 192
    workers: int = 2  # DataLoader worker processes per rank
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    amp_dtype: str = "float16"  # float16 (with GradScaler) or bfloat16
    compile: bool = False  # torch.compile the modules
    find_unused_parameters: bool = False  # DDP: for models whose forward skips parameters
    log_every: int = 10  # steps between log rows (CSV, TensorBoard)
    checkpoint_every: int = 500
    keep_checkpoints: int = 3  # numbered checkpoints kept (0: all)
    grid_every: int = 500  # steps between sample grids (0: only at the end)
    grid_samples: int = 4
    eval_every: int = 0  # steps between test-split evaluations (0: only at the end)
    eval_batches: int = 0  # batches per rank of a periodic evaluation (0: the whole split)
    pose_sigma: float = 6.0
    pose_radius: float = 4.0
    landmark_sigma: float = 6.0
    shuffle_window: int = 256
    cache_shards: int = 4
    verify: bool = True

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "accumulate", "height", "width", "log_every", "checkpoint_every", "grid_samples"):
            if getattr(self, name) < (0 if name == "steps" else 1):
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.amp_dtype not in ("float16", "bfloat16"):
            raise ConfigError(f"amp_dtype must be float16 or bfloat16, got {self.amp_dtype!r}")

    def data(self) -> "DataConfig":
        from .data import DataConfig  # torch stays unimported until a run starts

        return DataConfig(
            height=self.height,
            width=self.width,
            pose_sigma=self.pose_sigma,
            pose_radius=self.pose_radius,
            landmark_sigma=self.landmark_sigma,
            shuffle_window=self.shuffle_window,
            cache_shards=self.cache_shards,
            verify=self.verify,
        )


def _check_type(cls: type, name: str, hint: Any, value: Any) -> Any:
    """``value`` checked against the type ``hint`` of field ``cls.name`` (ints widen to floats,
    lists become tuples); :class:`ConfigError` if it does not fit."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            if option is type(None) and value is None:
                return None
            if option is not type(None):
                try:
                    return _check_type(cls, name, option, value)
                except ConfigError:
                    pass
        raise ConfigError(f"{cls.__name__}.{name}: {value!r} is none of {hint}")
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{cls.__name__}.{name}: expected one of {list(typing.get_args(hint))}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{cls.__name__}.{name}: expected a list, got {value!r}")
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        items = [_check_type(cls, name, args[0], v) if args else v for v in value]
        return tuple(items) if origin is tuple else items
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (hint in (int, float) and isinstance(value, bool)) or not isinstance(value, hint):
        raise ConfigError(f"{cls.__name__}.{name}: expected {hint.__name__}, got {value!r}")
    return value


def resolve(cls: type, values: Mapping[str, Any]) -> Any:
    """An instance of dataclass ``cls`` from ``values``, each checked against its field's type
    (ints accepted for floats, lists for tuples); unknown keys raise :class:`ConfigError`."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} settings {unknown}; known: {names}")
    return cls(**{k: _check_type(cls, k, hints[k], v) for k, v in values.items()})


def settings_section(params: Mapping[str, Any], kind: str, model: str) -> dict[str, Any]:
    """The raw ``train.<kind>.<model>`` section of params.yaml (``train.landmarks`` for landmarks)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown training kind {kind!r}; known: {list(KINDS)}")
    train = params.get("train") or {}
    section = (train.get(kind) or {}).get(model) if kind in PER_MODEL_KINDS else train.get(kind)
    return dict(section or {})


def split_settings(values: Mapping[str, Any], model_config: type) -> tuple[TrainConfig, Any]:
    """(TrainConfig, the task's Config) from one flat settings mapping."""
    train_names = {f.name for f in dataclasses.fields(TrainConfig)}
    model_names = {f.name for f in dataclasses.fields(model_config)}
    unknown = sorted(set(values) - train_names - model_names)
    if unknown:
        raise ConfigError(f"unknown settings {unknown}; trainer settings: {sorted(train_names)}; {model_config.__qualname__}: {sorted(model_names)}")
    train = resolve(TrainConfig, {k: v for k, v in values.items() if k in train_names})
    model = resolve(model_config, {k: v for k, v in values.items() if k in model_names})
    return train, model
