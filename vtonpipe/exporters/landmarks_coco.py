"""``landmarks-coco``: SAL-VTON's 32 garment landmarks as one COCO keypoints JSON file.

Matches the COCO keypoint annotation format (cocodataset.org/#format-data, "Keypoint
Detection"; read by cocodataset/cocoapi ``PythonAPI/pycocotools/coco.py``): ``images`` (``id``,
``file_name``, ``width``, ``height``), ``annotations`` (``image_id``, ``category_id``,
``keypoints`` = [x1, y1, v1, ..., x32, y32, v32], ``num_keypoints``) and ``categories`` with
the 32 ``keypoints`` names (:data:`vtonpipe.converters.landmarks.LANDMARK_NAMES`). COCO's
visibility flag maps onto the landmark attribute: v = 2 visible (attribute 0), v = 1 occluded
(attribute 1), v = 0 absent (attribute 2, x = y = 0). Each annotation may carry
``garment_category``. ``file_name`` is the image's path in the build (import also matches a
bare file name when it is unique). Setting ``file`` names the JSON (default ``landmarks.json``);
``vtonpipe import-landmarks FILE.json`` imports one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..annotators.landmarks import landmarks_record
from ..converters.landmarks import ABSENT, LANDMARK_NAMES, NUM_LANDMARKS, OCCLUDED, VISIBLE
from ..core import AnnotationFailure
from . import register_format
from .base import BuildView, ExportItem, Format, Size, item_inputs, json_bytes, rescale_points

#: COCO visibility flag of each landmark attribute (visible, occluded, absent) and back
COCO_V = {VISIBLE: 2, OCCLUDED: 1, ABSENT: 0}
ATTRIBUTE_OF_V = {v: a for a, v in COCO_V.items()}


def coco_keypoints(landmarks: np.ndarray) -> list[float]:
    """[x, y, v] x 32 of landmarks (32, 3) x, y px, attribute."""
    out: list[float] = []
    for x, y, a in np.asarray(landmarks, np.float32):
        v = COCO_V[int(a)]
        out += [float(x), float(y), v] if v else [0.0, 0.0, 0]
    return out


def landmarks_of(keypoints: list[float], where: str) -> np.ndarray:
    """Landmarks (32, 3) x, y px, attribute of a COCO ``keypoints`` list."""
    values = np.asarray(keypoints, np.float32)
    if values.size != 3 * NUM_LANDMARKS:
        raise AnnotationFailure("bad_source_file", f"{where}: {values.size} keypoint values, 32 landmarks need {3 * NUM_LANDMARKS}")
    values = values.reshape(NUM_LANDMARKS, 3)
    flags = values[:, 2].astype(int)
    if not set(flags.tolist()) <= set(ATTRIBUTE_OF_V):
        raise AnnotationFailure("bad_source_file", f"{where}: visibility flags must be 0, 1 or 2, found {sorted(set(flags.tolist()))}")
    out = values.copy()
    out[:, 2] = [ATTRIBUTE_OF_V[v] for v in flags]
    out[flags == 0, :2] = 0
    return out


@register_format
class LandmarksCoco(Format):
    name = "landmarks-coco"
    doc = "32 garment landmarks as one COCO keypoints JSON (v = 2 visible, 1 occluded, 0 absent)"
    loader = "cocodataset/cocoapi PythonAPI/pycocotools/coco.py (COCO keypoint annotations)"
    settings = {"file": "landmarks.json"}
    needs = ("landmarks",)
    imports = ("landmarks",)

    def __init__(self, settings: Mapping[str, Any] | None = None):
        super().__init__(settings)
        self._loaded: tuple[Path, float, dict[str, Any]] | None = None

    def image_paths(self, view: BuildView) -> dict[str, str]:
        return {i: r["path"] for i, r in sorted(view.images.items())}

    def export_items(self, view: BuildView, size: Size | None, names: Mapping[str, str], missing: dict[str, int]) -> Iterator[ExportItem]:
        ids = [i for i in names if view.row_key("landmarks", i)]

        def files() -> dict[str, bytes]:
            images, annotations = [], []
            for n, i in enumerate(ids):
                record = view.record("landmarks", i)
                native = view.size(i)
                h, w = size or native
                lm = rescale_points(record.landmarks, record.landmarks[:, 2] != ABSENT, native, size)
                images.append({"id": n, "file_name": names[i], "width": int(w), "height": int(h)})
                kps = coco_keypoints(lm)
                annotations.append(
                    {
                        "id": n,
                        "image_id": n,
                        "category_id": 1,
                        "keypoints": kps,
                        "num_keypoints": sum(1 for v in kps[2::3] if v),
                        "garment_category": record.garment_category,
                    }
                )
            categories = [{"id": 1, "name": "garment", "supercategory": "garment", "keypoints": list(LANDMARK_NAMES), "skeleton": []}]
            return {self.options["file"]: json_bytes({"images": images, "annotations": annotations, "categories": categories})}

        inputs = hashlib.sha256("|".join(item_inputs(self, size, view, i, ("landmarks",)) for i in ids).encode()).hexdigest()
        yield ExportItem(self.options["file"], inputs, files)

    def import_files(self, annotator: str, image_path: str, kind: str) -> list[str]:
        return [self.options["file"]] if annotator == "landmarks" else []

    def _by_name(self, path: Path) -> dict[str, Any]:
        """file_name (and unique bare file name) -> (image entry, annotation)."""
        mtime = path.stat().st_mtime
        if self._loaded is None or self._loaded[:2] != (path, mtime):
            coco = json.loads(path.read_text())
            images = {im["id"]: im for im in coco.get("images", [])}
            found: dict[str, Any] = {}
            bare: dict[str, list[Any]] = {}
            for ann in coco.get("annotations", []):
                im = images.get(ann["image_id"])
                if im is None:
                    continue
                found[im["file_name"]] = (im, ann)
                bare.setdefault(Path(im["file_name"]).name, []).append((im, ann))
            for name, entries in bare.items():
                if len(entries) == 1:
                    found.setdefault(name, entries[0])
            self._loaded = (path, mtime, found)
        return self._loaded[2]

    def read(self, annotator: str, source: Path, files: list[str], image_path: str, image: np.ndarray, source_size: Size | None) -> Any:
        by_name = self._by_name(source / files[0])
        entry = by_name.get(image_path) or by_name.get(Path(image_path).name)
        if entry is None:
            raise AnnotationFailure("not_in_source", f"{source / files[0]} has no annotation of {image_path!r}")
        im, ann = entry
        lm = landmarks_of(ann["keypoints"], f"{files[0]} image {im['id']}")
        size = image.shape[:2]
        written = (int(im.get("height", size[0])), int(im.get("width", size[1])))
        return landmarks_record(rescale_points(lm, lm[:, 2] != ABSENT, written, size), ann.get("garment_category"))
