"""The registry of every schema by (name, version); readers refuse what it does not hold."""

from __future__ import annotations

from ..core.registry import Registry
from ..core.schema import Schema, SchemaError, UnknownSchemaVersionError

#: (name, version) -> Schema; the modules of vtonpipe.schemas register theirs on import
SCHEMAS: Registry[tuple[str, int], Schema] = Registry("schema", builtins="vtonpipe.schemas", skip=("registry",))


def register_schema(schema: Schema) -> Schema:
    """Make ``schema`` known to readers. Registering the same name/version twice must be identical."""
    try:
        return SCHEMAS.add((schema.name, schema.version), schema)
    except ValueError:
        raise SchemaError(f"schema {schema.name} v{schema.version} registered twice with different fields") from None


def get_schema(name: str, version: int) -> Schema:
    """The registered schema; :class:`UnknownSchemaVersionError` for an unknown name or version."""
    if (name, version) in SCHEMAS:
        return SCHEMAS.get((name, version))
    versions = sorted(v for n, v in SCHEMAS.keys() if n == name)
    if not versions:
        raise UnknownSchemaVersionError(f"unknown schema {name!r} (known: {sorted({n for n, _ in SCHEMAS.keys()})})")
    raise UnknownSchemaVersionError(
        f"schema {name!r} version {version} is not known to this vtonpipe "
        f"(known versions: {versions}); upgrade vtonpipe or rebuild the shards"
    )
