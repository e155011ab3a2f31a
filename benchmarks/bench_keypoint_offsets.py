"""MediaPipe's landmarks against the sample's truth: COCO-18 offsets, the keypoint error with them, the body fit's per-joint weights and its landmark vertices.

    python benchmarks/bench_keypoint_offsets.py --calibrate DIR [DIR ...] --evaluate DIR [DIR ...]

Each ``DIR`` is a build of a ``vtonpipe sample`` dataset whose ``keypoints`` stage ran the
``mediapipe`` backend. From every person photo's raw landmarks (``landmarks_mp33``: MediaPipe's
points as detected, whatever the stage's ``coco_offsets``), mapped to COCO-18 at the stage's
``min_visibility``, and the photo's true COCO-18 points: the mean offset of each joint from
MediaPipe's point in the body's frame (up along the hips -> neck axis, outward from it; torso
lengths) over the ``--calibrate`` builds, printed as the table
``vtonpipe.converters.keypoints.BLAZEPOSE_TO_COCO18_OFFSETS`` holds; then, on each ``--evaluate``
build (and per view), the mean px error of the detected points against the truth as MediaPipe
gives them, moved by the offsets just measured, and moved by the shipped table. Last, the
``body`` stage's ``keypoint_weights`` for these keypoints (params.yaml): each joint's inverse
squared mean px error over the ``--calibrate`` photos (shipped offsets applied; a joint and its
mirror twin averaged first), scaled to mean 1. Then the landmark term's vertices: for every
MediaPipe landmark the body fit reads beyond COCO-18
(:data:`vtonpipe.models.bodies.fitting.MP33_FIT_LANDMARKS`: pinky, index and thumb of each hand,
heel and toes of each foot), over the ``--calibrate`` photos where MediaPipe sees it (visibility
>= 0.5), the vertex of the true body's hand or foot (DensePose part of that side) whose
projection is nearest the landmark in the truncated-square sense (gaps capped at 10 px, so
mirrored or lost detections count as misses, not as pulls): the table ``ANNY_MP33_VERTICES``
holds, with each landmark's mean px gap on every build as calibrated and as shipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from vtonpipe.annotators.body_fit import LANDMARK_MIN_VISIBILITY
from vtonpipe.converters.keypoints import (
    BLAZEPOSE_TO_COCO18_OFFSETS,
    COCO18,
    COCO18_NAMES,
    MP33_NAMES,
    blazepose_to_coco_joints,
    mirror_order,
    torso_frame,
)
from vtonpipe.datasets.sample_truth import image_truth_path, read_truth, view_of
from vtonpipe.models.bodies.anny import AnnyBody
from vtonpipe.models.bodies.fitting import ANNY_MP33_VERTICES, MP33_FIT_LANDMARKS
from vtonpipe.models.bodies.posed import posed_meshes
from vtonpipe.models.nets.mediapipe import PoseResult, pose_coco18
from vtonpipe.models.render.iuv import anny_charts, vertex_parts
from vtonpipe.pipeline.context import AnnotationContext


def photos(build: Path) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(MediaPipe's COCO-18 points, true COCO-18 points, view) of each person photo with a row."""
    ctx = AnnotationContext(build)
    reader = ctx.reader("keypoints")
    params = next(p["params"] for p in reader.manifest["provenance"] if p["backend"] == "mediapipe")
    out = []
    for image_id, image in sorted(ctx.images.items()):
        truth = image_truth_path(ctx.dataset_root, image["path"])
        if image["kind"] != "person" or image_id not in reader or not truth.exists():
            continue
        row, gt = reader.record(image_id), read_truth(truth)
        pose = PoseResult(np.asarray(row.landmarks_mp33, np.float32), None)
        kp = pose_coco18(pose, gt["person_mask"].shape, params["min_visibility"])
        out.append((kp, np.asarray(gt["coco18"], np.float32), view_of(image["path"]) or "other"))
    return out


def measure_offsets(data: list[tuple[np.ndarray, np.ndarray, str]]) -> np.ndarray:
    """(18, 2) mean (up, outward) offset of the true joints from MediaPipe's, torso lengths."""
    rows = []
    for kp, gt, _ in data:
        frame = torso_frame(kp)
        if frame is None:
            continue
        hips, up, across, torso = frame
        side = np.sign((kp[:, :2] - hips) @ across)
        d = (gt[:, :2] - kp[:, :2]) / torso
        both = (kp[:, 2] > 0) & (gt[:, 2] > 0)
        rows.append(np.where(both[:, None], np.stack([d @ up, side * (d @ across)], 1), np.nan))
    offsets = np.nanmean(np.stack(rows), axis=0)
    offsets[[COCO18.NOSE, COCO18.NECK], 1] = 0.0  # on the axis: no outward
    return offsets


def errors(data: list[tuple[np.ndarray, np.ndarray, str]], offsets: np.ndarray | None) -> dict[str, float]:
    """Mean px error of the detected points on the truth's visible ones, per view and for all."""
    per: dict[str, list[float]] = {}
    for kp, gt, view in data:
        moved = kp if offsets is None else blazepose_to_coco_joints(kp, offsets)
        both = (kp[:, 2] > 0) & (gt[:, 2] > 0)
        e = list(np.linalg.norm(moved[both, :2] - gt[both, :2], axis=1))
        per.setdefault("all", []).extend(e)
        per.setdefault(view, []).extend(e)
    return {k: float(np.mean(v)) for k, v in per.items()}


def keypoint_weights(data: list[tuple[np.ndarray, np.ndarray, str]]) -> np.ndarray:
    """(18,) inverse squared mean px error per joint of the detected points (moved by the shipped
    offsets) on the truth's visible ones, twins averaged, scaled to mean 1."""
    err = np.full((len(data), 18), np.nan)
    for i, (kp, gt, _) in enumerate(data):
        moved = blazepose_to_coco_joints(kp)
        both = (kp[:, 2] > 0) & (gt[:, 2] > 0)
        err[i, both] = np.linalg.norm(moved[both, :2] - gt[both, :2], axis=1)
    mean = np.nanmean(err, axis=0)
    mean = 0.5 * (mean + mean[list(mirror_order(COCO18_NAMES))])
    weights = 1.0 / mean**2
    return weights / weights.mean()


CAP_PX = 10.0
#: DensePose part of each landmark's hand or foot (3 right hand, 4 left hand, 5 left foot, 6 right foot)
PART = {"left_pinky": 4, "left_index": 4, "left_thumb": 4, "right_pinky": 3, "right_index": 3, "right_thumb": 3,
        "left_heel": 5, "left_foot_index": 5, "right_heel": 6, "right_foot_index": 6}  # fmt: skip


def mesh_photos(build: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(MediaPipe landmarks (33, 4), the true body's projected vertices (V, 2)) per person photo."""
    ctx = AnnotationContext(build)
    reader = ctx.reader("keypoints")
    rows, bodies, sizes = [], [], []
    for image_id, image in sorted(ctx.images.items()):
        truth = image_truth_path(ctx.dataset_root, image["path"])
        if image["kind"] != "person" or image_id not in reader or not truth.exists():
            continue
        gt = read_truth(truth)
        h, w = gt["person_mask"].shape
        rows.append(np.asarray(reader.record(image_id).landmarks_mp33, np.float32))
        bodies.append(SimpleNamespace(model="anny", pose=gt["body_pose"], shape=gt["phenotype"], rotation=gt["body_rotation"], translation=gt["body_translation"], camera=gt["camera"]))
        sizes.append((w, h))
    meshes = posed_meshes(bodies, sizes)
    return [(lm, mesh.project()) for lm, mesh in zip(rows, meshes)]


def calibrate_vertices(data: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, int]:
    """Landmark name -> the vertex of its part with the least mean truncated squared px gap."""
    faces = AnnyBody().faces
    part = vertex_parts(faces, anny_charts().face_part, int(faces.max()) + 1)
    out = {}
    for name in MP33_FIT_LANDMARKS:
        lm = MP33_NAMES.index(name)
        candidates = np.nonzero(part == PART[name])[0]
        cost = np.zeros(len(candidates))
        for landmarks, pixels in data:
            if landmarks[lm, 3] >= LANDMARK_MIN_VISIBILITY:
                cost += np.minimum(((pixels[candidates] - landmarks[lm, :2]) ** 2).sum(-1), CAP_PX**2)
        out[name] = int(candidates[np.argmin(cost)])
    return out


def vertex_gaps(data: list[tuple[np.ndarray, np.ndarray]], vertices: dict[str, int]) -> dict[str, float]:
    """Mean px distance of each seen landmark from its vertex's projection."""
    out = {}
    for name, v in vertices.items():
        lm = MP33_NAMES.index(name)
        d = [np.linalg.norm(pixels[v] - landmarks[lm, :2]) for landmarks, pixels in data if landmarks[lm, 3] >= LANDMARK_MIN_VISIBILITY]
        out[name] = float(np.mean(d)) if d else float("nan")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calibrate", type=Path, nargs="+", required=True)
    parser.add_argument("--evaluate", type=Path, nargs="+", default=[])
    args = parser.parse_args()
    calibration = [p for build in args.calibrate for p in photos(build)]
    offsets = measure_offsets(calibration)
    print(f"offsets from {len(calibration)} photos of {', '.join(b.name for b in args.calibrate)} (up, outward; torso lengths):")
    print("[\n" + "".join(f"    [{u:+.3f}, {o:+.3f}],  # {n}\n" for (u, o), n in zip(offsets, COCO18_NAMES)) + "]")
    print(f"largest difference from the shipped table: {np.abs(offsets - BLAZEPOSE_TO_COCO18_OFFSETS).max():.4f}")
    print(f"\n{'build':12s} {'photos':>6s}  {'view':6s} {'MediaPipe px':>12s} {'measured':>9s} {'shipped':>8s}")
    for build in args.evaluate:
        data = photos(build)
        raw, measured, shipped = errors(data, None), errors(data, offsets), errors(data, BLAZEPOSE_TO_COCO18_OFFSETS)
        for view in ["all"] + sorted(k for k in raw if k != "all"):
            print(f"{build.name:12s} {len(data):6d}  {view:6s} {raw[view]:12.3f} {measured[view]:9.3f} {shipped[view]:8.3f}")
    weights = keypoint_weights(calibration)
    print(f"\nbody keypoint_weights from {len(calibration)} photos (COCO-18 order): [{', '.join(f'{w:.2f}' for w in weights)}]")
    meshes = {build: mesh_photos(build) for build in [*args.calibrate, *args.evaluate]}
    vertices = calibrate_vertices([p for build in args.calibrate for p in meshes[build]])
    print("\nANNY_MP33_VERTICES:\n{\n" + "".join(f'    "{n}": {v},\n' for n, v in vertices.items()) + "}")
    for build, data in meshes.items():
        measured, shipped = vertex_gaps(data, vertices), vertex_gaps(data, ANNY_MP33_VERTICES)
        print(f"{build.name}: mean px gap, calibrated / shipped: " + ", ".join(f"{n} {measured[n]:.2f} / {shipped[n]:.2f}" for n in vertices))


if __name__ == "__main__":
    main()
