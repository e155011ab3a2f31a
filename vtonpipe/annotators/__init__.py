"""Built-in annotators. Importing this package registers every annotator and backend."""

from . import garment_mask  # noqa: F401
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
