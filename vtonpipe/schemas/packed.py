"""Schema of packed training shards: one row per pair with every annotation of its images.

The packed schema is composed from the component schemas it was built from (recorded in the
manifest as ``components``), so a reader rebuilds it exactly and refuses unknown component
versions. Columns are ``<role>.<annotator>.<field>`` with role ``source``, ``target``,
``garment`` (image-level annotations) or ``pair`` (pair-level ones); a reader gets a row as a
:class:`PackedSample` of typed records (``ShardReader.record``).

Version 2 stores the dense maps (parsing, IUV, masks, flow, visibility) in Parquet columns of
their own, one LZ4 frame per map (``dense_storage="parquet"``, :func:`vtonpipe.core.schema.encode_dense`),
instead of version 1's deflate NPZ beside each shard: the training loader reads only the columns
it needs and decodes one sample's maps several times faster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..core.schema import Field, Schema, UnknownSchemaVersionError
from .registry import get_schema

NAME = "packed"
VERSION = 2
ROLES = ("source", "target", "garment")

_BASE_FIELDS = (
    Field("pair_id", "string"),
    Field("split", "string"),
    Field("dataset", "string"),
    Field("paired", "bool", nullable=True),
    *(
        f
        for role in ROLES
        for f in (
            Field(f"{role}.image_id", "string", nullable=role != "source"),
            Field(f"{role}.image", "binary", nullable=True, doc="the image file's bytes as in the dataset (null without one, or packed with --no-images)"),
        )
    ),
)


@dataclass(frozen=True)
class PackedSchema(Schema):
    """The packed schema of a build, with the component schemas it was composed from."""

    components: tuple[tuple[str, Schema], ...] = ()

    def record(self, row: Mapping[str, Any]) -> "PackedSample":
        """The typed sample of a packed row."""
        return PackedSample.from_row(row, dict(self.components))


def packed_schema(components: Mapping[str, Mapping[str, Any]], version: int = VERSION) -> PackedSchema:
    """The packed schema for ``components``: ``{"<role>.<annotator>": {"name": ..., "version": ...}}``."""
    if version != VERSION:
        raise UnknownSchemaVersionError(f"packed schema version {version} is not known (known: [{VERSION}]): re-run `vtonpipe pack` to write the shards anew")
    fields = list(_BASE_FIELDS)
    schemas = []
    for prefix in sorted(components):
        comp = get_schema(components[prefix]["name"], int(components[prefix]["version"]))
        schemas.append((prefix, comp))
        for f in comp.fields:
            if f.name != comp.key[0]:
                fields.append(Field(f"{prefix}.{f.name}", f.dtype, f.shape, f.dense, True, f.doc))
    return PackedSchema(
        NAME, VERSION, tuple(fields), key=("pair_id",), doc="pair samples for training", payload=(), dense_storage="parquet", components=tuple(schemas)
    )


@dataclass(frozen=True)
class RoleSample:
    """One role of a packed pair: its image id, the image file's bytes, and the record of each
    annotation of that image (None where it is absent: not applicable to this pair)."""

    image_id: str | None
    image: bytes | None
    annotations: Mapping[str, Any]

    def __getitem__(self, annotator: str) -> Any:
        """The record of ``annotator`` (KeyError if the build packed no such stage for this role)."""
        return self.annotations[annotator]


@dataclass(frozen=True)
class PackedSample:
    """A packed pair: ``source``, ``target``, ``garment`` (:class:`RoleSample`) and ``pair``
    (pair-level annotator -> record or None), e.g. ``sample.target["densepose"].iuv``,
    ``sample.pair["smpl_flow"].flow``."""

    pair_id: str
    split: str
    dataset: str
    paired: bool | None
    source: RoleSample
    target: RoleSample
    garment: RoleSample
    pair: Mapping[str, Any]

    @classmethod
    def from_row(cls, row: Mapping[str, Any], components: Mapping[str, Schema]) -> "PackedSample":
        """Split a packed row into records; a component whose columns are all null is None."""
        found: dict[str, dict[str, Any]] = {role: {} for role in (*ROLES, "pair")}
        for prefix, comp in components.items():
            role, annotator = prefix.split(".", 1)
            values = {n: row.get(f"{prefix}.{n}") for n in comp.payload}
            found[role][annotator] = None if all(v is None for v in values.values()) else comp.record_type(**values)
        roles = {r: RoleSample(row.get(f"{r}.image_id"), row.get(f"{r}.image"), found[r]) for r in ROLES}
        return cls(row["pair_id"], row["split"], row["dataset"], row["paired"], pair=found["pair"], **roles)
