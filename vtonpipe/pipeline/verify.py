"""``vtonpipe verify``: check every shard set of a build against its manifest."""

from __future__ import annotations

import json
from pathlib import Path

from ..core import SchemaError
from .store import FORMAT, MANIFEST, ShardReader, StoreError


def verify_build(build: str | Path) -> dict[str, str]:
    """``{shard directory: "ok ..." | "error: ..."}`` for every shard set under ``build``."""
    results: dict[str, str] = {}
    build = Path(build)
    for manifest in sorted(build.rglob(MANIFEST)):
        rel = manifest.parent.relative_to(build).as_posix()
        try:
            if json.loads(manifest.read_text()).get("format") != FORMAT:
                continue  # packed/manifest.json describes the build; its shard sets are checked on their own
            reader = ShardReader(manifest.parent)
            reader.verify()
            results[rel] = f"ok ({len(reader)} rows, {len(reader.shards)} shards)"
        except (StoreError, SchemaError, OSError, ValueError) as e:
            results[rel] = f"error: {e}"
    return results
