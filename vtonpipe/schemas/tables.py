"""Schemas of the dataset tables written by ``vtonpipe ingest`` and of the failures tables."""

from __future__ import annotations

from ..core.schema import Field, Schema
from .registry import register_schema

IMAGES = register_schema(
    Schema(
        name="images",
        version=1,
        key=("image_id",),
        doc="One row per image file of a dataset.",
        fields=(
            Field("image_id", "string", doc="stable id: the image's path relative to the dataset root, '/'-separated"),
            Field("path", "string", doc="path relative to the dataset root"),
            Field("sha256", "string", doc="sha256 of the file bytes"),
            Field("width", "int32", doc="pixels, after EXIF orientation"),
            Field("height", "int32", doc="pixels, after EXIF orientation"),
            Field("kind", "string", doc="person | garment"),
            Field("split", "string", doc="train | test | ... as the dataset defines it"),
            Field("dataset", "string", doc="adapter name: mpv, deepfashion, viton, dresscode"),
            Field("category", "string", nullable=True, doc="garment category when the dataset has one (upper_body, lower_body, dresses)"),
        ),
    )
)

PAIRS = register_schema(
    Schema(
        name="pairs",
        version=1,
        key=("pair_id",),
        doc="One row per training/test sample: a source person, an optional target person, a garment.",
        fields=(
            Field("pair_id", "string", doc="stable: 16 hex digits of sha1(dataset, split, source, target, garment)"),
            Field("source_image_id", "string", doc="the person image whose garment/pose is given"),
            Field("target_image_id", "string", nullable=True, doc="the person in the target pose (multi-pose datasets); null for single-pose try-on"),
            Field("garment_image_id", "string", nullable=True, doc="the in-shop garment image; null where the dataset has none"),
            Field("split", "string"),
            Field("paired", "bool", nullable=True, doc="whether the garment is the one the source person wears"),
            Field("dataset", "string"),
        ),
    )
)

FAILURES = register_schema(
    Schema(
        name="failures",
        version=1,
        key=("item_id", "input_sha256"),
        doc="Per-item failures of an annotator stage (no person, undecodable image, fit diverged, ...).",
        fields=(
            Field("item_id", "string", doc="image_id or pair_id"),
            Field("input_sha256", "string"),
            Field("annotator", "string"),
            Field("backend", "string"),
            Field("version", "string"),
            Field("params_hash", "string"),
            Field("error", "string", doc="short machine-readable reason, e.g. no_person, decode_error"),
            Field("message", "string"),
        ),
    )
)
