"""``vtonpipe train tryon --model lasnl``: SAL-VTON's try-on generator (Sec. 3.3): an
encoder-decoder whose decoder is normalised by LASNL (Eq. 10-12) on the heatmaps of the 32
landmarks on the target person, trained with HR-VITON's hinge adversarial, feature-matching and
perceptual losses (:mod:`vtonpipe.models.tryon.lasnl`).

The person input is the garment-agnostic target person (SAL-VTON's ``P_o``, the person in
another garment, comes from a pretrained parser-based model vtonpipe lacks), and one warped
garment (``num_warped = 1``; SAL-VTON's warp gives three, ``W_g, W_l, W_f``). The landmark
heatmaps are the target's annotated ones (``target_landmark_heatmaps``; at test time in the
paper, the landmark network's predictions)."""

from __future__ import annotations

import torch

from vtonpipe.models.tryon import lasnl
from vtonpipe.models.tryon.discriminators import discriminator_loss

from ..task import register_task
from ..tryon import AgnosticKind, GanGroups, TryonTask, agnostic_needs, agnostic_target, tryon_config


@register_task
class LASNLTryon(TryonTask):
    model = "lasnl"
    ModelConfig = lasnl.LASNLConfig
    Config = tryon_config("LASNLTryon.Config", lasnl.LASNLConfig, extra=(("agnostic", AgnosticKind, "hrviton"),), num_warped=1)
    groups = GanGroups(generators=("generator",), discriminators=("discriminator",))

    def model_needs(self):
        return agnostic_needs(self.config.agnostic) | {"target_image", "target_landmark_heatmaps"}

    def build(self):
        if self.model_cfg.num_warped != 1:
            raise ValueError(f"num_warped must be 1: the warp source gives one warped garment (got {self.model_cfg.num_warped})")
        return {"generator": lasnl.LASNLGenerator(self.model_cfg), "discriminator": lasnl.make_discriminator(self.model_cfg)}

    def training_step(self, modules, batch, control):
        person = agnostic_target(batch, self.config.agnostic)
        warped, _ = self.warp(batch)
        heat = batch["target_landmark_heatmaps"]
        target = batch["target_image"]
        disc = modules["discriminator"]
        out = modules["generator"](person, warped, heat)
        real_in = lasnl.discriminator_input(target, person, warped, heat)
        d = discriminator_loss(disc, real_in, lasnl.discriminator_input(out, person, warped, heat), self.model_cfg.gan)
        perceptual = self.perceptual(target.device)
        g = {}

        def g_loss():
            with torch.no_grad():
                real_outs = disc(real_in)
            g.update(lasnl.generator_loss(out, target, real_outs, disc(lasnl.discriminator_input(out, person, warped, heat)), perceptual, self.model_cfg))
            return g["total"]

        self.gan_step(control, d["total"], g_loss)
        return {"d_loss": d["total"].detach(), "g_loss": g.pop("total").detach(), **{f"g_{k}": v.detach() for k, v in g.items()}}

    def synthesize(self, modules, batch, warped_garment, warped_mask):
        return {"tryon": modules["generator"](agnostic_target(batch, self.config.agnostic), warped_garment, batch["target_landmark_heatmaps"])}

    def visuals(self, modules, batch):
        out = self.infer(modules, batch)
        heat = batch["target_landmark_heatmaps"].amax(1, keepdim=True).clamp(0, 1)
        return {
            "agnostic": agnostic_target(batch, self.config.agnostic),
            "landmarks": heat,
            "warped garment": out["warped_garment"],
            "try-on": out["tryon"].clamp(0, 1),
            "target": batch["target_image"],
        }
