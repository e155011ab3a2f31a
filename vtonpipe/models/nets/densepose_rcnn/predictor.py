"""Image in, people out: detectron2's ``DefaultPredictor`` + ``GeneralizedRCNN.inference`` for
DensePose R-CNN, with the pure-PyTorch port or, when installed, detectron2 itself.

Input images are RGB ``uint8 (H, W, 3)``. Output boxes are ``x0, y0, x1, y1`` in detectron2's
pixel-edge frame of the input image (it spans ``[0, W] x [0, H]``; subtract 0.5 for the
pixel-centre frame of docs/CONVENTIONS.md).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Literal, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ....converters.keypoints import subject_score
from .checkpoint import build_model, check_state_dict
from .config import DensePoseRCNNConfig
from .network import DensePoseCharts
from .ops import clip_boxes, nonempty

Which = Literal["all", "main"]


@dataclass
class DensePosePrediction:
    """Detections by decreasing score and the DensePose charts computed for some of them."""

    boxes: np.ndarray  # (N, 4) float32, input-image pixel-edge frame
    scores: np.ndarray  # (N,) float32 in [0, 1]
    charts: dict[int, DensePoseCharts] = field(default_factory=dict)  # detection index -> (1, C, S, S) tensors


def resized_hw(h: int, w: int, min_size: int, max_size: int) -> tuple[int, int]:
    """``ResizeShortestEdge.get_output_shape``: short side to ``min_size``, long side <= ``max_size``."""
    scale = min_size / min(h, w)
    newh, neww = (min_size, scale * w) if h < w else (scale * h, min_size)
    if max(newh, neww) > max_size:
        s = max_size / max(newh, neww)
        newh, neww = newh * s, neww * s
    return int(newh + 0.5), int(neww + 0.5)


def resize_bgr(image_rgb: np.ndarray, min_size: int, max_size: int) -> np.ndarray:
    """BGR ``uint8`` image resized as ``DefaultPredictor`` does (PIL bilinear)."""
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(f"expected RGB uint8 (H, W, 3), got {image_rgb.dtype} {image_rgb.shape}")
    h, w = image_rgb.shape[:2]
    newh, neww = resized_hw(h, w, min_size, max_size)
    if (newh, neww) != (h, w):
        image_rgb = np.asarray(Image.fromarray(image_rgb).resize((neww, newh), Image.BILINEAR))
    return np.ascontiguousarray(image_rgb[:, :, ::-1])


def main_person(boxes: np.ndarray, size: tuple[int, int]) -> int:
    """Index of the photo's subject among ``boxes`` (N, 4) ``(x0, y0, x1, y1)`` px in an image of
    ``size`` (H, W): the highest :func:`~vtonpipe.converters.keypoints.subject_score` (size x
    centrality), the rule the keypoint stage picks its person by."""
    return int(np.argmax([subject_score(b, size) for b in boxes]))


class TorchDensePosePredictor:
    """The pure-PyTorch port (:mod:`.network`)."""

    def __init__(
        self,
        state: Mapping[str, np.ndarray],
        *,
        device: str = "cpu",
        min_size: int = 800,
        max_size: int = 1333,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        max_detections: int = 100,
        cfg: DensePoseRCNNConfig | None = None,
    ):
        self.cfg = cfg or DensePoseRCNNConfig()
        self.device = torch.device(device)
        self.model = build_model(state, device=self.device, cfg=self.cfg)
        self.min_size, self.max_size = min_size, max_size
        self.score_thresh, self.nms_thresh, self.max_detections = score_thresh, nms_thresh, max_detections
        self.mean = torch.tensor(self.cfg.pixel_mean_bgr, device=self.device).reshape(3, 1, 1)
        self.std = torch.tensor(self.cfg.pixel_std_bgr, device=self.device).reshape(3, 1, 1)

    @torch.inference_mode()
    def __call__(self, image_rgb: np.ndarray, densepose_for: Which = "all") -> DensePosePrediction:
        """Detect people; DensePose for all of them or only the main person (:func:`main_person`)."""
        if densepose_for not in ("all", "main"):
            raise ValueError(f"densepose_for must be 'all' or 'main', got {densepose_for!r}")
        h, w = image_rgb.shape[:2]
        bgr = resize_bgr(image_rgb, self.min_size, self.max_size)
        rh, rw = bgr.shape[:2]
        x = (torch.from_numpy(bgr).to(self.device).permute(2, 0, 1).float() - self.mean) / self.std
        d = self.cfg.size_divisibility
        x = F.pad(x, (0, -rw % d, 0, -rh % d))[None]  # zero padding right / bottom after normalising

        model = self.model
        features = model.backbone(x)
        proposals = model.proposal_generator(features, (rh, rw))
        boxes, scores = model.roi_heads.detect(features, proposals, (rh, rw), self.score_thresh, self.nms_thresh, self.max_detections)
        # detector_postprocess: scale to the input size, clip, drop empty boxes
        out_boxes = clip_boxes(boxes * boxes.new_tensor([w / rw, h / rh, w / rw, h / rh]), (h, w))
        keep = nonempty(out_boxes)
        boxes, out_boxes, scores = boxes[keep], out_boxes[keep], scores[keep]
        pred = DensePosePrediction(out_boxes.cpu().numpy().astype(np.float32), scores.cpu().numpy().astype(np.float32))
        if len(boxes):
            chosen = list(range(len(boxes))) if densepose_for == "all" else [main_person(pred.boxes, (h, w))]
            charts = model.roi_heads.charts(features, boxes[chosen])  # on the resized-image boxes, as detectron2
            for n, i in enumerate(chosen):
                pred.charts[i] = DensePoseCharts(*(t[n : n + 1] for t in (charts.coarse_segm, charts.fine_segm, charts.u, charts.v)))
        return pred


def detectron2_available() -> bool:
    """detectron2 and its DensePose project (package ``densepose``) are both importable."""
    return importlib.util.find_spec("detectron2") is not None and importlib.util.find_spec("densepose") is not None


class Detectron2DensePosePredictor:
    """detectron2's own ``GeneralizedRCNN`` + ``DensePoseROIHeads``, configured as
    ``densepose_rcnn_R_50_FPN_s1x.yaml`` and loaded from the same checked state dict."""

    def __init__(
        self,
        state: Mapping[str, np.ndarray],
        *,
        device: str = "cpu",
        min_size: int = 800,
        max_size: int = 1333,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        max_detections: int = 100,
    ):
        from densepose import add_densepose_config
        from detectron2.config import get_cfg
        from detectron2.modeling import build_model as d2_build_model

        check_state_dict(state)
        cfg = get_cfg()
        add_densepose_config(cfg)
        m = cfg.MODEL
        m.DEVICE = str(device)
        m.BACKBONE.NAME = "build_resnet_fpn_backbone"
        m.RESNETS.DEPTH = 50
        m.RESNETS.OUT_FEATURES = ["res2", "res3", "res4", "res5"]
        m.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
        m.ANCHOR_GENERATOR.SIZES = [[32], [64], [128], [256], [512]]
        m.ANCHOR_GENERATOR.ASPECT_RATIOS = [[0.5, 1.0, 2.0]]
        m.RPN.IN_FEATURES = ["p2", "p3", "p4", "p5", "p6"]
        m.RPN.PRE_NMS_TOPK_TEST = 1000
        m.RPN.POST_NMS_TOPK_TEST = 1000
        m.DENSEPOSE_ON = True
        m.ROI_HEADS.NAME = "DensePoseROIHeads"
        m.ROI_HEADS.IN_FEATURES = ["p2", "p3", "p4", "p5"]
        m.ROI_HEADS.NUM_CLASSES = 1
        m.ROI_HEADS.SCORE_THRESH_TEST = score_thresh
        m.ROI_HEADS.NMS_THRESH_TEST = nms_thresh
        m.ROI_BOX_HEAD.NAME = "FastRCNNConvFCHead"
        m.ROI_BOX_HEAD.NUM_FC = 2
        m.ROI_BOX_HEAD.POOLER_RESOLUTION = 7
        m.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = 2
        m.ROI_BOX_HEAD.POOLER_TYPE = "ROIAlign"
        m.ROI_DENSEPOSE_HEAD.NAME = "DensePoseV1ConvXHead"
        m.ROI_DENSEPOSE_HEAD.POOLER_TYPE = "ROIAlign"
        m.ROI_DENSEPOSE_HEAD.NUM_COARSE_SEGM_CHANNELS = 2
        cfg.TEST.DETECTIONS_PER_IMAGE = max_detections
        self.model = d2_build_model(cfg).eval()
        tensors = {k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in state.items()}
        result = self.model.load_state_dict(tensors, strict=False)
        if result.missing_keys:
            raise RuntimeError(f"detectron2's model has entries the checkpoint lacks: {result.missing_keys[:10]}")
        self.min_size, self.max_size = min_size, max_size

    @torch.inference_mode()
    def __call__(self, image_rgb: np.ndarray, densepose_for: Which = "all") -> DensePosePrediction:
        """detectron2 computes DensePose for every detection; ``densepose_for`` only filters."""
        h, w = image_rgb.shape[:2]
        bgr = resize_bgr(image_rgb, self.min_size, self.max_size)
        image = torch.from_numpy(bgr.astype(np.float32).transpose(2, 0, 1))
        inst = self.model.inference([{"image": image, "height": h, "width": w}])[0]["instances"]
        boxes = inst.pred_boxes.tensor.cpu().numpy().astype(np.float32)
        pred = DensePosePrediction(boxes, inst.scores.cpu().numpy().astype(np.float32))
        if len(boxes):
            dp = inst.pred_densepose
            chosen = range(len(boxes)) if densepose_for == "all" else [main_person(boxes, (h, w))]
            for i in chosen:
                pred.charts[i] = DensePoseCharts(dp.coarse_segm[i : i + 1], dp.fine_segm[i : i + 1], dp.u[i : i + 1], dp.v[i : i + 1])
        return pred
