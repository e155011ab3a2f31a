"""Built-in annotators. Importing this package imports every module in it, which registers each
annotator spec and backend (one module per annotator or backend family)."""

import importlib
import pkgutil

from .base import (
    AnnotationFailure,
    AnnotatorSpec,
    Backend,
    BackendUnavailableError,
    ImageItem,
    MissingWeightsError,
    PairItem,
    Requirements,
    WeightFile,
    annotator_specs,
    backends_of,
    get_annotator,
    get_backend,
    register_annotator,
    register_backend,
)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "AnnotationFailure",
    "AnnotatorSpec",
    "Backend",
    "BackendUnavailableError",
    "ImageItem",
    "MissingWeightsError",
    "PairItem",
    "Requirements",
    "WeightFile",
    "annotator_specs",
    "backends_of",
    "get_annotator",
    "get_backend",
    "register_annotator",
    "register_backend",
]
