"""Schema of packed training shards: one row per pair with every annotation of its images.

The packed schema is composed from the component schemas it was built from (recorded in the
manifest as ``components``), so a reader rebuilds it exactly and refuses unknown component
versions. Columns are ``<role>.<annotator>.<field>`` with role ``source``, ``target``,
``garment`` (image-level annotations) or ``pair`` (pair-level ones).
"""

from __future__ import annotations

from typing import Any, Mapping

from .core import Field, Schema, UnknownSchemaVersionError, get_schema

NAME = "packed"
VERSION = 1
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
            Field(f"{role}.image", "binary", nullable=role != "source", doc="the image file's bytes as in the dataset"),
        )
    ),
)


def packed_schema(components: Mapping[str, Mapping[str, Any]], version: int = VERSION) -> Schema:
    """The packed schema for ``components``: ``{"<role>.<annotator>": {"name": ..., "version": ...}}``."""
    if version != VERSION:
        raise UnknownSchemaVersionError(f"packed schema version {version} is not known (known: [{VERSION}])")
    fields = list(_BASE_FIELDS)
    for prefix in sorted(components):
        comp = get_schema(components[prefix]["name"], int(components[prefix]["version"]))
        id_col = comp.key[0]
        for f in comp.fields:
            if f.name != id_col:
                fields.append(Field(f"{prefix}.{f.name}", f.dtype, f.shape, f.dense, True, f.doc))
    return Schema(NAME, VERSION, tuple(fields), key=("pair_id",), doc="pair samples for training")


def unflatten(row: Mapping[str, Any]) -> dict[str, Any]:
    """``{"source.keypoints.coco18": x}`` -> ``{"source": {"keypoints": {"coco18": x}}}``."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        node = out
        *path, leaf = key.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out
