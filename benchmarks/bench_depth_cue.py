"""MediaPipe's landmark depths and the anny-trained lifter's against the fitted bodies' joint
depths, per view, on a sample build.

    python benchmarks/bench_depth_cue.py --build DIR

``DIR`` is a build of a ``vtonpipe sample`` dataset whose ``keypoints`` (mediapipe backend) and
``body`` stages are complete. For every person photo with both rows, the limb joints' depths
relative to the hips' midpoint (elbows, wrists, knees, ankles; metres) of the true body (anny
posed from the ground truth), of the fitted body (the ``body`` row), and MediaPipe's ``z``
converted to metres at the body's distance (``z Z_hips / f``) times a scale (``--scale``, default
each view's least-squares slope of the truth on MediaPipe's values), and the depth lifter's
(:mod:`vtonpipe.models.bodies.lifting`, from MediaPipe's 2D points; trained and cached on first
use). Printed per view (front, side, back) and for all: MediaPipe's slope and correlation, the
mean absolute error (cm) of the fit's, of MediaPipe's scaled, of the fit's and MediaPipe's mean,
of the lifter's and of MediaPipe's and the lifter's mean (the body fit's ``depth_cue`` ``mean``),
and the lifter's correlation. The ``body`` fit's ``depth_scale`` (0.22) is the slope on the
seed-11 sample (0.21 over all its joints with a depth, 0.25 over these).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from vtonpipe.annotators.body_fit import depth_targets
from vtonpipe.converters.keypoints import COCO18_NAMES, mp33_depths_to_coco18
from vtonpipe.datasets.sample_truth import image_truth_path, read_truth, view_of
from vtonpipe.models.bodies.anny import AnnyBody
from vtonpipe.models.bodies.lifting import load_depth_lifter
from vtonpipe.pipeline.context import AnnotationContext
from vtonpipe.pipeline.store import ShardReader

LIMB_JOINTS = (3, 4, 6, 7, 9, 10, 12, 13)


def relative_depths(joints: np.ndarray) -> np.ndarray:
    return joints[..., 2] - 0.5 * (joints[..., 8, 2] + joints[..., 11, 2])[..., None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", type=Path, required=True)
    parser.add_argument("--scale", type=float, default=None, help="MediaPipe's scale (default: each view's own least-squares slope)")
    args = parser.parse_args()
    ctx = AnnotationContext(args.build)
    bodies, keypoints = ShardReader(args.build / "annotations" / "body"), ShardReader(args.build / "annotations" / "keypoints")
    anny = AnnyBody()
    lifter = load_depth_lifter()

    def joints(pose, shape, rotation, translation):
        fields = [torch.as_tensor(np.asarray(v, np.float32))[None] for v in (pose, shape, rotation, translation)]
        with torch.no_grad():
            return anny.openpose18(anny(*fields))[0].double().numpy()

    rows: dict[str, list[np.ndarray]] = {"truth": [], "fit": [], "mediapipe": [], "lifter": []}
    views = []
    for image_id, image in sorted(ctx.images.items()):
        path = image_truth_path(ctx.dataset_root, image["path"])
        if image["kind"] != "person" or image_id not in bodies.index or image_id not in keypoints.index or not path.exists():
            continue
        landmarks = keypoints.record(image_id).landmarks_mp33
        if landmarks is None:
            raise SystemExit(f"{image_id}: no MediaPipe landmarks (run the keypoints stage with the mediapipe backend)")
        gt, body = read_truth(path), bodies.record(image_id)
        true = joints(gt["body_pose"], gt["phenotype"], gt["body_rotation"], gt["body_translation"])
        rows["truth"].append(relative_depths(true))
        rows["fit"].append(relative_depths(joints(body.pose, body.shape, body.rotation, body.translation)))
        hips = 0.5 * (true[8, 2] + true[11, 2])
        rows["mediapipe"].append(mp33_depths_to_coco18(landmarks) * hips / float(gt["camera"][0]))
        rows["lifter"].append(depth_targets(landmarks[None], "lifter", 1.0, lifter)[0] * hips / float(gt["camera"][0]))
        views.append(view_of(image["path"]))
    truth, fit, mp, lifted = (np.stack(rows[k])[:, list(LIMB_JOINTS)] for k in ("truth", "fit", "mediapipe", "lifter"))
    views = np.array(views)
    print(f"{len(views)} photos; joints: {', '.join(COCO18_NAMES[j] for j in LIMB_JOINTS)}")
    print(
        f"{'view':6s} {'photos':>6s} {'slope':>6s} {'corr':>5s} {'fit cm':>7s} {'MP cm':>6s} {'mean cm':>8s} {'lifter cm':>9s} {'MP+lifter cm':>12s} {'lifter corr':>11s}"
    )
    for view in ("front", "side", "back", None):
        m = views == view if view else np.ones(len(views), bool)
        t, f, z, li = truth[m].ravel(), fit[m].ravel(), mp[m].ravel(), lifted[m].ravel()
        slope = float(z @ t / (z @ z))
        scaled = (args.scale or slope) * z
        print(
            f"{view or 'all':6s} {m.sum():6d} {slope:6.3f} {np.corrcoef(z, t)[0, 1]:5.2f} {100 * np.abs(f - t).mean():7.1f}"
            f" {100 * np.abs(scaled - t).mean():6.1f} {100 * np.abs(0.5 * (f + scaled) - t).mean():8.1f}"
            f" {100 * np.abs(li - t).mean():9.1f} {100 * np.abs(0.5 * (li + scaled) - t).mean():12.1f} {np.corrcoef(li, t)[0, 1]:11.2f}"
        )


if __name__ == "__main__":
    main()
