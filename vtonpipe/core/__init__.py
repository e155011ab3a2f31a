"""The contracts every layer builds on: schemas and their typed records, annotator specs,
backends, the items and context they receive, failures and errors, weight-file requirements,
params hashing and the registry helper. Nothing here imports from another vtonpipe layer
except the utilities (``config``, ``io``); docs/ARCHITECTURE.md draws the layers."""

from .backend import Backend
from .context import Context
from .errors import AnnotationFailure, BackendUnavailableError, MissingWeightsError
from .params import canonical_json, params_hash
from .registry import Registry, import_submodules
from .schema import Field, Schema, SchemaError, UnknownSchemaVersionError
from .spec import PAIR_ROLES, ROLE_KIND, AnnotatorSpec, ImageItem, Level, PairItem
from .weights import CheckpointFile, Requirements, WeightFile

__all__ = [
    "PAIR_ROLES",
    "ROLE_KIND",
    "AnnotationFailure",
    "AnnotatorSpec",
    "Backend",
    "CheckpointFile",
    "BackendUnavailableError",
    "Context",
    "Field",
    "ImageItem",
    "Level",
    "MissingWeightsError",
    "PairItem",
    "Registry",
    "Requirements",
    "Schema",
    "SchemaError",
    "UnknownSchemaVersionError",
    "WeightFile",
    "canonical_json",
    "import_submodules",
    "params_hash",
]
