"""Backends: interchangeable ways to produce one annotator's records.

A backend declares its annotator (``spec``), a ``name`` and ``version`` (bump it whenever outputs
change: it is part of every row's key), the packages and weight files it needs, its
``default_params`` and the upstream annotators it reads (``requires``). It loads models in
:meth:`Backend.setup` (once per worker) and computes records in :meth:`Backend.annotate_one`
(one item) or, for backends that batch, :meth:`Backend.annotate`. The pipeline calls
:meth:`Backend.run`, which isolates failures per item and checks every record against the schema.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

from ..io import sha256_file
from .errors import AnnotationFailure, BackendUnavailableError, MissingWeightsError
from .schema import SchemaError
from .spec import PAIR_ROLES, AnnotatorSpec, ImageItem, PairItem
from .weights import Requirements, WeightFile

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger(__name__)

Item = ImageItem | PairItem


class Backend:
    """A way to produce the records of annotator ``spec``."""

    spec: ClassVar[AnnotatorSpec]
    name: ClassVar[str]
    version: ClassVar[str] = "1"
    requirements: ClassVar[Requirements] = Requirements()
    default_params: ClassVar[Mapping[str, Any]] = {}
    doc: ClassVar[str] = ""
    #: upstream annotators this backend reads through ``ctx.annotation`` (they must run first);
    #: a backend whose needs depend on its params overrides it with a property
    requires: tuple[str, ...] = ()

    def __init__(self, params: Mapping[str, Any] | None = None, *, device: str = "cpu"):
        params = dict(params or {})
        unknown = set(params) - set(self.default_params)
        if unknown:
            raise ValueError(f"{self.spec.name}/{self.name}: unknown params {sorted(unknown)}; known: {sorted(self.default_params)}")
        self.params: dict[str, Any] = {**self.default_params, **params}
        self.device = device
        self._ready = False

    # -- availability ------------------------------------------------------------------------
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
            raise error(f"backend {self.spec.name}/{self.name} is not usable:\n  - " + "\n  - ".join(problems))

    def ensure_setup(self) -> None:
        if not self._ready:
            self.check_available()
            self.setup()
            self._ready = True

    def setup(self) -> None:
        """Load models (called once per worker process, before the first batch)."""

    # -- computing -----------------------------------------------------------------------------
    def annotate(self, items: Sequence[Item], ctx: "Context") -> list[Any]:
        """One record (``spec.record_type``) or AnnotationFailure per item, in order.

        Default: :meth:`annotate_one` on each item, an AnnotationFailure it raises kept as that
        item's result. Backends that process a batch at once override this instead."""
        out: list[Any] = []
        for item in items:
            try:
                out.append(self.annotate_one(item, ctx))
            except AnnotationFailure as f:
                out.append(f)
        return out

    def annotate_one(self, item: Item, ctx: "Context") -> Any:
        """The record of one item; raise AnnotationFailure for an item it cannot annotate."""
        raise NotImplementedError(f"{type(self).__name__} implements neither annotate_one nor annotate")

    def run(self, items: Sequence[Item], ctx: "Context") -> list[Any]:
        """:meth:`annotate` made safe: models set up, an exception that breaks the batch retried
        item by item and recorded as ``error:<Type>`` for the item that raises it, and every
        record checked against the schema (``schema_error`` otherwise). Returns one record or
        AnnotationFailure per item."""
        self.ensure_setup()
        try:
            results = self.annotate(items, ctx)
            if len(results) != len(items):
                raise RuntimeError(f"backend returned {len(results)} results for {len(items)} items")
        except Exception:  # isolate the item that breaks the batch
            results = []
            for item in items:
                try:
                    results.extend(self.annotate([item], ctx))
                except AnnotationFailure as f:
                    results.append(f)
                except Exception as e:  # noqa: BLE001 - recorded per item, never lost
                    log.debug("item failed: %s", traceback.format_exc())
                    results.append(AnnotationFailure(f"error:{type(e).__name__}", str(e)[:2000]))
        return [r if isinstance(r, AnnotationFailure) else self._checked(r) for r in results]

    def _checked(self, record: Any) -> Any:
        schema = self.spec.schema
        try:
            schema.validate_payload(schema.payload_of(record))
        except SchemaError as e:
            return AnnotationFailure("schema_error", str(e))
        return record

    # -- keys and provenance -------------------------------------------------------------------
    def input_sha256(self, item_id: str, ctx: "Context") -> str:
        """sha256 of everything this item's result depends on besides params.

        Default: the image bytes (image level) or the images of the annotator's roles (pair level).
        """
        if self.spec.level == "image":
            return ctx.image_sha256(item_id)
        pair = ctx.pair(item_id)
        shas = [ctx.image_sha256(pair[PAIR_ROLES[r]]) for r in self.spec.roles]
        return hashlib.sha256("|".join(shas).encode()).hexdigest()

    def weights_sha256(self) -> dict[str, str]:
        """sha256 of each weight file this backend loads (recorded as provenance)."""
        return {w.relpath: (w.sha256 or sha256_file(w.path)) for w in self.weight_files() if w.path.exists()}

    def provenance(self) -> dict[str, Any]:
        """What else the stage's manifest records of this run (default: nothing); called after
        the items' ``input_sha256`` (an importing backend lists the files it read)."""
        return {}

    def packages(self) -> dict[str, str]:
        """Versions of the required packages (provenance)."""
        out = {}
        for p in self.requirements.packages:
            try:
                out[p] = package_version(p)
            except PackageNotFoundError:
                out[p] = "unknown"
        return out
