"""``vtonpipe train tryon --model treeblock``: Down to the Last Detail (Wang et al.): the parsing
transformation U-Net, the Tree-Block appearance generator with its composition mask (Eq. 4-8) and
the face refinement network (Eq. 9-10), each against its LSGAN multi-scale PatchGAN, trained by
Algorithm 1 (:data:`vtonpipe.models.tryon.treeblock.SCHEDULE`): ``parsing_steps`` of the parsing
network, ``appearance_steps`` of the appearance generator, ``face_steps`` of the face network, then
the parsing and appearance networks jointly on Eq. 8 to the end (the paper gives no step counts).

The clothing spatial alignment is the ``warp`` setting's model, frozen here (Algorithm 1 trains it
in the premiere and joint phases)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vtonpipe.models.tryon import treeblock as tb
from vtonpipe.models.tryon.agnostic import one_hot, remove_garment
from vtonpipe.models.tryon.common import crop_and_resize
from vtonpipe.models.tryon.discriminators import discriminator_loss

from ..task import register_task
from ..tryon import GanGroups, TryonTask, phase_at, set_phase_modes, tryon_config

_EXTRA = (
    ("parsing_steps", int, 250),  # Algorithm 1's phases (no counts in the paper): premiere (parsing),
    ("appearance_steps", int, 250),  # appearance generation,
    ("face_steps", int, 250),  # face refinement; then joint to the end
)


@register_task
class TreeBlockTryon(TryonTask):
    model = "treeblock"
    ModelConfig = tb.TreeBlockConfig
    Config = tryon_config("TreeBlockTryon.Config", tb.TreeBlockConfig, extra=_EXTRA)
    groups = GanGroups(generators=("parsing", "appearance", "face"), discriminators=("d_parsing", "d_appearance", "d_face"))

    def make_perceptual(self, kind):
        return tb.make_perceptual(kind)

    def model_needs(self):
        return {
            "source_parsing",
            "garment_mask",
            "target_pose_heatmaps",
            "source_image",
            "source_garment_region",
            "target_parsing",
            "target_image",
            "target_garment_region",
        }

    def build(self):
        model = tb.TreeBlockVTON(self.model_cfg)
        return {"parsing": model.parsing, "appearance": model.appearance, "face": model.face, **tb.make_discriminators(self.model_cfg)}

    @staticmethod
    def _inputs(batch):
        parsing_in = tb.TreeBlockVTON.parsing_inputs(one_hot(batch["source_parsing"]), batch["garment_mask"], batch["target_pose_heatmaps"])
        return parsing_in, remove_garment(batch["source_image"], batch["source_garment_region"])

    def training_step(self, modules, batch, control):
        cfg = self.model_cfg
        lengths = (self.config.parsing_steps, self.config.appearance_steps, self.config.face_steps)
        phase = phase_at(tb.SCHEDULE, lengths, control.global_step)
        set_phase_modes(modules, phase)
        trains = set(phase.train)
        parsing_in, src_wo = self._inputs(batch)
        source, target = batch["source_image"], batch["target_image"]
        with torch.set_grad_enabled("parsing" in trains):
            logits = modules["parsing"](parsing_in)
        sem = F.softmax(logits, dim=1)
        d_loss = target.new_zeros(())
        if "parsing" in phase.losses:
            real = torch.cat([one_hot(batch["target_parsing"]), parsing_in], dim=1)
            d_loss = d_loss + discriminator_loss(modules["d_parsing"], real, torch.cat([sem, parsing_in], dim=1), "lsgan")["total"]
        if "appearance" in phase.losses or "face" in phase.losses:
            warped, _ = self.warp(batch)
            with torch.set_grad_enabled("appearance" in trains):
                app = tb.appearance_result(modules["appearance"], src_wo, sem, warped)
        if "appearance" in phase.losses:
            d_loss = (
                d_loss + discriminator_loss(modules["d_appearance"], torch.cat([source, target], 1), torch.cat([source, app["tryon"]], 1), "lsgan")["total"]
            )
        if "face" in phase.losses:
            face = tb.refine_face_result(
                modules["face"], cfg, source, tb.head_mask(batch["source_parsing"]), app["tryon"], tb.head_mask(batch["target_parsing"])
            )
            target_face = crop_and_resize(target, face["target_boxes"], cfg.face_size)
            d_loss = (
                d_loss
                + discriminator_loss(
                    modules["d_face"], torch.cat([face["source_face"], target_face], 1), torch.cat([face["source_face"], face["face"]], 1), "lsgan"
                )["total"]
            )
        perceptual = self.perceptual(target.device)
        logged: dict[str, torch.Tensor] = {}

        def g_loss():
            total = target.new_zeros(())
            if "parsing" in phase.losses:
                terms = tb.parsing_loss(logits, batch["target_parsing"], modules["d_parsing"](torch.cat([sem, parsing_in], dim=1)), cfg)
                total = total + terms["total"]
                logged.update({f"parsing_{k}": v for k, v in terms.items()})
            if "appearance" in phase.losses:
                fake = modules["d_appearance"](torch.cat([source, app["tryon"]], 1))
                terms = tb.appearance_loss(app["tryon"], app["mask"], target, batch["target_garment_region"], fake, perceptual, cfg)
                total = total + terms["total"]
                logged.update({f"appearance_{k}": v for k, v in terms.items()})
            if "face" in phase.losses:
                fake = modules["d_face"](torch.cat([face["source_face"], face["face"]], 1))
                terms = tb.face_loss(face["face"], target_face, face["refined"], target, fake, perceptual, cfg)
                total = total + terms["total"]
                logged.update({f"face_{k}": v for k, v in terms.items()})
            return total

        g = self.gan_step(control, d_loss, g_loss)
        return {
            "phase": torch.tensor(float(tb.SCHEDULE.index(phase))),
            "d_loss": d_loss.detach(),
            "g_loss": g.detach(),
            **{k: v.detach() for k, v in logged.items()},
        }

    def synthesize(self, modules, batch, warped_garment, warped_mask):
        parsing_in, src_wo = self._inputs(batch)
        logits = modules["parsing"](parsing_in)
        app = tb.appearance_result(modules["appearance"], src_wo, F.softmax(logits, dim=1), warped_garment)
        predicted_head = tb.largest_region(tb.head_mask(logits.argmax(1)))  # the head, without stray pixels
        face = tb.refine_face_result(
            modules["face"], self.model_cfg, batch["source_image"], tb.head_mask(batch["source_parsing"]), app["tryon"], predicted_head
        )
        return {"tryon": face["refined"], "mask": app["mask"], "before_face": app["tryon"]}

    def visuals(self, modules, batch):
        out = self.infer(modules, batch)
        _, src_wo = self._inputs(batch)
        return {
            "source w/o garment": src_wo,
            "warped garment": out["warped_garment"],
            "mask": out["mask"],
            "before face refinement": out["before_face"].clamp(0, 1),
            "try-on": out["tryon"].clamp(0, 1),
            "target": batch["target_image"],
        }

    def notes(self):
        return [*super().notes(), "Algorithm 1: the warp model is frozen (not trained in the premiere and joint phases)"]
