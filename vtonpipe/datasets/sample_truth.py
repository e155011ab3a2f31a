"""The embedded sample dataset's ground-truth files beside its images (written by
:mod:`vtonpipe.synth`, read by the ``groundtruth`` backends and `vtonpipe bench accuracy`; docs/SAMPLE.md).

For each image ``<root>/all/<stem>.jpg`` there is ``<root>/gt/<stem>.npz``; for each pair
(source person A, target person B) there is ``<root>/gt/pairs/<stemA>__<stemB>.npz``. Arrays only
(loaded with ``allow_pickle=False``); every key, dtype and shape is fixed below.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..io import atomic_path

GT_DIR = "gt"

# key -> (dtype, shape); "H", "W" are the image size
PERSON_KEYS: dict[str, tuple[str, tuple[int | str, ...]]] = {
    "coco18": ("float32", (18, 3)),  # x, y px; state 2 visible, 1 hidden by the body, 0 outside the image
    "person_mask": ("uint8", ("H", "W")),  # 1 = person (body, hair, clothes, shoes)
    "parsing": ("uint8", ("H", "W")),  # LIP labels
    "iuv": ("uint8", ("H", "W", 3)),  # DensePose convention
    "face_id": ("int32", ("H", "W")),  # body-mesh triangle under each pixel centre, -1 none
    "landmarks": ("float32", (32, 3)),  # the worn garment's landmarks: x, y, attribute 0/1/2
    "body_pose": ("float32", ("B", 3)),  # anny per-bone axis-angle (vtonpipe.models.bodies.anny order)
    "phenotype": ("float32", (6,)),  # anny phenotype (gender, age, muscle, weight, height, proportions)
    "body_rotation": ("float32", (3,)),  # axis-angle, body frame -> camera frame
    "body_translation": ("float32", (3,)),  # metres, camera frame
    "camera": ("float32", (4,)),  # fx, fy, cx, cy in pixels (docs/CONVENTIONS.md frame)
}
GARMENT_KEYS: dict[str, tuple[str, tuple[int | str, ...]]] = {
    "garment_mask": ("uint8", ("H", "W")),
    "landmarks": ("float32", (32, 3)),
}
PAIR_KEYS: dict[str, tuple[str, tuple[int | str, ...]]] = {
    "flow": ("float32", ("H", "W", 2)),  # on the target grid, target -> source, pixels
    "visibility": ("uint8", ("H", "W")),  # 0 visible in both, 1 hidden in the source, 2 background
}
COMMON_KEYS = {"kind": ("str", ()), "garment_category": ("str", ())}


#: the views a person photo's MPV-style name ends with (``..._front.jpg``, ``..._side.jpg``,
#: ``..._back.jpg``; the sample writes ``person_whole_<view>.jpg``): the cases `bench accuracy` reports
VIEWS = ("front", "side", "back")


def view_of(image_path: str) -> str | None:
    """The view of a person photo from its name (:data:`VIEWS`), None for other names."""
    stem = PurePosixPath(image_path).stem
    return next((v for v in VIEWS if stem.endswith(f"_{v}")), None)


def photo_recipes(root: str | Path) -> dict[str, dict[str, Any]]:
    """The recipe (``pose``, ``shot``: :class:`vtonpipe.synth.recipes.Photo`; ``person``:
    :class:`vtonpipe.synth.person.PersonRecipe`) of each person photo of a sample dataset, by image path relative to ``root`` (``all/<name>``), from its
    ``sample.json``; {} without one."""
    path = Path(root) / "sample.json"
    if not path.exists():
        return {}
    people = json.loads(path.read_text())["people"]
    return {f"all/{name}": {**photo, "person": person["recipe"]} for person in people for name, photo in zip(person["images"], person["photos"])}


def image_truth_path(root: str | Path, image_path: str) -> Path:
    """GT file of the image at ``image_path`` (relative to the dataset root)."""
    return Path(root) / GT_DIR / f"{PurePosixPath(image_path).stem}.npz"


def pair_truth_path(root: str | Path, source_path: str, target_path: str) -> Path:
    return Path(root) / GT_DIR / "pairs" / f"{PurePosixPath(source_path).stem}__{PurePosixPath(target_path).stem}.npz"


def _spec(kind: str) -> dict[str, tuple[str, tuple[int | str, ...]]]:
    return {"person": PERSON_KEYS, "garment": GARMENT_KEYS, "pair": PAIR_KEYS}[kind]


def validate_truth(kind: str, arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Check ``arrays`` against the keys of ``kind`` (person | garment | pair); returns numpy arrays."""
    spec = _spec(kind)
    missing = set(spec) - set(arrays)
    extra = set(arrays) - set(spec) - set(COMMON_KEYS)
    if missing or extra:
        raise ValueError(f"{kind} ground truth: missing {sorted(missing)}, unknown {sorted(extra)}")
    out: dict[str, np.ndarray] = {"kind": np.array(kind)}
    dims: dict[str, int] = {}
    for key, (dtype, shape) in spec.items():
        arr = np.asarray(arrays[key])
        if arr.dtype != np.dtype(dtype) or arr.ndim != len(shape):
            raise ValueError(f"{kind} ground truth {key}: expected {dtype} {shape}, got {arr.dtype} {arr.shape}")
        for want, got in zip(shape, arr.shape):
            if isinstance(want, str):
                if dims.setdefault(want, got) != got:
                    raise ValueError(f"{kind} ground truth {key}: {want}={got}, elsewhere {dims[want]}")
            elif want != got:
                raise ValueError(f"{kind} ground truth {key}: expected shape {shape}, got {arr.shape}")
        out[key] = arr
    if "garment_category" in arrays:
        out["garment_category"] = np.array(str(arrays["garment_category"]))
    return out


def write_truth(path: str | Path, kind: str, arrays: Mapping[str, Any]) -> None:
    """Validate and write one GT file atomically (compressed NPZ, byte-identical for equal arrays:
    unlike ``np.savez_compressed``, no time stamps)."""
    data = validate_truth(kind, arrays)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for key, value in data.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with z.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, value, allow_pickle=False)


def read_truth(path: str | Path) -> dict[str, Any]:
    """One GT file as a dict of arrays (``kind`` and ``garment_category`` as str)."""
    with np.load(path, allow_pickle=False) as npz:
        out: dict[str, Any] = {k: npz[k] for k in npz.files}
    for k in COMMON_KEYS:
        if k in out:
            out[k] = str(out[k])
    return out
