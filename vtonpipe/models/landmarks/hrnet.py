"""SAL-VTON's landmark estimator: an HRNet (Sun et al. 2019) with a garment and a person branch.

SAL-VTON (Sec. 3.1) modifies HRNet to take the in-shop garment ``G`` and the person ``P_o`` and
to output the garment's landmarks ``L_g`` and where they appear on the person ``L_p``, each with
its attributes. Here that is two HRNets (:class:`LandmarkHRNet`, no shared weights) in
:class:`SALLandmarkNet`:

- **garment branch**: ``G`` (3 channels) -> 32 heatmaps + per-point present / absent logits;
- **person branch**: ``P_o``, ``G`` and the garment's 32 landmark heatmaps (38 channels) -> 32
  heatmaps + per-point visible / occluded / absent logits (:mod:`vtonpipe.converters.landmarks`).

Each HRNet is the pose-estimation HRNet: a stem of two stride-2 3x3 convolutions (64 channels,
1/4 resolution), stage 1 of bottleneck blocks (256 channels), then stages 2-4 of high-resolution
modules keeping 2, 3 and 4 parallel branches of widths ``W, 2W, 4W, 8W`` at 1/4, 1/8, 1/16 and
1/32 resolution, each module ending in a multi-resolution fusion (sums; upsampling by 1x1 conv +
nearest, downsampling by strided 3x3 convs). The heatmaps come from the 1/4 branch by a 1x1
convolution (as HRNet's pose head); the attribute logits from the global average of every
branch, concatenated, through a two-layer MLP. The default, W18 with stage modules (1, 3, 2) and
two blocks per branch and stage 1, is HRNetV2-W18-Small-v2's layout (small enough to train on a
CPU); ``hrnet_width`` and ``stage_modules`` / ``blocks`` scale it up (W32 with modules (1, 4, 3) and 4
blocks is the pose paper's HRNet-W32).

Frames: images float32 in [0, 1], (B, 3, H, W), H and W multiples of 32; heatmaps (B, 32, H/4,
W/4) are the landmark heatmaps of the image resized by 1/4 (pixel-centre frame: heatmap cell
``(x', y')`` is image point ``x = 4 (x' + 0.5) - 0.5``); :mod:`.decode` turns them into points.
No pretrained weights: the networks start from random initialisation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ...converters.landmarks import NUM_LANDMARKS

STRIDE = 4  # heatmap cells per input pixel, each way
STEM_CHANNELS = 64
BN_MOMENTUM = 0.1


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, momentum=BN_MOMENTUM)


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (channels kept)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1, self.bn1 = _conv3x3(channels, channels), _bn(channels)
        self.conv2, self.bn2 = _conv3x3(channels, channels), _bn(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(y)))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (4x expansion) with a residual connection, projected when the channels differ."""

    def __init__(self, cin: int, planes: int):
        super().__init__()
        cout = 4 * planes
        self.conv1, self.bn1 = nn.Conv2d(cin, planes, 1, bias=False), _bn(planes)
        self.conv2, self.bn2 = _conv3x3(planes, planes), _bn(planes)
        self.conv3, self.bn3 = nn.Conv2d(planes, cout, 1, bias=False), _bn(cout)
        self.downsample = None if cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), _bn(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu((x if self.downsample is None else self.downsample(x)) + y)


class HighResolutionModule(nn.Module):
    """``blocks`` basic blocks on each of the parallel branches, then every output branch i sums
    every input branch j brought to its resolution and width (j > i: 1x1 conv + BN, nearest
    upsampling by 2^(j-i); j < i: i-j strided 3x3 conv + BN, ReLU between them), then ReLU."""

    def __init__(self, channels: tuple[int, ...], blocks: int):
        super().__init__()
        n = len(channels)
        self.branches = nn.ModuleList(nn.Sequential(*(BasicBlock(c) for _ in range(blocks))) for c in channels)
        self.fuse = nn.ModuleList()
        for i in range(n):
            row = nn.ModuleList()
            for j in range(n):
                if j > i:
                    row.append(nn.Sequential(nn.Conv2d(channels[j], channels[i], 1, bias=False), _bn(channels[i])))
                elif j == i:
                    row.append(nn.Identity())
                else:
                    steps: list[nn.Module] = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        cout = channels[i] if last else channels[j]
                        steps += [_conv3x3(channels[j], cout, 2), _bn(cout)] + ([] if last else [nn.ReLU()])
                    row.append(nn.Sequential(*steps))
            self.fuse.append(row)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, row in enumerate(self.fuse):
            total = xs[i]
            for j, layer in enumerate(row):
                if j == i:
                    continue
                y = layer(xs[j])
                if j > i:
                    y = F.interpolate(y, size=xs[i].shape[-2:], mode="nearest")
                total = total + y
            out.append(F.relu(total))
        return out


def _transition(cin: tuple[int, ...], cout: tuple[int, ...]) -> nn.ModuleList:
    """Branches of the previous stage -> those of the next: a 3x3 conv where the width changes,
    identity where not, and the new lowest-resolution branch by a strided 3x3 conv from the last."""
    layers = nn.ModuleList()
    for i, c in enumerate(cout):
        if i < len(cin):
            layers.append(nn.Identity() if cin[i] == c else nn.Sequential(_conv3x3(cin[i], c), _bn(c), nn.ReLU()))
        else:
            layers.append(nn.Sequential(_conv3x3(cin[-1], c, 2), _bn(c), nn.ReLU()))
    return layers


@dataclass(frozen=True)
class HRNetConfig:
    """One HRNet: ``in_channels`` of the input, branch ``width`` W (widths W, 2W, 4W, 8W),
    ``stage_modules`` high-resolution modules in stages 2, 3, 4, ``blocks`` basic blocks per
    branch and module (and bottleneck blocks in stage 1), ``num_attributes`` classes per point,
    ``attribute_hidden`` units of the attribute MLP."""

    in_channels: int = 3
    width: int = 18
    stage_modules: tuple[int, int, int] = (1, 3, 2)
    blocks: int = 2
    num_attributes: int = 3
    attribute_hidden: int = 256


class LandmarkHRNet(nn.Module):
    """One HRNet branch: ``(B, in_channels, H, W)`` -> heatmaps ``(B, 32, H/4, W/4)`` and
    attribute logits ``(B, 32, num_attributes)``.

    Channels 0-2 of the input are an RGB image in [0, 1] (centred to [-1, 1] inside); any further
    channels (heatmaps in [0, 1]) are taken as they are.
    """

    def __init__(self, config: HRNetConfig):
        super().__init__()
        self.config = c = config
        self.stem = nn.Sequential(
            _conv3x3(c.in_channels, STEM_CHANNELS, 2), _bn(STEM_CHANNELS), nn.ReLU(),
            _conv3x3(STEM_CHANNELS, STEM_CHANNELS, 2), _bn(STEM_CHANNELS), nn.ReLU(),
        )  # fmt: skip
        self.stage1 = nn.Sequential(*(Bottleneck(STEM_CHANNELS if k == 0 else 4 * STEM_CHANNELS, STEM_CHANNELS) for k in range(c.blocks)))
        widths = [tuple(c.width * 2**k for k in range(n)) for n in (2, 3, 4)]
        self.transitions = nn.ModuleList()
        self.stages = nn.ModuleList()
        previous: tuple[int, ...] = (4 * STEM_CHANNELS,)
        for modules, channels in zip(c.stage_modules, widths):
            self.transitions.append(_transition(previous, channels))
            self.stages.append(nn.Sequential(*(HighResolutionModule(channels, c.blocks) for _ in range(modules))))
            previous = channels
        self.heatmap_head = nn.Conv2d(c.width, NUM_LANDMARKS, 1)
        self.attribute_head = nn.Sequential(
            nn.Linear(sum(previous), c.attribute_hidden), nn.ReLU(), nn.Linear(c.attribute_hidden, NUM_LANDMARKS * c.num_attributes)
        )
        # HRNet's initialisation of the pose head (std 0.001, zero bias): heatmaps start near zero,
        # where most of the targets are
        nn.init.normal_(self.heatmap_head.weight, std=0.001)
        nn.init.zeros_(self.heatmap_head.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = x.shape[-2:]
        if h % 32 or w % 32:
            raise ValueError(f"input size {h}x{w}: height and width must be multiples of 32")
        if x.shape[1] != self.config.in_channels:
            raise ValueError(f"expected {self.config.in_channels} input channels, got {x.shape[1]}")
        x = torch.cat([2.0 * x[:, :3] - 1.0, x[:, 3:]], 1)
        xs = [self.stage1(self.stem(x))]
        for transition, stage in zip(self.transitions, self.stages):
            # each new stage reads the previous stage's branches; its new branch comes from the last one
            xs = stage([layer(xs[min(i, len(xs) - 1)]) for i, layer in enumerate(transition)])
        heatmaps = self.heatmap_head(xs[0])
        pooled = torch.cat([t.mean((-2, -1)) for t in xs], 1)
        logits = self.attribute_head(pooled).view(-1, NUM_LANDMARKS, self.config.num_attributes)
        return heatmaps, logits


@dataclass(frozen=True)
class LandmarkNetConfig:
    """The two-branch network: HRNet ``hrnet_width`` W, ``stage_modules`` and ``blocks`` (shared by
    both branches, :class:`HRNetConfig`), ``garment_heatmap_sigma`` px (at the input resolution)
    of the Gaussian garment heatmaps the person branch reads
    (:func:`~vtonpipe.converters.landmarks.landmark_heatmaps`), ``attribute_hidden`` units of the
    attribute MLPs. The input resolution is not part of it: the network is fully convolutional,
    and a checkpoint records the resolution it was trained at (:func:`build_from_checkpoint`).
    The field names are those of the ``train.landmarks`` settings that set them."""

    hrnet_width: int = 18
    stage_modules: tuple[int, int, int] = (1, 3, 2)
    blocks: int = 2
    garment_heatmap_sigma: float = 4.0
    attribute_hidden: int = 256

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (lists for tuples)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> LandmarkNetConfig:
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown landmark network config keys {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def branch(self, in_channels: int, num_attributes: int) -> HRNetConfig:
        return HRNetConfig(in_channels, self.hrnet_width, self.stage_modules, self.blocks, num_attributes, self.attribute_hidden)


#: input channels of the person branch: person image, garment image, the garment's heatmaps
PERSON_IN_CHANNELS = 3 + 3 + NUM_LANDMARKS
#: garment-branch attribute classes: 0 present, 1 absent
PRESENT, NOT_PRESENT = 0, 1


class LandmarkOutput(NamedTuple):
    """Heatmaps (B, 32, H/4, W/4) and attribute logits of both branches: ``garment_logits``
    (B, 32, 2) present / absent, ``person_logits`` (B, 32, 3) visible / occluded / absent."""

    garment_heatmaps: torch.Tensor
    garment_logits: torch.Tensor
    person_heatmaps: torch.Tensor
    person_logits: torch.Tensor


class SALLandmarkNet(nn.Module):
    """SAL-VTON's landmark estimator: garment branch and person branch (module docstring)."""

    def __init__(self, config: LandmarkNetConfig = LandmarkNetConfig()):
        super().__init__()
        self.config = config
        self.garment = LandmarkHRNet(config.branch(3, 2))
        self.person = LandmarkHRNet(config.branch(PERSON_IN_CHANNELS, 3))

    def forward_garment(self, garment_image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``garment_image`` (B, 3, H, W) in [0, 1] -> heatmaps (B, 32, H/4, W/4), logits (B, 32, 2)
        (present, absent)."""
        return self.garment(garment_image)

    def forward_person(self, person_image: torch.Tensor, garment_image: torch.Tensor, garment_heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``person_image``, ``garment_image`` (B, 3, H, W) in [0, 1] and the garment's landmark
        heatmaps (B, 32, H, W) in [0, 1] at the images' resolution (absent points all zero) ->
        heatmaps (B, 32, H/4, W/4) of where the garment's landmarks lie on the person, logits
        (B, 32, 3) (visible, occluded, absent)."""
        return self.person(torch.cat([person_image, garment_image, garment_heatmaps], 1))

    def forward(self, garment_image: torch.Tensor, person_image: torch.Tensor, garment_heatmaps: torch.Tensor) -> LandmarkOutput:
        """Both branches; the person branch reads ``garment_heatmaps`` (B, 32, H, W) (the
        ground truth's in training, the decoded garment branch's at inference, :mod:`.decode`)."""
        g_maps, g_logits = self.forward_garment(garment_image)
        p_maps, p_logits = self.forward_person(person_image, garment_image, garment_heatmaps)
        return LandmarkOutput(g_maps, g_logits, p_maps, p_logits)


#: what ``vtonpipe train landmarks`` trains: its checkpoints' ``kind`` and ``model``, and the name of
#: the network among the checkpoint's ``modules``
CHECKPOINT_KIND, CHECKPOINT_MODEL, CHECKPOINT_MODULE = "landmarks", "sal-hrnet", "net"


class TrainedLandmarkNet(NamedTuple):
    """A trained network in eval mode, the ``input_size`` (H, W) px it was trained at and the
    ``heatmap_sigma`` px (at that size) of its heatmap targets, which decoding needs."""

    net: SALLandmarkNet
    input_size: tuple[int, int]
    heatmap_sigma: float


def build_from_checkpoint(checkpoint: Mapping[str, Any]) -> TrainedLandmarkNet:
    """The network of a ``vtonpipe train landmarks`` checkpoint (the trainer's dict, loaded with
    ``torch.load(..., weights_only=True)``: ``kind`` "landmarks", ``model`` "sal-hrnet", the weights
    in ``modules["net"]``, the network settings among ``config["model_config"]`` and the training
    resolution ``config["train"]["height"]`` x ``["width"]``, the targets' ``heatmap_sigma`` among
    ``config["model_config"]``), weights loaded strictly, in eval mode."""
    found = (checkpoint.get("kind"), checkpoint.get("model"))
    if found != (CHECKPOINT_KIND, CHECKPOINT_MODEL) or CHECKPOINT_MODULE not in (checkpoint.get("modules") or {}):
        raise ValueError(
            f"not a `vtonpipe train landmarks` checkpoint: kind/model {found[0]}/{found[1]} (expected {CHECKPOINT_KIND}/{CHECKPOINT_MODEL}), "
            f"modules {sorted(checkpoint.get('modules') or {})} (expected {CHECKPOINT_MODULE!r})"
        )
    settings = checkpoint["config"]
    names = LandmarkNetConfig.__dataclass_fields__
    net = SALLandmarkNet(LandmarkNetConfig.from_dict({k: v for k, v in settings["model_config"].items() if k in names}))
    net.load_state_dict(checkpoint["modules"][CHECKPOINT_MODULE])
    if "heatmap_sigma" not in settings["model_config"]:
        raise ValueError("the checkpoint's model_config has no heatmap_sigma (the targets' width, which decoding needs)")
    size = (int(settings["train"]["height"]), int(settings["train"]["width"]))
    return TrainedLandmarkNet(net.eval(), size, float(settings["model_config"]["heatmap_sigma"]))
