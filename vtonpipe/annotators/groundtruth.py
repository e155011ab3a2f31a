"""``groundtruth`` backends: every annotation read from the sample dataset's exact ground truth.

The embedded sample (``vtonpipe sample``) writes ``gt/`` beside its images (docs/SAMPLE.md).
These backends turn it into annotation rows, so a build of the sample can carry oracle priors
(e.g. to train with exact priors, or to tell an annotator's errors from a trainer's), and
``vtonpipe bench accuracy`` scores them perfectly. On any other dataset they fail every item with
``no_ground_truth``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..converters.keypoints import keypoint_bbox
from ..converters.masks import mask_bbox, mask_box_edges
from ..synth.groundtruth import image_truth_path, pair_truth_path, read_truth
from .base import AnnotationFailure, Backend, ImageItem, PairItem, register_backend

LIP_FACE = 13


def _image_truth(ctx: Any, image_id: str) -> dict[str, Any]:
    path = image_truth_path(ctx.dataset_root, ctx.images[image_id]["path"])
    if not path.exists():
        raise AnnotationFailure("no_ground_truth", f"{path} does not exist (not a `vtonpipe sample` dataset?)")
    return read_truth(path)


def _keypoints(gt: dict[str, Any], item: ImageItem) -> dict[str, Any]:
    kp = gt["coco18"].copy()
    state = kp[:, 2].copy()
    kp[:, 2] = np.where(state > 0, 1.0, 0.0)
    kp[state == 0, :2] = 0.0
    return {"keypoints": kp, "people": kp[None], "num_people": 1, "score": 1.0, "bbox": keypoint_bbox(kp), "landmarks_mp33": None}


def _person_mask(gt: dict[str, Any], item: ImageItem) -> dict[str, Any]:
    face = (gt["parsing"] == LIP_FACE).astype(np.uint8)
    has_face = bool(face.any())
    return {
        "mask": gt["person_mask"],
        "area_fraction": float(gt["person_mask"].mean()),
        "bbox": mask_bbox(gt["person_mask"]),
        "face_mask": face if has_face else None,
        "face_oval": None,
        "face_bbox": mask_bbox(face) if has_face else None,
    }


def _garment_mask(gt: dict[str, Any], item: ImageItem) -> dict[str, Any]:
    m = gt["garment_mask"]
    border = np.concatenate([item.image[0], item.image[-1], item.image[:, 0], item.image[:, -1]])
    return {"mask": m, "area_fraction": float(m.mean()), "bbox": mask_bbox(m), "background_rgb": np.median(border, axis=0).astype(np.uint8)}


def _parsing(gt: dict[str, Any], item: ImageItem) -> dict[str, Any]:
    p = gt["parsing"]
    return {
        "parsing": p,
        "native_label_set": "lip",
        "class_pixels": np.bincount(p.ravel(), minlength=20).astype(np.int32),
        "person_fraction": float((p > 0).mean()),
        "bbox": mask_bbox(p > 0),
    }


def _densepose(gt: dict[str, Any], item: ImageItem) -> dict[str, Any]:
    iuv = gt["iuv"]
    box = mask_box_edges(iuv[..., 0] > 0)
    if box is None:
        raise AnnotationFailure("no_person", "no body pixel in the ground truth")
    return {"iuv": iuv, "bbox": box, "score": 1.0, "num_people": 1}


def _body(gt: dict[str, Any], item: ImageItem) -> dict[str, Any]:
    joints = gt["coco18"].copy()
    joints[:, 2] = (joints[:, 2] > 0).astype(np.float32)
    return {
        "model": "anny",
        "pose": gt["body_pose"],
        "shape": gt["phenotype"],
        "rotation": gt["body_rotation"],
        "translation": gt["body_translation"],
        "camera": gt["camera"],
        "joints_2d": joints,
        "residual_px": 0.0,
        "iterations": 0,
    }


def _landmarks(gt: dict[str, Any], item: ImageItem) -> dict[str, Any]:
    return {"landmarks": gt["landmarks"], "garment_category": gt.get("garment_category")}


_IMAGE_FIELDS: dict[str, Callable[[dict[str, Any], ImageItem], dict[str, Any]]] = {
    "keypoints": _keypoints,
    "person_mask": _person_mask,
    "garment_mask": _garment_mask,
    "parsing": _parsing,
    "densepose": _densepose,
    "body": _body,
    "landmarks": _landmarks,
}


def _image_backend(annotator: str, fields: Callable[[dict[str, Any], ImageItem], dict[str, Any]]) -> type[Backend]:
    class GroundTruth(Backend):
        doc = "exact ground truth of the embedded sample dataset (gt/ beside its images)"

        def annotate(self, items: Sequence[ImageItem], ctx: Any) -> list[dict[str, Any] | AnnotationFailure]:
            out: list[dict[str, Any] | AnnotationFailure] = []
            for item in items:
                try:
                    out.append(fields(_image_truth(ctx, item.image_id), item))
                except AnnotationFailure as f:
                    out.append(f)
            return out

    GroundTruth.annotator, GroundTruth.name = annotator, "groundtruth"
    GroundTruth.__name__ = GroundTruth.__qualname__ = f"GroundTruth_{annotator}"
    return register_backend(GroundTruth)


for _annotator, _fields in _IMAGE_FIELDS.items():
    _image_backend(_annotator, _fields)


@register_backend
class GroundTruthFlow(Backend):
    annotator = "smpl_flow"
    name = "groundtruth"
    doc = "exact body flow and visibility of the embedded sample dataset's pairs"

    def annotate(self, items: Sequence[PairItem], ctx: Any) -> list[dict[str, Any] | AnnotationFailure]:
        out: list[dict[str, Any] | AnnotationFailure] = []
        for item in items:
            path = pair_truth_path(ctx.dataset_root, ctx.images[item.source_image_id]["path"], ctx.images[item.target_image_id]["path"])
            if not path.exists():
                out.append(AnnotationFailure("no_ground_truth", f"{path} does not exist"))
                continue
            gt = read_truth(path)
            body = gt["visibility"] != 2
            out.append({"flow": gt["flow"], "visibility": gt["visibility"], "visible_fraction": float((gt["visibility"] == 0).sum() / max(body.sum(), 1))})
        return out
