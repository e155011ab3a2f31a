"""The registries of annotator specs and of their backends (the modules of this package register
theirs on import; a lookup imports them all first)."""

from __future__ import annotations

from ..core.backend import Backend
from ..core.registry import Registry
from ..core.spec import AnnotatorSpec

ANNOTATORS: Registry[str, AnnotatorSpec] = Registry("annotator", builtins="vtonpipe.annotators", skip=("registry",))
BACKENDS: Registry[tuple[str, str], type[Backend]] = Registry("backend", builtins="vtonpipe.annotators", skip=("registry",))


def register_annotator(spec: AnnotatorSpec) -> AnnotatorSpec:
    return ANNOTATORS.add(spec.name, spec)


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Class decorator: make a backend selectable by ``(cls.spec.name, cls.name)``."""
    return BACKENDS.add((cls.spec.name, cls.name), cls)


def annotator_specs() -> dict[str, AnnotatorSpec]:
    return dict(ANNOTATORS.items())


def get_annotator(name: str) -> AnnotatorSpec:
    return ANNOTATORS.get(name)


def backends_of(annotator: str) -> dict[str, type[Backend]]:
    return {b: cls for (a, b), cls in BACKENDS.items() if a == annotator}


def get_backend(annotator: str, backend: str | None = None) -> type[Backend]:
    """The backend class ``backend`` of ``annotator`` (its default backend when None)."""
    backend = backend or get_annotator(annotator).default_backend
    if (annotator, backend) not in BACKENDS:
        raise KeyError(f"unknown backend {backend!r} for {annotator}; known: {sorted(backends_of(annotator))}")
    return BACKENDS.get((annotator, backend))
