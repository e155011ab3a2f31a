"""MediaPipe's hand and foot landmarks on anny's mesh: the vertex each one marks, and its px error.

    python benchmarks/bench_landmark_vertices.py --calibrate DIR [DIR ...] [--evaluate DIR ...]

Each ``DIR`` is a build of a ``vtonpipe sample`` dataset whose ``keypoints`` stage ran the
``mediapipe`` backend. For every MediaPipe landmark the body fit reads beyond COCO-18
(:data:`vtonpipe.models.bodies.fitting.models.MP33_FIT_LANDMARKS`: pinky, index and thumb of
each hand, heel and toes of each foot), over the person photos of the ``--calibrate`` builds
where MediaPipe sees it (visibility >= 0.5): the vertex of the true body's hand or foot
(DensePose part of that side) whose projection is nearest the landmark, in the truncated-square
sense (residuals capped at 10 px, so mirrored or lost detections count as misses, not as pulls).
Prints the table ``ANNY_MP33_VERTICES`` holds, then on each ``--evaluate`` build the mean px
distance of each landmark from its vertex as calibrated and as shipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from vtonpipe.converters.keypoints import MP33_NAMES
from vtonpipe.datasets.sample_truth import image_truth_path, read_truth
from vtonpipe.models.bodies.anny import AnnyBody
from vtonpipe.models.bodies.fitting import ANNY_MP33_VERTICES, MP33_FIT_LANDMARKS
from vtonpipe.models.bodies.posed import posed_meshes
from vtonpipe.models.render.iuv import anny_charts, vertex_parts
from vtonpipe.pipeline.context import AnnotationContext

CAP_PX = 10.0
#: DensePose part of each landmark's hand or foot (3 right hand, 4 left hand, 5 left foot, 6 right foot)
PART = {"left_pinky": 4, "left_index": 4, "left_thumb": 4, "right_pinky": 3, "right_index": 3, "right_thumb": 3,
        "left_heel": 5, "left_foot_index": 5, "right_heel": 6, "right_foot_index": 6}  # fmt: skip


def photos(build: Path) -> list[tuple[np.ndarray, np.ndarray]]:
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


def calibrate(data: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, int]:
    """Landmark name -> the vertex of its part with the least mean truncated squared px gap."""
    faces = AnnyBody().faces
    part = vertex_parts(faces, anny_charts().face_part, int(faces.max()) + 1)
    out = {}
    for name in MP33_FIT_LANDMARKS:
        lm = MP33_NAMES.index(name)
        candidates = np.nonzero(part == PART[name])[0]
        cost, n = np.zeros(len(candidates)), 0
        for landmarks, pixels in data:
            if landmarks[lm, 3] < 0.5:
                continue
            gap2 = ((pixels[candidates] - landmarks[lm, :2]) ** 2).sum(-1)
            cost += np.minimum(gap2, CAP_PX**2)
            n += 1
        out[name] = int(candidates[np.argmin(cost)])
    return out


def gaps(data: list[tuple[np.ndarray, np.ndarray]], vertices: dict[str, int]) -> dict[str, float]:
    """Mean px distance of each seen landmark from its vertex's projection."""
    out = {}
    for name, v in vertices.items():
        lm = MP33_NAMES.index(name)
        d = [np.linalg.norm(pixels[v] - landmarks[lm, :2]) for landmarks, pixels in data if landmarks[lm, 3] >= 0.5]
        out[name] = float(np.mean(d)) if d else float("nan")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calibrate", type=Path, nargs="+", required=True)
    parser.add_argument("--evaluate", type=Path, nargs="+", default=[])
    args = parser.parse_args()
    calibration = [p for build in args.calibrate for p in photos(build)]
    vertices = calibrate(calibration)
    print(f"vertices from {len(calibration)} photos of {', '.join(b.name for b in args.calibrate)}:")
    print("{\n" + "".join(f'    "{n}": {v},\n' for n, v in vertices.items()) + "}")
    for build in [*args.calibrate, *args.evaluate]:
        data = photos(build)
        measured, shipped = gaps(data, vertices), gaps(data, ANNY_MP33_VERTICES)
        print(f"{build.name}: mean px gap, calibrated / shipped: " + ", ".join(f"{n} {measured[n]:.2f} / {shipped[n]:.2f}" for n in vertices))


if __name__ == "__main__":
    main()
