"""``parsing`` backend ``geometric``: an offline human parser without a learnt model.

LIP labels from the person mask and face oval (``person_mask``), body parts from the keypoints
(``body_parts: keypoints``) or from the DensePose part map of the fitted body (``body_parts:
densepose``), and colour models of the person's skin, hair, garments and shoes, the top guided
by the paired in-shop garment (``garment_mask`` of the images ``ctx.garments_of`` gives) and the
dataset's garment category when it has one. The algorithm and its rules are documented in
:mod:`vtonpipe.models.geometric_parsing`. Labels written: 0, 2, 5, 6, 9, 12, 13, 14..19.

A person without keypoints or person mask upstream fails with ``missing_upstream``; keypoints
without the neck and both shoulders fail with ``missing_keypoints``. A paired garment image
whose garment mask failed upstream is left out (the person is parsed without it).
``input_sha256`` covers the person image and the paired garment images (bytes and category).

Accuracy against the embedded sample's exact LIP ground truth (``vtonpipe bench accuracy``),
24 person images (12 people, 256 x 192) per set, upstream stages with their default backends:
keypoints ``mediapipe``, person_mask ``mediapipe`` (Face Mesh around Pose's head: a face oval on
19 of the 24 images of each set; profiles, without one, take the face from the keypoints),
garment_mask ``classical``, and for ``body_parts: densepose`` densepose ``render`` of body
``anny-fit``. Sets: *held-out*, people 0..3 of ``vtonpipe sample`` seeds 20, 21, 22 (4 skirts,
5 trousers, 3 shorts), not looked at while developing; *DAG*,
``vtonpipe sample --people 12 --seed 0`` (params.yaml's sample; its first 4 people were among
the development images), where MediaPipe swaps the person's left and right on one image
(S0002@0; without it, keypoints mode scores 0.871). IoU per class, mIoU over the classes in the
ground truth (background included):

==========  ==========  =====  =====  =====  =====  =====  =====  =====  =====  =====  =====  =====  =====  =====
set         body_parts  mIoU   bg     hair   upper  pants  skirt  face   l-arm  r-arm  l-leg  r-leg  l-shoe r-shoe
==========  ==========  =====  =====  =====  =====  =====  =====  =====  =====  =====  =====  =====  =====  =====
held-out    keypoints   0.897  0.994  0.784  0.964  0.959  0.954  0.850  0.868  0.854  0.915  0.911  0.859  0.857
held-out    densepose   0.911  0.994  0.793  0.967  0.963  0.958  0.859  0.879  0.868  0.926  0.918  0.903  0.900
DAG         keypoints   0.838  0.994  0.739  0.958  0.950  0.942  0.838  0.768  0.730  0.730  0.735  0.839  0.827
DAG         densepose   0.831  0.994  0.739  0.929  0.956  0.943  0.746  0.755  0.710  0.755  0.757  0.854  0.836
==========  ==========  =====  =====  =====  =====  =====  =====  =====  =====  =====  =====  =====  =====  =====

The table is version 1. Version 2 keeps a band around the face oval (12% of the face height,
temples and ears) out of the hair zone: on params.yaml's sample (24 people, 48 images) keypoints
mode goes from mIoU 0.865 to 0.868 (hair 0.739 -> 0.763, face 0.830 -> 0.840).

Version 3 parses images without colour (grayscale, 16-bit grayscale) from lightness, and on
every image ends each leg's garment at one hem and makes bare skin on the torso below the
neckline cost more (:mod:`vtonpipe.models.geometric_parsing`). ``python
benchmarks/bench_parsing_grayscale.py`` (each set's images also converted to grayscale, the
default upstream backends run on each, keypoints mode; ``--people 4 --seed 20 21 22`` for the
held-out set), mIoU / pixel accuracy:

==================================  ================  ================  ================
set                                 version 2 colour  version 3 colour  version 3 gray
==================================  ================  ================  ================
params.yaml's sample (48 images)    0.868 / 0.990     0.869 / 0.990     0.780 / 0.980
held-out (24 images)                0.898 / 0.991     0.898 / 0.991     0.808 / 0.981
==================================  ================  ================  ================

Version 2 scored 0.630 / 0.955 and 0.619 / 0.953 on the grayscale sets: it labelled the clothes
of most dark-skinned or grey-clad people skin. MediaPipe's keypoints and masks lose little on
grayscale (the grayscale photos parsed with the colour photos' upstream rows: 0.769 on
params.yaml's sample); what remains is where skin and cloth have one lightness (grey trousers
on mid-dark skin, a white top on light skin, light hair), which lightness cannot tell apart.

Pixel accuracy on the held-out set 0.991 (keypoints), 0.992 (densepose). On the development
sets (seeds 10..15 and 0..2, people 0..3 of each) keypoints mode scores 0.830 and 0.797. With
exact upstream inputs instead (the ``groundtruth`` person mask with the true face region,
keypoints and DensePose) the held-out set scores 0.934 (keypoints) and 0.950 (densepose): most of
the remaining error is upstream (the person mask's edges, the face ovals missing on profiles,
side swaps, the fitted body). Weakest classes: hair (long hair beside a face of a similar
colour), face, arms, and skirts against shorts seen from the side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from ..models.geometric_parsing import MissingKeypointsError, garment_colours, parse_person
from .base import AnnotationFailure, Backend, ImageItem, Requirements, register_backend
from .parsing import parsing_record

BODY_PARTS = ("keypoints", "densepose")


@register_backend
class GeometricParsing(Backend):
    annotator = "parsing"
    name = "geometric"
    version = "3"
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

    def input_sha256(self, item_id: str, ctx: Any) -> str:
        """sha256 over the bytes hash and category of the person image and of its paired garments."""
        parts = [f"{ctx.image_sha256(i)}:{ctx.images[i].get('category')}" for i in [item_id, *sorted(ctx.garments_of(item_id))]]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def annotate(self, items: Sequence[ImageItem], ctx: Any) -> list[dict[str, Any] | AnnotationFailure]:
        out: list[dict[str, Any] | AnnotationFailure] = []
        for item in items:
            try:
                out.append(self._parse(item, ctx))
            except AnnotationFailure as f:
                out.append(f)
        return out

    def _parse(self, item: ImageItem, ctx: Any) -> dict[str, Any] | AnnotationFailure:
        keypoints = ctx.annotation("keypoints", item.image_id)["keypoints"]
        person = ctx.annotation("person_mask", item.image_id)
        densepose_i = ctx.annotation("densepose", item.image_id)["iuv"][..., 0] if self.params["body_parts"] == "densepose" else None
        garments, category = [], item.category
        for g in sorted(ctx.garments_of(item.image_id)):
            if g not in ctx.reader("garment_mask"):
                continue
            garments.append(garment_colours(ctx.load_image(g), ctx.annotation("garment_mask", g)["mask"]))
            category = category or ctx.images[g].get("category")
        try:
            lip = parse_person(
                item.image,
                person["mask"],
                keypoints,
                face_mask=person["face_mask"],
                densepose_i=densepose_i,
                garments=garments,
                category=category,
            )
        except MissingKeypointsError as e:
            return AnnotationFailure("missing_keypoints", str(e))
        return parsing_record(lip, "lip", self.params["min_person_fraction"])
