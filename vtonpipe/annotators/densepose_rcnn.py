"""``densepose`` backend ``rcnn``: DensePose R-CNN R50-FPN (detectron2's
``densepose_rcnn_R_50_FPN_s1x``, ``model_final_162be9.pkl``) on person images.

Runs detectron2 itself when it and its DensePose project are installed (``impl: auto`` or
``detectron2``), otherwise the pure-PyTorch port in :mod:`vtonpipe.models.nets.densepose_rcnn`
(``impl: torch``). Both read the checkpoint through the restricted unpickler
(:mod:`vtonpipe.models.nets.densepose_rcnn.detectron2_pkl`) and share the IUV conversion.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core import (
    AnnotationFailure,
    Backend,
    BackendUnavailableError,
    Context,
    ImageItem,
    Requirements,
    WeightFile,
)
from ..models.nets.densepose_rcnn import (
    Detectron2DensePosePredictor,
    TorchDensePosePredictor,
    charts_to_iuv,
    detectron2_available,
)
from ..models.nets.densepose_rcnn.detectron2_pkl import load_detectron2_pkl
from ..schemas.densepose import DenseposeRecord
from .densepose import SPEC as DENSEPOSE_SPEC
from .registry import register_backend

WEIGHTS = WeightFile(
    "densepose/model_final_162be9.pkl",
    source="https://dl.fbaipublicfiles.com/densepose/densepose_rcnn_R_50_FPN_s1x/165712039/model_final_162be9.pkl",
    sha256=None,  # detectron2 publishes none ("162be9" is not a sha256 prefix)
    description="detectron2 DensePose R-CNN R50-FPN s1x, ~256 MB",
)


@register_backend
class RCNNDensePose(Backend):
    spec = DENSEPOSE_SPEC
    name = "rcnn"
    version = "2"  # 2: the main person by size x centrality (subject_score), as the keypoint stage; was the largest box
    requirements = Requirements(packages=("torch",), weights=(WEIGHTS,))
    # score_thresh 0.8 is apply_net.py's --min_score default (how VTON datasets made their DensePose);
    # min_size / max_size / nms_thresh / max_detections are the model's test configuration.
    default_params = {"min_size": 800, "max_size": 1333, "score_thresh": 0.8, "nms_thresh": 0.5, "max_detections": 100, "impl": "auto"}
    doc = "DensePose R-CNN R50-FPN (detectron2 weights): IUV of the main detected person (size x centrality, as the keypoint stage picks)."

    def implementation(self) -> str:
        """``detectron2`` or ``torch``: what ``impl`` resolves to on this machine."""
        impl = self.params["impl"]
        if impl not in ("auto", "torch", "detectron2"):
            raise ValueError(f"densepose/rcnn: impl must be auto, torch or detectron2, got {impl!r}")
        if impl == "detectron2" and not detectron2_available():
            raise BackendUnavailableError("densepose/rcnn impl=detectron2 needs detectron2 and its DensePose project (package 'densepose') installed")
        if impl == "auto":
            return "detectron2" if detectron2_available() else "torch"
        return impl

    def packages(self) -> dict[str, str]:
        out = super().packages()
        if self.implementation() == "detectron2":
            from importlib.metadata import PackageNotFoundError, version

            try:
                out["detectron2"] = version("detectron2")
            except PackageNotFoundError:
                out["detectron2"] = "unknown"
        return out

    def setup(self) -> None:
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError(f"densepose/rcnn: device {self.device!r} requested but torch sees no CUDA device")
        state = load_detectron2_pkl(WEIGHTS.require())
        cls = Detectron2DensePosePredictor if self.implementation() == "detectron2" else TorchDensePosePredictor
        p = self.params
        self.predictor = cls(
            state, device=self.device, min_size=p["min_size"], max_size=p["max_size"],
            score_thresh=p["score_thresh"], nms_thresh=p["nms_thresh"], max_detections=p["max_detections"],
        )

    def annotate_one(self, item: ImageItem, ctx: Context) -> DenseposeRecord:
        pred = self.predictor(item.image, densepose_for="main")
        if len(pred.boxes) == 0:
            raise AnnotationFailure("no_person", f"no person scored above {self.params['score_thresh']}")
        (i,) = pred.charts  # the main person, the only one the predictor ran DensePose for
        return DenseposeRecord(
            iuv=charts_to_iuv(pred.charts[i], pred.boxes[i], item.image.shape[:2]),
            bbox=(pred.boxes[i] - 0.5).astype(np.float32),  # pixel-centre frame (docs/CONVENTIONS.md)
            score=float(pred.scores[i]),
            num_people=len(pred.boxes),
        )
