"""Dataset adapters, one module per dataset layout, registered by name in :data:`ADAPTERS`;
:mod:`.sample_truth` is the format of the embedded sample's ground-truth files."""

from __future__ import annotations

from ..core.registry import Registry
from .base import (
    DatasetAdapter,
    DatasetLayoutError,
    ImageEntry,
    PairEntry,
    Problem,
    Scan,
)

#: layout name -> adapter class (``vitonhd`` is an alias of ``viton``)
ADAPTERS: Registry[str, type[DatasetAdapter]] = Registry("dataset layout", builtins="vtonpipe.datasets", skip=("base", "sample_truth"))


def register_adapter(cls: type[DatasetAdapter], *aliases: str) -> type[DatasetAdapter]:
    for name in (cls.name, *aliases):
        ADAPTERS.add(name, cls)
    return cls


def get_adapter(name: str) -> DatasetAdapter:
    return ADAPTERS.get(name)()


__all__ = ["ADAPTERS", "DatasetAdapter", "DatasetLayoutError", "ImageEntry", "PairEntry", "Problem", "Scan", "get_adapter", "register_adapter"]
