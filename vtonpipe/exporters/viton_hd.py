"""``viton-hd``: the VITON-HD folders as HR-VITON's loader reads them.

Matches sangyun884/HR-VITON ``cp_dataset.py`` (``CPDataset.__getitem__``), which reads, under
``<out>/<split>/`` for each line ``im_name c_name`` of ``<out>/<split>_pairs.txt``:

- ``image/<im_name>`` person photo (JPEG; every other name is made from it by ``replace``)
- ``cloth/<c_name>`` garment photo, ``cloth-mask/<c_name>`` its mask (a JPEG of 0/255, read
  ``>= 128``)
- ``image-parse-v3/<stem>.png`` P-mode PNG of CIHP ids 0-19 (the pixel values are the ids: the
  loader scatters ``np.array(im)`` into 20 channels), coloured with the LIP/CIHP palette
- ``image-parse-agnostic-v3.2/<stem>.png`` the same ids without the upper garment, neck and
  arms (:func:`vtonpipe.converters.labels.parse_agnostic`)
- ``openpose_img/<stem>_rendered.png`` the skeleton drawn on black, ``openpose_json/
  <stem>_keypoints.json`` with ``people[0]['pose_keypoints_2d']`` in BODY_25 (the loader
  takes the hips at 9 and 12)
- ``image-densepose/<im_name>`` DensePose as VITON-HD's released files draw it
  (:func:`vtonpipe.vis.densepose.dp_segm`: detectron2's ``dp_segm`` colours on black)

File stems are the build images' own where they are unique and contain neither ``image`` nor
``.jpg`` (the loader's ``replace`` calls would rewrite them), else VITON-HD's ``NNNNN_00``.
Import reads ``openpose_json`` (keypoints), ``image-parse-v3`` (parsing, CIHP -> LIP) and
``cloth-mask`` (garment_mask); ``image-densepose`` holds only the part colours (no UV), so
DensePose is imported from the ``densepose-dump`` or ``dresscode`` formats instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..converters.labels import LIP_PALETTE, cihp_to_lip, encode_palette_png, lip_to_cihp, parse_agnostic
from ..io import read_image
from ..vis.densepose import dp_segm
from . import register_format
from .base import (
    BuildView,
    ExportItem,
    Format,
    Size,
    garment_mask_record,
    has_rows,
    item_inputs,
    jpeg_bytes,
    parsing_from_lip,
    photo_bytes,
    png_bytes,
    read_label_png,
    rescale_points,
    resize_iuv_u8,
    resize_labels,
    text_item,
    unique_stems,
)
from .openpose_json import openpose_file, read_keypoints_record, rendered_pose

PERSON_STAGES = ("keypoints", "parsing", "densepose")
GARMENT_STAGES = ("garment_mask",)


def _loader_safe(stem: str) -> bool:
    return "image" not in stem and ".jpg" not in stem and not any(c.isspace() for c in stem)


def _sibling(image_path: str, folder: str, suffix: str) -> str:
    """``<split>/<folder>/<stem><suffix>`` for an image at ``<split>/image/<stem>.jpg`` (or ``cloth``)."""
    p = PurePosixPath(image_path)
    return str(p.parent.parent / folder / (p.stem + suffix))


@register_format
class VitonHD(Format):
    name = "viton-hd"
    doc = "VITON-HD folders for HR-VITON: image, cloth, cloth-mask, image-parse-v3, image-parse-agnostic-v3.2, openpose_img, openpose_json, image-densepose, pair lists"
    loader = "sangyun884/HR-VITON cp_dataset.py (CPDataset.__getitem__)"
    needs = PERSON_STAGES + GARMENT_STAGES
    imports = ("keypoints", "parsing", "garment_mask")

    def image_paths(self, view: BuildView) -> dict[str, str]:
        out = {}
        for kind, folder in (("person", "image"), ("garment", "cloth")):
            for i, stem in unique_stems(view, view.of_kind(kind), _loader_safe).items():
                out[i] = f"{view.images[i]['split']}/{folder}/{stem}.jpg"
        return out

    def export_items(self, view: BuildView, size: Size | None, names: Mapping[str, str], missing: dict[str, int]) -> Iterator[ExportItem]:
        written = set()
        for image_id, path in names.items():
            kind = view.images[image_id]["kind"]
            stages = PERSON_STAGES if kind == "person" else GARMENT_STAGES
            if not has_rows(view, image_id, stages, missing):
                continue
            written.add(image_id)
            make = self._person_files if kind == "person" else self._garment_files
            yield ExportItem(image_id, item_inputs(self, size, view, image_id, stages), lambda i=image_id, p=path, m=make: m(view, i, p, size))
        lines: dict[str, list[str]] = {}
        for pair in view.pairs:
            person, garment = pair["source_image_id"], pair["garment_image_id"]
            if person in written and garment in written:
                lines.setdefault(f"{pair['split']}_pairs.txt", []).append(f"{PurePosixPath(names[person]).name} {PurePosixPath(names[garment]).name}")
        for rel, rows in sorted(lines.items()):
            yield text_item(rel, rows)

    def _person_files(self, view: BuildView, image_id: str, path: str, size: Size | None) -> dict[str, bytes]:
        native = view.size(image_id)
        out_size = tuple(size) if size else native
        kp = view.record("keypoints", image_id)
        keypoints = rescale_points(kp.keypoints, kp.keypoints[:, 2] > 0, native, out_size)
        cihp = lip_to_cihp(resize_labels(view.record("parsing", image_id).parsing, out_size))
        iuv = resize_iuv_u8(view.record("densepose", image_id).iuv, out_size)
        return {
            path: photo_bytes(view, image_id, size),
            _sibling(path, "image-parse-v3", ".png"): encode_palette_png(cihp, LIP_PALETTE),
            _sibling(path, "image-parse-agnostic-v3.2", ".png"): encode_palette_png(parse_agnostic(cihp, keypoints), LIP_PALETTE),
            _sibling(path, "openpose_img", "_rendered.png"): png_bytes(rendered_pose(keypoints, out_size)),
            _sibling(path, "openpose_json", "_keypoints.json"): openpose_file(kp.people, "body25", native, out_size),
            _sibling(path, "image-densepose", ".jpg"): jpeg_bytes(dp_segm(iuv)),
        }

    def _garment_files(self, view: BuildView, image_id: str, path: str, size: Size | None) -> dict[str, bytes]:
        mask = resize_labels(view.record("garment_mask", image_id).mask, size)
        return {path: photo_bytes(view, image_id, size), _sibling(path, "cloth-mask", ".jpg"): jpeg_bytes((mask > 0).astype(np.uint8) * 255)}

    def import_files(self, annotator: str, image_path: str, kind: str) -> list[str]:
        folder = PurePosixPath(image_path).parent.name
        if kind == "person" and folder == "image":
            return {"keypoints": [_sibling(image_path, "openpose_json", "_keypoints.json")], "parsing": [_sibling(image_path, "image-parse-v3", ".png")]}.get(
                annotator, []
            )
        if kind == "garment" and folder == "cloth" and annotator == "garment_mask":
            return [_sibling(image_path, "cloth-mask", ".jpg")]
        return []

    def read(self, annotator: str, source: Path, files: list[str], image_path: str, image: np.ndarray, source_size: Size | None) -> Any:
        size = image.shape[:2]
        path = source / files[0]
        if annotator == "keypoints":
            return read_keypoints_record(path, source_size, size)
        if annotator == "parsing":
            return parsing_from_lip(cihp_to_lip(resize_labels(read_label_png(path), size)), "cihp")
        return garment_mask_record(resize_labels((read_image(path)[..., 0] >= 128).astype(np.uint8), size), image)
