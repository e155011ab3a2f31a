"""Small dataset trees and builds made inside tests (no network, no real datasets)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from vtonpipe.annotators import get_annotator, register_backend
from vtonpipe.annotators.garment_mask import ClassicalGarmentMask
from vtonpipe.annotators.parsing import parsing_record
from vtonpipe.converters.keypoints import keypoint_bbox, mp33_to_coco18
from vtonpipe.converters.masks import mask_bbox
from vtonpipe.core import AnnotationFailure, Backend
from vtonpipe.io import write_image
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.ingest import ingest
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.schemas.body import BodyRecord
from vtonpipe.schemas.keypoints import KeypointsRecord
from vtonpipe.schemas.person_mask import PersonMaskRecord


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


class _RowsFromFile(Backend):
    """Test upstream: one value per image id from an NPZ (``ids``, ``values``); other images fail."""

    name = "test-from-file"
    default_params = {"path": ""}

    def record(self, value: np.ndarray):
        raise NotImplementedError

    def annotate(self, items, ctx):
        with np.load(self.params["path"]) as z:
            rows = dict(zip(z["ids"].tolist(), z["values"]))
        return [self.record(rows[i.image_id]) if i.image_id in rows else AnnotationFailure("no_person", "not in the test file") for i in items]


@register_backend
class KeypointsFromFile(_RowsFromFile):
    spec = get_annotator("keypoints")

    def record(self, values):
        """``values``: COCO-18 (18, 3) keypoints, or MediaPipe's (33, 4) landmarks (x, y, z, visibility), kept as the mediapipe backend does
        (points below its default ``min_visibility`` 0.5 undetected)."""
        landmarks = values if values.shape == (33, 4) else None
        kp = values if landmarks is None else mp33_to_coco18(landmarks[:, [0, 1, 3]], 0.5)
        return KeypointsRecord(keypoints=kp, people=kp[None], num_people=1, score=1.0, bbox=keypoint_bbox(kp), landmarks_mp33=landmarks)


@register_backend
class PersonMaskFromFile(_RowsFromFile):
    spec = get_annotator("person_mask")

    def record(self, mask):
        return PersonMaskRecord(mask=mask, area_fraction=float(mask.mean()), bbox=mask_bbox(mask))


@register_backend
class ParsingFromFile(_RowsFromFile):
    spec = get_annotator("parsing")

    def record(self, parsing):
        return parsing_record(parsing, "lip", 0.0)


#: the fields of a ``body`` row that rendering does not read
FIT_FIELDS = {"joints_2d": np.zeros((18, 3), np.float32), "residual_px": 0.0, "iterations": 0}
#: image_id -> the fields of the BodyRecord the ``test-known`` body backend returns (others fail with no_person)
KNOWN_BODIES: dict[str, dict] = {}


@register_backend
class KnownBody(Backend):
    """Test upstream: a ``body`` backend returning the rows of ``KNOWN_BODIES``."""

    spec = get_annotator("body")
    name = "test-known"

    def annotate(self, items, ctx):
        return [BodyRecord(**KNOWN_BODIES[i.image_id]) if i.image_id in KNOWN_BODIES else AnnotationFailure("no_person") for i in items]


def write_rows(tmp: Path, build: Path, annotator: str, values: dict[str, np.ndarray]) -> None:
    """Run the ``annotator`` stage of ``build`` with the given per-image values (other images fail)."""
    path = tmp / f"{annotator}-rows.npz"
    np.savez(path, ids=np.array(list(values)), values=np.stack(list(values.values())))
    run_stage(build, StageConfig(annotator, "test-from-file", {"path": str(path)}), show_progress=False)


def write_keypoints(tmp: Path, build: Path, keypoints: dict[str, np.ndarray]) -> None:
    """Run the ``keypoints`` stage of ``build`` with the given (18, 3) rows (other images fail)."""
    write_rows(tmp, build, "keypoints", {k: np.asarray(v, np.float32) for k, v in keypoints.items()})


SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


def write_smpl_model(weights: Path, gender: str, v_template: np.ndarray) -> None:
    """An SMPL model file (official keys and shapes, plain numpy arrays) at ``smpl/SMPL_<GENDER>.pkl``
    under ``weights`` whose posed mesh is ``v_template`` (6890, 3) for any pose and shape: every
    vertex skinned to the root, no blend shapes; faces are DensePose's (plus two repeated)."""
    import pickle

    from vtonpipe.models.render.iuv import smpl_charts

    faces = smpl_charts().smpl_faces
    skin = np.zeros((6890, 24))
    skin[:, 0] = 1.0
    arrays = {
        "v_template": v_template, "shapedirs": np.zeros((6890, 3, 10)), "posedirs": np.zeros((6890, 3, 207), np.float32),
        "J_regressor": np.full((24, 6890), 1 / 6890), "weights": skin,
        "kintree_table": np.array([[2**32 - 1, *SMPL_PARENTS[1:]], list(range(24))], np.int64),
        "f": np.concatenate([faces, faces[:2]]),
    }  # fmt: skip
    path = weights / "smpl" / f"SMPL_{gender.upper()}.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(arrays, protocol=2))


def summary_rows(output: str) -> dict[str, dict[str, str]]:
    """The rows of the table `vtonpipe annotate` prints: stage -> column -> cell text."""
    rows = [[c.strip() for c in line.split("│" if "│" in line else "┃")[1:-1]] for line in output.splitlines() if line.count("│") > 5 or line.count("┃") > 5]
    header, *body = rows
    return {r[0]: dict(zip(header, r)) for r in body}


@register_backend
class LoggedGarmentMask(ClassicalGarmentMask):
    """The classical garment mask, logging each setup and each batch with its process id to
    ``log_dir``; the first batch of a process waits (up to a minute) until two processes have set
    up, so that a two-worker run provably shares the work; each batch then takes at least
    ``batch_seconds``."""

    name = "test-logged"
    default_params = {**ClassicalGarmentMask.default_params, "log_dir": "", "batch_seconds": 0.0}

    def setup(self) -> None:
        super().setup()
        self._log("setup")

    def annotate(self, items, ctx):
        log = Path(self.params["log_dir"])
        deadline = time.time() + 60
        while len({p.name.split("-")[1] for p in log.glob("setup-*")}) < 2 and time.time() < deadline:
            time.sleep(0.05)
        self._log("batch")
        time.sleep(self.params["batch_seconds"])  # a slow batch: a test can kill a worker mid-stage
        return super().annotate(items, ctx)

    def _log(self, event: str) -> None:
        Path(self.params["log_dir"], f"{event}-{os.getpid()}-{time.time_ns()}").touch()
