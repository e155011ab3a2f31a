"""``densepose-dump``: one pickle of DensePose results, as detectron2's ``apply_net.py dump``
writes it, with plain values in place of its torch and detectron2 objects.

Matches facebookresearch/detectron2 ``projects/DensePose/apply_net.py`` (``DumpAction``: a
list with one dict per image of ``file_name``, ``scores`` (N,), ``pred_boxes_XYXY`` (N, 4) and
``pred_densepose``) and ``densepose/structures/chart_result.py`` (each result's ``labels``
(h, w) part index 0..24 and ``uv`` (2, h, w) in [0, 1] over the box, which
``densepose/vis/densepose_results.py`` pastes at ``x, y, w, h = int(box)``). Here the tensors
are numpy arrays (``scores`` float32, boxes float32 in detectron2's pixel-edge frame, ``labels``
uint8, ``uv`` float32) and each result a dict ``{"labels", "uv"}``, so the file unpickles with
numpy alone (:func:`vtonpipe.exporters.base.read_plain_pickle` refuses anything else). One
person per image (the row's main person); boxes are whole pixels, so the map round-trips.
Setting ``file`` names the pickle (default ``densepose.pkl``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..converters.masks import mask_bbox
from ..core import AnnotationFailure
from . import register_format
from .base import BuildView, ExportItem, Format, Size, densepose_record, item_inputs, pickle_bytes, read_plain_pickle, rescale_points, resize_iuv_u8


def dump_entry(file_name: str, iuv: np.ndarray, box: np.ndarray, score: float) -> dict[str, Any]:
    """The dump entry of one person: ``iuv`` (H, W, 3) uint8, ``box`` x0, y0, x1, y1 in the
    pixel-centre frame; the crop is the whole pixels covering the box and every body pixel."""
    h, w = iuv.shape[:2]
    edges = np.asarray(box, np.float64) + 0.5
    x0, y0, x1, y1 = int(np.floor(edges[0])), int(np.floor(edges[1])), int(np.ceil(edges[2])), int(np.ceil(edges[3]))
    body = mask_bbox(iuv[..., 0] > 0)
    if body is not None:
        x0, y0, x1, y1 = min(x0, body[0]), min(y0, body[1]), max(x1, body[2]), max(y1, body[3])
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    crop = iuv[y0:y1, x0:x1]
    return {
        "file_name": file_name,
        "scores": np.array([score], np.float32),
        "pred_boxes_XYXY": np.array([[x0, y0, x1, y1]], np.float32),
        "pred_densepose": [
            {"labels": np.ascontiguousarray(crop[..., 0]), "uv": np.ascontiguousarray(crop[..., 1:].transpose(2, 0, 1).astype(np.float32) / np.float32(255))}
        ],
    }


def paste_densepose(labels: np.ndarray, uv: np.ndarray, x0: int, y0: int, size: Size) -> np.ndarray:
    """IUV (H, W, 3) uint8 at ``size`` of a box result pasted at whole pixel ``x0, y0``:
    ``labels`` (h, w) part 0..24, ``uv`` (2, h, w) in [0, 1] (quantised to U, V 0..255)."""
    labels, uv = np.asarray(labels, np.uint8), np.asarray(uv, np.float32)
    h, w = labels.shape
    iuv = np.zeros((*size, 3), np.uint8)
    iuv[y0 : y0 + h, x0 : x0 + w, 0] = labels
    iuv[y0 : y0 + h, x0 : x0 + w, 1:] = np.round(np.clip(uv.transpose(1, 2, 0), 0, 1) * 255).astype(np.uint8) * (labels > 0)[..., None]
    return iuv


def entry_iuv(entry: Mapping[str, Any], size: Size) -> tuple[np.ndarray, np.ndarray]:
    """IUV (H, W, 3) uint8 at ``size`` and the box (pixel-centre frame) of a dump entry's first person."""
    x0, y0, x1, y1 = (int(v) for v in np.asarray(entry["pred_boxes_XYXY"])[0])
    result = entry["pred_densepose"][0]
    labels, uv = np.asarray(result["labels"], np.uint8), np.asarray(result["uv"], np.float32)
    if labels.shape != (y1 - y0, x1 - x0) or uv.shape != (2, *labels.shape):
        raise AnnotationFailure("bad_source_file", f"{entry['file_name']}: result of shape {labels.shape} does not fill its box {x0, y0, x1, y1}")
    return paste_densepose(labels, uv, x0, y0, size), np.asarray(entry["pred_boxes_XYXY"][0], np.float32) - np.float32(0.5)


@register_format
class DenseposeDump(Format):
    name = "densepose-dump"
    doc = "one pickle of DensePose results as apply_net.py dump writes them (plain numpy values)"
    loader = "facebookresearch/detectron2 projects/DensePose/apply_net.py (DumpAction), densepose/structures/chart_result.py"
    settings = {"file": "densepose.pkl"}
    needs = ("densepose",)
    imports = ("densepose",)

    def __init__(self, settings: Mapping[str, Any] | None = None):
        super().__init__(settings)
        self._loaded: tuple[Path, float, dict[str, Any]] | None = None

    def image_paths(self, view: BuildView) -> dict[str, str]:
        return {i: view.images[i]["path"] for i in view.of_kind("person")}

    def export_items(self, view: BuildView, size: Size | None, names: Mapping[str, str], missing: dict[str, int]) -> Iterator[ExportItem]:
        ids = [i for i in names if view.row_key("densepose", i)]
        if len(ids) < len(names):
            missing["densepose"] = len(names) - len(ids)

        def files() -> dict[str, bytes]:
            entries = []
            for i in ids:
                record = view.record("densepose", i)
                native = view.size(i)
                box = rescale_points(record.bbox.reshape(2, 2), np.ones(2, bool), native, size).reshape(4)
                entries.append(dump_entry(names[i], resize_iuv_u8(record.iuv, size), box, record.score))
            return {self.options["file"]: pickle_bytes(entries)}

        inputs = hashlib.sha256("|".join(item_inputs(self, size, view, i, ("densepose",)) for i in ids).encode()).hexdigest()
        yield ExportItem(self.options["file"], inputs, files)

    def import_files(self, annotator: str, image_path: str, kind: str) -> list[str]:
        return [self.options["file"]] if annotator == "densepose" and kind == "person" else []

    def _entries(self, path: Path) -> dict[str, Any]:
        mtime = path.stat().st_mtime
        if self._loaded is None or self._loaded[:2] != (path, mtime):
            self._loaded = (path, mtime, {str(e["file_name"]): e for e in read_plain_pickle(path)})
        return self._loaded[2]

    def read(self, annotator: str, source: Path, files: list[str], image_path: str, image: np.ndarray, source_size: Size | None) -> Any:
        entries = self._entries(source / files[0])
        entry = entries.get(image_path) or entries.get(Path(image_path).name)
        if entry is None:
            raise AnnotationFailure("not_in_source", f"{source / files[0]} has no entry with file_name {image_path!r}")
        size = image.shape[:2]
        iuv, box = entry_iuv(entry, tuple(source_size) if source_size else size)
        if source_size and tuple(source_size) != size:
            box = rescale_points(box.reshape(2, 2), np.ones(2, bool), source_size, size).reshape(4)
            iuv = resize_iuv_u8(iuv, size)
        return densepose_record(iuv, box, float(np.asarray(entry["scores"])[0]), len(entry["pred_densepose"]))
