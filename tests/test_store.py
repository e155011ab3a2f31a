"""Shard store: round trip, checksums, schema versions, orphans, random access."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vtonpipe.core import Field, Schema, SchemaError, UnknownSchemaVersionError
from vtonpipe.core.schema import DENSE_CODEC, decode_dense, encode_dense
from vtonpipe.pipeline.store import ChecksumError, ShardReader, ShardWriter, StoreError
from vtonpipe.schemas import register_schema
from vtonpipe.schemas.packed import packed_schema

FIELDS = (
    Field("item_id", "string"),
    Field("score", "float32"),
    Field("count", "int32"),
    Field("points", "float32", (4, 3)),
    Field("people", "float32", ("N", 2)),
    Field("label", "string", nullable=True),
    Field("map", "uint8", ("H", "W"), dense=True),
    Field("flow", "float32", ("H", "W", 2), dense=True, nullable=True),
)
SCHEMA = register_schema(Schema(name="test_store_rows", version=1, key=("item_id",), fields=FIELDS))
#: the same fields with the dense ones in Parquet columns (as the packed shards store them)
IN_PARQUET = register_schema(Schema(name="test_store_rows_in_parquet", version=1, key=("item_id",), fields=FIELDS, dense_storage="parquet"))


def _record(i: int, rng: np.random.Generator) -> dict:
    h, w = 5 + i, 7
    return {
        "item_id": f"img/{i:03d}.jpg",
        "score": float(i) / 3,
        "count": i,
        "points": rng.normal(size=(4, 3)).astype(np.float32),
        "people": rng.normal(size=(i % 3, 2)).astype(np.float32),
        "label": None if i % 2 else f"label{i}",
        "map": rng.integers(0, 25, (h, w), dtype=np.uint8),
        "flow": None if i == 3 else rng.normal(size=(h, w, 2)).astype(np.float32),
    }


def _write(directory, n=10, per_shard=4, schema=SCHEMA):
    rng = np.random.default_rng(0)
    records = [_record(i, rng) for i in range(n)]
    writer = ShardWriter(directory, schema)
    for s in range(0, n, per_shard):
        writer.write_shard(records[s : s + per_shard])
    writer.finish(provenance=[{"annotator": "t"}])
    return records


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert b[k].dtype == a[k].dtype and b[k].shape == a[k].shape
            np.testing.assert_array_equal(a[k], b[k])
        elif isinstance(a[k], float):
            assert b[k] == pytest.approx(a[k], rel=1e-6)
        else:
            assert a[k] == b[k]


@pytest.mark.parametrize("schema", [SCHEMA, IN_PARQUET], ids=["npz", "parquet"])
def test_round_trip_random_access_and_iteration(tmp_path, schema):
    records = _write(tmp_path, schema=schema)
    reader = ShardReader(tmp_path)
    assert reader.schema.dense_storage == schema.dense_storage
    assert bool(list(tmp_path.glob("*.npz"))) == (schema.dense_storage == "npz")
    assert len(reader) == 10 and len(reader.shards) == 3
    assert [s.rows for s in reader.shards] == [4, 4, 2]
    for r in records[::-1]:
        _same(r, reader.get(r["item_id"]))
    for r, got in zip(records, reader):
        _same(r, got)
    assert reader.get("img/003.jpg")["flow"] is None
    assert reader.read_all(["item_id", "count"]).column("count").to_pylist() == list(range(10))
    assert reader.to_dask(["count"])["count"].sum().compute() == 45
    with pytest.raises(KeyError):
        reader.get("nope")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["complete"] and manifest["rows"] == 10 and manifest["provenance"] == [{"annotator": "t"}]


@pytest.mark.parametrize(("schema", "which"), [(SCHEMA, "parquet"), (SCHEMA, "npz"), (IN_PARQUET, "parquet")])
def test_checksum_mismatch_is_detected(tmp_path, schema, which):
    _write(tmp_path, schema=schema)
    victim = tmp_path / f"shard-00001.{which}"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="shard-00001"):
        ShardReader(tmp_path).verify()
    with pytest.raises(ChecksumError):
        ShardReader(tmp_path).get("img/005.jpg")
    with pytest.raises(ChecksumError):
        list(ShardReader(tmp_path))
    if which == "npz":  # the Parquet rows are intact: the other shards still read
        ShardReader(tmp_path).get("img/000.jpg")


def test_dense_arrays_in_parquet_are_their_shape_then_an_lz4_frame():
    a = np.array([[1, 2, 3], [4, 5, 65535]], np.uint16)
    data = encode_dense(a)
    assert data[:8] == bytes([2, 0, 0, 0, 3, 0, 0, 0])  # (2, 3) as little-endian int32
    assert data[8:12] == bytes([0x04, 0x22, 0x4D, 0x18])  # the LZ4 frame magic number 0x184D2204
    assert DENSE_CODEC.decompress(data[8:], decompressed_size=12, asbytes=True) == bytes([1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 255, 255])
    back = decode_dense(data, "uint16", 2)
    assert back.dtype == np.uint16 and back.flags.writeable and back.tolist() == a.tolist()
    assert decode_dense(encode_dense(np.zeros((0, 4, 2), np.float32)), "float32", 3).shape == (0, 4, 2)
    with pytest.raises(SchemaError, match="dense_storage"):
        Schema("bad", 1, FIELDS, dense_storage="hdf5")


def test_missing_shard_is_reported(tmp_path):
    _write(tmp_path)
    (tmp_path / "shard-00002.parquet").unlink()
    with pytest.raises(StoreError, match="missing"):
        ShardReader(tmp_path).verify()


def test_unknown_schema_version_is_refused(tmp_path):
    _write(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["schema"]["version"] = 99
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UnknownSchemaVersionError, match="version 99"):
        ShardReader(tmp_path)
    manifest["schema"]["name"] = "no_such_annotation"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UnknownSchemaVersionError, match="no_such_annotation"):
        ShardReader(tmp_path)


def test_packed_shards_of_the_npz_layout_ask_for_a_repack():
    assert packed_schema({}).dense_storage == "parquet"
    with pytest.raises(UnknownSchemaVersionError, match="packed schema version 1 .* re-run `vtonpipe pack`"):
        packed_schema({}, 1)


def test_writer_refuses_other_schema_and_drops_orphans(tmp_path):
    _write(tmp_path, n=4)
    (tmp_path / "shard-00007.parquet").write_bytes(b"half written")
    (tmp_path / ".shard-00008.parquet.x.tmp").write_bytes(b"tmp")
    writer = ShardWriter(tmp_path, SCHEMA)
    assert not (tmp_path / "shard-00007.parquet").exists()
    assert not (tmp_path / ".shard-00008.parquet.x.tmp").exists()
    assert writer.write_shard([_record(20, np.random.default_rng(1))]).file == "shard-00001.parquet"
    other = register_schema(Schema("test_store_other", 1, (Field("item_id", "string"),), key=("item_id",)))
    with pytest.raises(StoreError, match="holds schema"):
        ShardWriter(tmp_path, other)


def test_records_are_validated(tmp_path):
    writer = ShardWriter(tmp_path, SCHEMA)
    good = _record(1, np.random.default_rng(0))
    with pytest.raises(SchemaError, match="points"):
        writer.write_shard([{**good, "points": np.zeros((3, 3))}])
    with pytest.raises(SchemaError, match="unknown fields"):
        writer.write_shard([{**good, "extra": 1}])
    with pytest.raises(SchemaError, match="not nullable"):
        writer.write_shard([{**good, "score": None}])
    with pytest.raises(SchemaError, match="float to uint8"):
        writer.write_shard([{**good, "map": good["map"].astype(np.float32)}])
    assert writer.shards == []


def test_not_a_shard_directory(tmp_path):
    with pytest.raises(StoreError, match="manifest.json"):
        ShardReader(tmp_path)
