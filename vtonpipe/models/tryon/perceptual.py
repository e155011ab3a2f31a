"""VGG-19 perceptual loss in pure PyTorch, on weights the user brings, and its explicit stand-in.

:class:`VGG19Features` lays its convolutions out exactly as torchvision's ``vgg19().features``
(``features.N.weight`` / ``features.N.bias``, N the index in the Sequential), so torchvision's
ImageNet file ``vgg19-dcbb9e9d.pth`` loads into it unchanged (its ``classifier.*`` keys are
ignored). vtonpipe looks for that file at ``<weights_dir>/vgg/vgg19-dcbb9e9d.pth``
(:func:`vtonpipe.config.weights_dir`, ``$VTONPIPE_WEIGHTS``); get it from
https://download.pytorch.org/models/vgg19-dcbb9e9d.pth. Its full sha256 is not pinned here: the
file name carries the first 8 hex digits of it (torch.hub's convention, ``dcbb9e9d``), and
loading a file of that name checks them.

Without the file, :func:`perceptual_loss` gives a named stand-in: ``kind="pyramid_l1"`` (or
``"auto"`` when the file is absent, with a logged warning) the mean L1 distance over an
average-pooled image pyramid, ``kind="ssim"`` one minus the mean SSIM (Wang et al.'s structural
similarity, :func:`vtonpipe.models.ssim.ssim_map`). Every model's loss dict names the one used
(``perceptual_vgg19``, ``perceptual_pyramid_l1`` or ``perceptual_ssim``); nothing falls back silently.
"""

from __future__ import annotations

import logging
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...config import weights_dir
from ..ssim import ssim_map

if TYPE_CHECKING:
    from ...core.weights import WeightFile

log = logging.getLogger(__name__)

PerceptualKind = Literal["auto", "vgg19", "pyramid_l1", "ssim"]
#: the stand-ins for the VGG-19 loss when its weights are not supplied, with what each one computes
STAND_INS = {"pyramid_l1": "mean L1 over a 4-level average-pooled image pyramid", "ssim": "1 - mean SSIM, 11 px Gaussian window"}

#: torchvision's VGG configuration "E" (VGG-19): conv widths, "M" max-pooling.
VGG19_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = f"https://download.pytorch.org/models/{VGG19_FILE}"
VGG19_SHA256_PREFIX = "dcbb9e9d"
#: ImageNet statistics torchvision's weights were trained with, for [0, 1] RGB input.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: pix2pixHD / HR-VITON's perceptual layers and weights (SAL-VTON follows HR-VITON; used too for
#: SPG-VTON's five activations and 3D-GCL, whose papers give no weights).
HRVITON_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
HRVITON_LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


def _layer_indices() -> dict[str, int]:
    """Layer name (conv1_1, relu1_1, ..., pool5) -> index in torchvision's ``features``."""
    names, idx, block, conv = {}, 0, 1, 1
    for v in VGG19_CONFIG:
        if v == "M":
            names[f"pool{block}"] = idx
            idx, block, conv = idx + 1, block + 1, 1
        else:
            names[f"conv{block}_{conv}"] = idx
            names[f"relu{block}_{conv}"] = idx + 1
            idx, conv = idx + 2, conv + 1
    return names


VGG19_LAYER_INDEX = _layer_indices()


def vgg19_weight_file() -> "WeightFile":
    """The VGG-19 weight file as a :class:`~vtonpipe.core.WeightFile` (for ``doctor``)."""
    from ...core.weights import WeightFile

    return WeightFile(
        f"vgg/{VGG19_FILE}",
        VGG19_URL,
        None,
        f"torchvision VGG-19 ImageNet weights for the perceptual loss; sha256 begins {VGG19_SHA256_PREFIX}",
    )


class VGG19Features(nn.Module):
    """torchvision's VGG-19 ``features`` up to the deepest of ``layers``, returning those layers.

    ``x``: (B, 3, H, W) RGB in [0, 1]; normalised inside with the ImageNet mean and std. Returns
    the requested layers' activations in the order of ``layers`` (conv layers before their ReLU).
    Parameters are frozen (``requires_grad = False``); gradients flow to ``x``.
    """

    def __init__(self, layers: Sequence[str]):
        super().__init__()
        unknown = [n for n in layers if n not in VGG19_LAYER_INDEX]
        if unknown or not layers:
            raise ValueError(f"unknown VGG-19 layers {unknown}; known: {', '.join(VGG19_LAYER_INDEX)}")
        self.layers = tuple(layers)
        self.indices = tuple(VGG19_LAYER_INDEX[n] for n in layers)
        modules: list[nn.Module] = []
        cin = 3
        for v in VGG19_CONFIG:
            if len(modules) > max(self.indices):
                break
            if v == "M":
                modules.append(nn.MaxPool2d(2, 2))
            else:
                modules += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
                cin = v
        self.features = nn.Sequential(*modules[: max(self.indices) + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGG19Features":
        """Always in eval mode (a fixed feature extractor)."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x - self.mean) / self.std
        wanted = {i: k for k, i in enumerate(self.indices)}
        outs: list[torch.Tensor | None] = [None] * len(self.indices)
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in wanted:
                outs[wanted[i]] = h
        return outs  # type: ignore[return-value]


def default_vgg19_path() -> Path:
    """``<weights_dir>/vgg/vgg19-dcbb9e9d.pth``."""
    return weights_dir() / "vgg" / VGG19_FILE


def _missing_file_message(path: Path) -> str:
    return (
        f"missing VGG-19 weight file {path.name} (torchvision ImageNet weights, for the perceptual loss): "
        f"looked for {path}; put torchvision's {VGG19_FILE} at {default_vgg19_path()} (set VTONPIPE_WEIGHTS "
        f"to use another folder) or pass its path; get it from {VGG19_URL}; its sha256 begins "
        f"{VGG19_SHA256_PREFIX} (full checksum not pinned). Without it, choose the stand-in perceptual loss "
        f"(kind='pyramid_l1')."
    )


def load_vgg19_features(path: str | Path, layers: Sequence[str]) -> VGG19Features:
    """A :class:`VGG19Features` for ``layers`` with weights from a torchvision-layout state dict.

    The file is read with ``torch.load(..., weights_only=True)``; it must hold
    ``features.N.weight`` / ``features.N.bias`` with torchvision's shapes for every convolution up
    to the deepest requested layer (other keys are ignored). A file named ``vgg19-dcbb9e9d.pth``
    must have a sha256 beginning with ``dcbb9e9d``. Raises
    :class:`~vtonpipe.core.MissingWeightsError` for an absent or corrupt file and
    ``ValueError`` for missing keys or wrong shapes, naming them.
    """
    from ...core.errors import MissingWeightsError
    from ...core.weights import check_sha256_prefix

    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingWeightsError(_missing_file_message(path))
    if path.name == VGG19_FILE:
        check_sha256_prefix(path, VGG19_SHA256_PREFIX)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a state dict (mapping of tensors), got {type(state).__name__}")
    model = VGG19Features(layers)
    expected = model.features.state_dict()
    missing = [f"features.{k}" for k in expected if f"features.{k}" not in state]
    if missing:
        raise ValueError(f"{path}: not a torchvision VGG-19 state dict: missing keys {missing}")
    for k, v in expected.items():
        got = state[f"features.{k}"]
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(v.shape):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise ValueError(f"{path}: features.{k} has shape {shape}, VGG-19 expects {tuple(v.shape)}")
    model.features.load_state_dict({k: state[f"features.{k}"].float() for k in expected})
    return model


class PerceptualLoss(nn.Module):
    """``sum_i w_i * d(phi_i(pred), phi_i(target))`` on VGG-19 layers, or the stand-in.

    With ``vgg`` (a :class:`VGG19Features`): ``phi_i`` are its layers, ``d`` the mean absolute
    (``distance="l1"``) or squared (``"mse"``, Johnson et al.'s feature reconstruction loss)
    difference; the target's features are computed without gradients. ``name`` is ``"vgg19"``.

    Without (``vgg=None``): the ``stand_in`` (``distance`` and ``layer_weights`` do not apply):
    ``"pyramid_l1"``, the mean over ``pyramid_levels`` levels (the image, then 2x2 average-pooled
    repeatedly) of the mean absolute difference; ``"ssim"``, ``1 - mean SSIM`` (11 px Gaussian
    window of sigma 1.5, the evaluation's; ``pred`` clamped to [0, 1]). ``name`` is the stand-in's.

    ``pred``, ``target``: (B, 3, H, W) in [0, 1]. Returns a scalar.
    """

    def __init__(
        self,
        vgg: VGG19Features | None,
        layer_weights: Sequence[float] | None = None,
        *,
        distance: Literal["l1", "mse"] = "l1",
        pyramid_levels: int = 4,
        stand_in: Literal["pyramid_l1", "ssim"] = "pyramid_l1",
    ):
        super().__init__()
        if distance not in ("l1", "mse"):
            raise ValueError(f"distance must be l1 or mse, not {distance!r}")
        if stand_in not in STAND_INS:
            raise ValueError(f"stand-in must be one of {', '.join(STAND_INS)}, not {stand_in!r}")
        self.vgg = vgg
        self.name = "vgg19" if vgg is not None else stand_in
        if vgg is not None:
            weights = tuple(layer_weights) if layer_weights is not None else (1.0,) * len(vgg.layers)
            if len(weights) != len(vgg.layers):
                raise ValueError(f"{len(weights)} layer weights for {len(vgg.layers)} layers")
            self.layer_weights = weights
        self.distance = distance
        self.pyramid_levels = pyramid_levels

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.name == "ssim":
            return 1 - ssim_map(pred.clamp(0, 1), target).mean()
        if self.vgg is None:
            total = pred.new_zeros(())
            for level in range(self.pyramid_levels):
                if level:
                    pred, target = F.avg_pool2d(pred, 2, ceil_mode=True), F.avg_pool2d(target, 2, ceil_mode=True)
                total = total + (pred - target).abs().mean()
            return total / self.pyramid_levels
        with torch.no_grad():
            target_feats = self.vgg(target)
        total = pred.new_zeros(())
        for w, p, t in zip(self.layer_weights, self.vgg(pred), target_feats, strict=True):
            diff = p - t
            total = total + w * (diff.abs().mean() if self.distance == "l1" else diff.pow(2).mean())
        return total


def perceptual_loss(
    kind: PerceptualKind = "auto",
    *,
    layers: Sequence[str] = HRVITON_LAYERS,
    layer_weights: Sequence[float] | None = HRVITON_LAYER_WEIGHTS,
    distance: Literal["l1", "mse"] = "l1",
    weights_path: str | Path | None = None,
) -> PerceptualLoss:
    """Build the perceptual loss a config asks for.

    ``kind="vgg19"``: VGG-19 on ``layers`` from ``weights_path`` (default
    :func:`default_vgg19_path`); an absent file raises (see :func:`load_vgg19_features`).
    ``"pyramid_l1"``, ``"ssim"``: that stand-in. ``"auto"``: VGG-19 when the file exists, else
    ``pyramid_l1`` with a warning naming the missing file. The result's ``name`` says which one it is.
    """
    if kind not in typing.get_args(PerceptualKind):
        raise ValueError(f"perceptual loss kind must be {', '.join(typing.get_args(PerceptualKind))}, not {kind!r}")
    path = Path(weights_path).expanduser() if weights_path is not None else default_vgg19_path()
    if kind == "ssim":
        return PerceptualLoss(None, stand_in="ssim")
    if kind == "pyramid_l1" or (kind == "auto" and not path.is_file()):
        if kind == "auto":
            log.warning("VGG-19 weights not found at %s: using the stand-in perceptual loss (pyramid_l1)", path)
        return PerceptualLoss(None)
    return PerceptualLoss(load_vgg19_features(path, layers), layer_weights, distance=distance)
