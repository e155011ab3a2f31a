"""Annotator specs (what is produced) and the items handed to backends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping

import numpy as np

from .schema import Schema

Level = Literal["image", "pair"]

#: a pair's roles and the pairs-table column holding each role's image id
PAIR_ROLES: dict[str, str] = {"source": "source_image_id", "target": "target_image_id", "garment": "garment_image_id"}
#: the image kind each role's image has
ROLE_KIND: dict[str, str] = {"source": "person", "target": "person", "garment": "garment"}


@dataclass(frozen=True)
class AnnotatorSpec:
    """What an annotator produces.

    ``level``: one row per image or per pair. ``kinds``: the image kinds it reads (image level).
    ``roles``: the pair roles whose images a pair-level annotator reads; it applies only to pairs
    that have an image in every one of them (``smpl_flow`` needs a source and a target person, so
    single-pose datasets have none). ``schema``: its rows (its payload is the backends' record).
    """

    name: str
    level: Level
    schema: Schema
    default_backend: str
    kinds: tuple[str, ...] = ("person",)
    roles: tuple[str, ...] = ("source",)
    doc: str = ""

    @property
    def record_type(self) -> type:
        """The typed record backends return (the schema's payload)."""
        return self.schema.record_type

    @property
    def id_column(self) -> str:
        return self.schema.key[0]

    def applies_to(self, pair: Mapping[str, Any]) -> bool:
        """Whether this pair-level annotator covers ``pair`` (a pairs-table row)."""
        return all(pair[PAIR_ROLES[r]] for r in self.roles)


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
