"""Typed configuration of each command, resolved once from ``params.yaml`` and CLI overrides.

Each dataclass holds the defaults of its command (the only place they are written);
``resolve(params, **overrides)`` applies, in order: these defaults, the matching sections of
``params.yaml`` (the DVC params file), then the overrides that are not None (CLI options).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from ..annotators import get_backend
from ..core import Backend


def _section(params: Mapping[str, Any], *path: str) -> dict[str, Any]:
    node: Any = params
    for key in path:
        node = (node or {}).get(key) if isinstance(node, Mapping) else None
    return dict(node or {})


def _apply(config: Any, *layers: Mapping[str, Any]) -> Any:
    """``config`` with the known, non-None keys of each layer applied in turn."""
    names = {f.name for f in fields(config)}
    for layer in layers:
        config = replace(config, **{k: v for k, v in layer.items() if k in names and v is not None})
    return config


def build_dir(params: Mapping[str, Any], dataset: str, build: str | None = None) -> Path:
    """A dataset's build directory: ``build`` if given, else ``<data_root>/<dataset>``."""
    return Path(build) if build else Path(params.get("data_root", "data")) / dataset


def dataset_conf(params: Mapping[str, Any], dataset: str) -> dict[str, Any]:
    """The ``datasets.<name>`` section (layout, root)."""
    return _section(params, "datasets", dataset)


@dataclass(frozen=True)
class StageConfig:
    """One annotator stage: which backend with which params, and how to run it.

    ``backend`` None is the annotator's default backend. ``stage`` names a second stage of the same
    annotator beside the main one (``annotations/<stage>/``, e.g. a trained network's landmarks
    next to the bootstrap labels it was trained on); downstream stages and ``pack`` read the main
    one. ``params`` are the backend's (merged with
    its ``default_params`` by the backend). ``max_failure_rate``: the share of items (whose
    upstream rows exist) that may fail before the stage is reported over budget.
    """

    annotator: str
    backend: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = 8
    workers: int = 1
    rows_per_shard: int = 256
    max_failure_rate: float = 1.0
    device: str = "cpu"
    scheduler: str = "local"  # local | processes (a Dask LocalCluster) | a Dask scheduler address
    stage: str | None = None  # the stage's directory under annotations/ (default: the annotator's name)

    @classmethod
    def resolve(cls, params: Mapping[str, Any], annotator: str, *, extra_params: Mapping[str, Any] | None = None, **overrides: Any) -> "StageConfig":
        """Defaults < ``annotate:`` < ``annotators.<annotator>:`` < ``overrides``; ``extra_params``
        update the section's backend params (``--param k=v``). The section's params are its
        backend's: a ``backend`` override naming another backend starts from that one's defaults."""
        section = _section(params, "annotators", annotator)
        config = _apply(cls(annotator), _section(params, "annotate"), section, overrides)
        own = config.backend == section.get("backend", config.backend)
        return replace(config, params={**(dict(section.get("params") or {}) if own else {}), **dict(extra_params or {})})

    def make_backend(self) -> Backend:
        """The configured backend instance (ValueError for unknown params, KeyError for an unknown backend)."""
        return get_backend(self.annotator, self.backend)(self.params, device=self.device)


@dataclass(frozen=True)
class SampleConfig:
    """``vtonpipe sample``: people, seed, ``size`` ``HEIGHTxWIDTH``, and the output root."""

    people: int = 8
    seed: int = 0
    size: str = "256x192"
    out: str | None = None

    @classmethod
    def resolve(cls, params: Mapping[str, Any], **overrides: Any) -> "SampleConfig":
        return _apply(cls(), {"out": dataset_conf(params, "sample").get("root")}, _section(params, "sample"), overrides)


@dataclass(frozen=True)
class IngestConfig:
    """``vtonpipe ingest``: dataset root and layout, failure budget, hashing threads."""

    root: str | None = None
    layout: str | None = None
    max_failure_rate: float = 0.05
    workers: int | None = None

    @classmethod
    def resolve(cls, params: Mapping[str, Any], dataset: str, **overrides: Any) -> "IngestConfig":
        return _apply(cls(), dataset_conf(params, dataset), _section(params, "ingest"), overrides)


@dataclass(frozen=True)
class PackConfig:
    """``vtonpipe pack``: pairs per shard, whether image bytes are copied, stages to pack (None: all)."""

    rows_per_shard: int = 64
    include_images: bool = True
    annotators: tuple[str, ...] | None = None

    @classmethod
    def resolve(cls, params: Mapping[str, Any], **overrides: Any) -> "PackConfig":
        config = _apply(cls(), _section(params, "pack"), overrides)
        return replace(config, annotators=tuple(config.annotators) if config.annotators is not None else None)
