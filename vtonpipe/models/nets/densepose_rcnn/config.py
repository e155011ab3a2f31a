"""The configuration of detectron2's ``densepose_rcnn_R_50_FPN_s1x`` at test time.

Values are those the model was trained and evaluated with, read from facebookresearch/detectron2:

- ``projects/DensePose/configs/densepose_rcnn_R_50_FPN_s1x.yaml``: ``RESNETS.DEPTH: 50``;
- ``projects/DensePose/configs/Base-DensePose-RCNN-FPN.yaml``: FPN on res2..res5, anchors
  ``[[32], [64], [128], [256], [512]]`` x ``[0.5, 1, 2]``, RPN on p2..p6 with 1000 pre-/post-NMS
  proposals, ROI heads on p2..p5 with ``NUM_CLASSES: 1``, box head ``NUM_FC: 2``,
  ``POOLER_RESOLUTION: 7``, ``POOLER_SAMPLING_RATIO: 2``, and ``POOLER_TYPE: "ROIAlign"`` for
  both the box and the DensePose heads (``ROIPooler`` maps "ROIAlign" to ``aligned=False``,
  ``detectron2/modeling/poolers.py``; only "ROIAlignV2" is ``aligned=True``);
- ``detectron2/config/defaults.py``: BGR input, ``PIXEL_MEAN [103.530, 116.280, 123.675]``,
  ``PIXEL_STD [1, 1, 1]``, ``MIN_SIZE_TEST 800``, ``MAX_SIZE_TEST 1333``, FrozenBN ResNet with
  ``STRIDE_IN_1X1``, FPN 256 channels without norm, RPN ``NMS_THRESH 0.7`` and box weights
  ``(1, 1, 1, 1)``, ROI box weights ``(10, 10, 5, 5)``, ``FC_DIM 1024``,
  ``SCORE_THRESH_TEST 0.05``, ``NMS_THRESH_TEST 0.5``, ``TEST.DETECTIONS_PER_IMAGE 100``;
- ``projects/DensePose/densepose/config.py`` (``add_densepose_head_config``): 8 stacked 3x3
  convs of 512 channels, 24 patches, 2 coarse-segmentation channels, deconv kernel 4,
  ``UP_SCALE 2``, ``POOLER_RESOLUTION 28``, ``POOLER_SAMPLING_RATIO 2`` and
  ``DECODER_ON True`` (a Panoptic-FPN decoder merging p2..p5 at stride 4 feeds the DensePose
  pooler; the ``_legacy`` configs turn it off, this one does not), ``DECODER_CONV_DIMS 256``,
  ``DECODER_NUM_CLASSES 256``, ``DECODER_COMMON_STRIDE 4``, no decoder norm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class DensePoseRCNNConfig:
    # input
    min_size: int = 800  # INPUT.MIN_SIZE_TEST: short side after resizing, px
    max_size: int = 1333  # INPUT.MAX_SIZE_TEST: cap on the long side, px
    pixel_mean_bgr: tuple[float, float, float] = (103.530, 116.280, 123.675)
    pixel_std_bgr: tuple[float, float, float] = (1.0, 1.0, 1.0)
    size_divisibility: int = 32  # FPN pads the input to its coarsest stride (res5)
    # ResNet-50 bottom-up (stem + res2..res5, FrozenBN, stride in the 1x1 conv)
    blocks_per_stage: tuple[int, ...] = (3, 4, 6, 3)
    stem_channels: int = 64
    res2_channels: int = 256
    bottleneck_channels: int = 64  # NUM_GROUPS 1 x WIDTH_PER_GROUP 64 at res2, doubled per stage
    frozen_bn_eps: float = 1e-5
    # FPN
    fpn_channels: int = 256
    # anchors and RPN (one anchor size per level p2..p6, strides 4..64)
    anchor_sizes: tuple[float, ...] = (32.0, 64.0, 128.0, 256.0, 512.0)
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    anchor_offset: float = 0.0
    rpn_pre_nms_topk: int = 1000  # per level
    rpn_post_nms_topk: int = 1000  # per image
    rpn_nms_thresh: float = 0.7
    rpn_min_box_size: float = 0.0
    rpn_box_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    # box head (ROIAlign 7x7 on p2..p5, 2 FC of 1024, one class: person)
    box_pooler_resolution: int = 7
    box_pooler_sampling_ratio: int = 2
    box_pooler_aligned: bool = False
    box_fc_dim: int = 1024
    box_num_fc: int = 2
    num_classes: int = 1
    box_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)
    box_scale_clamp: float = math.log(1000.0 / 16)  # _DEFAULT_SCALE_CLAMP, box_regression.py
    canonical_box_size: int = 224  # ROIPooler level assignment, poolers.py
    canonical_level: int = 4
    # DensePose: Panoptic-FPN decoder, ROIAlign 28x28 at stride 4, V1ConvX head, chart predictor
    decoder_channels: int = 256
    decoder_out_channels: int = 256
    decoder_stride: int = 4
    dp_pooler_resolution: int = 28
    dp_pooler_sampling_ratio: int = 2
    dp_pooler_aligned: bool = False
    dp_num_convs: int = 8
    dp_conv_dim: int = 512
    dp_conv_kernel: int = 3
    dp_deconv_kernel: int = 4
    dp_num_patches: int = 24
    dp_coarse_channels: int = 2
    dp_up_scale: int = 2

    @property
    def stage_channels(self) -> tuple[int, ...]:
        """Output channels of res2..res5 (256, 512, 1024, 2048)."""
        return tuple(self.res2_channels * 2**i for i in range(len(self.blocks_per_stage)))
