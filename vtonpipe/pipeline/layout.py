"""Where a dataset build keeps its parts. A *build* directory (e.g. ``data/mpv``) holds::

    ingest/images/        images table shards       ingest/report.json   ingest problems
    ingest/pairs/         pairs table shards
    annotations/<name>/   one shard set per annotator stage, plus failures/
    packed/<split>/       training shards of pair samples, and packed/manifest.json
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BuildLayout:
    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    @property
    def ingest(self) -> Path:
        return self.root / "ingest"

    @property
    def images(self) -> Path:
        return self.ingest / "images"

    @property
    def pairs(self) -> Path:
        return self.ingest / "pairs"

    @property
    def ingest_report(self) -> Path:
        return self.ingest / "report.json"

    def annotation(self, name: str) -> Path:
        return self.root / "annotations" / name

    def failures(self, name: str) -> Path:
        return self.annotation(name) / "failures"

    @property
    def packed(self) -> Path:
        return self.root / "packed"
