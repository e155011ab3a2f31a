"""Dataset adapters: read a dataset's own layout into image and pair entries plus problems.

Adapters only look at names and list files; reading pixels and hashing happen in
:mod:`vtonpipe.pipeline.ingest`. Every problem found (missing file, duplicate, a path that leaves
the dataset root, a malformed line) becomes a :class:`Problem` rather than an exception.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import ClassVar, Iterator

from ..io import IMAGE_EXTENSIONS


class DatasetLayoutError(ValueError):
    """The root does not look like the dataset at all (no list files, wrong folder)."""


@dataclass(frozen=True)
class ImageEntry:
    path: str  # relative to the root, '/'-separated
    kind: str  # person | garment
    split: str
    category: str | None = None


@dataclass(frozen=True)
class PairEntry:
    source: str
    target: str | None
    garment: str | None
    split: str
    paired: bool | None


@dataclass(frozen=True)
class Problem:
    kind: str  # missing_file | outside_root | bad_line | unsupported_format | duplicate_name | duplicate_pair | split_conflict | unreadable_image
    where: str  # file:line or image path
    detail: str
    fatal: bool = True  # whether the referenced image/pair is dropped


@dataclass
class Scan:
    images: list[ImageEntry] = field(default_factory=list)
    pairs: list[PairEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    pair_lines: int = 0


class DatasetAdapter(ABC):
    name: ClassVar[str]
    doc: ClassVar[str] = ""

    @abstractmethod
    def scan(self, root: Path) -> Scan:
        """Entries and problems of the dataset at ``root``."""


def safe_relpath(root: Path, rel: str) -> str | None:
    """``rel`` normalised to a '/'-path inside ``root``, or None if it leaves the root.

    Absolute paths, ``..`` escapes and symlinks pointing outside the root are all refused.
    """
    rel = rel.strip().replace("\\", "/")
    if not rel or rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
        return None
    parts = PurePosixPath(rel).parts
    if ".." in parts:
        return None
    full = (root / Path(*parts)).resolve()
    try:
        full.relative_to(root.resolve())
    except ValueError:
        return None
    return PurePosixPath(*parts).as_posix()


def read_list(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, whitespace-split fields) of the non-empty lines of a list file (UTF-8, with or
    without a BOM; LF or CRLF line ends)."""
    with path.open(encoding="utf-8-sig", errors="replace") as f:  # a BOM is not part of the first name
        for n, line in enumerate(f, 1):
            fields = line.split()
            if fields:
                yield n, fields


class ImageRegistry:
    """Collects image entries referenced by list files, deduplicated, with problems."""

    def __init__(self, root: Path, scan: Scan):
        self.root = root
        self.scan = scan
        self.entries: dict[str, ImageEntry] = {}
        self._missing: set[str] = set()

    def add(self, rel: str, kind: str, split: str, where: str, category: str | None = None) -> str | None:
        """Register an image; returns its normalised path, or None (problem recorded) if unusable."""
        path = safe_relpath(self.root, rel)
        if path is None:
            self.scan.problems.append(Problem("outside_root", where, f"{rel!r} points outside the dataset root"))
            return None
        if path in self._missing:
            return None
        if not (self.root / path).is_file():
            self._missing.add(path)
            self.scan.problems.append(Problem("missing_file", where, f"{path} does not exist"))
            return None
        if not path.lower().endswith(IMAGE_EXTENSIONS):
            suffix = Path(path).suffix.lower() or "(no extension)"
            self.scan.problems.append(
                Problem("unsupported_format", where, f"{path}: unsupported image format {suffix} (supported: {', '.join(IMAGE_EXTENSIONS)})")
            )
            return None
        known = self.entries.get(path)
        if known is None:
            self.entries[path] = ImageEntry(path, kind, split, category)
        elif known.kind != kind:
            self.scan.problems.append(Problem("bad_line", where, f"{path} used as {kind} and as {known.kind}"))
            return None
        elif known.split != split:
            self.scan.problems.append(Problem("split_conflict", where, f"{path} is in {known.split} and {split}; kept {known.split}", fatal=False))
        return path

    def finish(self) -> None:
        self.scan.images = sorted(self.entries.values(), key=lambda e: e.path)


def add_pair(scan: Scan, seen: set[tuple], pair: PairEntry, where: str) -> None:
    key = (pair.source, pair.target, pair.garment, pair.split)
    if key in seen:
        scan.problems.append(Problem("duplicate_pair", where, f"repeats an earlier pair {key}", fatal=False))
        return
    seen.add(key)
    scan.pairs.append(pair)


def same_stem_duplicates(root: Path, folder: str) -> list[Problem]:
    """Images in ``folder`` that share a stem with another extension (``a.jpg`` and ``a.png``)."""
    by_stem: dict[str, list[str]] = {}
    base = root / folder
    if not base.is_dir():
        return []
    for dirpath, _, files in os.walk(base):
        for f in files:
            if f.lower().endswith(IMAGE_EXTENSIONS):
                rel = (Path(dirpath) / f).relative_to(root).as_posix()
                by_stem.setdefault(rel.rsplit(".", 1)[0].lower(), []).append(rel)
    return [
        Problem("duplicate_name", names[0], f"same name with several extensions: {sorted(names)}", fatal=False)
        for names in by_stem.values()
        if len(names) > 1
    ]
