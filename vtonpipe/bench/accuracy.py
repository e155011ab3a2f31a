"""``vtonpipe bench accuracy``: score a build's annotations against the sample's ground truth.

A *run* is a build directory of a dataset written by ``vtonpipe sample`` (its ``gt/`` holds the
exact priors, docs/SAMPLE.md). Every complete annotation stage of the build is scored with the
metric that suits it; images or pairs without a row (the annotator failed on them) count as
misses where the metric allows it (keypoints) and are reported as ``missing`` otherwise. Each
stage is also scored per case (:func:`cases`): the person photos of each view (front / side /
back, from their names, :func:`~vtonpipe.datasets.sample_truth.view_of`) and those of each
:data:`RECIPE_CASES` entry of ``sample.json`` (forearms across the torso, a textured backdrop,
the side light, a dress or a jumpsuit, long hair over the shoulders, a bag), and the pairs whose target
photo is one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..converters.keypoints import COCO18_NAMES
from ..converters.labels import LIP_LABELS, NUM_LIP_CLASSES
from ..core.registry import Registry
from ..datasets.sample_truth import (
    GT_DIR,
    VIEWS,
    image_truth_path,
    pair_truth_path,
    photo_recipes,
    read_truth,
    view_of,
)
from ..pipeline.context import AnnotationContext
from ..pipeline.pack import stages_present
from ..pipeline.store import ShardReader
from .metrics import (
    FlowAccuracy,
    IUVAccuracy,
    KeypointAccuracy,
    LandmarkAccuracy,
    PointError,
    SegmentationIoU,
)

#: the item ids (image or pair ids) an evaluator scores, None for all
Only = frozenset[str] | None
#: cases read from a photo's recipe in ``sample.json`` (sections ``pose``, ``shot``, ``person``):
#: name -> whether a photo's recipe is one
RECIPE_CASES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "arms_in_front": lambda r: r.get("pose", {}).get("name") == "arms_in_front",
    "textured_background": lambda r: r.get("shot", {}).get("backdrop") == "textured",
    "side_light": lambda r: r.get("shot", {}).get("lighting") == "side",
    "dress": lambda r: r.get("person", {}).get("outfit") == "dress",
    "jumpsuit": lambda r: r.get("person", {}).get("outfit") == "jumpsuit",
    "hair_over_shoulders": lambda r: r.get("person", {}).get("hair", {}).get("over_shoulders", 0.0) > 0,
    "bag": lambda r: r.get("person", {}).get("bag") is not None,
}


@dataclass
class StageScore:
    annotator: str
    backend: str
    items: int
    missing: int
    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    #: per case (:func:`cases`): ``{"items": n, "missing": m, **metrics}``, cases without items left out
    cases: dict[str, dict[str, float]] = field(default_factory=dict)


def _score_images(
    reader: ShardReader, ctx: AnnotationContext, only: Only, kinds: tuple[str, ...], update: Callable[[dict[str, Any] | None, dict[str, Any]], None]
) -> tuple[int, int]:
    """Call ``update(record or None, ground truth)`` for every image of ``kinds`` (and in ``only``,
    unless None) that has a GT file; returns (images, images without a row)."""
    n = missing = 0
    for image_id, image in sorted(ctx.images.items()):
        path = image_truth_path(ctx.dataset_root, image["path"])
        if image["kind"] not in kinds or (only is not None and image_id not in only) or not path.exists():
            continue
        row = reader.record(image_id) if image_id in reader else None
        n, missing = n + 1, missing + (row is None)
        update(row, read_truth(path))
    return n, missing


def _keypoints(reader: ShardReader, ctx: AnnotationContext, only: Only):
    acc = KeypointAccuracy()
    offsets: list[np.ndarray] = []

    def update(row, gt):
        if row is None:  # an image without keypoints misses them all
            acc.update(np.zeros((18, 3), np.float32), gt["coco18"])
            return
        acc.update(row.keypoints, gt["coco18"])
        both = (row.keypoints[:, 2] > 0) & (gt["coco18"][:, 2] > 0)
        offsets.append(np.where(both[:, None], row.keypoints[:, :2] - gt["coco18"][:, :2], np.nan))

    n, missing = _score_images(reader, ctx, only, ("person",), update)
    per_joint = acc.per_joint_pck()
    mean_offset = np.nanmean(np.stack(offsets), axis=0) if offsets else np.full((18, 2), np.nan)
    details = {
        "per_joint": {
            name: {"pck": float(per_joint[i]), "mean_offset_xy": [float(v) for v in mean_offset[i]]} for i, name in enumerate(COCO18_NAMES)
        }
    }
    return acc.result(), n, missing, details


def _present(update: Callable[[dict[str, Any], dict[str, Any]], None]) -> Callable[[dict[str, Any] | None, dict[str, Any]], None]:
    """``update`` applied only to images that have a row."""
    return lambda row, gt: None if row is None else update(row, gt)


def _mask(kind: str, field_name: str, gt_key: str):
    def score(reader: ShardReader, ctx: AnnotationContext, only: Only):
        iou = SegmentationIoU(2)
        n, missing = _score_images(reader, ctx, only, (kind,), _present(lambda row, gt: iou.update(getattr(row, field_name).astype(bool), gt[gt_key].astype(bool))))
        return {"iou": float(iou.per_class_iou()[1])}, n, missing, {}

    return score


def _parsing(reader: ShardReader, ctx: AnnotationContext, only: Only):
    iou = SegmentationIoU(NUM_LIP_CLASSES)
    n, missing = _score_images(reader, ctx, only, ("person",), _present(lambda row, gt: iou.update(row.parsing, gt["parsing"])))
    per_class = iou.per_class_iou()
    return iou.result(), n, missing, {"per_class_iou": {LIP_LABELS[c]: float(per_class[c]) for c in range(NUM_LIP_CLASSES) if np.isfinite(per_class[c])}}


def _densepose(reader: ShardReader, ctx: AnnotationContext, only: Only):
    acc = IUVAccuracy()
    n, missing = _score_images(reader, ctx, only, ("person",), _present(lambda row, gt: acc.update(row.iuv, gt["iuv"])))
    return acc.result(), n, missing, {}


def _body(reader: ShardReader, ctx: AnnotationContext, only: Only):
    err = PointError()

    def update(row, gt):
        used = row.joints_2d[:, 2] > 0
        err.update(row.joints_2d[used, :2], gt["coco18"][used])

    n, missing = _score_images(reader, ctx, only, ("person",), _present(update))
    return {"joint_px_error": err.result()["mean_px_error"]}, n, missing, {}


def _landmarks(reader: ShardReader, ctx: AnnotationContext, only: Only):
    acc = LandmarkAccuracy()
    n, missing = _score_images(reader, ctx, only, ("person", "garment"), _present(lambda row, gt: acc.update(row.landmarks, gt["landmarks"])))
    return acc.result(), n, missing, {}


def _smpl_flow(reader: ShardReader, ctx: AnnotationContext, only: Only):
    acc, n, missing = FlowAccuracy(), 0, 0
    for p in ctx.pairs:
        if not p["target_image_id"] or (only is not None and p["pair_id"] not in only):
            continue
        path = pair_truth_path(ctx.dataset_root, ctx.images[p["source_image_id"]]["path"], ctx.images[p["target_image_id"]]["path"])
        if not path.exists():
            continue
        n += 1
        if p["pair_id"] not in reader:
            missing += 1
            continue
        row, gt = reader.record(p["pair_id"]), read_truth(path)
        acc.update(row.flow, row.visibility, gt["flow"], gt["visibility"])
    return acc.result(), n, missing, {}


#: an evaluator scores one stage's reader against the sample's ground truth, on the items in
#: ``only`` (None: all): (metrics, items, items without a row, details)
Evaluator = Callable[[ShardReader, AnnotationContext, Only], tuple[dict[str, float], int, int, dict[str, Any]]]
EVALUATORS: Registry[str, Evaluator] = Registry("evaluator")
for _name, _evaluator in {
    "keypoints": _keypoints,
    "person_mask": _mask("person", "mask", "person_mask"),
    "garment_mask": _mask("garment", "mask", "garment_mask"),
    "parsing": _parsing,
    "densepose": _densepose,
    "body": _body,
    "smpl_flow": _smpl_flow,
    "landmarks": _landmarks,
}.items():
    EVALUATORS.add(_name, _evaluator)


def cases(ctx: AnnotationContext) -> dict[str, frozenset[str]]:
    """The item ids of each case: its person photos, and the pairs whose target photo (without a
    target: whose source photo) is one of them. Cases without a photo are left out."""
    recipes = photo_recipes(ctx.dataset_root)
    persons = {i: im["path"] for i, im in ctx.images.items() if im["kind"] == "person"}
    photos = {view: {i for i, path in persons.items() if view_of(path) == view} for view in VIEWS}
    for case, is_case in RECIPE_CASES.items():
        photos[case] = {i for i, path in persons.items() if is_case(recipes.get(path, {}))}
    return {
        case: frozenset(images | {p["pair_id"] for p in ctx.pairs if (p["target_image_id"] or p["source_image_id"]) in images})
        for case, images in photos.items()
        if images
    }


def evaluate(build: str | Path) -> list[StageScore]:
    """Scores of every complete annotation stage of ``build`` that has a metric."""
    ctx = AnnotationContext(build)
    if not (ctx.dataset_root / GT_DIR).is_dir():
        raise FileNotFoundError(f"{ctx.dataset_root} has no {GT_DIR}/: accuracy needs a dataset written by `vtonpipe sample`")
    scores, case_items = [], cases(ctx)
    for name in stages_present(ctx.layout):
        if name not in EVALUATORS:
            continue
        reader = ctx.reader(name)
        backends = sorted({p["backend"] for p in reader.manifest.get("provenance", [])})
        evaluator = EVALUATORS.get(name)
        metrics, n, missing, details = evaluator(reader, ctx, None)
        by_case = {}
        for case, items in case_items.items():
            case_metrics, case_n, case_missing, _ = evaluator(reader, ctx, items)
            if case_n:
                by_case[case] = {"items": case_n, "missing": case_missing, **case_metrics}
        scores.append(StageScore(name, ",".join(backends), n, missing, metrics, details, by_case))
    return scores
