"""``groundtruth`` backends: every annotation read from the sample dataset's exact ground truth.

The embedded sample (``vtonpipe sample``) writes ``gt/`` beside its images (docs/SAMPLE.md).
These backends turn it into annotation rows, so a build of the sample can carry oracle priors
(e.g. to train with exact priors, or to tell an annotator's errors from a trainer's), and
``vtonpipe bench accuracy`` scores them perfectly. On any other dataset they fail every item with
``no_ground_truth``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..converters.keypoints import keypoint_bbox
from ..converters.labels import LIP, NUM_LIP_CLASSES
from ..converters.masks import mask_bbox, mask_box_edges
from ..core import (
    AnnotationFailure,
    AnnotatorSpec,
    Backend,
    Context,
    ImageItem,
    PairItem,
)
from ..datasets.sample_truth import image_truth_path, pair_truth_path, read_truth
from ..schemas.body import BodyRecord
from ..schemas.densepose import DenseposeRecord
from ..schemas.garment_mask import GarmentMaskRecord
from ..schemas.keypoints import KeypointsRecord
from ..schemas.landmarks import LandmarksRecord
from ..schemas.parsing import ParsingRecord
from ..schemas.person_mask import PersonMaskRecord
from ..schemas.smpl_flow import SmplFlowRecord
from . import (
    body,
    densepose,
    garment_mask,
    keypoints,
    landmarks,
    parsing,
    person_mask,
    smpl_flow,
)
from .registry import register_backend


def _image_truth(ctx: Context, image_id: str) -> dict[str, Any]:
    path = image_truth_path(ctx.dataset_root, ctx.images[image_id]["path"])
    if not path.exists():
        raise AnnotationFailure("no_ground_truth", f"{path} does not exist (not a `vtonpipe sample` dataset?)")
    return read_truth(path)


def _keypoints(gt: dict[str, Any], item: ImageItem) -> KeypointsRecord:
    kp = gt["coco18"].copy()
    state = kp[:, 2].copy()
    kp[:, 2] = np.where(state > 0, 1.0, 0.0)
    kp[state == 0, :2] = 0.0
    return KeypointsRecord(keypoints=kp, people=kp[None], num_people=1, score=1.0, bbox=keypoint_bbox(kp))


def _person_mask(gt: dict[str, Any], item: ImageItem) -> PersonMaskRecord:
    face = (gt["parsing"] == LIP.FACE).astype(np.uint8)
    has_face = bool(face.any())
    return PersonMaskRecord(
        mask=gt["person_mask"],
        area_fraction=float(gt["person_mask"].mean()),
        bbox=mask_bbox(gt["person_mask"]),
        face_mask=face if has_face else None,
        face_bbox=mask_bbox(face) if has_face else None,
    )


def _garment_mask(gt: dict[str, Any], item: ImageItem) -> GarmentMaskRecord:
    m = gt["garment_mask"]
    border = np.concatenate([item.image[0], item.image[-1], item.image[:, 0], item.image[:, -1]])
    return GarmentMaskRecord(mask=m, area_fraction=float(m.mean()), bbox=mask_bbox(m), background_rgb=np.median(border, axis=0).astype(np.uint8))


def _parsing(gt: dict[str, Any], item: ImageItem) -> ParsingRecord:
    p = gt["parsing"]
    return ParsingRecord(
        parsing=p,
        native_label_set="lip",
        class_pixels=np.bincount(p.ravel(), minlength=NUM_LIP_CLASSES).astype(np.int32),
        person_fraction=float((p > 0).mean()),
        bbox=mask_bbox(p > 0),
    )


def _densepose(gt: dict[str, Any], item: ImageItem) -> DenseposeRecord:
    iuv = gt["iuv"]
    box = mask_box_edges(iuv[..., 0] > 0)
    if box is None:
        raise AnnotationFailure("no_person", "no body pixel in the ground truth")
    return DenseposeRecord(iuv=iuv, bbox=box, score=1.0, num_people=1)


def _body(gt: dict[str, Any], item: ImageItem) -> BodyRecord:
    joints = gt["coco18"].copy()
    joints[:, 2] = (joints[:, 2] > 0).astype(np.float32)
    return BodyRecord(
        model="anny",
        pose=gt["body_pose"],
        shape=gt["phenotype"],
        rotation=gt["body_rotation"],
        translation=gt["body_translation"],
        camera=gt["camera"],
        joints_2d=joints,
        residual_px=0.0,
        iterations=0,
    )


def _landmarks(gt: dict[str, Any], item: ImageItem) -> LandmarksRecord:
    return LandmarksRecord(landmarks=gt["landmarks"], garment_category=gt.get("garment_category"))


_IMAGE_RECORDS: dict[AnnotatorSpec, Callable[[dict[str, Any], ImageItem], Any]] = {
    keypoints.SPEC: _keypoints,
    person_mask.SPEC: _person_mask,
    garment_mask.SPEC: _garment_mask,
    parsing.SPEC: _parsing,
    densepose.SPEC: _densepose,
    body.SPEC: _body,
    landmarks.SPEC: _landmarks,
}


def _image_backend(spec: AnnotatorSpec, record: Callable[[dict[str, Any], ImageItem], Any]) -> type[Backend]:
    class GroundTruth(Backend):
        doc = "exact ground truth of the embedded sample dataset (gt/ beside its images)"

        def annotate_one(self, item: ImageItem, ctx: Context) -> Any:
            return record(_image_truth(ctx, item.image_id), item)

    GroundTruth.spec, GroundTruth.name = spec, "groundtruth"
    GroundTruth.__name__ = GroundTruth.__qualname__ = f"GroundTruth_{spec.name}"
    return register_backend(GroundTruth)


for _spec, _record in _IMAGE_RECORDS.items():
    _image_backend(_spec, _record)


@register_backend
class GroundTruthFlow(Backend):
    spec = smpl_flow.SPEC
    name = "groundtruth"
    doc = "exact body flow and visibility of the embedded sample dataset's pairs"

    def annotate_one(self, item: PairItem, ctx: Context) -> SmplFlowRecord:
        path = pair_truth_path(ctx.dataset_root, ctx.images[item.source_image_id]["path"], ctx.images[item.target_image_id]["path"])
        if not path.exists():
            raise AnnotationFailure("no_ground_truth", f"{path} does not exist")
        gt = read_truth(path)
        body_pixels = gt["visibility"] != 2
        return SmplFlowRecord(flow=gt["flow"], visibility=gt["visibility"], visible_fraction=float((gt["visibility"] == 0).sum() / max(body_pixels.sum(), 1)))
