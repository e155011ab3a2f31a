"""Versioned column schemas and the typed records generated from them.

A :class:`Schema` is a list of :class:`Field` s. Scalars and small fixed-shape arrays become
Parquet columns (arrays flattened into variable-size lists, the shape kept in the field metadata).
``dense`` fields (per-pixel maps) are stored where the schema's ``dense_storage`` says:

- ``"npz"``: in the NPZ file (deflate) beside each Parquet shard, members ``<field>/<row>``
  (annotation stages: written as they run, read once by ``pack``);
- ``"parquet"``: in a binary Parquet column of their own, each value one array encoded by
  :func:`encode_dense` (its shape, then an LZ4 frame of its C-order bytes), so that a reader
  projects the columns it needs and decodes one row's maps alone (packed training shards, read
  one sample at a time; LZ4 decodes the maps about 10x faster than deflate, 4x faster than zstd).

Every schema has a name and an integer version; readers refuse versions they do not know
(:class:`UnknownSchemaVersionError`).

A schema's *payload* is what its producer computes (an annotation's own fields, without the id and
provenance columns the pipeline adds); :attr:`Schema.record_type` is a frozen dataclass of the
payload fields, generated from the schema, which backends return and drawers and trainers read.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa


class SchemaError(ValueError):
    """A record that does not match its schema (missing field, wrong shape or dtype)."""


class UnknownSchemaVersionError(SchemaError):
    """A table written with a schema name or version this vtonpipe does not know."""


DENSE_STORAGES = ("npz", "parquet")

_ARROW_SCALARS = {
    "bool": pa.bool_(),
    "uint8": pa.uint8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float16": pa.float16(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "string": pa.string(),
    "binary": pa.binary(),
}


_INT_RANGES = {"uint8": (0, 255), "int16": (-(2**15), 2**15 - 1), "int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_JSON_SCALARS: dict[str, dict[str, Any]] = {
    "bool": {"type": "boolean"},
    **{t: {"type": "integer", "minimum": lo, "maximum": hi} for t, (lo, hi) in _INT_RANGES.items()},
    **{t: {"type": "number"} for t in ("float16", "float32", "float64")},
    "string": {"type": "string"},
    "binary": {"type": "string", "contentEncoding": "base64"},
}


#: the codec of dense arrays stored in Parquet columns: LZ4 frames, read once per sample drawn
#: (on the packed maps of 256x192 pairs about 4x faster to decode than zstd's level 3, for 1.3x
#: its size: docs/MEASUREMENTS.md)
DENSE_CODEC = pa.Codec("lz4")
_SHAPE_DTYPE = np.dtype("<i4")


def encode_dense(array: np.ndarray) -> bytes:
    """The stored bytes of a dense array in a Parquet column: its shape as ``ndim`` little-endian
    int32, then a :data:`DENSE_CODEC` (LZ4) frame of its C-order bytes (the dtype is the field's)."""
    array = np.ascontiguousarray(array)
    return np.asarray(array.shape, _SHAPE_DTYPE).tobytes() + DENSE_CODEC.compress(pa.py_buffer(array), asbytes=True)


def decode_dense(data: bytes | pa.Buffer, dtype: str | np.dtype, ndim: int) -> np.ndarray:
    """The writable array of :func:`encode_dense` bytes (``dtype`` and ``ndim`` are the field's);
    a :class:`pyarrow.Buffer` is read without a copy."""
    buf = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
    head = ndim * _SHAPE_DTYPE.itemsize
    shape = tuple(int(n) for n in np.frombuffer(buf, _SHAPE_DTYPE, ndim))
    dtype = np.dtype(dtype)
    raw = DENSE_CODEC.decompress(buf.slice(head), decompressed_size=int(np.prod(shape)) * dtype.itemsize)
    return np.frombuffer(raw, dtype).reshape(shape)


@dataclass(frozen=True)
class Field:
    """One column.

    ``shape`` is ``()`` for a scalar; a tuple of ints for a fixed-size array; a leading ``"N"``
    for a variable number of fixed-size rows (e.g. ``("N", 18, 3)`` for several people); symbolic
    ``"H"``, ``"W"`` for dense maps, which must set ``dense=True``.
    """

    name: str
    dtype: str
    shape: tuple[int | str, ...] = ()
    dense: bool = False
    nullable: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        if self.dtype not in _ARROW_SCALARS:
            raise SchemaError(f"field {self.name}: unknown dtype {self.dtype}")
        symbolic = [d for d in self.shape if isinstance(d, str)]
        if not self.dense and symbolic and (symbolic != ["N"] or self.shape[0] != "N"):
            raise SchemaError(f"field {self.name}: only dense fields may have symbolic dims other than a leading N")

    @property
    def inner_shape(self) -> tuple[int, ...]:
        return tuple(d for d in self.shape if not isinstance(d, str))

    def json_schema(self, dense_storage: str = "npz") -> dict[str, Any]:
        """This field as JSON Schema: the value a reader finds in a Parquet row (arrays are
        flattened lists, row-major, of ``x-shape``; ``N`` a per-row count) or, for a dense field,
        the NPZ member ``<field>/<row>`` beside the shard (``x-storage: npz``) or, in a schema
        storing dense maps in Parquet, the column's :func:`encode_dense` bytes (``x-storage: parquet-lz4``)."""
        scalar = _JSON_SCALARS[self.dtype]
        out: dict[str, Any] = {"description": self.doc, "x-dtype": self.dtype}
        if self.dense:
            out.update({"x-storage": "npz" if dense_storage == "npz" else "parquet-lz4", "x-shape": list(self.shape)})
            if dense_storage != "npz":
                out.update({"type": ["string", "null"] if self.nullable else "string", "contentEncoding": "base64"})
            return out
        value: dict[str, Any] = dict(scalar)
        if self.shape:
            value = {"type": "array", "items": scalar, "x-shape": list(self.shape)}
            fixed = int(np.prod(self.inner_shape)) if self.inner_shape else 1
            if "N" not in self.shape:
                value.update(minItems=fixed, maxItems=fixed)
        out.update(value if not self.nullable else {"anyOf": [value, {"type": "null"}]})
        return out

    def arrow_type(self) -> pa.DataType:
        if self.dense:  # a dense field stored as a column: encode_dense bytes
            return pa.binary()
        scalar = _ARROW_SCALARS[self.dtype]
        # Arrays are flattened into variable-size lists (the shape is in the field metadata):
        # Parquet does not round-trip nulls of fixed-size lists.
        return pa.list_(scalar) if self.shape else scalar

    def coerce(self, value: Any) -> Any:
        """Check ``value`` against the field and return it in canonical form (numpy for arrays)."""
        if value is None:
            if not self.nullable:
                raise SchemaError(f"field {self.name} is not nullable")
            return None
        if self.dtype in ("string", "binary"):
            want = str if self.dtype == "string" else bytes
            if not isinstance(value, want):
                raise SchemaError(f"field {self.name}: expected {want.__name__}, got {type(value).__name__}")
            return value
        arr = np.asarray(value)
        if not self.shape:
            if arr.ndim != 0:
                raise SchemaError(f"field {self.name}: expected a scalar, got shape {arr.shape}")
            return arr.astype(self.dtype).item()
        if arr.ndim != len(self.shape):
            raise SchemaError(f"field {self.name}: expected {len(self.shape)} dims {self.shape}, got {arr.shape}")
        for want, got in zip(self.shape, arr.shape):
            if isinstance(want, int) and want != got:
                raise SchemaError(f"field {self.name}: expected shape {self.shape}, got {arr.shape}")
        if arr.dtype != np.dtype(self.dtype):
            if np.dtype(self.dtype).kind in "ui" and arr.dtype.kind == "f":
                raise SchemaError(f"field {self.name}: refusing to cast float to {self.dtype} silently")
            arr = arr.astype(self.dtype)
        return np.ascontiguousarray(arr)

    def to_arrow_value(self, value: Any) -> Any:
        if value is None or not self.shape:
            return value
        return encode_dense(value) if self.dense else value.reshape(-1)

    def from_arrow_value(self, value: Any) -> Any:
        if value is None or not self.shape:
            return value
        if self.dense:
            return decode_dense(value, self.dtype, len(self.shape))
        arr = np.asarray(value, dtype=self.dtype)
        return arr.reshape((-1, *self.shape[1:]) if self.shape[0] == "N" else self.shape)


@dataclass(frozen=True)
class Schema:
    """A named, versioned list of fields. ``key`` names the columns that identify a row;
    ``payload`` the fields of its :attr:`record_type` (default: every field); ``dense_storage``
    where its dense fields are stored (``"npz"`` or ``"parquet"``, see the module docstring)."""

    name: str
    version: int
    fields: tuple[Field, ...]
    key: tuple[str, ...] = ()
    doc: str = ""
    payload: tuple[str, ...] | None = None
    dense_storage: str = "npz"
    _by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if self.dense_storage not in DENSE_STORAGES:
            raise SchemaError(f"schema {self.name}: dense_storage {self.dense_storage!r} is not one of {DENSE_STORAGES}")
        if len(set(names)) != len(names):
            raise SchemaError(f"schema {self.name}: duplicate field names")
        object.__setattr__(self, "_by_name", {f.name: f for f in self.fields})
        missing = set(self.key) - set(names)
        if missing:
            raise SchemaError(f"schema {self.name}: key columns {missing} are not fields")
        if self.payload is None:
            object.__setattr__(self, "payload", tuple(names))
        elif set(self.payload) - set(names):
            raise SchemaError(f"schema {self.name}: payload fields {set(self.payload) - set(names)} are not fields")

    def __getitem__(self, name: str) -> Field:
        return self._by_name[name]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    @property
    def columns(self) -> tuple[Field, ...]:
        """Fields stored as Parquet columns (dense ones too where ``dense_storage`` is ``"parquet"``)."""
        return tuple(f for f in self.fields if not f.dense or self.dense_storage == "parquet")

    @property
    def dense(self) -> tuple[Field, ...]:
        """The dense (per-pixel) fields, wherever they are stored."""
        return tuple(f for f in self.fields if f.dense)

    @property
    def npz_fields(self) -> tuple[Field, ...]:
        """Fields stored in the NPZ beside each shard (the dense ones where ``dense_storage`` is ``"npz"``)."""
        return self.dense if self.dense_storage == "npz" else ()

    def arrow_schema(self) -> pa.Schema:
        fields = []
        for f in self.columns:
            meta = {"shape": json.dumps(list(f.shape)), "dtype": f.dtype, "doc": f.doc, **({"encoding": "vtonpipe.encode_dense"} if f.dense else {})}
            fields.append(pa.field(f.name, f.arrow_type(), nullable=f.nullable, metadata=meta))
        return pa.schema(fields, metadata={"vtonpipe.schema": self.name, "vtonpipe.schema_version": str(self.version)})

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema (draft 2020-12) of one row: the Parquet columns as properties (required
        unless nullable) and the dense fields kept in NPZ under ``x-dense`` (members
        ``<field>/<row>`` of the ``shard-NNNNN.npz`` beside each ``shard-NNNNN.parquet``)."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"vtonpipe:{self.name}:v{self.version}",
            "title": f"{self.name} v{self.version}",
            "description": self.doc,
            "type": "object",
            "properties": {f.name: f.json_schema(self.dense_storage) for f in self.columns},
            "required": [f.name for f in self.columns if not f.nullable],
            "additionalProperties": False,
            "x-key": list(self.key),
            "x-dense": {f.name: f.json_schema() for f in self.dense},
            "x-parquet-metadata": {"vtonpipe.schema": self.name, "vtonpipe.schema_version": str(self.version)},
        }

    def validate(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Return ``record`` coerced to this schema; unknown or missing fields raise SchemaError."""
        extra = set(record) - set(self._by_name)
        if extra:
            raise SchemaError(f"schema {self.name}: unknown fields {sorted(extra)}")
        out = {}
        for f in self.fields:
            if f.name not in record and not f.nullable:
                raise SchemaError(f"schema {self.name}: missing field {f.name}")
            out[f.name] = f.coerce(record.get(f.name))
        return out

    def validate_payload(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """``payload`` (the payload fields only) coerced to this schema; SchemaError otherwise."""
        extra = set(payload) - set(self.payload)
        if extra:
            raise SchemaError(f"schema {self.name}: unknown fields {sorted(extra)}")
        return {n: self[n].coerce(payload.get(n)) for n in self.payload}

    def to_table(self, records: Iterable[Mapping[str, Any]]) -> pa.Table:
        """Arrow table of the Parquet columns of already validated records."""
        records = list(records)
        arrays = [pa.array([f.to_arrow_value(r[f.name]) for r in records], type=f.arrow_type()) for f in self.columns]
        return pa.Table.from_arrays(arrays, schema=self.arrow_schema())

    def rows_from_table(self, table: pa.Table) -> list[dict[str, Any]]:
        """Records from an Arrow table written with this schema: its columns' fields (without the
        NPZ fields), dense columns decoded."""
        cols = {f.name: table.column(f.name).to_pylist() for f in self.columns if f.name in table.column_names}
        n = table.num_rows
        return [{name: self[name].from_arrow_value(values[i]) for name, values in cols.items()} for i in range(n)]

    @cached_property
    def record_type(self) -> type:
        """A frozen dataclass of the payload fields, named after the schema (``keypoints`` ->
        ``KeypointsRecord``); nullable fields default to None. Its docstring lists each field's
        dtype, shape and doc."""
        specs = []
        for name in sorted(self.payload, key=lambda n: self[n].nullable):  # defaults last
            f = self[name]
            specs.append((name, Any, dataclasses.field(default=None)) if f.nullable else (name, Any))
        lines = [f"{self.name} v{self.version}: {self.doc}".rstrip(": "), ""]
        lines += [
            f"- ``{n}``: {self[n].dtype} {list(self[n].shape) or 'scalar'}{', nullable' if self[n].nullable else ''}. {self[n].doc}".rstrip(". ")
            for n in self.payload
        ]
        cls_name = "".join(part.capitalize() for part in self.name.replace("-", "_").split("_")) + "Record"
        cls = dataclasses.make_dataclass(cls_name, specs, frozen=True, eq=False, namespace={"__doc__": "\n".join(lines), "schema": self})
        cls.__module__ = f"vtonpipe.schemas.{self.name}"  # where the schema module names it (picklable)
        return cls

    def record(self, row: Mapping[str, Any]) -> Any:
        """The typed record of a stored row (its payload fields)."""
        return self.record_type(**{n: row.get(n) for n in self.payload})

    def payload_of(self, record: Any) -> dict[str, Any]:
        """The payload fields of a :attr:`record_type` instance as a dict."""
        if type(record) is not self.record_type:
            raise SchemaError(f"schema {self.name}: expected a {self.record_type.__name__}, got {type(record).__name__}")
        return {n: getattr(record, n) for n in self.payload}
