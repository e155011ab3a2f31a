"""``vtonpipe train tryon --model gcl``: 3D-GCL's SPADE try-on generator (Sec. 3.3, Eq. 8) on the
garment-agnostic target person and the warped garment, against a conditional multi-scale PatchGAN
(:mod:`vtonpipe.models.tryon.gcl`). One phase: the paper trains the generator alone on a frozen
warp (its warp and try-on stages are trained one after the other)."""

from __future__ import annotations

from vtonpipe.models.tryon import gcl
from vtonpipe.models.tryon.discriminators import discriminator_loss

from ..task import register_task
from ..tryon import AgnosticKind, GanGroups, TryonTask, agnostic_needs, agnostic_target, tryon_config


@register_task
class GCLTryon(TryonTask):
    model = "gcl"
    ModelConfig = gcl.GCLConfig
    Config = tryon_config("GCLTryon.Config", gcl.GCLConfig, extra=(("agnostic", AgnosticKind, "hrviton"),))
    groups = GanGroups(generators=("generator",), discriminators=("discriminator",))

    def model_needs(self):
        return agnostic_needs(self.config.agnostic) | {"target_image"}

    def build(self):
        return {"generator": gcl.GCLGenerator(self.model_cfg), "discriminator": gcl.make_discriminator(self.model_cfg)}

    def training_step(self, modules, batch, control):
        agnostic = agnostic_target(batch, self.config.agnostic)
        warped, _ = self.warp(batch)
        target = batch["target_image"]
        out = modules["generator"](agnostic, warped)
        d = discriminator_loss(
            modules["discriminator"], gcl.discriminator_input(target, agnostic, warped), gcl.discriminator_input(out, agnostic, warped), self.model_cfg.gan
        )
        perceptual = self.perceptual(target.device)
        g = {}

        def g_loss():
            g.update(gcl.generator_loss(out, target, modules["discriminator"](gcl.discriminator_input(out, agnostic, warped)), perceptual, self.model_cfg))
            return g["total"]

        self.gan_step(control, d["total"], g_loss)
        return {"d_loss": d["total"].detach(), "g_loss": g.pop("total").detach(), **{f"g_{k}": v.detach() for k, v in g.items()}}

    def synthesize(self, modules, batch, warped_garment, warped_mask):
        return {"tryon": modules["generator"](agnostic_target(batch, self.config.agnostic), warped_garment)}

    def visuals(self, modules, batch):
        out = self.infer(modules, batch)
        return {
            "agnostic": agnostic_target(batch, self.config.agnostic),
            "warped garment": out["warped_garment"],
            "try-on": out["tryon"].clamp(0, 1),
            "target": batch["target_image"],
        }
