"""``openpose-json``: OpenPose's own ``--write_json`` output, one ``<image stem>_keypoints.json``
per person image (``{"version": 1.3, "people": [{"pose_keypoints_2d": [x0, y0, c0, ...]}]}``),
in COCO-18 (setting ``layout: coco18``, OpenPose's ``--model_pose COCO``) or BODY_25 (``layout:
body25``, the default model, MidHip at 8).

Matches: CMU-Perceptual-Computing-Lab/openpose ``doc/02_output.md`` (the JSON keys and the
keypoint orders) and its writer ``src/openpose/filestream/peopleJsonSaver.cpp``. Import reads
either layout (told by the number of values) and, from a folder vtonpipe did not write, matches
``<image stem>_keypoints.json`` to the build image of that file stem.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..converters.keypoints import LAYOUT_SIZES, read_openpose_json, to_openpose_json
from ..vis.keypoints import draw_skeleton
from . import register_format
from .base import BuildView, ExportError, ExportItem, Format, Size, has_rows, item_inputs, json_bytes, keypoints_record, rescale_points, unique_stems


def openpose_file(people: np.ndarray, layout: str, from_size: Size, to_size: Size | None) -> bytes:
    """The JSON bytes of COCO-18 poses (N, 18, 3) at ``from_size`` written at ``to_size`` in ``layout``,
    values exact (no rounding)."""
    people = np.stack([rescale_points(p, p[:, 2] > 0, from_size, to_size) for p in np.asarray(people, np.float32)])
    return json_bytes(to_openpose_json(people, layout, decimals=None))


def rendered_pose(keypoints: np.ndarray, size: Size) -> np.ndarray:
    """OpenPose's rendering of one COCO-18 pose (18, 3) on black, RGB uint8 at ``size``: its
    limb and joint colours, limbs ``max(2, H / 256)`` px wide."""
    return draw_skeleton(np.zeros((*size, 3), np.uint8), keypoints, max(2, round(size[0] / 256)), alpha=1.0)


def read_people(path: Path, from_size: Size | None, to_size: Size) -> np.ndarray:
    """COCO-18 poses (N, 18, 3) of an OpenPose JSON file written at ``from_size`` (None: ``to_size``), at ``to_size``."""
    people = read_openpose_json(path, "coco18")
    if from_size is None:
        return people
    return np.stack([rescale_points(p, p[:, 2] > 0, from_size, to_size) for p in people]) if len(people) else people


def read_keypoints_record(path: Path, from_size: Size | None, to_size: Size) -> Any:
    """The ``keypoints`` record of an OpenPose JSON file (see :func:`read_people`)."""
    return keypoints_record(read_people(path, from_size, to_size))


@register_format
class OpenPoseJson(Format):
    name = "openpose-json"
    doc = "OpenPose --write_json files (<stem>_keypoints.json), COCO-18 or BODY_25"
    loader = "CMU-Perceptual-Computing-Lab/openpose doc/02_output.md, src/openpose/filestream/peopleJsonSaver.cpp"
    settings = {"layout": "body25"}
    needs = ("keypoints",)
    imports = ("keypoints",)

    def __init__(self, settings: Mapping[str, Any] | None = None):
        super().__init__(settings)
        if self.options["layout"] not in LAYOUT_SIZES:
            raise ExportError(f"openpose-json: layout {self.options['layout']!r} is not one of {sorted(LAYOUT_SIZES)}")

    def image_paths(self, view: BuildView) -> dict[str, str]:
        return {i: stem + ".jpg" for i, stem in unique_stems(view, view.of_kind("person")).items()}

    def export_items(self, view: BuildView, size: Size | None, names: Mapping[str, str], missing: dict[str, int]) -> Iterator[ExportItem]:
        for image_id, path in names.items():
            if not has_rows(view, image_id, ("keypoints",), missing):
                continue
            (rel,) = self.import_files("keypoints", path, "person")

            def files(image_id: str = image_id, rel: str = rel) -> dict[str, bytes]:
                people = view.record("keypoints", image_id).people
                return {rel: openpose_file(people, self.options["layout"], view.size(image_id), size)}

            yield ExportItem(image_id, item_inputs(self, size, view, image_id, ("keypoints",)), files)

    def import_files(self, annotator: str, image_path: str, kind: str) -> list[str]:
        return [PurePosixPath(image_path).stem + "_keypoints.json"] if annotator == "keypoints" and kind == "person" else []

    def read(self, annotator: str, source: Path, files: list[str], image_path: str, image: np.ndarray, source_size: Size | None) -> Any:
        return read_keypoints_record(source / files[0], source_size, image.shape[:2])
