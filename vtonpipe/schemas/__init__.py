"""Versioned Arrow schemas of every table and annotation, one module per annotation (the schema
machinery is :mod:`vtonpipe.core.schema`). Importing a module registers its schema; readers look
schemas up with :func:`get_schema`, which loads every module of this package first."""

from .registry import SCHEMAS, get_schema, register_schema

__all__ = ["SCHEMAS", "get_schema", "register_schema"]
