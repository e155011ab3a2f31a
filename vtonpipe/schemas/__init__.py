"""Versioned Arrow schemas of every table and annotation (see :mod:`vtonpipe.schemas.core`)."""

from .annotations import PROVENANCE_FIELDS, annotation_schema, id_column
from .core import Field, Schema, SchemaError, UnknownSchemaVersionError, get_schema, register_schema
from .tables import FAILURES, IMAGES, PAIRS
from . import packed  # noqa: F401

# One module per annotation schema; importing each registers it so readers know it.
import importlib as _importlib  # noqa: E402
import pkgutil as _pkgutil  # noqa: E402

for _module in _pkgutil.iter_modules(__path__):
    if _module.name not in ("core", "annotations", "tables", "packed"):
        _importlib.import_module(f"{__name__}.{_module.name}")

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
    "register_schema",
]
