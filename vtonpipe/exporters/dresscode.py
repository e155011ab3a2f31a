"""``dresscode``: the Dress Code folders as its own loader reads them.

Matches aimagelab/dress-code ``data/dataset.py`` (``Dataset.__getitem__``), which reads, under
``<out>/<category>/`` (``dresses``, ``upper_body``, ``lower_body``) for each line ``im_name
c_name`` of ``train_pairs.txt`` / ``test_pairs_{paired,unpaired}.txt``:

- ``images/<id>_0.jpg`` person photo, ``images/<id>_1.jpg`` garment photo
- ``keypoints/<id>_2.json``: ``{"keypoints": [[x, y, confidence, index] x 18]}``, COCO-18 in a
  384 x 512 frame whatever the image size (the loader scales ``x * width / 384``, ``y * height
  / 512`` and draws a point only where ``x > 1 and y > 1``; undetected points are 0, 0, 0)
- ``label_maps/<id>_4.png``: L-mode PNG of its 18 ATR-style ids (0 background, 4 upper clothes,
  6 pants, 7 dress, 11 head, 14/15 arms...: :data:`vtonpipe.converters.labels.ATR_LABELS`)
- ``skeletons/<id>_5.jpg``: the OpenPose skeleton on black
- ``dense/<id>_5.png``: L-mode PNG of the DensePose part index 0..24, ``dense/<id>_5_uv.npz``:
  member ``uv``, float32 ``(2, H, W)`` U and V in [0, 1] (the loader resizes it as a tensor)

Persons are numbered ``000000`` on, garments after them (``_0`` / ``_1`` name the kind), unless
the build's own names are Dress Code's (``<digits>_0`` / ``<digits>_1``, unique). An image's
category folder is its own category when it is one of the three, else its garment's, else
``upper_body``. Import reads keypoints, label maps (ATR -> LIP) and dense (densepose: the box
around the body pixels; the files hold one person and no detection score, so ``num_people`` 1
and ``score`` 1, as for rendered IUV).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..converters.labels import convert
from ..core import AnnotationFailure
from . import register_format
from .base import (
    BuildView,
    ExportItem,
    Format,
    Size,
    densepose_record,
    has_rows,
    item_inputs,
    jpeg_bytes,
    json_bytes,
    keypoints_record,
    parsing_from_lip,
    photo_bytes,
    png_bytes,
    read_label_png,
    rescale_points,
    resize_iuv_u8,
    resize_labels,
    text_item,
)
from .densepose_dump import paste_densepose
from .openpose_json import rendered_pose

CATEGORIES = ("dresses", "upper_body", "lower_body")
#: the keypoint frame of Dress Code's JSON files (width, height)
FRAME = (384.0, 512.0)
PERSON_STAGES = ("keypoints", "parsing", "densepose")
_OWN_NAME = re.compile(r"^(\d+)_([01])$")


def keypoints_json(keypoints: np.ndarray, size: Size) -> bytes:
    """Dress Code's keypoint file of a COCO-18 pose (18, 3) in px of an image of ``size`` (H, W)."""
    kp = np.asarray(keypoints, np.float32)
    sx, sy = np.float32(FRAME[0] / size[1]), np.float32(FRAME[1] / size[0])
    rows = [[float(x * sx), float(y * sy), float(c), i] if c > 0 else [0.0, 0.0, 0.0, i] for i, (x, y, c) in enumerate(kp)]
    return json_bytes({"keypoints": rows})


def read_keypoints_json(path: Path, size: Size) -> np.ndarray:
    """COCO-18 (18, 3) x, y px, confidence at ``size`` from a Dress Code keypoint file."""
    values = np.asarray(json.loads(path.read_text())["keypoints"], np.float32).reshape(-1, 4)
    if len(values) != 18:
        raise AnnotationFailure("bad_source_file", f"{path}: {len(values)} keypoints, Dress Code files have 18")
    sx, sy = np.float32(size[1] / FRAME[0]), np.float32(size[0] / FRAME[1])
    found = values[:, 2] > 0
    out = np.zeros((18, 3), np.float32)
    out[found] = np.stack([values[found, 0] * sx, values[found, 1] * sy, values[found, 2]], axis=1)
    return out


def _category(view: BuildView, image_id: str, garment_of: Mapping[str, str]) -> str:
    for i in (image_id, garment_of.get(image_id)):
        cat = view.images[i]["category"] if i else None
        if cat in CATEGORIES:
            return cat
    return "upper_body"


@register_format
class DressCode(Format):
    name = "dresscode"
    doc = "Dress Code folders: <category>/{images,keypoints,label_maps,skeletons,dense} and pair lists"
    loader = "aimagelab/dress-code data/dataset.py (Dataset.__getitem__)"
    needs = PERSON_STAGES
    imports = ("keypoints", "parsing", "densepose")

    def image_paths(self, view: BuildView) -> dict[str, str]:
        garment_of: dict[str, str] = {}
        for p in sorted(view.pairs, key=lambda p: (not p["paired"], p["pair_id"])):
            if p["garment_image_id"]:
                garment_of.setdefault(p["source_image_id"], p["garment_image_id"])
        people, garments = view.of_kind("person"), view.of_kind("garment")
        own = {i: _OWN_NAME.match(Path(view.images[i]["path"]).stem) for i in people + garments}
        ids = [m.group(1) + m.group(2) if m else None for m in own.values()]
        keep = all(own.values()) and len(set(ids)) == len(ids)
        out = {}
        for n, i in enumerate(people + garments):
            stem = Path(view.images[i]["path"]).stem if keep else f"{n:06d}_{0 if view.images[i]['kind'] == 'person' else 1}"
            out[i] = f"{_category(view, i, garment_of)}/images/{stem}.jpg"
        return out

    def export_items(self, view: BuildView, size: Size | None, names: Mapping[str, str], missing: dict[str, int]) -> Iterator[ExportItem]:
        written = set()
        for image_id, path in names.items():
            person = view.images[image_id]["kind"] == "person"
            stages = PERSON_STAGES if person else ()
            if not has_rows(view, image_id, stages, missing):
                continue
            written.add(image_id)
            make = self._person_files if person else (lambda v, i, p, s: {p: photo_bytes(v, i, s)})
            yield ExportItem(image_id, item_inputs(self, size, view, image_id, stages), lambda i=image_id, p=path, m=make: m(view, i, p, size))
        lines: dict[str, set[str]] = {}
        for pair in view.pairs:
            person, garment = pair["source_image_id"], pair["garment_image_id"]
            if person in written and garment in written:
                folder = PurePosixPath(names[person]).parts[0]
                lst = "train_pairs.txt" if pair["split"] == "train" else f"test_pairs_{'unpaired' if pair['paired'] is False else 'paired'}.txt"
                lines.setdefault(f"{folder}/{lst}", set()).add(f"{PurePosixPath(names[person]).name} {PurePosixPath(names[garment]).name}")
        for rel, rows in sorted(lines.items()):
            yield text_item(rel, rows)

    def _person_files(self, view: BuildView, image_id: str, path: str, size: Size | None) -> dict[str, bytes]:
        native = view.size(image_id)
        out_size = tuple(size) if size else native
        kp = view.record("keypoints", image_id).keypoints
        keypoints = rescale_points(kp, kp[:, 2] > 0, native, out_size)
        atr = convert(resize_labels(view.record("parsing", image_id).parsing, out_size), "lip", "atr")
        iuv = resize_iuv_u8(view.record("densepose", image_id).iuv, out_size)
        uv = np.ascontiguousarray(iuv[..., 1:].transpose(2, 0, 1).astype(np.float32) / np.float32(255))
        buf = io.BytesIO()
        np.savez_compressed(buf, uv=uv)
        return {
            path: photo_bytes(view, image_id, size),
            self._file(path, "keypoints", "_2.json"): keypoints_json(keypoints, out_size),
            self._file(path, "label_maps", "_4.png"): png_bytes(atr),
            self._file(path, "skeletons", "_5.jpg"): jpeg_bytes(rendered_pose(keypoints, out_size)),
            self._file(path, "dense", "_5.png"): png_bytes(iuv[..., 0]),
            self._file(path, "dense", "_5_uv.npz"): buf.getvalue(),
        }

    @staticmethod
    def _file(image_path: str, folder: str, suffix: str) -> str:
        """``<category>/<folder>/<id><suffix>`` for the person at ``<category>/images/<id>_0.jpg``."""
        p = PurePosixPath(image_path)
        return str(p.parent.parent / folder / (p.stem.rsplit("_", 1)[0] + suffix))

    def import_files(self, annotator: str, image_path: str, kind: str) -> list[str]:
        p = PurePosixPath(image_path)
        if kind != "person" or p.parent.name != "images" or not p.stem.endswith("_0"):
            return []
        return {
            "keypoints": [self._file(image_path, "keypoints", "_2.json")],
            "parsing": [self._file(image_path, "label_maps", "_4.png")],
            "densepose": [self._file(image_path, "dense", "_5.png"), self._file(image_path, "dense", "_5_uv.npz")],
        }.get(annotator, [])

    def read(self, annotator: str, source: Path, files: list[str], image_path: str, image: np.ndarray, source_size: Size | None) -> Any:
        size = image.shape[:2]
        if annotator == "keypoints":
            written = tuple(source_size) if source_size else size  # the frame maps onto the exported image, then to the build's
            kp = read_keypoints_json(source / files[0], written)
            return keypoints_record(rescale_points(kp, kp[:, 2] > 0, written, size)[None])
        if annotator == "parsing":
            return parsing_from_lip(convert(resize_labels(read_label_png(source / files[0]), size), "atr", "lip"), "atr")
        parts = read_label_png(source / files[0])
        with np.load(source / files[1], allow_pickle=False) as z:
            uv = z["uv"]
        if uv.shape != (2, *parts.shape):
            raise AnnotationFailure("bad_source_file", f"{source / files[1]}: uv of shape {uv.shape} for labels {parts.shape}")
        return densepose_record(resize_iuv_u8(paste_densepose(parts, uv, 0, 0, parts.shape), size), None, 1.0, 1)
