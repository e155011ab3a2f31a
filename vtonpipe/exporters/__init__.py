"""Export a build into the folder layouts labs' trainers read, and import such folders back as
annotation stages (backend ``imported``). One module per format, each citing the loader it
matches; :mod:`vtonpipe.exporters.base` holds what they share, docs/SHARING.md the how-to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.registry import Registry
from .base import ExportError, ExportResult, Format, Size, run_export

#: format name -> Format subclass; the modules of this package register theirs on import
FORMATS: Registry[str, type[Format]] = Registry("format", builtins="vtonpipe.exporters", skip=("base", "imported"))


def register_format(cls: type[Format]) -> type[Format]:
    return FORMATS.add(cls.name, cls)


def get_format(name: str, settings: Mapping[str, Any] | None = None) -> Format:
    """The format ``name`` configured with ``settings``; KeyError naming the known ones."""
    return FORMATS.get(name)(settings)


__all__ = ["FORMATS", "ExportError", "ExportResult", "Format", "Size", "get_format", "register_format", "run_export"]
