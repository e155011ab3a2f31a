"""What the four try-on tasks (``vtonpipe/training/tasks/tryon_*.py``) share: their settings
record, the warped-garment source, the perceptual loss and its note, the agnostic target person,
the phase schedule, the evaluation metrics and the copy-paste baseline.

Every try-on task's ``Config`` is built by :func:`tryon_config`: the fields of the model's own
config dataclass (``vtonpipe.models.tryon.<paper>.<Paper>Config``: widths, loss weights) plus the
shared settings of :data:`SHARED_FIELDS` (``warp``, learning rates, Adam betas, ``perceptual``),
one flat namespace as params.yaml ``train.tryon.<model>`` writes it.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Sequence

import torch
from torch import nn

from ..models.tryon.agnostic import FACE, agnostic_person, label_mask, remove_garment
from ..models.tryon.common import Phase, compose
from ..models.tryon.perceptual import STAND_INS, PerceptualKind, PerceptualLoss, default_vgg19_path, perceptual_loss
from . import metrics
from .task import Task
from .warped import SMPL_FLOW, WarpSource

AgnosticKind = Literal["hrviton", "garment_region"]

#: settings every try-on task has: (name, type, default)
SHARED_FIELDS: tuple[tuple[str, Any, Any], ...] = (
    ("warp", str, SMPL_FLOW),  # a trained warp run directory / checkpoint, or "smpl_flow" (vtonpipe.training.warped)
    ("lr", float, 2e-4),  # generators' Adam learning rate
    ("d_lr", float, 2e-4),  # discriminators'
    ("betas", tuple[float, float], (0.5, 0.999)),  # Adam betas (pix2pix / SPG-VTON)
    ("perceptual", PerceptualKind, "auto"),  # VGG-19 when its weights are present, else the named stand-in
    ("lr_decay", tuple[int, int], (0, 0)),  # (first, last) step: both rates fall linearly to 0 between them; (0, 0) keeps them constant
)


def tryon_config(name: str, model_config: type, extra: Sequence[tuple[str, Any, Any]] = (), **defaults: Any) -> type:
    """A frozen dataclass ``name`` with the fields of ``model_config`` (their defaults, or those in
    ``defaults``), :data:`SHARED_FIELDS` and ``extra`` (name, type, default) fields."""
    hints = typing.get_type_hints(model_config)
    fields: list[tuple[str, Any, Any]] = []
    for f in dataclasses.fields(model_config):
        default = defaults.pop(f.name, f.default)
        fields.append((f.name, hints[f.name], dataclasses.field(default=default)))
    for field_name, hint, default in (*SHARED_FIELDS, *extra):
        fields.append((field_name, hint, dataclasses.field(default=defaults.pop(field_name, default))))
    if defaults:
        raise TypeError(f"{name}: defaults for unknown fields {sorted(defaults)}")
    cls = dataclasses.make_dataclass(name.rpartition(".")[2], fields, frozen=True)
    cls.__qualname__ = name
    return cls


def model_config(model_config_cls: type, config: Any) -> Any:
    """The model's own config (``model_config_cls``) from a task config made by :func:`tryon_config`."""
    return model_config_cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(model_config_cls)})


def agnostic_target(batch: Mapping[str, Any], kind: AgnosticKind) -> torch.Tensor:
    """The garment-agnostic target person (B, 3, H, W) in [0, 1]: ``hrviton``: HR-VITON's gray
    agnostic image (:func:`~vtonpipe.models.tryon.agnostic.agnostic_person`, needs the target's
    neck, shoulders and hips keypoints); ``garment_region``: ``target_image`` with its upper-garment
    region painted mid-gray (keeps the garment's silhouette)."""
    if kind == "hrviton":
        return agnostic_person(batch["target_image"], batch["target_parsing"], batch["target_keypoints"])
    if kind == "garment_region":
        return remove_garment(batch["target_image"], batch["target_garment_region"])
    raise ValueError(f"agnostic must be hrviton or garment_region, not {kind!r}")


def agnostic_needs(kind: AgnosticKind) -> set[str]:
    return {"target_image", "target_parsing", "target_keypoints"} if kind == "hrviton" else {"target_image", "target_garment_region"}


def copy_paste(agnostic: torch.Tensor, warped_garment: torch.Tensor, warped_mask: torch.Tensor) -> torch.Tensor:
    """The copy-paste baseline: the warped garment pasted onto the agnostic target person,
    ``warped * mask + agnostic * (1 - mask)``; (B, 3, H, W) in [0, 1]."""
    return compose(warped_garment, agnostic, warped_mask)


def tryon_metrics(tryon: torch.Tensor, warped_mask: torch.Tensor, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Per-sample ``(B,)`` metrics of a try-on image against ``target_image``: ``ssim``, ``psnr``
    (dB), ``l1``; ``ssim_face`` (windows centred on the target parsing's face pixels),
    ``ssim_non_garment`` (on the pixels outside ``target_garment_region``, background included);
    ``warp_miou``: IoU of the warped mask and ``target_garment_region``. NaN for unpaired samples
    (the target person does not wear the garment tried on: no reference), which the trainer's
    and ``vtonpipe eval``'s means leave out."""
    target = batch["target_image"]
    tryon = tryon.float().clamp(0, 1)
    region = batch["target_garment_region"]
    values = {
        "ssim": metrics.ssim(tryon, target),
        "psnr": metrics.psnr(tryon, target),
        "l1": metrics.l1(tryon, target),
        "ssim_face": metrics.ssim(tryon, target, label_mask(batch["target_parsing"], FACE)),
        "ssim_non_garment": metrics.ssim(tryon, target, 1 - region),
        "warp_miou": metrics.mask_iou(warped_mask, region),
    }
    paired = torch.as_tensor(batch["paired"], device=target.device).bool()
    return {k: torch.where(paired, v, torch.full_like(v, float("nan"))) for k, v in values.items()}


METRIC_NEEDS = {"paired", "target_image", "target_parsing", "target_garment_region"}


def phase_at(schedule: Sequence[Phase], lengths: Sequence[int], step: int) -> Phase:
    """The phase of ``schedule`` that optimiser step ``step`` (0-based) belongs to: phase ``i <
    len(lengths)`` runs ``lengths[i]`` steps, the last phase every step after them."""
    if len(lengths) != len(schedule) - 1:
        raise ValueError(f"{len(schedule)} phases need {len(schedule) - 1} lengths, got {len(lengths)}")
    end = 0
    for phase, length in zip(schedule[:-1], lengths, strict=True):
        end += length
        if step < end:
            return phase
    return schedule[-1]


def set_phase_modes(modules: Mapping[str, nn.Module], phase: Phase) -> None:
    """Training mode for the modules the phase trains, eval mode for the others."""
    for name, m in modules.items():
        m.train(name in phase.train)


@dataclass
class GanGroups:
    """Module names of a task's two optimiser groups: ``generator`` and ``discriminator``."""

    generators: tuple[str, ...]
    discriminators: tuple[str, ...]


class TryonTask(Task):
    """Base of the try-on tasks: the warp source, the perceptual loss, Adam groups ``generator`` and
    ``discriminator`` (one optimiser over each group's modules: a module a phase does not train
    gets no gradient, and Adam leaves parameters without one untouched), ``infer`` = the model's
    :meth:`synthesize` plus the warped garment, ``evaluate`` = :func:`tryon_metrics`.

    Subclasses set ``groups``, ``ModelConfig`` and implement :meth:`model_needs`, :meth:`build`,
    :meth:`training_step`, :meth:`synthesize` and :meth:`visuals`."""

    kind = "tryon"
    groups: typing.ClassVar[GanGroups]
    ModelConfig: typing.ClassVar[type]

    def __init__(self, config: Any = None):
        super().__init__(config)
        self.model_cfg = model_config(self.ModelConfig, self.config)
        self.warp = WarpSource(self.config.warp)
        self.perceptual_loss = self.make_perceptual(self.config.perceptual)
        self._perceptual_device: torch.device | None = None

    # -- parts ----------------------------------------------------------------------------------
    def make_perceptual(self, kind: PerceptualKind) -> PerceptualLoss:
        """The model's perceptual loss (HR-VITON's VGG-19 layers by default)."""
        return perceptual_loss(kind)

    def perceptual(self, device: torch.device) -> PerceptualLoss:
        """The perceptual loss on ``device`` (moved there on first use)."""
        if self._perceptual_device != device:
            self.perceptual_loss.to(device)
            self._perceptual_device = device
        return self.perceptual_loss

    def model_needs(self) -> set[str]:
        raise NotImplementedError

    def needs(self) -> set[str]:
        return self.model_needs() | self.warp.needs() | METRIC_NEEDS

    def optimizers(self, modules):
        betas = tuple(self.config.betas)
        g = [p for name in self.groups.generators for p in modules[name].parameters()]
        d = [p for name in self.groups.discriminators for p in modules[name].parameters()]
        return {"generator": torch.optim.Adam(g, lr=self.config.lr, betas=betas), "discriminator": torch.optim.Adam(d, lr=self.config.d_lr, betas=betas)}

    def schedulers(self, optimizers):
        """With ``lr_decay = (first, last)``: both groups' rates constant to step ``first``, then
        linearly down to 0 at step ``last`` (pix2pixHD's schedule; SAL-VTON: "decays linearly
        after 50 epochs"); stepped once per optimiser step, so ``--resume`` continues it."""
        first, last = self.config.lr_decay
        if (first, last) == (0, 0):
            return {}
        if not 0 <= first < last:
            raise ValueError(f"lr_decay must be (first, last) steps with 0 <= first < last, or (0, 0) for none; got {self.config.lr_decay}")

        def factor(step: int) -> float:
            return min(1.0, max(0.0, (last - step) / (last - first)))

        return {group: torch.optim.lr_scheduler.LambdaLR(opt, factor) for group, opt in optimizers.items()}

    def gan_step(self, control, d_loss: torch.Tensor, g_loss_fn) -> torch.Tensor:
        """Back-propagate and step the discriminators on ``d_loss``, then the generators on
        ``g_loss_fn()`` (called after the discriminator step, so that it sees the updated
        discriminators); returns the generator loss."""
        control.backward(d_loss, "discriminator")
        control.step("discriminator")
        g_loss = g_loss_fn()
        control.backward(g_loss, "generator")
        control.step("generator")
        return g_loss

    # -- outputs ---------------------------------------------------------------------------------
    def synthesize(self, modules, batch, warped_garment: torch.Tensor, warped_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """The model's inference outputs: ``tryon`` (B, 3, H, W) in [0, 1], plus ``mask`` (B, 1, H,
        W) where the model composes with one."""
        raise NotImplementedError

    def infer(self, modules, batch):
        warped, warped_mask = self.warp(batch)
        return {**self.synthesize(modules, batch, warped, warped_mask), "warped_garment": warped, "warped_mask": warped_mask}

    def evaluate(self, modules, batch):
        out = self.infer(modules, batch)
        return tryon_metrics(out["tryon"], out["warped_mask"], batch)

    def notes(self) -> list[str]:
        notes = [self.warp.describe()]
        p = self.perceptual_loss
        if p.name == "vgg19":
            notes.append(f"perceptual loss: VGG-19 layers {', '.join(p.vgg.layers)}")
        else:
            why = f"perceptual: {p.name} was set" if self.config.perceptual == p.name else f"VGG-19 weights not found at {default_vgg19_path()}"
            notes.append(f"perceptual loss: {p.name} ({STAND_INS[p.name]}) stands in for the VGG-19 perceptual loss ({why})")
        return notes
