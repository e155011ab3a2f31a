"""The annotator framework: annotator specs, interchangeable backends, and their requirements.

An *annotator* (``keypoints``, ``parsing``, ``densepose``...) fixes what is produced: its level
(per image or per pair), which image kinds it reads, which other annotations it needs, and its
output :class:`~vtonpipe.schemas.Schema`. A *backend* (``mediapipe``, ``schp``, ``rcnn``...)
produces it. Backends declare the packages and weight files they need, so ``vtonpipe doctor``
can say which are usable and what to install where; a backend whose requirements are missing
raises :class:`BackendUnavailableError` naming them, never falls back silently.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping, Sequence

import numpy as np

from ..config import weights_dir
from ..io import sha256_file
from ..schemas import Schema

if TYPE_CHECKING:
    from ..pipeline.context import AnnotationContext


class BackendUnavailableError(RuntimeError):
    """A backend whose packages or weight files are missing."""


class MissingWeightsError(BackendUnavailableError):
    """A weight file the user must bring is not where vtonpipe looks for it."""


class AnnotationFailure(Exception):
    """Raised by a backend for one item it cannot annotate (no person, fit diverged...).

    ``reason`` is a short machine-readable code recorded in the failures table.
    """

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason
        self.message = message or reason


@dataclass(frozen=True)
class WeightFile:
    """A model file the user brings. It is looked up at ``<weights_dir>/<relpath>``."""

    relpath: str
    source: str
    sha256: str | None = None
    description: str = ""

    @property
    def path(self) -> Path:
        return weights_dir() / self.relpath

    def problem(self) -> str | None:
        if self.path.exists():
            return None
        checksum = f"sha256 {self.sha256}" if self.sha256 else "no pinned sha256 (vtonpipe records the one it finds)"
        return (
            f"missing weight file {Path(self.relpath).name} ({self.description or 'model weights'}): "
            f"put it at {self.path} (set VTONPIPE_WEIGHTS to use another folder); "
            f"get it from {self.source}; {checksum}"
        )

    def require(self, *, check_sha256: bool = True) -> Path:
        """The file's path; :class:`MissingWeightsError` if absent or (when pinned) its sha256 differs."""
        problem = self.problem()
        if problem:
            raise MissingWeightsError(problem)
        if check_sha256 and self.sha256:
            got = sha256_file(self.path)
            if got != self.sha256:
                raise MissingWeightsError(f"{self.path} has sha256 {got}, expected {self.sha256}: wrong or corrupt download")
        return self.path


@dataclass(frozen=True)
class CheckpointFile(WeightFile):
    """A weight file at a path the backend's params give (a checkpoint vtonpipe trains), not under
    the weights folder: ``relpath`` is that path as given (absolute, or relative to the working
    directory), ``source`` says what writes it. Recorded in the provenance like any weight file
    (by that path, with its sha256)."""

    @property
    def path(self) -> Path:
        return Path(self.relpath).expanduser()

    def problem(self) -> str | None:
        if self.path.is_file():
            return None
        return f"missing checkpoint {self.path} ({self.description or 'trained weights'}): {self.source}"


@dataclass(frozen=True)
class Requirements:
    """What a backend needs: importable modules and weight files."""

    packages: tuple[str, ...] = ()
    weights: tuple[WeightFile, ...] = ()

    def package_problems(self) -> list[str]:
        return [f"missing Python package {p!r} (pip install {p})" for p in self.packages if importlib.util.find_spec(p) is None]

    def weight_problems(self) -> list[str]:
        return [p for w in self.weights if (p := w.problem())]

    def problems(self) -> list[str]:
        return self.package_problems() + self.weight_problems()


def params_hash(obj: Any) -> str:
    """Stable 16-hex-digit hash of a JSON-able object."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:16]


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_jsonable)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-able")


@dataclass(frozen=True)
class AnnotatorSpec:
    """What an annotator produces. ``kinds``: the image kinds it reads (image level)."""

    name: str
    level: Literal["image", "pair"]
    schema: Schema
    default_backend: str
    kinds: tuple[str, ...] = ("person",)
    doc: str = ""


@dataclass
class ImageItem:
    """One image handed to a backend. ``image``: RGB uint8 (H, W, 3), (x, y) pixel frame."""

    image_id: str
    sha256: str
    kind: str
    image: np.ndarray
    category: str | None = None


@dataclass
class PairItem:
    """One pair handed to a pair-level backend (images are fetched through the context)."""

    pair_id: str
    source_image_id: str
    target_image_id: str | None
    garment_image_id: str | None
    split: str


class Backend(ABC):
    """A way to produce one annotator's records.

    Subclasses set ``annotator``, ``name``, ``version`` (bump it whenever outputs change),
    ``requirements`` and ``default_params``; they load models in :meth:`setup` (once per worker)
    and implement :meth:`annotate`. ``annotate`` returns one entry per item: a dict of the
    annotator's schema fields (without id/provenance columns) or an :class:`AnnotationFailure`.
    """

    annotator: ClassVar[str]
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    requirements: ClassVar[Requirements] = Requirements()
    default_params: ClassVar[Mapping[str, Any]] = {}
    doc: ClassVar[str] = ""

    def __init__(self, params: Mapping[str, Any] | None = None, *, device: str = "cpu"):
        params = dict(params or {})
        unknown = set(params) - set(self.default_params)
        if unknown:
            raise ValueError(
                f"{self.annotator}/{self.name}: unknown params {sorted(unknown)}; "
                f"known: {sorted(self.default_params)}"
            )
        self.params: dict[str, Any] = {**self.default_params, **params}
        self.device = device
        self._ready = False

    def weight_files(self) -> tuple[WeightFile, ...]:
        """The weight files this configuration loads (default: all of ``requirements.weights``);
        override when the params choose among several."""
        return self.requirements.weights

    def problems(self) -> list[str]:
        """Every missing requirement of this configuration, as sentences (empty when usable)."""
        return self.requirements.package_problems() + [p for w in self.weight_files() if (p := w.problem())]

    def check_available(self) -> None:
        """Raise :class:`BackendUnavailableError` listing every missing requirement
        (:class:`MissingWeightsError` when only weight files are missing)."""
        packages = self.requirements.package_problems()
        problems = self.problems()
        if problems:
            error = BackendUnavailableError if packages else MissingWeightsError
            raise error(f"backend {self.annotator}/{self.name} is not usable:\n  - " + "\n  - ".join(problems))

    def ensure_setup(self) -> None:
        if not self._ready:
            self.check_available()
            self.setup()
            self._ready = True

    def setup(self) -> None:
        """Load models (called once per worker process, before the first batch)."""

    @abstractmethod
    def annotate(self, items: Sequence[Any], ctx: "AnnotationContext") -> list[dict[str, Any] | AnnotationFailure]:
        """One record dict or AnnotationFailure per item, in order."""

    #: upstream annotators this backend reads through ``ctx.annotation`` (they must run first);
    #: a backend whose needs depend on its params may override it with a property
    requires: tuple[str, ...] = ()
    #: pair-level backends: the pairs-table columns an item must have (others are not covered)
    pair_roles: ClassVar[tuple[str, ...]] = ("source_image_id",)

    def input_sha256(self, item_id: str, ctx: "AnnotationContext") -> str:
        """sha256 of everything this item's result depends on besides params.

        Default: the image bytes (image level) or the images of ``pair_roles`` (pair level).
        """
        if get_annotator(self.annotator).level == "image":
            return ctx.image_sha256(item_id)
        pair = ctx.pair(item_id)
        shas = [ctx.image_sha256(pair[r]) for r in self.pair_roles]
        return hashlib.sha256("|".join(shas).encode()).hexdigest()

    def weights_sha256(self) -> dict[str, str]:
        """sha256 of each weight file this backend loads (recorded as provenance)."""
        return {w.relpath: (w.sha256 or sha256_file(w.path)) for w in self.weight_files() if w.path.exists()}

    def packages(self) -> dict[str, str]:
        """Versions of the required packages (provenance)."""
        from importlib.metadata import PackageNotFoundError, version

        out = {}
        for p in self.requirements.packages:
            try:
                out[p] = version(p)
            except PackageNotFoundError:
                out[p] = "unknown"
        return out


_ANNOTATORS: dict[str, AnnotatorSpec] = {}
_BACKENDS: dict[tuple[str, str], type[Backend]] = {}


def register_annotator(spec: AnnotatorSpec) -> AnnotatorSpec:
    if spec.name in _ANNOTATORS and _ANNOTATORS[spec.name] != spec:
        raise ValueError(f"annotator {spec.name!r} registered twice")
    _ANNOTATORS[spec.name] = spec
    return spec


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Class decorator: make a backend selectable by ``(cls.annotator, cls.name)``."""
    key = (cls.annotator, cls.name)
    if key in _BACKENDS and _BACKENDS[key] is not cls:
        raise ValueError(f"backend {key} registered twice")
    _BACKENDS[key] = cls
    return cls


def annotator_specs() -> dict[str, AnnotatorSpec]:
    _load_builtin()
    return dict(_ANNOTATORS)


def get_annotator(name: str) -> AnnotatorSpec:
    _load_builtin()
    try:
        return _ANNOTATORS[name]
    except KeyError:
        raise KeyError(f"unknown annotator {name!r}; known: {sorted(_ANNOTATORS)}") from None


def backends_of(annotator: str) -> dict[str, type[Backend]]:
    _load_builtin()
    return {b: cls for (a, b), cls in sorted(_BACKENDS.items()) if a == annotator}


def get_backend(annotator: str, backend: str | None = None) -> type[Backend]:
    spec = get_annotator(annotator)
    backend = backend or spec.default_backend
    try:
        return _BACKENDS[(annotator, backend)]
    except KeyError:
        raise KeyError(f"unknown backend {backend!r} for {annotator}; known: {sorted(backends_of(annotator))}") from None


def _load_builtin() -> None:
    import vtonpipe.annotators  # noqa: F401  (imports every built-in annotator module)
