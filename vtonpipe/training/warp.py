"""What the three warping tasks (``vtonpipe/training/tasks/warp_{gcl,tps,sal}.py``) share: the
garment images they warp and compare, their evaluation, sample grids and inference outputs, and
the choice of the perceptual loss.

Every warping task warps a garment image onto the *target* person and is judged against the
target's garment region (LIP upper-clothes, dress, coat: ``target_garment_region``):

- the **target garment** ``target_image x target_garment_region`` (black elsewhere) is the
  ground-truth warp every model's image losses compare with;
- the **warped mask** is the garment's own mask warped as the garment was (3D-GCL: the source
  person's garment region; SPG-VTON, SAL-VTON: the in-shop garment mask).

Evaluation (:meth:`WarpTask.evaluate`, per sample, at the training resolution): ``miou``, the IoU
of the warped mask (thresholded at 0.5) with the target garment region (its mean over the test
split is the warped-garment mIoU); ``l1`` and ``ssim`` of the warped garment against the target
garment over the whole image (both black off the garment). LPIPS is not computed: vtonpipe has no
LPIPS network or weights (``metrics.json`` holds no ``lpips`` key rather than a stand-in).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from ..models.render.flow import BACKGROUND
from ..models.tryon.perceptual import HRVITON_LAYER_WEIGHTS, HRVITON_LAYERS, VGG19_FILE, PerceptualLoss, default_vgg19_path, load_vgg19_features
from ..models.warp.ops import PERCEPTUAL_STAND_IN, WarpLosses, WarpOutput, warp_by_flow
from ..vis.smpl_flow import flow_to_colour
from . import metrics
from .distribution import load_lpips, weight_problems
from .task import StepControl, Task

#: ``perceptual`` setting: ``auto`` = the VGG-19 term when its weight file is present, else left out
#: (the stand-in is logged and recorded); ``vgg19`` = required (a missing file is an error naming
#: it); ``off`` = left out
PerceptualChoice = Literal["auto", "vgg19", "off"]


def masked(image: Tensor, region: Tensor) -> Tensor:
    """``image`` ``(B, 3, H, W)`` times ``region`` ``(B, 1, H, W)`` {0, 1}: black off the region."""
    return image * region


def target_garment(batch: Mapping[str, Any]) -> Tensor:
    """The ground-truth warp ``(B, 3, H, W)``: the target image on its garment region."""
    return masked(batch["target_image"], batch["target_garment_region"])


#: batch keys of :func:`smpl_flow_warp`
SMPL_FLOW_WARP_NEEDS = frozenset({"source_image", "source_garment_region", "smpl_flow", "visibility"})


def smpl_flow_warp(batch: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
    """The SMPL flow's own warp of the source person's garment, the oracle the trained warps are
    compared with: ``(warped garment (B, 3, H, W), warped garment region (B, 1, H, W))``, the
    source garment and its region sampled at ``x + smpl_flow`` on the target's body pixels
    (``visibility`` not background; the flow is 0 elsewhere, which would copy the source's pixels
    in place), black off the body."""
    flow = batch["smpl_flow"]
    body = (batch["visibility"] != BACKGROUND).unsqueeze(1).to(flow.dtype)
    region = batch["source_garment_region"]
    return warp_by_flow(masked(batch["source_image"], region), flow) * body, warp_by_flow(region, flow) * body


def flow_colours(flow: Tensor) -> Tensor:
    """``(B, 3, H, W)`` in [0, 1]: each flow ``(B, 2, H, W)`` px on the Middlebury colour wheel
    (:func:`vtonpipe.vis.smpl_flow.flow_to_colour`, saturation relative to the sample's largest
    displacement, white = no motion)."""
    pictures = [flow_to_colour(f.detach().float().permute(1, 2, 0).cpu().numpy()) for f in flow]
    return torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2).to(flow.device).float() / 255.0


def warp_metrics(warped: Tensor, warped_mask: Tensor, batch: Mapping[str, Any]) -> dict[str, Tensor]:
    """Per-sample ``(B,)`` ``miou``, ``l1`` and ``ssim`` of a warp against ``batch``'s target
    garment (see the module docstring); ``warped`` ``(B, 3, H, W)`` is clamped to [0, 1]."""
    warped = warped.float().clamp(0, 1)
    truth = target_garment(batch).float()
    return {
        "miou": metrics.mask_iou(warped_mask.float(), batch["target_garment_region"]),
        "l1": metrics.l1(warped, truth),
        "ssim": metrics.ssim(warped, truth),
    }


def vgg19_path(vgg_weights: str) -> Path:
    """The VGG-19 weight file a task reads: ``vgg_weights`` or the default under the weights dir."""
    return Path(vgg_weights).expanduser() if vgg_weights else default_vgg19_path()


def perceptual_stand_in_note(choice: PerceptualChoice, vgg_weights: str) -> str | None:
    """The note a task records when the perceptual term is left out (None when it is computed)."""
    path = vgg19_path(vgg_weights)
    if choice == "off":
        return "perceptual loss: left out (perceptual=off), the image terms are l1 alone"
    if choice == "auto" and not path.is_file():
        return f"perceptual loss: {PERCEPTUAL_STAND_IN}; put torchvision's {VGG19_FILE} at {path} for the papers' VGG-19 term"
    return None


def perceptual_module(choice: PerceptualChoice, vgg_weights: str) -> PerceptualLoss | None:
    """The VGG-19 perceptual loss (HR-VITON's layers and weights) or None when it is left out;
    ``vgg19`` without the file raises :class:`~vtonpipe.core.MissingWeightsError` naming it."""
    if choice not in ("auto", "vgg19", "off"):
        raise ValueError(f"perceptual must be auto, vgg19 or off, not {choice!r}")
    path = vgg19_path(vgg_weights)
    if choice == "off" or (choice == "auto" and not path.is_file()):
        return None
    return PerceptualLoss(load_vgg19_features(path, HRVITON_LAYERS), HRVITON_LAYER_WEIGHTS)


def task_config(owner: str, module: str, *parts: type, exclude: tuple[str, ...] = (), **extra: tuple[Any, Any]) -> type:
    """A task's frozen ``Config`` dataclass: every field of the model's config dataclasses
    ``parts`` (network and loss settings, same names, types and defaults; ``exclude`` left out)
    followed by ``extra`` fields ``name=(type, default)``; ``owner`` / ``module``: the task class's
    name and module (for messages). :func:`config_part` gets a part back."""
    fields = []
    for part in parts:
        hints = typing.get_type_hints(part)
        fields += [(f.name, hints[f.name], dataclasses.field(default=f.default)) for f in dataclasses.fields(part) if f.name not in exclude]
    fields += [(name, hint, dataclasses.field(default=default)) for name, (hint, default) in extra.items()]
    config = dataclasses.make_dataclass("Config", fields, frozen=True)
    config.__qualname__ = f"{owner}.Config"
    config.__module__ = module
    return config


def config_part(config: Any, part: type, **values: Any) -> Any:
    """The ``part`` dataclass (e.g. ``GCLConfig``) from a task config made by :func:`task_config`;
    ``values`` set the fields the task config does not hold."""
    return part(**{f.name: getattr(config, f.name) for f in dataclasses.fields(part) if f.name not in values}, **values)


@dataclass
class Warp:
    """One forward pass of a warping task at the batch resolution: the ``garment`` it warps
    ``(B, 3, H, W)``, the network's ``output`` (flows in pixels of this resolution, target grid ->
    garment pixels), the ``warped`` garment and the ``warped_mask`` ``(B, 1, H, W)`` in [0, 1]."""

    garment: Tensor
    output: WarpOutput
    warped: Tensor
    warped_mask: Tensor


class WarpTask(Task):
    """The part of a warping task that does not depend on the model: evaluation, visuals,
    inference, the optimiser and the perceptual loss. A subclass sets :attr:`mask_key`, implements
    :meth:`forward` (or :meth:`warp`), ``needs``, ``build`` (one module, ``net``) and
    ``training_step``; its ``Config`` has an ``lr`` field, and ``perceptual`` and ``vgg_weights``
    fields when its paper has a perceptual loss."""

    #: batch key of the mask of the garment the model warps (warped like it, for the mIoU)
    mask_key: ClassVar[str]

    def forward(self, net: nn.Module, batch: Mapping[str, Any]) -> tuple[Tensor, WarpOutput]:
        """(the garment image ``net`` warps, ``net``'s output) for ``batch``."""
        raise NotImplementedError

    def warp(self, modules: Mapping[str, nn.Module], batch: Mapping[str, Any]) -> Warp:
        """The network's warp of ``batch`` at the batch resolution."""
        garment, output = self.forward(modules["net"], batch)
        return Warp(garment, output, output.warped, output.warp_like(batch[self.mask_key]))

    def optimizers(self, modules):
        """Adam on the one network; also loads the perceptual loss the config asks for (so a
        missing VGG-19 file stops the run before its first step)."""
        self.perceptual = perceptual_module(self.config.perceptual, self.config.vgg_weights) if hasattr(self.config, "perceptual") else None
        return {"net": torch.optim.Adam(modules["net"].parameters(), lr=self.config.lr, betas=(0.5, 0.999))}

    def perceptual_on(self, device: torch.device) -> PerceptualLoss | None:
        """The perceptual loss on ``device`` (None when left out)."""
        perceptual = getattr(self, "perceptual", None)
        return None if perceptual is None else perceptual.to(device)

    def optimise(self, losses: WarpLosses, control: StepControl) -> dict[str, Tensor]:
        """Back-propagate ``losses.total`` and step the network; the scalars a training step logs
        (``loss`` = the total, and every unweighted term)."""
        control.backward(losses.total, "net")
        control.step("net")
        return {"loss": losses.total.detach(), **{k: v.detach() for k, v in losses.terms.items()}}

    def notes(self) -> list[str]:
        """The perceptual loss's stand-in, for a model whose paper has one (a ``perceptual`` setting),
        and whether the evaluation has LPIPS (only with its AlexNet and LPIPS weight files)."""
        notes = []
        if hasattr(self.config, "perceptual"):
            note = perceptual_stand_in_note(self.config.perceptual, self.config.vgg_weights)
            notes += [note] if note else []
        missing = weight_problems("lpips")
        if missing:
            notes.append("evaluation without LPIPS: " + "; ".join(missing))
        return notes

    def evaluate(self, modules, batch):
        result = self.warp(modules, batch)
        scores = warp_metrics(result.warped, result.warped_mask, batch)
        if not weight_problems("lpips"):  # the user supplied LPIPS' weights: metrics.json gets `lpips`
            if getattr(self, "_lpips", None) is None:
                self._lpips = load_lpips().to(result.warped.device)
            scores["lpips"] = self._lpips(result.warped.float().clamp(0, 1), target_garment(batch).float())
        return scores

    def visuals(self, modules, batch):
        result = self.warp(modules, batch)
        return {
            "garment": result.garment,
            "warped": result.warped.float().clamp(0, 1),
            "target": target_garment(batch),
            "flow": flow_colours(result.output.flow),
        }

    def infer(self, modules, batch):
        result = self.warp(modules, batch)
        return {"warped_garment": result.warped.float().clamp(0, 1), "warped_mask": result.warped_mask.float().clamp(0, 1), "flow": result.output.flow.float()}
