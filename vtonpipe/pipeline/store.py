"""Shard store: a directory of Parquet (+ NPZ) shards of one schema, described by manifest.json.

Layout of a shard set directory::

    manifest.json           schema name/version, shards with sha256 and row counts, provenance
    shard-00000.parquet     rows: ids, provenance, scalars and small arrays (and the dense fields
                            of a schema whose ``dense_storage`` is "parquet": the packed shards)
    shard-00000.npz         dense per-pixel fields of the same rows, members "<field>/<row>"
                            (schemas whose ``dense_storage`` is "npz": the annotation stages)

Every file is written to a temporary name and renamed into place, the manifest last, so a reader
or a resumed run only ever sees complete shards.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__
from ..core.schema import Schema
from ..io import atomic_path, sha256_file, write_json_atomic
from ..schemas import get_schema, packed

MANIFEST = "manifest.json"
FORMAT = "vtonpipe-shards"
FORMAT_VERSION = 1
_SHARD_RE = re.compile(r"^shard-(\d{5,})\.(parquet|npz)$")


class ChecksumError(IOError):
    """A shard whose bytes do not match the sha256 recorded in its manifest."""


class StoreError(IOError):
    """A missing or malformed shard directory or manifest."""


@dataclass(frozen=True)
class ShardInfo:
    file: str
    sha256: str
    rows: int
    dense_file: str | None = None
    dense_sha256: str | None = None


def read_manifest(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise StoreError(f"no {MANIFEST} in {directory}: not a vtonpipe shard directory (or the stage never ran)")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as e:
        raise StoreError(f"{path} is not valid JSON: {e}") from e
    if manifest.get("format") != FORMAT:
        raise StoreError(f"{path} is not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise StoreError(f"{path}: shard format version {manifest.get('format_version')} is not known (expected {FORMAT_VERSION})")
    return manifest


def schema_of(manifest: Mapping[str, Any]) -> Schema:
    """The schema a manifest names (composed from its ``components`` for packed shards);
    UnknownSchemaVersionError if this vtonpipe does not know it."""
    s = manifest["schema"]
    if s["name"] == packed.NAME:
        return packed.packed_schema(manifest.get("components", {}), int(s["version"]))
    return get_schema(s["name"], int(s["version"]))


class ShardWriter:
    """Appends shards to a directory and keeps its manifest current.

    Opening an existing directory keeps its complete shards and deletes orphans (files a crashed
    run wrote after its last manifest update).
    """

    def __init__(self, directory: str | Path, schema: Schema, *, name: str | None = None, extra: Mapping[str, Any] | None = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        if (self.directory / MANIFEST).exists():
            self.manifest = read_manifest(self.directory)
            found = self.manifest["schema"]
            if (found["name"], found["version"]) != (schema.name, schema.version):
                raise StoreError(
                    f"{self.directory} holds schema {found['name']} v{found['version']}, not {schema.name} v{schema.version}; remove it to rebuild"
                )
        else:
            self.manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "name": name or schema.name,
                "schema": {"name": schema.name, "version": schema.version},
                "shards": [],
                "rows": 0,
                "complete": False,
            }
        if extra:
            self.manifest.update(extra)
        self._remove_orphans()

    @property
    def shards(self) -> list[ShardInfo]:
        return [ShardInfo(**s) for s in self.manifest["shards"]]

    def _remove_orphans(self) -> None:
        known = set()
        for s in self.manifest["shards"]:
            known.add(s["file"])
            if s.get("dense_file"):
                known.add(s["dense_file"])
        for p in self.directory.iterdir():
            if (_SHARD_RE.match(p.name) and p.name not in known) or p.name.endswith(".tmp"):
                p.unlink()

    def _next_index(self) -> int:
        used = [int(_SHARD_RE.match(s["file"]).group(1)) for s in self.manifest["shards"]]
        return max(used, default=-1) + 1

    def write_shard(self, records: Sequence[Mapping[str, Any]], *, validated: bool = False) -> ShardInfo:
        """Write one shard of ``records`` (dicts of the schema's fields) and update the manifest."""
        if not records:
            raise ValueError("refusing to write an empty shard")
        rows = list(records) if validated else [self.schema.validate(r) for r in records]
        stem = f"shard-{self._next_index():05d}"
        parquet = self.directory / f"{stem}.parquet"
        columns = self.schema.columns
        with atomic_path(parquet) as tmp:
            # dense columns hold LZ4 frames already: never dictionary-encoded (Parquet's zstd
            # stores their pages as raw blocks, read back at the cost of a copy)
            pq.write_table(self.schema.to_table(rows), tmp, compression="zstd", use_dictionary=[f.name for f in columns if not f.dense])
        info = {"file": parquet.name, "sha256": sha256_file(parquet), "rows": len(rows), "dense_file": None, "dense_sha256": None}
        if self.schema.npz_fields:
            npz = self.directory / f"{stem}.npz"
            arrays = {f"{f.name}/{i}": r[f.name] for i, r in enumerate(rows) for f in self.schema.npz_fields if r[f.name] is not None}
            with atomic_path(npz) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez_compressed(fh, **arrays)
            info.update(dense_file=npz.name, dense_sha256=sha256_file(npz))
        self.manifest["shards"].append(info)
        self.manifest["rows"] = sum(s["rows"] for s in self.manifest["shards"])
        self.manifest["complete"] = False
        self._write_manifest()
        return ShardInfo(**info)

    def drop_shards(self, files: Iterable[str]) -> None:
        """Forget shards (by Parquet file name) and delete their files."""
        files = set(files)
        keep = []
        for s in self.manifest["shards"]:
            if s["file"] in files:
                for f in (s["file"], s.get("dense_file")):
                    if f and (self.directory / f).exists():
                        (self.directory / f).unlink()
            else:
                keep.append(s)
        self.manifest["shards"] = keep
        self.manifest["rows"] = sum(s["rows"] for s in keep)
        self._write_manifest()

    def rewrite_shard(self, file: str, *, drop_rows: Sequence[int]) -> None:
        """Replace shard ``file`` by a new shard without the rows at ``drop_rows``."""
        reader = ShardReader(self.directory)
        index = next(i for i, s in enumerate(reader.shards) if s.file == file)
        drop = set(drop_rows)
        keep = [row for r, row in enumerate(reader.iter_shard(index)) if r not in drop]
        reader.close()
        if keep:
            self.write_shard(keep, validated=True)
        self.drop_shards([file])

    def finish(self, **extra: Any) -> dict[str, Any]:
        """Mark the directory complete and record ``extra`` (provenance, counts) in the manifest."""
        self.manifest.update(extra)
        self.manifest["complete"] = True
        self._write_manifest()
        return self.manifest

    def _write_manifest(self) -> None:
        self.manifest["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.manifest["vtonpipe_version"] = __version__
        write_json_atomic(self.directory / MANIFEST, self.manifest)


def write_table(directory: str | Path, schema: Schema, records: Sequence[Mapping[str, Any]], *, rows_per_shard: int = 100_000, **extra: Any) -> dict[str, Any]:
    """Replace ``directory`` by a complete shard set of ``records`` (used for the dataset tables)."""
    directory = Path(directory)
    if (directory / MANIFEST).exists():
        writer = ShardWriter(directory, schema)
        writer.drop_shards([s.file for s in writer.shards])
    writer = ShardWriter(directory, schema)
    rows = [schema.validate(r) for r in records]
    for start in range(0, len(rows), rows_per_shard):
        writer.write_shard(rows[start : start + rows_per_shard], validated=True)
    return writer.finish(**extra)


class ShardReader:
    """Random access by id and fast iteration over a shard directory.

    Each shard's sha256 is checked against the manifest the first time the shard is read
    (:class:`ChecksumError` on mismatch); ``verify()`` checks them all at once.
    """

    def __init__(self, directory: str | Path, *, verify: bool = True):
        self.directory = Path(directory)
        self.manifest = read_manifest(self.directory)
        self.schema = schema_of(self.manifest)
        self.shards = [ShardInfo(**s) for s in self.manifest["shards"]]
        self._verify = verify
        self._verified: set[str] = set()
        self._tables: dict[int, pa.Table] = {}
        self._npz: dict[int, Any] = {}
        self._index: dict[str, tuple[int, int]] | None = None
        self.id_column = self.schema.key[0] if self.schema.key else None

    def __len__(self) -> int:
        return sum(s.rows for s in self.shards)

    def __repr__(self) -> str:
        return f"ShardReader({str(self.directory)!r}, schema={self.schema.name} v{self.schema.version}, rows={len(self)})"

    # -- integrity -------------------------------------------------------------------------
    def _check(self, file: str, expected: str) -> None:
        if file in self._verified:
            return
        path = self.directory / file
        if not path.exists():
            raise StoreError(f"shard {path} listed in the manifest is missing")
        got = sha256_file(path)
        if got != expected:
            raise ChecksumError(f"checksum mismatch for {path}: manifest says {expected[:16]}..., file is {got[:16]}...")
        self._verified.add(file)

    def verify(self) -> None:
        """Check every shard file against the manifest's sha256."""
        for s in self.shards:
            self._check(s.file, s.sha256)
            if s.dense_file:
                self._check(s.dense_file, s.dense_sha256)

    # -- access ----------------------------------------------------------------------------
    def table(self, i: int) -> pa.Table:
        """The Parquet rows of shard ``i``."""
        if i not in self._tables:
            s = self.shards[i]
            if self._verify:
                self._check(s.file, s.sha256)
            self._tables[i] = pq.read_table(self.directory / s.file)
        return self._tables[i]

    def _dense(self, i: int) -> Any:
        if i not in self._npz:
            s = self.shards[i]
            if s.dense_file is None:
                self._npz[i] = None
            else:
                if self._verify:
                    self._check(s.dense_file, s.dense_sha256)
                self._npz[i] = np.load(self.directory / s.dense_file, allow_pickle=False)
        return self._npz[i]

    def _attach_dense(self, row: dict[str, Any], npz: Any, r: int) -> dict[str, Any]:
        for f in self.schema.npz_fields:
            key = f"{f.name}/{r}"
            row[f.name] = npz[key] if npz is not None and key in npz.files else None
        return row

    def row_at(self, shard: int, row: int, *, dense: bool = True) -> dict[str, Any]:
        """Row ``row`` of shard ``shard`` (positions as in :attr:`shards`); its NPZ fields loaded
        unless ``dense`` is False (dense Parquet columns are always decoded)."""
        out = self.schema.rows_from_table(self.table(shard).slice(row, 1))[0]
        return self._attach_dense(out, self._dense(shard), row) if dense and self.schema.npz_fields else out

    @property
    def index(self) -> dict[str, tuple[int, int]]:
        """``id -> (shard, row)``; the last row wins where an id repeats."""
        if self._index is None:
            if self.id_column is None:
                raise StoreError(f"schema {self.schema.name} has no key column to index by")
            idx: dict[str, tuple[int, int]] = {}
            for i, s in enumerate(self.shards):
                try:  # checksums are verified when a shard's rows are read, not to index it
                    ids = pq.read_table(self.directory / s.file, columns=[self.id_column]).column(0).to_pylist()
                except (OSError, pa.ArrowException):
                    self._check(s.file, s.sha256)
                    raise
                for r, key in enumerate(ids):
                    idx[key] = (i, r)
            self._index = idx
        return self._index

    def ids(self) -> list[str]:
        return list(self.index)

    def __contains__(self, item_id: str) -> bool:
        return item_id in self.index

    def get(self, item_id: str, *, dense: bool = True) -> dict[str, Any]:
        """The row of ``item_id`` (NPZ fields loaded unless ``dense`` is False); KeyError if absent."""
        try:
            i, r = self.index[item_id]
        except KeyError:
            raise KeyError(f"{item_id!r} not in {self.directory}") from None
        return self.row_at(i, r, dense=dense)

    def record(self, item_id: str) -> Any:
        """The typed record (the schema's :attr:`~vtonpipe.core.Schema.record_type`) of
        ``item_id``; KeyError if absent."""
        return self.schema.record(self.get(item_id))

    def iter_shard(self, i: int) -> Iterator[dict[str, Any]]:
        """The rows of shard ``i`` in order, dense arrays loaded."""
        npz = self._dense(i) if self.schema.npz_fields else None
        for r, row in enumerate(self.schema.rows_from_table(self.table(i))):
            yield self._attach_dense(row, npz, r)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self.shards)):
            yield from self.iter_shard(i)

    def read_columns(self, i: int, columns: Sequence[str]) -> pa.Table:
        """Only ``columns`` of shard ``i``'s Parquet rows, read afresh (not cached); checksum
        verified on the shard's first read."""
        s = self.shards[i]
        if self._verify:
            self._check(s.file, s.sha256)
        return pq.read_table(self.directory / s.file, columns=list(columns))

    def read_all(self, columns: Sequence[str] | None = None) -> pa.Table:
        """All Parquet rows as one Arrow table (NPZ fields excluded; dense columns as stored bytes)."""
        tables = [self.table(i) for i in range(len(self.shards))]
        if not tables:
            return self.schema.arrow_schema().empty_table()
        t = pa.concat_tables(tables)
        return t.select(list(columns)) if columns else t

    def to_pandas(self, columns: Sequence[str] | None = None):
        return self.read_all(columns).to_pandas()

    def to_dask(self, columns: Sequence[str] | None = None):
        """A lazy dask DataFrame over the Parquet shards (checksums verified first)."""
        import dask.dataframe as dd

        if self._verify:
            self.verify()
        files = [str(self.directory / s.file) for s in self.shards]
        return dd.read_parquet(files, columns=list(columns) if columns else None)

    def close(self) -> None:
        for npz in self._npz.values():
            if npz is not None:
                npz.close()
        self._npz.clear()
        self._tables.clear()

    def __enter__(self) -> "ShardReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def manifest_summary(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What a build-level manifest records of one shard directory."""
    return {
        "schema": manifest["schema"],
        "rows": manifest["rows"],
        "complete": manifest.get("complete", False),
        "shards": manifest["shards"],
        **({"provenance": manifest["provenance"]} if "provenance" in manifest else {}),
    }


__all__ = [
    "ChecksumError",
    "MANIFEST",
    "ShardInfo",
    "ShardReader",
    "ShardWriter",
    "StoreError",
    "manifest_summary",
    "read_manifest",
    "schema_of",
    "write_table",
]
