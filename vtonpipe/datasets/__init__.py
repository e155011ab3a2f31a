"""Dataset adapters, one module per dataset layout."""

from __future__ import annotations

from .base import DatasetAdapter, DatasetLayoutError, ImageEntry, PairEntry, Problem, Scan
from .deepfashion import DeepFashionAdapter
from .dresscode import DressCodeAdapter
from .mpv import MPVAdapter
from .viton import VitonAdapter

ADAPTERS: dict[str, type[DatasetAdapter]] = {
    a.name: a for a in (MPVAdapter, DeepFashionAdapter, VitonAdapter, DressCodeAdapter)
}
ADAPTERS["vitonhd"] = VitonAdapter


def get_adapter(name: str) -> DatasetAdapter:
    try:
        return ADAPTERS[name]()
    except KeyError:
        raise KeyError(f"unknown dataset layout {name!r}; known: {sorted(ADAPTERS)}") from None


__all__ = ["ADAPTERS", "DatasetAdapter", "DatasetLayoutError", "ImageEntry", "PairEntry", "Problem", "Scan", "get_adapter"]
