"""Test-only training tasks (registered on import): a tiny conv net regressing the target image
from the garment image, optionally against a tiny patch discriminator (two optimiser groups)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vtonpipe.training import metrics
from vtonpipe.training.task import Task, register_task


@register_task
class TinyTryon(Task):
    kind, model = "tryon", "tiny"

    @dataclass(frozen=True)
    class Config:
        lr: float = 0.05
        adversarial: float = 0.1  # 0: no discriminator
        channels: int = 4

    def needs(self):
        return {"garment_image", "target_image", "target_garment_region"}

    def build(self):
        c = self.config.channels
        modules = {"generator": nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.Tanh(), nn.Conv2d(c, 3, 3, padding=1))}
        if self.config.adversarial:
            modules["discriminator"] = nn.Sequential(nn.Conv2d(3, c, 3, stride=2, padding=1), nn.Tanh(), nn.Conv2d(c, 1, 3, padding=1))
        return modules

    def optimizers(self, modules):
        return {name: torch.optim.SGD(m.parameters(), lr=self.config.lr, momentum=0.9) for name, m in modules.items()}

    def training_step(self, modules, batch, control):
        target = batch["target_image"]
        fake = modules["generator"](batch["garment_image"])
        out = {}
        g_loss = l1 = (fake - target).abs().mean()
        if "discriminator" in modules:
            disc = modules["discriminator"]
            real_score, fake_score = disc(torch.cat([target, fake.detach()])).chunk(2)
            d_loss = F.softplus(-real_score).mean() + F.softplus(fake_score).mean()
            control.backward(d_loss, "discriminator")
            control.step("discriminator")
            g_loss = l1 + self.config.adversarial * F.softplus(-disc(fake)).mean()
            out["d_loss"] = d_loss.detach()
        control.backward(g_loss, "generator")
        control.step("generator")
        return {**out, "l1": l1.detach(), "g_loss": g_loss.detach()}

    def evaluate(self, modules, batch):
        out = modules["generator"](batch["garment_image"]).clamp(0, 1)
        return {"l1": metrics.l1(out, batch["target_image"]), "psnr": metrics.psnr(out, batch["target_image"]), "region_l1": metrics.l1(out, batch["target_image"], batch["target_garment_region"])}

    def visuals(self, modules, batch):
        return {"garment": batch["garment_image"], "output": modules["generator"](batch["garment_image"]).clamp(0, 1), "region": batch["target_garment_region"], "target": batch["target_image"]}
