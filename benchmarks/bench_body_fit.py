"""Body fitting: accuracy, and batched against one-image-at-a-time speed at equal error.

    python benchmarks/bench_body_fit.py [--bodies 32] [--noise 2] [--threads 1] [--sample DIR]

Synthetic problems (default): ``--bodies`` random anny bodies (random pose of the fitted bones,
phenotype, up to 40 degrees of turn) photographed by the fitter's own camera at 256 x 192, their
18 keypoints with Gaussian noise of ``--noise`` px. The same problems are fitted as one batch and
one image at a time with the same stopping rule; printed per mode: wall time, images/s, mean
iterations, the fit residual (confidence-weighted mean px distance to the noisy keypoints), the
joint error against the noiseless keypoints (px), and the 3D vertex error against the true
body in the camera frame (cm), raw and after the best scale about the camera centre (the
distance / body size ambiguity of one photo); then the batched / sequential speed ratio.

``--sample DIR`` also fits the person images of a ``vtonpipe sample`` dataset with MediaPipe
keypoints and compares with its ground truth (COCO-18 px on visible points, vertices in cm).

The figures measured with it are in :mod:`vtonpipe.models.body_fit`'s docstring.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from vtonpipe.models.anny_body import AnnyBody
from vtonpipe.models.body_fit import AnnyFitModel, FitConfig, FitResult, fit_bodies, synthetic_bodies


def vertex_errors(body: AnnyBody, fit: FitResult, truth: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per body mean vertex distance (m), camera frame: raw, and after scaling the fit about the
    camera centre by the least-squares factor."""
    with torch.no_grad():
        ours = body(fit.pose, fit.shape, fit.rotation, fit.translation).double().numpy()
        true = body(truth["pose"], truth["shape"], truth["rotation"], truth["translation"]).double().numpy()
    raw = np.linalg.norm(ours - true, axis=-1).mean(1)
    scale = (ours * true).sum((1, 2)) / (ours * ours).sum((1, 2))
    return raw, np.linalg.norm(scale[:, None, None] * ours - true, axis=-1).mean(1)


def report(name: str, body: AnnyBody, fit: FitResult, truth: dict[str, np.ndarray], clean: np.ndarray, seconds: float) -> None:
    n = len(fit.residual_px)
    joints = np.linalg.norm(fit.joints_2d[:, :, :2] - clean, axis=-1)
    raw, scaled = vertex_errors(body, fit, truth)
    failed = sum(f is not None for f in fit.failure)
    print(
        f"{name:>10} {seconds:8.1f} {n / seconds:9.2f} {fit.iterations.mean():7.0f} {fit.residual_px.mean():9.2f} "
        f"{joints.mean():9.2f} {100 * raw.mean():9.1f} {100 * scaled.mean():10.1f} {failed:7d}"
    )


def synthetic(args: argparse.Namespace, model: AnnyFitModel) -> None:
    truth = synthetic_bodies(model, args.bodies, seed=args.seed, size=(192, 256), noise_px=args.noise)
    params = {"pose": truth.pose, "shape": truth.shape, "rotation": truth.rotation, "translation": truth.translation}
    config = FitConfig()
    print(f"{args.bodies} synthetic anny bodies, 256 x 192, keypoint noise {args.noise} px; torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"{'mode':>10} {'time s':>8} {'images/s':>9} {'iters':>7} {'resid px':>9} {'joint px':>9} {'vert cm':>9} {'scaled cm':>10} {'failed':>7}")
    start = time.perf_counter()
    batched = fit_bodies(model, truth.keypoints, truth.sizes, config)
    t_batched = time.perf_counter() - start
    report("batched", model.body, batched, params, truth.clean, t_batched)
    start = time.perf_counter()
    singles = [fit_bodies(model, truth.keypoints[b : b + 1], truth.sizes[b : b + 1], config) for b in range(args.bodies)]
    t_single = time.perf_counter() - start
    sequential = FitResult(
        batched.model, *(np.concatenate([getattr(s, k) for s in singles]) for k in
        ("pose", "shape", "rotation", "translation", "camera", "joints_2d", "residual_px", "iterations")),
        [s.failure[0] for s in singles],
    )  # fmt: skip
    report("sequential", model.body, sequential, params, truth.clean, t_single)
    print(f"batched / sequential speed: {t_single / t_batched:.1f}x")


def sample(args: argparse.Namespace, model: AnnyFitModel) -> None:
    from vtonpipe.annotators import ImageItem
    from vtonpipe.annotators.keypoints import MediaPipeKeypoints
    from vtonpipe.io import read_image
    from vtonpipe.synth.groundtruth import image_truth_path, read_truth

    root = Path(args.sample)
    paths = sorted(p for p in (root / "all").glob("*=person_*.jpg"))
    detector = MediaPipeKeypoints()
    detector.ensure_setup()
    keypoints, sizes, truths, names = [], [], [], []
    for path in paths:
        image = read_image(path)
        (record,) = detector.annotate([ImageItem(path.name, "", "person", image)], None)
        if not isinstance(record, dict):
            print(f"{path.name}: no keypoints ({record.reason})")
            continue
        keypoints.append(record["keypoints"])
        sizes.append((image.shape[1], image.shape[0]))
        truths.append(read_truth(image_truth_path(root, f"all/{path.name}")))
        names.append(path.name)
    start = time.perf_counter()
    fit = fit_bodies(model, np.stack(keypoints), sizes, FitConfig())
    seconds = time.perf_counter() - start
    params = {k: np.stack([t[g] for t in truths]) for k, g in
              (("pose", "body_pose"), ("shape", "phenotype"), ("rotation", "body_rotation"), ("translation", "body_translation"))}  # fmt: skip
    gt = np.stack([t["coco18"] for t in truths])
    visible = gt[:, :, 2] == 2
    joints = np.linalg.norm(fit.joints_2d[:, :, :2] - gt[:, :, :2], axis=-1)
    detected = np.linalg.norm(np.stack(keypoints)[:, :, :2] - gt[:, :, :2], axis=-1)
    found = np.stack(keypoints)[:, :, 2] > 0
    raw, scaled = vertex_errors(model.body, fit, params)
    ok = np.array([f is None for f in fit.failure])
    print(f"\nsample {root}: {len(names)} person images with MediaPipe keypoints, fitted in {seconds:.1f} s ({len(names) / seconds:.2f} images/s)")
    print(f"  MediaPipe keypoints vs truth (visible, detected): {detected[visible & found].mean():.1f} px")
    print(f"  fit joints vs truth (visible): {joints[visible & ok[:, None]].mean():.1f} px; residual {fit.residual_px[ok].mean():.1f} px")
    print(f"  vertices vs truth: {100 * raw[ok].mean():.1f} cm, scale-aligned {100 * scaled[ok].mean():.1f} cm; failed {int((~ok).sum())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bodies", type=int, default=32)
    parser.add_argument("--noise", type=float, default=2.0, help="keypoint noise, px (Gaussian sigma)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--sample", help="a `vtonpipe sample` dataset to fit too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = AnnyFitModel()
    synthetic(args, model)
    if args.sample:
        sample(args, model)


if __name__ == "__main__":
    main()
