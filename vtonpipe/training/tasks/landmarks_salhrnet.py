"""``vtonpipe train landmarks``: SAL-VTON's two-branch landmark HRNet
(:mod:`vtonpipe.models.landmarks.hrnet`) trained on a build's packed pairs.

Labels: the packed ``landmarks`` rows of the garment image and of the people in ``people``
(``source``, and ``target`` where the build's pairs have a second pose), which must all have
been made by the backend ``labels`` names (``--labels``: ``groundtruth`` on the embedded sample,
the ``geometric`` bootstrap, or labels a team imported); rows of another backend are an error
naming the stage to rerun (:meth:`Task.prior_backends`).

One training sample per pair and person role: the garment image and the person image, flipped
together (left/right ids swapped) with probability ``flip_prob``, then each scaled, rotated,
shifted and colour-jittered on its own (:mod:`vtonpipe.models.landmarks.augment`; a person's
visible points pushed out of the image become occluded). The garment branch regresses the
garment's heatmaps and classifies each point present / absent; the person branch reads the
person image, the garment image and the Gaussian heatmaps (``garment_heatmap_sigma`` px) of the
garment's true landmarks, and regresses the person's heatmaps and classifies visible / occluded
/ absent. Loss: ``heatmap_weight * (MSE_garment + MSE_person) + attribute_weight * (CE_garment +
CE_person)`` (:mod:`vtonpipe.models.landmarks.losses`), heatmap targets Gaussians of
``heatmap_sigma`` px at the training resolution. Adam, the learning rate times ``lr_gamma`` at
each of ``lr_milestones`` (steps).

Evaluation (the test split, unaugmented) decodes as the ``sal-hrnet`` annotator does (the person
branch reads the garment branch's decoded landmarks; flip test if ``flip_test``) and reports,
per sample, the mean px error on the points visible in the labels (at the training resolution)
and the attribute accuracy, for the garment and for each person role. The checkpoints are what
the ``sal-hrnet`` annotator loads (:func:`~vtonpipe.models.landmarks.hrnet.build_from_checkpoint`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...converters.landmarks import landmark_heatmaps
from ...models.landmarks.augment import random_augment
from ...models.landmarks.decode import LandmarkPredictor, heatmap_targets
from ...models.landmarks.hrnet import (
    CHECKPOINT_KIND,
    CHECKPOINT_MODEL,
    CHECKPOINT_MODULE,
    STRIDE,
    LandmarkNetConfig,
    SALLandmarkNet,
)
from ...models.landmarks.losses import (
    attribute_cross_entropy,
    garment_attribute_targets,
    heatmap_mse,
)
from .. import metrics
from ..config import ConfigError
from ..task import Task, register_task

#: backends whose landmark rows are not labels to train on
NOT_LABELS = ("sal-hrnet",)
PERSON_ROLES = ("source", "target")


@register_task
class SALHRNetLandmarks(Task):
    kind, model = CHECKPOINT_KIND, CHECKPOINT_MODEL

    @dataclass(frozen=True)
    class Config:
        labels: str = "groundtruth"  # the landmarks backend whose packed rows are the labels
        people: tuple[str, ...] = ("source",)  # person roles trained on (add "target" for two-pose builds)
        # the network (LandmarkNetConfig's fields)
        hrnet_width: int = 18
        stage_modules: tuple[int, int, int] = (1, 3, 2)
        blocks: int = 2
        garment_heatmap_sigma: float = 4.0
        attribute_hidden: int = 256
        # losses and optimiser
        heatmap_sigma: float = 8.0  # px at the training resolution (2 heatmap cells, HRNet's)
        heatmap_weight: float = 1000.0
        attribute_weight: float = 1.0
        lr: float = 1e-3
        lr_milestones: tuple[int, ...] = ()
        lr_gamma: float = 0.1
        # augmentation
        flip_prob: float = 0.5
        max_scale: float = 0.1
        max_rotation_deg: float = 10.0
        max_shift: float = 0.05
        colour: float = 0.2
        # evaluation
        flip_test: bool = False

        def __post_init__(self) -> None:
            if not self.labels or self.labels in NOT_LABELS:
                raise ConfigError(f"labels: {self.labels!r} is not a labels backend (use groundtruth, geometric or the backend of imported labels)")
            bad = [r for r in self.people if r not in PERSON_ROLES]
            if not self.people or bad or len(set(self.people)) != len(self.people):
                raise ConfigError(f"people: expected distinct roles among {list(PERSON_ROLES)}, got {list(self.people)}")

    def net_config(self) -> LandmarkNetConfig:
        names = {f.name for f in fields(LandmarkNetConfig)}
        return LandmarkNetConfig(**{k: getattr(self.config, k) for k in names})

    def needs(self) -> set[str]:
        return {"garment_image", "garment_landmarks", *(f"{r}_{k}" for r in self.config.people for k in ("image", "landmarks"))}

    def prior_backends(self) -> dict[str, str]:
        return {"landmarks": self.config.labels}

    def build(self) -> dict[str, nn.Module]:
        return {CHECKPOINT_MODULE: SALLandmarkNet(self.net_config())}

    def optimizers(self, modules: Mapping[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        return {CHECKPOINT_MODULE: torch.optim.Adam(modules[CHECKPOINT_MODULE].parameters(), lr=self.config.lr)}

    def schedulers(self, optimizers: Mapping[str, torch.optim.Optimizer]) -> dict[str, Any]:
        if not self.config.lr_milestones:
            return {}
        opt = optimizers[CHECKPOINT_MODULE]
        return {CHECKPOINT_MODULE: torch.optim.lr_scheduler.MultiStepLR(opt, list(self.config.lr_milestones), self.config.lr_gamma)}

    def _samples(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Garment images, garment landmarks, person images, person landmarks: one row per pair
        and person role (the garment repeated for each role)."""
        roles = self.config.people
        garments = torch.cat([batch["garment_image"]] * len(roles))
        garment_lm = torch.cat([batch["garment_landmarks"]] * len(roles))
        people = torch.cat([batch[f"{r}_image"] for r in roles])
        person_lm = torch.cat([batch[f"{r}_landmarks"] for r in roles])
        return garments, garment_lm, people, person_lm

    def training_step(self, modules, batch, control):
        cfg = self.config
        garments, garment_lm, people, person_lm = self._samples(batch)
        size = tuple(garments.shape[-2:])
        flip = torch.rand(len(garments)) < cfg.flip_prob
        augment = {"max_scale": cfg.max_scale, "max_rotation_deg": cfg.max_rotation_deg, "max_shift": cfg.max_shift, "colour": cfg.colour}
        garments, garment_lm = random_augment(garments, garment_lm, flip, outside_occludes=False, **augment)
        people, person_lm = random_augment(people, person_lm, flip, outside_occludes=True, **augment)
        garment_maps = landmark_heatmaps(garment_lm, size, cfg.garment_heatmap_sigma)
        out = modules[CHECKPOINT_MODULE](garments, people, garment_maps)
        mse_g = heatmap_mse(out.garment_heatmaps.float(), heatmap_targets(garment_lm, size, cfg.heatmap_sigma))
        mse_p = heatmap_mse(out.person_heatmaps.float(), heatmap_targets(person_lm, size, cfg.heatmap_sigma))
        ce_g = attribute_cross_entropy(out.garment_logits.float(), garment_attribute_targets(garment_lm[..., 2]))
        ce_p = attribute_cross_entropy(out.person_logits.float(), person_lm[..., 2].round().long())
        loss = cfg.heatmap_weight * (mse_g + mse_p) + cfg.attribute_weight * (ce_g + ce_p)
        control.backward(loss, CHECKPOINT_MODULE)
        control.step(CHECKPOINT_MODULE)
        return {
            "loss": loss.detach(),
            "heatmap_garment": mse_g.detach(),
            "heatmap_person": mse_p.detach(),
            "attribute_garment": ce_g.detach(),
            "attribute_person": ce_p.detach(),
        }

    def _predictor(self, modules: Mapping[str, nn.Module], batch: Mapping[str, Any]) -> LandmarkPredictor:
        images = batch["garment_image"]
        return LandmarkPredictor(
            modules[CHECKPOINT_MODULE], tuple(images.shape[-2:]), self.config.heatmap_sigma, flip=self.config.flip_test, device=images.device
        )

    def infer(self, modules, batch):
        """Landmarks ``(B, 32, 3)`` (x, y px at the training resolution, attribute) of the garment
        (``garment_landmarks``) and of it on each person role (``<role>_landmarks``), decoded as
        the ``sal-hrnet`` annotator does."""
        predictor = self._predictor(modules, batch)
        out = {"garment_landmarks": predictor.predict_garments(batch["garment_image"])}
        for role in self.config.people:
            out[f"{role}_landmarks"] = predictor.predict_people(batch[f"{role}_image"], batch["garment_image"])
        return out

    def evaluate(self, modules, batch):
        """Per pair: ``garment_px_error`` / ``<role>_px_error`` (mean px distance on the labels'
        visible points not predicted absent) and ``garment_attribute_accuracy`` (present / absent)
        / ``<role>_attribute_accuracy`` (visible / occluded / absent), over the 32 points."""
        predicted = self.infer(modules, batch)
        out = {}
        for name, pred in predicted.items():
            role = name.removesuffix("_landmarks")
            truth = batch[name]
            out[f"{role}_px_error"] = metrics.landmark_point_error(pred, truth)
            out[f"{role}_attribute_accuracy"] = metrics.landmark_attribute_accuracy(pred, truth, garment=role == "garment")
        return out

    def visuals(self, modules, batch):
        """Each image with its label heatmaps (green) and the network's (red) over it."""
        net = modules[CHECKPOINT_MODULE]
        garments = batch["garment_image"]
        size = tuple(garments.shape[-2:])
        garment_maps, _ = net.forward_garment(garments)
        columns = {"garment": _overlay(garments, batch["garment_landmarks"], garment_maps, self.config.heatmap_sigma)}
        labels = landmark_heatmaps(batch["garment_landmarks"], size, self.config.garment_heatmap_sigma)
        for role in self.config.people:
            people = batch[f"{role}_image"]
            person_maps, _ = net.forward_person(people, garments, labels)
            columns[role] = _overlay(people, batch[f"{role}_landmarks"], person_maps, self.config.heatmap_sigma)
        return columns


def _overlay(images: torch.Tensor, landmarks: torch.Tensor, predicted: torch.Tensor, sigma: float) -> torch.Tensor:
    """``images`` (B, 3, H, W) dimmed, the labels' heatmaps in green, the predicted ones (B, 32,
    H/4, W/4), upsampled, in red (each channel the maximum over the 32 points)."""
    size = tuple(images.shape[-2:])
    labels = heatmap_targets(landmarks, size, sigma).amax(1, keepdim=True)
    pred = predicted.float().clamp(0, 1).amax(1, keepdim=True)
    labels, pred = (F.interpolate(m, scale_factor=STRIDE, mode="bilinear", align_corners=False) for m in (labels, pred))
    out = 0.5 * images
    return torch.cat([out[:, :1] + 0.5 * pred, out[:, 1:2] + 0.5 * labels, out[:, 2:]], 1).clamp(0, 1)
