"""Built-in annotators: one module per annotator spec (``keypoints``, ``parsing``, ...) and per
backend family (``parsing_geometric``, ``densepose_rcnn``, ...). The contracts they implement
are in :mod:`vtonpipe.core`; the registries are :mod:`vtonpipe.annotators.registry`."""

from .registry import (
    ANNOTATORS,
    BACKENDS,
    annotator_specs,
    backends_of,
    get_annotator,
    get_backend,
    register_annotator,
    register_backend,
)

__all__ = ["ANNOTATORS", "BACKENDS", "annotator_specs", "backends_of", "get_annotator", "get_backend", "register_annotator", "register_backend"]
