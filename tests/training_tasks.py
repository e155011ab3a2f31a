"""Test-only training tasks (registered on import): a tiny conv net regressing the target image
from the garment image, optionally against a tiny patch discriminator (two optimiser groups), and
a tiny warp model regressing a flow."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vtonpipe.models.warp.ops import warp_by_flow
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
        return {
            "l1": metrics.l1(out, batch["target_image"]),
            "psnr": metrics.psnr(out, batch["target_image"]),
            "region_l1": metrics.l1(out, batch["target_image"], batch["target_garment_region"]),
        }

    def visuals(self, modules, batch):
        return {
            "garment": batch["garment_image"],
            "output": modules["generator"](batch["garment_image"]).clamp(0, 1),
            "region": batch["target_garment_region"],
            "target": batch["target_image"],
        }

    def infer(self, modules, batch):
        return {"tryon": modules["generator"](batch["garment_image"]).clamp(0, 1)}


@register_task
class TinyWarp(Task):
    """A per-pixel flow regressed from the garment and the target image (test only)."""

    kind, model = "warp", "tiny"

    @dataclass(frozen=True)
    class Config:
        lr: float = 0.05

    def needs(self):
        return {"garment_image", "garment_mask", "target_image", "target_garment_region"}

    def build(self):
        return {"net": nn.Conv2d(6, 2, 3, padding=1)}

    def optimizers(self, modules):
        return {"net": torch.optim.SGD(modules["net"].parameters(), lr=self.config.lr)}

    def _warp(self, net, batch):
        flow = net(torch.cat([batch["garment_image"], batch["target_image"]], 1))
        return flow, warp_by_flow(batch["garment_image"], flow), warp_by_flow(batch["garment_mask"], flow)

    def training_step(self, modules, batch, control):
        _, warped, _ = self._warp(modules["net"], batch)
        loss = metrics.l1(warped, batch["target_image"], batch["target_garment_region"]).mean()
        control.backward(loss, "net")
        control.step("net")
        return {"l1": loss.detach()}

    def evaluate(self, modules, batch):
        _, _, mask = self._warp(modules["net"], batch)
        return {"miou": metrics.mask_iou(mask, batch["target_garment_region"])}

    def visuals(self, modules, batch):
        _, warped, _ = self._warp(modules["net"], batch)
        return {"garment": batch["garment_image"], "warped": warped}

    def infer(self, modules, batch):
        flow, warped, mask = self._warp(modules["net"], batch)
        return {"warped_garment": warped.clamp(0, 1), "warped_mask": mask.clamp(0, 1), "flow": flow}
