"""DensePose R-CNN (detectron2's ``densepose_rcnn_R_50_FPN_s1x``) in plain PyTorch.

- :mod:`.config`: the model's test-time configuration, with where each value comes from;
- :mod:`.ops`: anchors, box coding, NMS, ROIAlign;
- :mod:`.network`: ResNet-50 FPN, RPN, box head, Panoptic-FPN decoder, DensePose head/predictor;
- :mod:`.checkpoint`: checking and loading detectron2's state dict;
- :mod:`.predictor`: image -> detections + DensePose charts (this port, or detectron2 itself);
- :mod:`.iuv`: charts of one box -> IUV on the image's pixel grid.
"""

from .checkpoint import (
    CheckpointMismatchError,
    build_model,
    check_state_dict,
    expected_shapes,
)
from .config import DensePoseRCNNConfig
from .iuv import charts_to_iuv
from .network import DensePoseCharts, DensePoseRCNN
from .predictor import (
    DensePosePrediction,
    Detectron2DensePosePredictor,
    TorchDensePosePredictor,
    detectron2_available,
    main_person,
    resized_hw,
)

__all__ = [
    "CheckpointMismatchError",
    "DensePoseCharts",
    "DensePosePrediction",
    "DensePoseRCNN",
    "DensePoseRCNNConfig",
    "Detectron2DensePosePredictor",
    "TorchDensePosePredictor",
    "build_model",
    "charts_to_iuv",
    "check_state_dict",
    "detectron2_available",
    "expected_shapes",
    "main_person",
    "resized_hw",
]
