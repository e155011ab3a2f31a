"""One registry helper for every pluggable kind: annotators, backends, schemas, dataset layouts,
drawers, evaluators, trainers.

A :class:`Registry` maps keys to entries of one kind. The package that owns a kind creates its
registry and names the package whose modules hold the built-in entries; those modules are
imported on the first lookup, and each registers its entries at import time. Registering a key
twice with a different entry is an error (two modules claiming one name).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Generic, Hashable, Iterator, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def import_submodules(package: str, skip: tuple[str, ...] = ()) -> None:
    """Import every module of ``package`` (not recursively) except those named in ``skip``."""
    pkg = importlib.import_module(package)
    for module in pkgutil.iter_modules(pkg.__path__):
        if module.name not in skip:
            importlib.import_module(f"{package}.{module.name}")


class Registry(Generic[K, V]):
    """Entries of one ``kind`` by key; ``builtins`` (a package name) is imported on first lookup."""

    def __init__(self, kind: str, builtins: str | None = None, skip: tuple[str, ...] = ()):
        self.kind = kind
        self._entries: dict[K, V] = {}
        self._builtins = builtins
        self._skip = skip
        self._loaded = builtins is None

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            import_submodules(self._builtins, self._skip)

    def add(self, key: K, entry: V) -> V:
        """Register ``entry`` under ``key`` and return it; a different entry under a taken key raises."""
        known = self._entries.get(key)
        if known is not None and known != entry:
            raise ValueError(f"{self.kind} {key!r} registered twice")
        self._entries[key] = entry
        return entry

    def register(self, key_of: Callable[[V], K]) -> Callable[[V], V]:
        """A decorator registering its argument under ``key_of(argument)``."""
        return lambda entry: self.add(key_of(entry), entry)

    def get(self, key: K) -> V:
        """The entry of ``key``; KeyError naming the known keys otherwise."""
        self._load()
        try:
            return self._entries[key]
        except KeyError:
            known = ", ".join(sorted(map(str, self._entries)))
            raise KeyError(f"unknown {self.kind} {key!r}; known: {known}") from None

    def __contains__(self, key: object) -> bool:
        self._load()
        return key in self._entries

    def items(self) -> list[tuple[K, V]]:
        """(key, entry) pairs sorted by key."""
        self._load()
        return sorted(self._entries.items(), key=lambda kv: str(kv[0]))

    def keys(self) -> list[K]:
        return [k for k, _ in self.items()]

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())

    def __len__(self) -> int:
        self._load()
        return len(self._entries)
