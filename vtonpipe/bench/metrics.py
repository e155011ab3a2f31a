"""Accuracy metrics, as accumulators over a dataset: ``update`` per image, ``result`` at the end.

All coordinates are pixels in the frame of docs/CONVENTIONS.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..converters.landmarks import ABSENT, VISIBLE

# OpenPose COCO-18 indices used for the torso size
R_SHOULDER, L_SHOULDER, R_HIP, L_HIP = 2, 5, 8, 11


def torso_size(coco18: np.ndarray) -> float:
    """max(|r-shoulder - l-hip|, |l-shoulder - r-hip|) of (18, >=2) keypoints, pixels."""
    xy = coco18[:, :2]
    return float(max(np.linalg.norm(xy[R_SHOULDER] - xy[L_HIP]), np.linalg.norm(xy[L_SHOULDER] - xy[R_HIP])))


@dataclass
class KeypointAccuracy:
    """PCK@alpha (threshold alpha * torso size) and mean pixel error over ground-truth points
    inside the image (state > 0); an undetected prediction (confidence 0) counts as a miss."""

    alpha: float = 0.1
    hits: np.ndarray = field(default_factory=lambda: np.zeros(18))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(18))
    errors: list[float] = field(default_factory=list)
    detected: int = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        valid = gt[:, 2] > 0
        found = pred[:, 2] > 0
        err = np.linalg.norm(pred[:, :2] - gt[:, :2], axis=1)
        thr = self.alpha * torso_size(gt)
        self.counts += valid
        self.hits += valid & found & (err <= thr)
        self.errors += err[valid & found].tolist()
        self.detected += int((valid & found).sum())

    def result(self) -> dict[str, float]:
        n = self.counts.sum()
        return {
            f"pck@{self.alpha:g}": float(self.hits.sum() / n) if n else float("nan"),
            "mean_px_error": float(np.mean(self.errors)) if self.errors else float("nan"),
            "detection_rate": self.detected / n if n else float("nan"),
        }

    def per_joint_pck(self) -> np.ndarray:
        return np.where(self.counts > 0, self.hits / np.maximum(self.counts, 1), np.nan)


@dataclass
class SegmentationIoU:
    """Per-class IoU from a confusion matrix accumulated over images; mIoU over classes present
    in the ground truth."""

    num_classes: int
    confusion: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.confusion = np.zeros((self.num_classes, self.num_classes), np.int64)

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        if pred.shape != gt.shape:
            raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} differ")
        idx = gt.astype(np.int64).ravel() * self.num_classes + pred.astype(np.int64).ravel()
        self.confusion += np.bincount(idx, minlength=self.num_classes**2).reshape(self.num_classes, self.num_classes)

    def per_class_iou(self) -> np.ndarray:
        tp = np.diag(self.confusion).astype(np.float64)
        union = self.confusion.sum(0) + self.confusion.sum(1) - tp
        present = self.confusion.sum(1) > 0
        return np.where(present, tp / np.maximum(union, 1), np.nan)

    def result(self) -> dict[str, float]:
        iou = self.per_class_iou()
        return {"miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"), "pixel_accuracy": float(np.trace(self.confusion) / max(self.confusion.sum(), 1))}


@dataclass
class IUVAccuracy:
    """Part accuracy over ground-truth body pixels (I > 0) and mean |U|, |V| error (in [0, 1]
    chart units) over pixels whose predicted part is right."""

    correct: int = 0
    body: int = 0
    uv_error_sum: float = 0.0
    uv_count: int = 0
    background_as_body: int = 0
    background: int = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        gi, pi = gt[..., 0], pred[..., 0]
        body = gi > 0
        same = body & (pi == gi)
        self.body += int(body.sum())
        self.correct += int(same.sum())
        duv = np.abs(pred[..., 1:].astype(np.float64) - gt[..., 1:].astype(np.float64)) / 255.0
        self.uv_error_sum += float(duv[same].mean(axis=1).sum())
        self.uv_count += int(same.sum())
        self.background += int((~body).sum())
        self.background_as_body += int((~body & (pi > 0)).sum())

    def result(self) -> dict[str, float]:
        return {
            "part_accuracy": self.correct / self.body if self.body else float("nan"),
            "uv_error": self.uv_error_sum / self.uv_count if self.uv_count else float("nan"),
            "false_body_rate": self.background_as_body / self.background if self.background else float("nan"),
        }


@dataclass
class FlowAccuracy:
    """End-point error (px) of target->source flow on pixels visible in both (GT visibility 0),
    and IoU of each of the three visibility states."""

    epe_sum: float = 0.0
    epe_count: int = 0
    inter: np.ndarray = field(default_factory=lambda: np.zeros(3))
    union: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def update(self, flow: np.ndarray, visibility: np.ndarray, gt_flow: np.ndarray, gt_visibility: np.ndarray) -> None:
        vis = gt_visibility == 0
        err = np.linalg.norm(flow.astype(np.float64) - gt_flow, axis=-1)[vis]
        self.epe_sum += float(err.sum())
        self.epe_count += int(vis.sum())
        for s in range(3):
            p, g = visibility == s, gt_visibility == s
            self.inter[s] += (p & g).sum()
            self.union[s] += (p | g).sum()

    def result(self) -> dict[str, float]:
        iou = np.where(self.union > 0, self.inter / np.maximum(self.union, 1), np.nan)
        return {
            "epe_visible": self.epe_sum / self.epe_count if self.epe_count else float("nan"),
            "visibility_iou_visible": float(iou[0]),
            "visibility_iou_hidden": float(iou[1]),
            "visibility_miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        }


@dataclass
class LandmarkAccuracy:
    """Mean px error over landmarks visible in the ground truth that are predicted present, and
    accuracy of the 3-way attribute (visible / occluded / absent) over all 32."""

    errors: list[float] = field(default_factory=list)
    attr_correct: int = 0
    attr_total: int = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        pa, ga = pred[:, 2].round().astype(int), gt[:, 2].round().astype(int)
        use = (ga == VISIBLE) & (pa != ABSENT)
        self.errors += np.linalg.norm(pred[use, :2] - gt[use, :2], axis=1).tolist()
        self.attr_correct += int((pa == ga).sum())
        self.attr_total += len(ga)

    def result(self) -> dict[str, float]:
        return {
            "mean_px_error": float(np.mean(self.errors)) if self.errors else float("nan"),
            "attribute_accuracy": self.attr_correct / self.attr_total if self.attr_total else float("nan"),
        }


@dataclass
class PointError:
    """Mean pixel distance between matched 2D points (e.g. a fitted body's projected joints and
    the true joints), over ground-truth points with state > 0."""

    errors: list[float] = field(default_factory=list)

    def update(self, pred_xy: np.ndarray, gt: np.ndarray) -> None:
        valid = gt[:, 2] > 0
        self.errors += np.linalg.norm(pred_xy[valid, :2] - gt[valid, :2], axis=1).tolist()

    def result(self) -> dict[str, float]:
        return {"mean_px_error": float(np.mean(self.errors)) if self.errors else float("nan")}
