"""Small dataset trees and builds made inside tests (no network, no real datasets)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from vtonpipe.annotators.base import AnnotationFailure, Backend, register_backend
from vtonpipe.converters.keypoints import keypoint_bbox
from vtonpipe.io import write_image
from vtonpipe.pipeline.ingest import ingest
from vtonpipe.pipeline.runner import run_stage


def person_image(seed: int = 0, size: tuple[int, int] = (256, 192)) -> np.ndarray:
    """A crude coloured figure on a light background (RGB uint8); not a detectable person."""
    h, w = size
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 232, np.uint8)
    colour = tuple(int(c) for c in rng.integers(20, 200, 3))
    cv2.ellipse(img, (w // 2, h // 2), (w // 5, int(h * 0.4)), 0, 0, 360, colour, -1)
    cv2.circle(img, (w // 2, h // 8), h // 14, (190, 150, 120), -1)
    return img


def garment_image(seed: int = 0, size: tuple[int, int] = (256, 192)) -> np.ndarray:
    """A coloured T-shirt-like polygon on white (RGB uint8)."""
    h, w = size
    rng = np.random.default_rng(seed + 1000)
    img = np.full((h, w, 3), 250, np.uint8)
    colour = tuple(int(c) for c in rng.integers(20, 220, 3))
    pts = np.array([[0.3, 0.15], [0.7, 0.15], [0.9, 0.35], [0.78, 0.45], [0.72, 0.4], [0.72, 0.85], [0.28, 0.85], [0.28, 0.4], [0.22, 0.45], [0.1, 0.35]])
    cv2.fillPoly(img, [(pts * [w, h]).astype(np.int32)], colour)
    return img


def write_mpv_tree(
    root: Path,
    people: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    splits: Sequence[str] | None = None,
    extra_lines: Sequence[str] = (),
) -> Path:
    """An MPV-layout dataset: one (pose A, pose B, garment) triplet of RGB images per person."""
    (root / "all").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (a, b, g) in enumerate(people):
        stem = f"P{i:04d}@1"
        names = [f"{stem}=person_half_front.jpg", f"{stem}=person_whole_back.jpg", f"{stem}=cloth_front.jpg"]
        for name, img in zip(names, (a, b, g)):
            write_image(root / "all" / name, img)
        split = splits[i] if splits else ("train" if i % 4 else "test")
        lines.append("\t".join([*names, split]))
    (root / "all_poseA_poseB_clothes.txt").write_text("\n".join([*lines, *extra_lines]) + "\n")
    return root


def make_build(tmp_path: Path, people: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], name: str = "t") -> Path:
    """Write an MPV tree of ``people`` under ``tmp_path/raw`` and ingest it into ``tmp_path/build``."""
    root = write_mpv_tree(tmp_path / "raw", people)
    build = tmp_path / "build"
    ingest(name, root, build, layout_name="mpv", show_progress=False)
    return build


def simple_build(tmp_path: Path, n: int = 3) -> Path:
    """A build of ``n`` crude people (images not detectable as persons) and garments."""
    return make_build(tmp_path, [(person_image(i), person_image(i + 100), garment_image(i)) for i in range(n)])


@register_backend
class KeypointsFromFile(Backend):
    """Test upstream: keypoints rows from an NPZ (``ids``, ``keypoints``); other images fail."""

    annotator = "keypoints"
    name = "test-from-file"
    default_params = {"path": ""}

    def annotate(self, items, ctx):
        with np.load(self.params["path"]) as z:
            rows = dict(zip(z["ids"].tolist(), z["keypoints"]))
        return [
            AnnotationFailure("no_person", "not in the test file") if i.image_id not in rows else
            {"keypoints": rows[i.image_id], "people": rows[i.image_id][None], "num_people": 1, "score": 1.0,
             "bbox": keypoint_bbox(rows[i.image_id]), "landmarks_mp33": None}
            for i in items
        ]  # fmt: skip


def write_keypoints(tmp: Path, build: Path, keypoints: dict[str, np.ndarray]) -> None:
    """Run the ``keypoints`` stage of ``build`` with the given rows (other images fail)."""
    np.savez(tmp / "kp.npz", ids=np.array(list(keypoints)), keypoints=np.stack(list(keypoints.values())).astype(np.float32))
    run_stage(build, "keypoints", "test-from-file", {"path": str(tmp / "kp.npz")}, show_progress=False)
