"""When to read a photo again: MediaPipe's own/mirror disagreement against its keypoint error, per framing.

    python benchmarks/bench_keypoint_reframe.py DIR [DIR ...] [--scales 0.7] [--compare 0.85 1.2] [--gap 0.015]

Each ``DIR`` is a build of a ``vtonpipe sample`` dataset (its person photos and their true COCO-18
points). For every person photo, MediaPipe (the ``keypoints`` stage's detector) reads the photo
and its mirror image at each framing (the photo as it is, and zoomed by each ``--scales`` and
``--compare`` about its centre, :func:`vtonpipe.models.nets.mediapipe.mirror_pair`); printed per build: the spread of
the two readings' gap at the photo's own framing (:func:`~vtonpipe.models.nets.mediapipe.mirror_gap`,
person sizes), the photos past ``--gap`` with their gap and COCO-18 error (px, the stage's
offsets applied) at every framing, the mean error of every photo read at each framing alone, and
the mean error of :func:`~vtonpipe.models.nets.mediapipe.mirror_averaged` with the stage's rule
(``reframe_gap=--gap``, ``reframe_scales=--scales``) against it without (the ratio).
"""

from __future__ import annotations

import argparse

import numpy as np

from vtonpipe.converters.keypoints import blazepose_to_coco_joints
from vtonpipe.datasets.sample_truth import image_truth_path, read_truth
from vtonpipe.io import read_image
from vtonpipe.models.nets.mediapipe import MainPersonPose, PoseResult, mirror_averaged, mirror_gap, mirror_pair, pose_coco18
from vtonpipe.pipeline.context import AnnotationContext


def error_px(landmarks: np.ndarray, truth: np.ndarray, size: tuple[int, int]) -> float:
    """Mean px error of the COCO-18 points (the stage's offsets applied) both detect and truth has."""
    kp = blazepose_to_coco_joints(pose_coco18(PoseResult(landmarks, None), size, 0.5))
    both = (kp[:, 2] > 0) & (truth[:, 2] > 0)
    return float(np.linalg.norm(kp[both, :2] - truth[both, :2], axis=1).mean())


def averaged(own: PoseResult, other: np.ndarray) -> np.ndarray:
    out = 0.5 * (own.landmarks + other)
    out[:, 3] = np.minimum(own.landmarks[:, 3], other[:, 3])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("builds", nargs="+")
    ap.add_argument("--scales", type=float, nargs="+", default=[0.7], help="the rule's reframe_scales (the keypoints stage's default)")
    ap.add_argument("--compare", type=float, nargs="*", default=[0.85, 1.2], help="more framings, only tabulated")
    ap.add_argument("--gap", type=float, default=0.015)
    args = ap.parse_args()
    detect = MainPersonPose()
    framings = [1.0, *args.scales, *args.compare]
    for build in args.builds:
        ctx = AnnotationContext(build)
        gaps, errors, as_read, rule, flagged = [], {s: [] for s in framings}, [], [], []
        for _, image in sorted(ctx.images.items()):
            truth_path = image_truth_path(ctx.dataset_root, image["path"])
            if image["kind"] != "person" or not truth_path.exists():
                continue
            photo = read_image(ctx.dataset_root / image["path"])
            truth = np.asarray(read_truth(truth_path)["coco18"], np.float32)
            size = photo.shape[:2]
            row = {}
            for scale in framings:
                own, other = mirror_pair(detect, photo, scale)
                row[scale] = None if other is None else (mirror_gap(own.landmarks, other), error_px(averaged(own, other), truth, size))
            if row[1.0] is None:
                continue
            gaps.append(row[1.0][0])
            for scale in framings:
                errors[scale].append(row[scale][1] if row[scale] else np.nan)
            as_read.append(error_px(mirror_averaged(detect, photo).landmarks, truth, size))
            rule.append(error_px(mirror_averaged(detect, photo, reframe_gap=args.gap, reframe_scales=tuple(args.scales)).landmarks, truth, size))
            if row[1.0][0] > args.gap:
                flagged.append((image["path"], row))
        g = np.array(gaps)
        print(f"{build}: {len(g)} photos; own/mirror gap median {np.median(g):.4f}, 99th percentile {np.percentile(g, 99):.4f}, largest {g.max():.4f}")
        for path, row in flagged:
            cells = "  ".join(f"x{s}: gap {row[s][0]:.3f} err {row[s][1]:.1f} px" if row[s] else f"x{s}: -" for s in framings)
            print(f"  past {args.gap}: {path}  {cells}")
        for scale in framings:
            print(f"  every photo read at x{scale} (plain mean of the pair): {np.nanmean(errors[scale]):.3f} px")
        print(f"  mirror_averaged as read: {np.mean(as_read):.3f} px; with the rule (gap {args.gap}, scales {args.scales}): {np.mean(rule):.3f} px, {np.mean(rule) / np.mean(as_read):.3f} x")


if __name__ == "__main__":
    main()
