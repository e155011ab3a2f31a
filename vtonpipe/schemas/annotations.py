"""Helpers shared by every annotation schema: the key and provenance columns each row carries.

Each annotator module defines its own schema with :func:`annotation_schema`; the row key is
``(item id, input_sha256, annotator, backend, version, params_hash)`` so that work is never
repeated for the same input and configuration.
"""

from __future__ import annotations

from ..core.schema import Field, Schema
from ..core.spec import Level
from .registry import register_schema

PROVENANCE_FIELDS = (
    Field("input_sha256", "string", doc="sha256 of the inputs: the image bytes, or of the images a pair/row depends on"),
    Field("annotator", "string"),
    Field("backend", "string"),
    Field("version", "string", doc="backend implementation version"),
    Field("params_hash", "string", doc="sha256[:16] of the backend params and upstream provenance"),
    Field("params", "string", doc="the backend params as canonical JSON"),
)

ID_FIELD = {
    "image": Field("image_id", "string"),
    "pair": Field("pair_id", "string"),
}


def id_column(level: Level) -> str:
    return ID_FIELD[level].name


def annotation_schema(name: str, version: int, level: Level, fields: tuple[Field, ...], doc: str = "") -> Schema:
    """Register and return the schema of annotator ``name``: id + provenance + ``fields``; the
    record backends return (:attr:`Schema.record_type`) holds ``fields``."""
    key_fields = (ID_FIELD[level], *PROVENANCE_FIELDS)
    return register_schema(
        Schema(
            name=name,
            version=version,
            fields=(*key_fields, *fields),
            key=tuple(f.name for f in key_fields),
            doc=doc,
            payload=tuple(f.name for f in fields),
        )
    )
