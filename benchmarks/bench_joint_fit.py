"""Joint fits: the photos of one person sharing one body shape, against independent fits.

    python benchmarks/bench_joint_fit.py --build DIR [--silhouette 1.0]

``DIR`` is a build of a ``vtonpipe sample`` dataset (MPV layout: each pair's source and target
photos show one person) whose ``keypoints`` and ``person_mask`` stages are complete. Every person
photo is fitted twice in one batch each with the ``body`` stage's defaults: independently, and
with ``fit_bodies(..., people=...)`` keyed by person (the pairs' source and target). Printed per
variant: the projected joint error against the exact keypoints (px, the joints the fit used), the
shape error against the true phenotype (mean absolute, the six values in [0, 1]), the two photos'
shape disagreement, and the ``smpl_flow`` render backend's flow from the fitted bodies against the
ground truth (EPE on visible pixels, visibility IoU), all in one process.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vtonpipe.annotators.smpl_flow_render import RenderSmplFlow
from vtonpipe.bench.metrics import FlowAccuracy
from vtonpipe.core import PairItem
from vtonpipe.datasets.sample_truth import image_truth_path, pair_truth_path, read_truth
from vtonpipe.models.bodies.fitting import AnnyFitModel, FitConfig, fit_bodies
from vtonpipe.pipeline.context import AnnotationContext
from vtonpipe.schemas.body import BodyRecord


class Rows:
    """The ``body`` rows and image sizes the ``smpl_flow`` backend reads."""

    def __init__(self, ctx: AnnotationContext, rows: dict[str, dict]):
        self.rows, self.images = rows, ctx.images

    def annotation(self, annotator: str, item_id: str) -> BodyRecord:
        return BodyRecord(**self.rows[item_id])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", required=True)
    parser.add_argument("--silhouette", type=float, default=1.0, help="silhouette_weight (the body stage's default: 1)")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    ctx = AnnotationContext(args.build)
    pairs = [p for p in ctx.pairs if p["target_image_id"]]
    person_of = {}
    for k, p in enumerate(pairs):
        person_of.setdefault(p["source_image_id"], k)
        person_of[p["target_image_id"]] = person_of[p["source_image_id"]]
    ids = sorted(person_of)
    keypoints = np.stack([ctx.annotation("keypoints", i).keypoints for i in ids])
    masks = [ctx.annotation("person_mask", i).mask for i in ids]
    sizes = [(ctx.images[i]["width"], ctx.images[i]["height"]) for i in ids]
    truth = {i: read_truth(image_truth_path(ctx.dataset_root, ctx.images[i]["path"])) for i in ids}
    model = AnnyFitModel()
    config = FitConfig(silhouette_weight=args.silhouette)
    backend = RenderSmplFlow()
    backend.ensure_setup()
    items = [PairItem(p["pair_id"], p["source_image_id"], p["target_image_id"], p["garment_image_id"], p["split"]) for p in pairs]
    print(f"{len(ids)} person photos of {len(pairs)} people, silhouette weight {args.silhouette:g}, {torch.get_num_threads()} threads")
    print(f"{'fit':>12} {'time s':>7} {'joint px':>9} {'shape err':>10} {'shape gap':>10} {'EPE px':>7} {'IoU vis':>8} {'IoU hid':>8} {'failed':>7}")
    for name, people in (("independent", None), ("joint", [person_of[i] for i in ids])):
        start = time.perf_counter()
        fit = fit_bodies(model, keypoints, sizes, config, masks, people=people)
        seconds = time.perf_counter() - start
        ok = [b for b, f in enumerate(fit.failure) if f is None]
        used = fit.joints_2d[:, :, 2] > 0
        errors = [np.linalg.norm(fit.joints_2d[b, used[b], :2] - truth[ids[b]]["coco18"][used[b], :2], axis=-1) for b in ok]
        shape_err = np.mean([np.abs(fit.shape[b] - truth[ids[b]]["phenotype"]).mean() for b in ok])
        index = {i: b for b, i in enumerate(ids)}
        gap = np.mean([np.abs(fit.shape[index[p["source_image_id"]]] - fit.shape[index[p["target_image_id"]]]).mean() for p in pairs])
        rows = {i: fit.record(index[i]) for i in ids if fit.failure[index[i]] is None}
        flow = FlowAccuracy()
        done = [it for it in items if it.source_image_id in rows and it.target_image_id in rows]
        for item, record in zip(done, backend.annotate(done, Rows(ctx, rows))):
            gt = read_truth(pair_truth_path(ctx.dataset_root, ctx.images[item.source_image_id]["path"], ctx.images[item.target_image_id]["path"]))
            flow.update(record.flow, record.visibility, gt["flow"], gt["visibility"])
        f = flow.result()
        print(
            f"{name:>12} {seconds:7.1f} {np.concatenate(errors).mean():9.2f} {shape_err:10.4f} {gap:10.4f} {f['epe_visible']:7.2f} "
            f"{f['visibility_iou_visible']:8.3f} {f['visibility_iou_hidden']:8.3f} {len(ids) - len(ok):7d}"
        )


if __name__ == "__main__":
    main()
