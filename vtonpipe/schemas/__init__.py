"""Versioned Arrow schemas of every table and annotation (see :mod:`vtonpipe.schemas.core`)."""

from .annotations import PROVENANCE_FIELDS, annotation_schema, id_column
from .core import Field, Schema, SchemaError, UnknownSchemaVersionError, get_schema, known_schemas, register_schema
from .tables import FAILURES, IMAGES, PAIRS

# One module per annotation; importing registers the schema so readers know it.
from . import garment_mask  # noqa: E402,F401  isort: skip

__all__ = [
    "FAILURES",
    "IMAGES",
    "PAIRS",
    "PROVENANCE_FIELDS",
    "Field",
    "Schema",
    "SchemaError",
    "UnknownSchemaVersionError",
    "annotation_schema",
    "get_schema",
    "id_column",
    "known_schemas",
    "register_schema",
]
