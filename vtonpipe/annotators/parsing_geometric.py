"""``parsing`` backend ``geometric``: an offline human parser without a learnt model.

LIP labels from the person mask and face oval (``person_mask``), body parts from the keypoints
(``body_parts: keypoints``) or from the DensePose part map of the fitted body (``body_parts:
densepose``), and colour models of the person's skin, hair, garments and shoes, the top guided
by the paired in-shop garment (``garment_mask`` of the images ``ctx.garments_of`` gives) and the
dataset's garment category when it has one. The algorithm and its rules are documented in
:mod:`vtonpipe.models.classical.geometric_parsing`. Labels written: 0, 2, 5, 6, 9, 10, 12, 13, 14..19.

A person without keypoints or person mask upstream fails with ``missing_upstream``; keypoints
without the neck and both shoulders fail with ``missing_keypoints``. A paired garment image
whose garment mask failed upstream is left out (the person is parsed without it).
``input_sha256`` covers the person image and the paired garment images (bytes and category).

Accuracy per class on held-out and DAG samples: docs/MEASUREMENTS.md (``vtonpipe bench accuracy``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ..core import AnnotationFailure, Backend, Context, ImageItem, Requirements
from ..models.classical.geometric_parsing import (
    MissingKeypointsError,
    garment_colours,
    parse_person,
)
from ..models.landmarks.geometric import NoGarmentError, garment_kind
from ..schemas.parsing import ParsingRecord
from .parsing import SPEC as PARSING_SPEC
from .parsing import parsing_record
from .registry import register_backend

BODY_PARTS = ("keypoints", "densepose")


@register_backend
class GeometricParsing(Backend):
    spec = PARSING_SPEC
    name = "geometric"
    version = "6"
    requirements = Requirements(packages=("cv2", "scipy"))
    default_params = {"body_parts": "keypoints", "min_person_fraction": 0.01}
    doc = "Offline: person mask + face oval, body parts from keypoints or DensePose, Lab colour models (skin, hair, in-shop garment); lightness alone on grayscale."

    def __init__(self, params: Mapping[str, Any] | None = None, *, device: str = "cpu"):
        super().__init__(params, device=device)
        if self.params["body_parts"] not in BODY_PARTS:
            raise ValueError(f"parsing/geometric: body_parts must be one of {BODY_PARTS}, not {self.params['body_parts']!r}")

    @property
    def requires(self) -> tuple[str, ...]:
        base = ("keypoints", "person_mask", "garment_mask")
        return base + ("densepose",) if self.params["body_parts"] == "densepose" else base

    def input_sha256(self, item_id: str, ctx: Context) -> str:
        """sha256 over the bytes hash and category of the person image and of its paired garments."""
        parts = [f"{ctx.image_sha256(i)}:{ctx.images[i].get('category')}" for i in [item_id, *sorted(ctx.garments_of(item_id))]]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def annotate_one(self, item: ImageItem, ctx: Context) -> ParsingRecord:
        keypoints = ctx.annotation("keypoints", item.image_id).keypoints
        person = ctx.annotation("person_mask", item.image_id)
        densepose_i = ctx.annotation("densepose", item.image_id).iuv[..., 0] if self.params["body_parts"] == "densepose" else None
        garments, kinds, category = [], [], item.category
        for g in sorted(ctx.garments_of(item.image_id)):
            if ctx.annotation_key("garment_mask", g) is None:
                continue
            mask, image = ctx.annotation("garment_mask", g).mask, ctx.load_image(g)
            garments.append(garment_colours(image, mask))
            try:
                kinds.append(garment_kind(mask, image))  # None: unreadable, the person's colours decide
            except NoGarmentError:
                pass
            category = category or ctx.images[g].get("category")
        try:
            lip = parse_person(
                item.image,
                person.mask,
                keypoints,
                face_mask=person.face_mask,
                densepose_i=densepose_i,
                garments=garments,
                garment_kind=next((k for k in kinds if k in ("dress", "jumpsuit")), "top" if "top" in kinds else None),
                category=category,
            )
        except MissingKeypointsError as e:
            raise AnnotationFailure("missing_keypoints", str(e)) from e
        return parsing_record(lip, "lip", self.params["min_person_fraction"])
