"""``parsing-png``: one label PNG per person image, ``<image stem>.png``, as human parsers
write them: SCHP / Graphonomy (``label_set: lip``, ``atr``) or CIHP-trained parsers (``cihp``,
VITON-HD's ``image-parse``).

Matches GoGoDuck912/Self-Correction-Human-Parsing ``simple_extractor.py`` (P-mode PNG, pixel
values the label ids, coloured with its PASCAL palette). Exported maps carry the LIP/CIHP
dataset colours for lip/cihp and SCHP's palette for atr; import reads the pixel values (never the
colours) in the setting's label set and converts them to LIP
(:func:`vtonpipe.converters.labels.convert`). From a folder vtonpipe did not write,
``<stem>.png`` is matched to the build image of that file stem.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..converters.labels import LABELS, LIP_PALETTE, convert, encode_palette_png, schp_palette
from ..core import AnnotationFailure
from . import register_format
from .base import BuildView, ExportError, ExportItem, Format, Size, has_rows, item_inputs, parsing_from_lip, read_label_png, resize_labels, unique_stems


@register_format
class ParsingPng(Format):
    name = "parsing-png"
    doc = "one label PNG per person image (<stem>.png) in LIP, CIHP or ATR ids"
    loader = "GoGoDuck912/Self-Correction-Human-Parsing simple_extractor.py"
    settings = {"label_set": "lip"}
    needs = ("parsing",)
    imports = ("parsing",)

    def __init__(self, settings: Mapping[str, Any] | None = None):
        super().__init__(settings)
        if self.options["label_set"] not in ("lip", "cihp", "atr"):
            raise ExportError(f"parsing-png: label_set {self.options['label_set']!r} is not lip, cihp or atr")

    def image_paths(self, view: BuildView) -> dict[str, str]:
        return {i: stem + ".jpg" for i, stem in unique_stems(view, view.of_kind("person")).items()}

    def export_items(self, view: BuildView, size: Size | None, names: Mapping[str, str], missing: dict[str, int]) -> Iterator[ExportItem]:
        label_set = self.options["label_set"]
        palette = schp_palette() if label_set == "atr" else LIP_PALETTE
        for image_id, path in names.items():
            if not has_rows(view, image_id, ("parsing",), missing):
                continue
            (rel,) = self.import_files("parsing", path, "person")

            def files(image_id: str = image_id, rel: str = rel) -> dict[str, bytes]:
                lip = resize_labels(view.record("parsing", image_id).parsing, size)
                return {rel: encode_palette_png(convert(lip, "lip", label_set), palette)}

            yield ExportItem(image_id, item_inputs(self, size, view, image_id, ("parsing",)), files)

    def import_files(self, annotator: str, image_path: str, kind: str) -> list[str]:
        return [PurePosixPath(image_path).stem + ".png"] if annotator == "parsing" and kind == "person" else []

    def read(self, annotator: str, source: Path, files: list[str], image_path: str, image: np.ndarray, source_size: Size | None) -> Any:
        label_set = self.options["label_set"]
        ids = read_label_png(source / files[0])
        if ids.size and int(ids.max()) >= len(LABELS[label_set]):
            raise AnnotationFailure("bad_source_file", f"{source / files[0]}: id {int(ids.max())} is not a {label_set} label")
        return parsing_from_lip(convert(resize_labels(ids, image.shape[:2]), label_set, "lip"), label_set)
