"""``vtonpipe train warp --model sal``: SAL-VTON's landmark-based warping (vtonpipe.models.warp.sal).

The in-shop garment ``G = garment_image x garment_mask`` and its 32 landmark heatmaps feed the
garment pyramid; the person pyramid reads a person representation ``P_o`` and the heatmaps of the
target person's landmarks ``L_p`` (where the garment's landmarks land). Losses Eq. 6-9: L1 (and
the VGG-19 perceptual term when its weights are supplied) of the global and fused warps against the
target garment, Charbonnier smoothness of the global flows, landmark alignment of the local warp.

**Person representation.** The paper's ``P_o`` is the target person wearing *other* garments,
made by a pre-trained parser-based try-on teacher that this pipeline does not have. Its stand-in
here is HR-VITON's garment-agnostic person image of the target
(:func:`vtonpipe.models.tryon.agnostic.agnostic_person`, i.e. ``converters.labels.image_agnostic``):
torso, neck and arms painted gray over a keypoint-drawn silhouette, head and lower body kept.
Like ``P_o`` it shows the body and pose without the target garment's appearance, and the gray
shape comes from the keypoints, not the garment's outline (so the warp cannot copy the target
garment's silhouette from its input). It needs the target's neck, shoulders and hips keypoints;
a pair lacking them is an error naming it.

Settings (params.yaml ``train.warp.sal``): the network's (:class:`~vtonpipe.models.warp.sal.SALConfig`
without ``person_channels``, fixed to the 3 channels of the agnostic image), the losses'
(:class:`~vtonpipe.models.warp.sal.SALLossConfig`), ``lr`` (Adam), ``perceptual`` and
``vgg_weights``. Height and width must be multiples of ``2 ** len(channels)`` (32 by default).
``infer``'s ``flow`` is the global flow (the fused warp, Eq. 5, also blends the local flows).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ...models.tryon.agnostic import agnostic_person
from ...models.warp.sal import SALConfig, SALLossConfig, SALWarp, sal_losses
from ..task import register_task
from ..warp import PerceptualChoice, WarpTask, config_part, masked, target_garment, task_config


def person_representation(batch: Mapping[str, Any]) -> torch.Tensor:
    """``P_o``'s stand-in ``(B, 3, H, W)`` in [0, 1]: the target's agnostic person image (see the
    module docstring); a pair without the keypoints it needs raises ``ValueError`` naming it."""
    people = []
    for b, pair_id in enumerate(batch["pair_id"]):
        one = slice(b, b + 1)
        try:
            people.append(agnostic_person(batch["target_image"][one], batch["target_parsing"][one], batch["target_keypoints"][one]))
        except ValueError as e:
            raise ValueError(f"pair {pair_id}: no person representation for SAL-VTON (the agnostic target person): {e}") from e
    return torch.cat(people)


@register_task
class SALWarpTask(WarpTask):
    kind, model = "warp", "sal"
    mask_key = "garment_mask"
    Config = task_config(
        "SALWarpTask", __name__, SALConfig, SALLossConfig, exclude=("person_channels",),
        lr=(float, 1e-4), perceptual=(PerceptualChoice, "auto"), vgg_weights=(str, ""),
    )  # fmt: skip

    def needs(self):
        return {
            "garment_image", "garment_mask", "garment_landmarks", "garment_landmark_heatmaps",
            "target_image", "target_parsing", "target_keypoints", "target_garment_region", "target_landmarks", "target_landmark_heatmaps",
        }  # fmt: skip

    def build(self):
        return {"net": SALWarp(config_part(self.config, SALConfig, person_channels=3))}

    def forward(self, net, batch):
        garment = masked(batch["garment_image"], batch["garment_mask"])
        output = net(
            garment, batch["garment_landmark_heatmaps"], batch["garment_landmarks"],
            person_representation(batch), batch["target_landmark_heatmaps"], batch["target_landmarks"],
        )  # fmt: skip
        return garment, output

    def training_step(self, modules, batch, control):
        garment, output = self.forward(modules["net"], batch)
        losses = sal_losses(
            output, target_garment(batch), batch["target_landmarks"], config_part(self.config, SALLossConfig), self.perceptual_on(garment.device)
        )
        return self.optimise(losses, control)
