"""The sample dataset generator: render time per image at each size, and how well MediaPipe Pose
(the ``keypoints`` annotator's default backend) reads the renders against their ground truth.

    python benchmarks/bench_sample.py [--people 4] [--sizes 256x192 512x384 1024x768]
    python benchmarks/bench_sample.py --detect 24      # 24 people = 48 person renders

Timing: ``write_sample`` end to end (renders, ground truth, JPEG and NPZ writing) after the anny
model and its charts are loaded, divided by the number of images (person and garment images).
Detection: MediaPipe Pose on every person image; a render counts as detected when MediaPipe finds
a person. Keypoint accuracy over ground-truth points inside the image (state > 0), COCO-18 via
MediaPipe's mapping, points below MediaPipe visibility 0.5 counted as misses (the annotator's
default): mean px error, PCK@0.1 of the torso size; and the mean offset MediaPipe - anny per
joint (outward from the body's midline, and down), which for hips and ears measures how the two
define them. Then 8 renders of the darkest skin tone with the arms overhead.

Results (2 shared CPU cores): docs/SAMPLE.md, "Measurements".
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from vtonpipe.bench.metrics import KeypointAccuracy, torso_size
from vtonpipe.converters.keypoints import clear_outside, mp33_to_coco18
from vtonpipe.datasets.sample_truth import read_truth
from vtonpipe.io import read_image
from vtonpipe.synth import parse_size, write_sample

JOINTS = ("nose", "neck", "r-shoulder", "r-elbow", "r-wrist", "l-shoulder", "l-elbow", "l-wrist", "r-hip", "r-knee",
          "r-ankle", "l-hip", "l-knee", "l-ankle", "r-eye", "l-eye", "r-ear", "l-ear")  # fmt: skip


def timing(people: int, sizes: list[str]) -> None:
    write_sample(tempfile.mkdtemp(), 1, 0, (64, 48))  # load anny, its charts and warp's kernels
    print(f"{'size':>10} {'people':>6} {'images':>6} {'s/image':>8}")
    for size in sizes:
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            summary = write_sample(out, people, 0, parse_size(size))
            dt = time.perf_counter() - t0
        print(f"{size:>10} {people:>6} {summary.images:>6} {dt / summary.images:8.3f}")


def _accuracy(pairs) -> tuple[KeypointAccuracy, np.ndarray, np.ndarray]:
    """Accuracy over (prediction, ground truth) COCO-18 pairs, and each joint's offset
    (prediction - truth) in px and in torso sizes, as (outward, down) in the person's image frame:
    outward along the right-to-left hip and shoulder axis (sign flipped for right-side joints, so
    positive is away from the body's midline), down along the shoulders-to-hips axis."""
    acc = KeypointAccuracy(alpha=0.1)
    px, rel = [], []
    side = np.array([0, 0, -1, -1, -1, 1, 1, 1, -1, -1, -1, 1, 1, 1, -1, 1, -1, 1], float)
    for pred, gt in pairs:
        acc.update(pred, gt)
        left = gt[[5, 11], :2].mean(0) - gt[[2, 8], :2].mean(0)
        down = gt[[8, 11], :2].mean(0) - gt[[2, 5], :2].mean(0)
        left, down = left / np.linalg.norm(left), down / np.linalg.norm(down)
        d = pred[:, :2] - gt[:, :2]
        off = np.stack([side * (d @ left), d @ down], 1)
        ok = (pred[:, 2] > 0) & (gt[:, 2] > 0)
        px.append(np.where(ok[:, None], off, np.nan))
        rel.append(px[-1] / torso_size(gt))
    return acc, np.array(px), np.array(rel)


def _mediapipe(pose, image: np.ndarray) -> np.ndarray | None:
    res = pose(image)
    return None if res is None else clear_outside(mp33_to_coco18(res.landmarks[:, [0, 1, 3]], 0.5), image.shape[:2])


def detect(people: int, size: str, seed: int) -> None:
    import dataclasses

    from vtonpipe.models.bodies.anny import AnnyBody
    from vtonpipe.models.nets.mediapipe import PoseLandmarker
    from vtonpipe.models.render.iuv import anny_charts
    from vtonpipe.synth.person import DressedBody
    from vtonpipe.synth.poses import sample_pose
    from vtonpipe.synth.recipes import SKIN_TONES, sample_person
    from vtonpipe.synth.scene import Renderer, Shot

    pose = PoseLandmarker()
    pairs, misses = [], []
    with tempfile.TemporaryDirectory() as out:
        write_sample(out, people, seed, parse_size(size))
        images = sorted(p for p in (Path(out) / "all").iterdir() if "person" in p.name)
        for path in images:
            gt = read_truth(Path(out) / "gt" / f"{path.stem}.npz")["coco18"]
            pred = _mediapipe(pose, read_image(path))
            misses += [path.name] if pred is None else []
            pairs.append((np.zeros((18, 3), np.float32) if pred is None else pred, gt))
    acc, px, rel = _accuracy(pairs)
    r = acc.result()
    print(f"renders {len(images)} ({size}, seed {seed}), detected {len(images) - len(misses)}; missed: {misses or 'none'}")
    print(f"mean px error {r['mean_px_error']:.2f}, PCK@0.1 {r['pck@0.1']:.3f}, points found {r['detection_rate']:.3f}")
    pck = acc.per_joint_pck()
    print(f"{'joint':>10} {'PCK':>6} {'out px':>7} {'down px':>7} {'out/torso':>9} {'down/torso':>10}  (MediaPipe - anny)")
    for k, name in enumerate(JOINTS):
        o, d = np.nanmean(px[:, k], 0)
        ro, rd = np.nanmean(rel[:, k], 0)
        print(f"{name:>10} {pck[k]:6.3f} {o:+7.2f} {d:+7.2f} {ro:+9.3f} {rd:+10.3f}")

    # the hardest case for MediaPipe: the darkest skin tone with the arms overhead
    body = AnnyBody()
    renderer = Renderer(body, anny_charts())
    found, dark = 0, []
    for i in range(8):
        rng = np.random.default_rng([seed, 1000 + i])
        dressed = DressedBody(body, dataclasses.replace(sample_person(rng), skin=SKIN_TONES[-1]))
        turn = float(rng.uniform(-1.0, 1.0))
        view = renderer.person(dressed, sample_pose("arms_overhead", rng, turn), Shot(3.0, 22.0, 0.05, i), parse_size(size))
        pred = _mediapipe(pose, view.image)
        found += pred is not None
        dark.append((np.zeros((18, 3), np.float32) if pred is None else pred, view.coco18))
    r = _accuracy(dark)[0].result()
    print(f"darkest skin, arms overhead: detected {found}/8, mean px error {r['mean_px_error']:.2f}, PCK@0.1 {r['pck@0.1']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=4, help="people per size for the timing")
    parser.add_argument("--sizes", nargs="+", default=["256x192", "512x384", "1024x768"])
    parser.add_argument("--detect", type=int, metavar="PEOPLE", help="measure MediaPipe on PEOPLE people (2 renders each) instead")
    parser.add_argument("--size", default="256x192", help="render size for --detect")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.detect:
        detect(args.detect, args.size, args.seed)
    else:
        timing(args.people, args.sizes)


if __name__ == "__main__":
    main()
