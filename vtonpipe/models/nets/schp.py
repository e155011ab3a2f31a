"""SCHP (Self-Correction for Human Parsing, Li et al. 2019) in pure PyTorch, for inference.

The network is AugmentCE2P (``networks/AugmentCE2P.py`` of
github.com/GoGoDuck912/Self-Correction-Human-Parsing): a ResNet-101 with the deep stem (three 3x3
convs), layer4 dilated (output stride 8), a PSP context module, a parsing decoder on layer1, an
edge branch on layers 1-3, and a fusion head over the decoder and edge features whose logits
(SCHP's ``output[0][-1]``) are the prediction. Module and parameter names match the official
checkpoints, so their ``state_dict`` (keys prefixed ``module.``) loads strictly.

SCHP's normalisation layers are mapillary's InPlaceABN(Sync) (backbone ones without activation),
a compiled extension; :class:`InPlaceABN` computes what it computes in eval mode:
``y = (x - running_mean) / sqrt(running_var + eps) * (|weight| + eps) + bias`` then leaky ReLU
(slope 0.01), eps = 1e-5.

Test-time geometry (SCHP ``simple_extractor``): the whole image, as the box ``[0, W-1] x
[0, H-1]`` of pixel centres, is fitted into the square ``S x S`` input keeping its aspect ratio
(centre to centre, longer side to ``S - 1``) with ``cv2.warpAffine`` (bilinear, black border).
The input is BGR in ``[0, 1]`` normalised with mean ``(0.406, 0.456, 0.485)`` and std
``(0.225, 0.224, 0.229)``. The fusion logits (stride 4) are upsampled bilinearly (align_corners)
to ``S x S``, warped back onto the image with the inverse affine, and argmax'ed. The optional flip
test averages the logits of the image and of its mirror image (left/right classes exchanged,
mirrored back) at the logits' resolution, as SCHP's ``multi_scale_testing``.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...converters.labels import LR_PAIRS

MEAN_BGR = (0.406, 0.456, 0.485)
STD_BGR = (0.225, 0.224, 0.229)


@dataclass(frozen=True)
class SCHPDataset:
    """A label set SCHP was trained on: classes and SCHP's input size for it (px, square)."""

    name: str
    num_classes: int
    input_size: int
    lr_pairs: tuple[tuple[int, int], ...]


DATASETS = {
    "lip": SCHPDataset("lip", 20, 473, LR_PAIRS["lip"]),
    "atr": SCHPDataset("atr", 18, 512, LR_PAIRS["atr"]),
}


class CheckpointError(ValueError):
    """A weight file that is not the SCHP checkpoint it should be."""


# -- network ------------------------------------------------------------------------------------
class InPlaceABN(nn.Module):
    """Eval-mode InPlaceABN: BatchNorm with affine scale ``|weight| + eps``, then leaky ReLU (or none)."""

    def __init__(self, channels: int, activation: bool = True, eps: float = 1e-5, slope: float = 0.01):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.activation = activation
        self.eps = eps
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight.abs() + self.eps, self.bias, False, 0.0, self.eps)
        return F.leaky_relu(x, self.slope) if self.activation else x


def _bn(channels: int) -> InPlaceABN:
    """SCHP's backbone ``BatchNorm2d``: InPlaceABN without activation."""
    return InPlaceABN(channels, activation=False)


def _conv(cin: int, cout: int, k: int = 1, stride: int = 1, dilation: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=dilation * (k // 2), dilation=dilation, bias=bias)


class Bottleneck(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        cout = planes * 4
        self.conv1 = _conv(cin, planes)
        self.bn1 = _bn(planes)
        self.conv2 = _conv(planes, planes, 3, stride, dilation)
        self.bn2 = _bn(planes)
        self.conv3 = _conv(planes, cout)
        self.bn3 = _bn(cout)
        self.downsample = nn.Sequential(_conv(cin, cout, stride=stride), _bn(cout)) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


def _layer(cin: int, planes: int, blocks: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(Bottleneck(cin, planes, stride, dilation), *(Bottleneck(planes * 4, planes, 1, dilation) for _ in range(blocks - 1)))


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=True)


class PSPModule(nn.Module):
    """Pyramid pooling (bins 1, 2, 3, 6) over layer4, 2048 -> 512 channels."""

    def __init__(self, cin: int = 2048, cout: int = 512, bins: tuple[int, ...] = (1, 2, 3, 6)):
        super().__init__()
        self.stages = nn.ModuleList(nn.Sequential(nn.AdaptiveAvgPool2d(b), _conv(cin, cout), InPlaceABN(cout)) for b in bins)
        self.bottleneck = nn.Sequential(_conv(cin + len(bins) * cout, cout, 3), InPlaceABN(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(torch.cat([_up(s(x), x) for s in self.stages] + [x], 1))


class EdgeModule(nn.Module):
    """Edge branch. Only its features (768 channels at layer1's stride) feed the fusion head;
    ``conv4``/``conv5`` (the edge logits, a training target) are kept to load the checkpoint."""

    def __init__(self, cins: tuple[int, int, int] = (256, 512, 1024), mid: int = 256):
        super().__init__()
        self.conv1 = nn.Sequential(_conv(cins[0], mid), InPlaceABN(mid))
        self.conv2 = nn.Sequential(_conv(cins[1], mid), InPlaceABN(mid))
        self.conv3 = nn.Sequential(_conv(cins[2], mid), InPlaceABN(mid))
        self.conv4 = _conv(mid, 2, 3, bias=True)
        self.conv5 = _conv(6, 2, bias=True)

    def forward(self, x2: torch.Tensor, x3: torch.Tensor, x4: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.conv1(x2), _up(self.conv2(x3), x2), _up(self.conv3(x4), x2)], 1)


class DecoderModule(nn.Module):
    """Parsing decoder. Only its features (256 channels) feed the fusion head; ``conv4`` (the
    decoder's own logits, a training target) is kept to load the checkpoint."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.conv1 = nn.Sequential(_conv(512, 256), InPlaceABN(256))
        self.conv2 = nn.Sequential(_conv(256, 48), InPlaceABN(48))
        self.conv3 = nn.Sequential(_conv(304, 256), InPlaceABN(256), _conv(256, 256), InPlaceABN(256))
        self.conv4 = _conv(256, num_classes, bias=True)

    def forward(self, context: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return self.conv3(torch.cat([_up(self.conv1(context), x2), self.conv2(x2)], 1))


class AugmentCE2P(nn.Module):
    """SCHP's network. ``forward``: normalised BGR ``(N, 3, S, S)`` -> fusion logits
    ``(N, C, s, s)`` with ``s = ceil(ceil(S / 2) / 2)`` (119 for S = 473)."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.conv1 = _conv(3, 64, 3, stride=2)
        self.bn1 = _bn(64)
        self.conv2 = _conv(64, 64, 3)
        self.bn2 = _bn(64)
        self.conv3 = _conv(64, 128, 3)
        self.bn3 = _bn(128)
        self.layer1 = _layer(128, 64, 3)
        self.layer2 = _layer(256, 128, 4, stride=2)
        self.layer3 = _layer(512, 256, 23, stride=2)
        self.layer4 = _layer(1024, 512, 3, dilation=2)
        self.context_encoding = PSPModule()
        self.edge = EdgeModule()
        self.decoder = DecoderModule(num_classes)
        # "fushion" is SCHP's spelling; index 2 was a Dropout2d (identity in eval).
        self.fushion = nn.Sequential(_conv(1024, 256), InPlaceABN(256), nn.Identity(), _conv(256, num_classes, bias=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = F.max_pool2d(x, 3, stride=2, padding=1)
        x2 = self.layer1(x)
        x3 = self.layer2(x2)
        x4 = self.layer3(x3)
        context = self.context_encoding(self.layer4(x4))
        parsing_features = self.decoder(context, x2)
        edge_features = self.edge(x2, x3, x4)
        return self.fushion(torch.cat([parsing_features, edge_features], 1))


def load_schp(path: str | Path, dataset: str) -> AugmentCE2P:
    """The eval-mode network of an official SCHP checkpoint (``{"state_dict": {"module.<name>": tensor}}``).

    Raises :class:`CheckpointError` naming the file when it cannot be read with
    ``weights_only=True``, has another number of classes than ``dataset``'s, or lacks or adds keys.
    """
    spec = DATASETS[dataset]
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (torch.load weights_only=True): {e}") from e
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a dict with a 'state_dict' of tensors (SCHP's format)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    head = state.get("fushion.3.weight")
    if head is not None and head.shape[0] != spec.num_classes:
        raise CheckpointError(
            f"{path}: checkpoint predicts {head.shape[0]} classes, SCHP-{dataset} has {spec.num_classes}: wrong file for dataset={dataset!r}?"
        )
    model = AugmentCE2P(spec.num_classes)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: not an SCHP AugmentCE2P checkpoint: {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}"
        )
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items() if state[k].shape != v.shape]
    if wrong:
        raise CheckpointError(f"{path}: {len(wrong)} tensors have the wrong shape: {wrong[:5]}")
    model.load_state_dict(state)
    return model.eval()


# -- test-time geometry ---------------------------------------------------------------------------
def input_affine(width: int, height: int, size: int) -> np.ndarray:
    """(2, 3) float64 affine taking image pixel centres ``(x, y)`` to the ``size x size`` input.

    SCHP's centre/scale box with aspect ratio 1: the centre ``((W-1)/2, (H-1)/2)`` goes to
    ``((S-1)/2, (S-1)/2)`` and the longer of ``W-1``, ``H-1`` spans ``S-1``.
    """
    if width < 2 or height < 2:
        raise ValueError(f"SCHP needs an image of at least 2x2 pixels, got {width}x{height}")
    k = (size - 1) / max(width - 1, height - 1)
    c = (size - 1) / 2
    return np.array([[k, 0.0, c - k * (width - 1) / 2], [0.0, k, c - k * (height - 1) / 2]])


def invert_affine(m: np.ndarray) -> np.ndarray:
    """The inverse of a (2, 3) affine, (2, 3)."""
    full = np.vstack([m, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def preprocess(image: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 ``(H, W, 3)`` -> normalised BGR input ``(3, S, S)`` float32 and its :func:`input_affine`."""
    h, w = image.shape[:2]
    m = input_affine(w, h, size)
    bgr = np.ascontiguousarray(image[:, :, ::-1])
    warped = cv2.warpAffine(bgr, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    x = (warped.astype(np.float32) / 255.0 - np.float32(MEAN_BGR)) / np.float32(STD_BGR)
    return np.ascontiguousarray(x.transpose(2, 0, 1)), m


def logits_to_image(logits: torch.Tensor, affine: np.ndarray, width: int, height: int, size: int) -> np.ndarray:
    """Network logits ``(C, s, s)`` -> logits on the image grid ``(H, W, C)`` float32.

    Bilinear upsampling (align_corners) to ``S x S``, then the inverse of ``affine`` with
    ``cv2.warpAffine`` (bilinear, 0 outside the input square).
    """
    up = F.interpolate(logits[None].float(), size=(size, size), mode="bilinear", align_corners=True)[0]
    hwc = np.ascontiguousarray(up.permute(1, 2, 0).cpu().numpy())
    inv = invert_affine(affine)
    return cv2.warpAffine(hwc, inv, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0).reshape(
        height, width, -1
    )


def flip_permutation(num_classes: int, lr_pairs: Sequence[tuple[int, int]]) -> list[int]:
    """Channel order that exchanges each (left, right) class pair."""
    perm = list(range(num_classes))
    for a, b in lr_pairs:
        perm[a], perm[b] = b, a
    return perm


class SCHPParser:
    """Human parsing of whole images with a loaded :class:`AugmentCE2P`.

    ``dataset``: the checkpoint's label set (``DATASETS``); ``input_size``: S (px), SCHP's for
    the dataset when None; ``flip``: SCHP's flip test. Outputs are in the dataset's own ids.
    """

    def __init__(self, model: AugmentCE2P, dataset: str, input_size: int | None = None, flip: bool = False, device: str = "cpu"):
        self.spec = DATASETS[dataset]
        self.size = int(input_size or self.spec.input_size)
        self.flip = flip
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self._perm = flip_permutation(self.spec.num_classes, self.spec.lr_pairs)

    @torch.inference_mode()
    def logits(self, batch: torch.Tensor) -> torch.Tensor:
        """Fusion logits ``(N, C, s, s)`` of a normalised batch ``(N, 3, S, S)``; flip test averaged."""
        batch = batch.to(self.device)
        if not self.flip:
            return self.model(batch)
        n = batch.shape[0]
        out = self.model(torch.cat([batch, batch.flip(-1)]))
        return 0.5 * (out[:n] + out[n:, self._perm].flip(-1))

    def __call__(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """RGB uint8 images ``(H, W, 3)`` -> label maps ``(H, W)`` uint8 in the dataset's ids."""
        if not images:
            return []
        inputs, affines = zip(*(preprocess(im, self.size) for im in images))
        logits = self.logits(torch.from_numpy(np.stack(inputs))).cpu()
        out = []
        for im, m, lg in zip(images, affines, logits):
            h, w = im.shape[:2]
            out.append(logits_to_image(lg, m, w, h, self.size).argmax(axis=2).astype(np.uint8))
        return out
