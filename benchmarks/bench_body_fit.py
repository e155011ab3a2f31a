"""Body fitting: accuracy, batched against one-image-at-a-time speed at equal error, and the
silhouette term.

    python benchmarks/bench_body_fit.py [--bodies 64] [--noise 2] [--threads N] [--sample DIR]
                                        [--silhouette 0,0.3,1,3] [--no-sequential]
                                        [--fit patience=10,rel_tol=0.003]

Synthetic problems (default): ``--bodies`` random anny bodies (random pose of the fitted bones,
phenotype, up to 40 degrees of turn) photographed by the fitter's own camera at 256 x 192, their
18 keypoints with Gaussian noise of ``--noise`` px and their exact silhouettes (ray cast) as
person masks. The same problems are fitted as one batch by the baseline (the original forward,
``AnnyFitModel(full_skeleton=True)``: all 104 bones posed each step), as one batch by the fitter
and one image at a time (unless ``--no-sequential``) with the same stopping rule; printed per mode: wall time, images/s, mean iterations, the fit residual
(confidence-weighted mean px distance to the noisy keypoints), the joint error against the
noiseless keypoints (px), the IoU of the fitted body's silhouette with the true one, and the 3D
vertex error against the true body in the camera frame (cm), raw and after the best scale about
the camera centre (the distance / body size ambiguity of one photo); then the batched /
sequential and batched / baseline speed ratios.

``--silhouette W,...`` fits the synthetic problems once per ``silhouette_weight`` (batched, the
exact silhouettes as masks) instead of batched against one by one.

``--sample DIR`` also fits the person images of a ``vtonpipe sample`` dataset with MediaPipe
keypoints and MediaPipe person masks (the ``keypoints`` and ``person_mask`` annotators' default
backends, run here in-process) once per silhouette weight (0 without ``--silhouette``), and
compares with its ground truth: COCO-18 px on visible points, silhouette IoU against the
body-only silhouette (``face_id >= 0``, the body under the clothes) and against the person mask
(clothes and hair included), vertices in cm.

The figures measured with it are in :mod:`vtonpipe.models.bodies.fitting`'s docstring.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from vtonpipe.models.bodies.anny import AnnyBody
from vtonpipe.models.bodies.camera import PinholeCamera
from vtonpipe.models.bodies.fitting import (
    AnnyFitModel,
    FitConfig,
    FitResult,
    camera_of,
    fit_bodies,
)
from vtonpipe.models.bodies.fitting.problems import synthetic_bodies
from vtonpipe.models.render.raster import rasterize


def vertex_errors(body: AnnyBody, fit: FitResult, truth: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per body mean vertex distance (m), camera frame: raw, and after scaling the fit about the
    camera centre by the least-squares factor."""
    with torch.no_grad():
        ours = body(fit.pose, fit.shape, fit.rotation, fit.translation).double().numpy()
        true = body(truth["pose"], truth["shape"], truth["rotation"], truth["translation"]).double().numpy()
    raw = np.linalg.norm(ours - true, axis=-1).mean(1)
    scale = (ours * true).sum((1, 2)) / (ours * ours).sum((1, 2))
    return raw, np.linalg.norm(scale[:, None, None] * ours - true, axis=-1).mean(1)


def silhouettes(body: AnnyBody, params: dict[str, np.ndarray], cameras: np.ndarray, sizes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """bool (H, W) silhouettes of anny bodies (``pose``, ``shape``, ``rotation``, ``translation``
    batches) seen by ``cameras`` (B, 4) fx, fy, cx, cy in images of ``sizes`` (W, H)."""
    with torch.no_grad():
        vertices = body(params["pose"], params["shape"], params["rotation"], params["translation"]).numpy()
    return [rasterize(v, body.faces, PinholeCamera(*(float(c) for c in cam), w, h)).mask for v, cam, (w, h) in zip(vertices, cameras, sizes)]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (H, W) masks (bool or {0, 1})."""
    a, b = a > 0, b > 0
    return float((a & b).sum() / (a | b).sum())


def fitted_iou(body: AnnyBody, fit: FitResult, sizes: Sequence[tuple[int, int]], masks: Sequence[np.ndarray]) -> np.ndarray:
    """(B,) IoU of each fitted body's silhouette with ``masks`` (H, W)."""
    params = {"pose": fit.pose, "shape": fit.shape, "rotation": fit.rotation, "translation": fit.translation}
    return np.array([iou(a, m) for a, m in zip(silhouettes(body, params, fit.camera, sizes), masks)])


COLUMNS = (
    f"{'time s':>8} {'images/s':>9} {'cpu im/s':>9} {'iters':>7} {'resid px':>9} {'joint px':>9} {'IoU':>6} {'vert cm':>9} {'scaled cm':>10} {'failed':>7}"
)


def report(
    name: str,
    body: AnnyBody,
    fit: FitResult,
    truth: dict[str, np.ndarray],
    clean: np.ndarray,
    masks: Sequence[np.ndarray],
    seconds: float,
    cpu_seconds: float = float("nan"),
) -> None:
    """One row: wall ``seconds`` and this process's CPU seconds (``cpu im/s``: steadier than the
    wall clock on a loaded machine) of the fit, then its accuracy."""
    n = len(fit.residual_px)
    joints = np.linalg.norm(fit.joints_2d[:, :, :2] - clean, axis=-1)
    raw, scaled = vertex_errors(body, fit, truth)
    iou = fitted_iou(body, fit, [m.shape[::-1] for m in masks], masks)
    failed = sum(f is not None for f in fit.failure)
    print(
        f"{name:>10} {seconds:8.1f} {n / seconds:9.2f} {n / cpu_seconds:9.2f} {fit.iterations.mean():7.0f} {fit.residual_px.mean():9.2f} "
        f"{joints.mean():9.2f} {iou.mean():6.3f} {100 * raw.mean():9.1f} {100 * scaled.mean():10.1f} {failed:7d}"
    )


def synthetic(args: argparse.Namespace, model: AnnyFitModel, baseline: AnnyFitModel) -> None:
    truth = synthetic_bodies(model, args.bodies, seed=args.seed, size=(192, 256), noise_px=args.noise)
    params = {"pose": truth.pose, "shape": truth.shape, "rotation": truth.rotation, "translation": truth.translation}
    config = FitConfig()
    cameras = np.stack([camera_of(w, h, config.fov_y_deg) for w, h in truth.sizes])
    masks = [m.astype(np.uint8) for m in silhouettes(model.body, params, cameras, truth.sizes)]
    print(f"{args.bodies} synthetic anny bodies, 256 x 192, keypoint noise {args.noise} px; torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    if args.silhouette:
        print(f"{'sil. w':>10} {COLUMNS}")
        for weight in args.silhouette:
            start, cpu = time.perf_counter(), time.process_time()
            fit = fit_bodies(model, truth.keypoints, truth.sizes, FitConfig(silhouette_weight=weight), masks)
            report(f"{weight:g}", model.body, fit, params, truth.clean, masks, time.perf_counter() - start, time.process_time() - cpu)
        return
    print(f"{'mode':>10} {COLUMNS}")
    start, cpu = time.perf_counter(), time.process_time()
    old = fit_bodies(baseline, truth.keypoints, truth.sizes, config)
    t_baseline, c_baseline = time.perf_counter() - start, time.process_time() - cpu
    report("baseline", model.body, old, params, truth.clean, masks, t_baseline, c_baseline)
    start, cpu = time.perf_counter(), time.process_time()
    batched = fit_bodies(model, truth.keypoints, truth.sizes, replace(config, **args.fit))
    t_batched, c_batched = time.perf_counter() - start, time.process_time() - cpu
    report("batched", model.body, batched, params, truth.clean, masks, t_batched, c_batched)
    print(f"batched / baseline (all 104 bones posed) speed: {t_baseline / t_batched:.2f}x wall, {c_baseline / c_batched:.2f}x CPU")
    if args.no_sequential:
        return
    start, cpu = time.perf_counter(), time.process_time()
    singles = [fit_bodies(model, truth.keypoints[b : b + 1], truth.sizes[b : b + 1], config) for b in range(args.bodies)]
    t_single, c_single = time.perf_counter() - start, time.process_time() - cpu
    sequential = FitResult(
        batched.model, *(np.concatenate([getattr(s, k) for s in singles]) for k in
        ("pose", "shape", "rotation", "translation", "camera", "joints_2d", "residual_px", "iterations", "loss")),
        [s.failure[0] for s in singles],
    )  # fmt: skip
    report("sequential", model.body, sequential, params, truth.clean, masks, t_single, c_single)
    print(f"batched / sequential speed: {t_single / t_batched:.1f}x")


def sample(args: argparse.Namespace, model: AnnyFitModel) -> None:
    from vtonpipe.annotators.keypoints import MediaPipeKeypoints
    from vtonpipe.annotators.person_mask import MediaPipePoseMask
    from vtonpipe.core import ImageItem
    from vtonpipe.datasets.sample_truth import image_truth_path, read_truth
    from vtonpipe.io import read_image

    root = Path(args.sample)
    paths = sorted(p for p in (root / "all").glob("*=person_*.jpg"))
    detectors = (MediaPipeKeypoints(), MediaPipePoseMask())
    for d in detectors:
        d.ensure_setup()
    keypoints, masks, sizes, truths = [], [], [], []
    for path in paths:
        image = read_image(path)
        records = [d.annotate([ImageItem(path.name, "", "person", image)], None)[0] for d in detectors]
        if not all(isinstance(r, dict) for r in records):
            print(f"{path.name}: no keypoints or no person mask ({[getattr(r, 'reason', 'ok') for r in records]})")
            continue
        keypoints.append(records[0]["keypoints"])
        masks.append(records[1]["mask"])
        sizes.append((image.shape[1], image.shape[0]))
        truths.append(read_truth(image_truth_path(root, f"all/{path.name}")))
    keypoints = np.stack(keypoints)
    params = {k: np.stack([t[g] for t in truths]) for k, g in
              (("pose", "body_pose"), ("shape", "phenotype"), ("rotation", "body_rotation"), ("translation", "body_translation"))}  # fmt: skip
    gt = np.stack([t["coco18"] for t in truths])
    visible = gt[:, :, 2] == 2
    body_only = [t["face_id"] >= 0 for t in truths]
    person = [t["person_mask"] for t in truths]
    detected = np.linalg.norm(keypoints[:, :, :2] - gt[:, :, :2], axis=-1)
    mask_iou, mask_body = (np.mean([iou(m, t) for m, t in zip(masks, truth)]) for truth in (person, body_only))
    print(f"\nsample {root}: {len(truths)} person images with MediaPipe keypoints and person masks")
    print(f"  MediaPipe keypoints vs truth (visible, detected): {detected[visible & (keypoints[:, :, 2] > 0)].mean():.1f} px")
    print(f"  MediaPipe person mask IoU vs the person mask {mask_iou:.3f}, vs the body-only silhouette {mask_body:.3f}")
    print(
        f"{'sil. w':>10} {'time s':>8} {'images/s':>9} {'resid px':>9} {'joint px':>9} {'IoU body':>9} {'IoU pers.':>10} "
        f"{'vert cm':>9} {'scaled cm':>10} {'failed':>7}"
    )
    for weight in args.silhouette or [0.0]:
        start = time.perf_counter()
        fit = fit_bodies(model, keypoints, sizes, FitConfig(silhouette_weight=weight), masks)
        seconds = time.perf_counter() - start
        ok = np.array([f is None for f in fit.failure])
        joints = np.linalg.norm(fit.joints_2d[:, :, :2] - gt[:, :, :2], axis=-1)
        raw, scaled = vertex_errors(model.body, fit, params)
        iou_body, iou_person = (fitted_iou(model.body, fit, sizes, truth) for truth in (body_only, person))
        print(
            f"{weight:>10g} {seconds:8.1f} {len(ok) / seconds:9.2f} {fit.residual_px[ok].mean():9.2f} {joints[visible & ok[:, None]].mean():9.2f} "
            f"{iou_body[ok].mean():9.3f} {iou_person[ok].mean():10.3f} {100 * raw[ok].mean():9.1f} {100 * scaled[ok].mean():10.1f} {int((~ok).sum()):7d}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bodies", type=int, default=64, help="images per batch (the body stage's default batch_size is 64)")
    parser.add_argument("--noise", type=float, default=2.0, help="keypoint noise, px (Gaussian sigma)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads (default: one per core)")
    parser.add_argument(
        "--fit",
        type=lambda s: {k: float(v) if "." in v or "e" in v else int(v) for k, v in (kv.split("=") for kv in s.split(","))},
        default={},
        help="FitConfig overrides of the batched row only (the baseline keeps the defaults), e.g. patience=10,rel_tol=0.003",
    )
    parser.add_argument("--no-sequential", action="store_true", help="skip the one-image-at-a-time fits")
    parser.add_argument("--sample", help="a `vtonpipe sample` dataset to fit too")
    parser.add_argument("--silhouette", type=lambda s: [float(w) for w in s.split(",")], help="silhouette weights to compare, e.g. 0,0.3,1,3")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = AnnyFitModel()
    synthetic(args, model, AnnyFitModel(model.body, full_skeleton=True))
    if args.sample:
        sample(args, model)


if __name__ == "__main__":
    main()
