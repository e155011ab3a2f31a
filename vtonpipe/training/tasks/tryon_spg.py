"""``vtonpipe train tryon --model spg``: SPG-VTON's three generators (Sec. III): G1 target
semantic prediction, G2 coarse result, G3 try-on synthesis with the composition mask (Eq. 10-11),
each with its discriminator (``d1``, ``d2``, the global + local ``d_tsm``), trained by the paper's
schedule (Sec. III-E, :data:`vtonpipe.models.tryon.spg.SCHEDULE`): ``semantic_steps`` of G1 alone,
``synthesis_steps`` of G2 + G3 with G1 frozen, then every network jointly (Eq. 17) to the end.

The clothes warping module is the ``warp`` setting's model, frozen here (the paper trains its TPS
warp in the synthesis and joint phases). Eq. 16's face identity term is left out (its SphereFace
weights are not available); every adversarial loss is LSGAN with R1 (``r1_gamma``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vtonpipe.models.tryon import spg
from vtonpipe.models.tryon.agnostic import FACE, HAIR, label_mask, one_hot, remove_garment
from vtonpipe.models.tryon.discriminators import adversarial_d_loss, discriminator_loss, r1_penalty

from ..task import register_task
from ..tryon import GanGroups, TryonTask, phase_at, set_phase_modes, tryon_config

_EXTRA = (
    ("semantic_steps", int, 70_000),  # phase 1, G1 alone (the paper: 70k iterations)
    ("synthesis_steps", int, 70_000),  # phase 2, G2 + G3 with G1 fixed (70k); then joint (the paper: 100k)
)


def _global_local_d_loss(d_tsm, real: tuple[torch.Tensor, torch.Tensor], fake: tuple[torch.Tensor, torch.Tensor], r1_gamma: float) -> torch.Tensor:
    """``L_adv^g + L_adv^l`` of the discriminators (LSGAN, Eq. 13-14) plus ``r1_gamma / 2`` times
    each one's R1 penalty on its real input."""
    real = tuple(t.detach().requires_grad_(r1_gamma > 0) for t in real)
    real_g, real_l = d_tsm(*real)
    fake_g, fake_l = d_tsm(*(t.detach() for t in fake))
    loss = adversarial_d_loss(real_g, fake_g, "lsgan") + adversarial_d_loss(real_l, fake_l, "lsgan")
    if r1_gamma > 0:
        loss = loss + 0.5 * r1_gamma * (r1_penalty(real_g, real[0]) + r1_penalty(real_l, real[1]))
    return loss


@register_task
class SPGTryon(TryonTask):
    model = "spg"
    ModelConfig = spg.SPGConfig
    Config = tryon_config("SPGTryon.Config", spg.SPGConfig, extra=_EXTRA, betas=(0.0, 0.999))  # Sec. IV-C: Adam betas (0, 0.999)
    groups = GanGroups(generators=("g1", "g2", "g3"), discriminators=("d1", "d2", "d_tsm"))

    def model_needs(self):
        return {
            "source_parsing",
            "target_parsing",
            "garment_image",
            "garment_mask",
            "target_pose_disks",
            "source_image",
            "source_garment_region",
            "target_image",
            "target_garment_region",
        }

    def build(self):
        model = spg.SPGVTON(self.model_cfg)
        return {"g1": model.g1, "g2": model.g2, "g3": model.g3, **spg.make_discriminators(self.model_cfg)}

    @staticmethod
    def _inputs(batch):
        pose = batch["target_pose_disks"]
        return (
            pose,
            remove_garment(batch["source_image"], batch["source_garment_region"]),
            spg.SPGVTON.semantic_inputs(batch["source_parsing"], batch["garment_mask"], pose),
        )

    def training_step(self, modules, batch, control):
        cfg = self.model_cfg
        phase = phase_at(spg.SCHEDULE, (self.config.semantic_steps, self.config.synthesis_steps), control.global_step)
        set_phase_modes(modules, phase)
        trains = set(phase.train)
        pose, src_wo, sem_in = self._inputs(batch)
        target, garment = batch["target_image"], batch["garment_image"]
        with torch.set_grad_enabled("g1" in trains):
            logits = modules["g1"](sem_in)
        sem = F.softmax(logits, dim=1)
        d_loss = target.new_zeros(())
        if "semantic" in phase.losses:
            real = spg.d1_input(one_hot(batch["target_parsing"]), sem_in)
            d_loss = d_loss + discriminator_loss(modules["d1"], real, spg.d1_input(sem, sem_in), "lsgan", r1_gamma=cfg.r1_gamma)["total"]
        if "synthesis" in phase.losses:
            coarse, coarse_mask = spg.coarse_result(modules["g2"], sem, pose, garment, src_wo)
            real = spg.d2_input(target, sem, garment, pose, src_wo)
            d_loss = d_loss + discriminator_loss(modules["d2"], real, spg.d2_input(coarse, sem, garment, pose, src_wo), "lsgan", r1_gamma=cfg.r1_gamma)["total"]
            warped, _ = self.warp(batch)
            out = spg.synthesis_result(modules["g3"], coarse, warped, pose, erase_area=cfg.erase_area)
            face, hair = label_mask(batch["target_parsing"], FACE), label_mask(batch["target_parsing"], HAIR)
            real_part = target * batch["target_garment_region"]

            def tsm_inputs(image, part):
                return spg.global_input(image, part, pose, src_wo), spg.local_input(image, face, hair, part, pose, src_wo, local_size=cfg.local_size)

            d_loss = d_loss + _global_local_d_loss(modules["d_tsm"], tsm_inputs(target, real_part), tsm_inputs(out["tryon"], out["garment_part"]), cfg.r1_gamma)
        perceptual = self.perceptual(target.device)
        logged: dict[str, torch.Tensor] = {}

        def g_loss():
            total = target.new_zeros(())
            if "semantic" in phase.losses:
                terms = spg.semantic_loss(logits, batch["target_parsing"], modules["d1"](spg.d1_input(sem, sem_in)), cfg)
                total = total + terms["total"]
                logged.update({f"semantic_{k}": v for k, v in terms.items()})
            if "synthesis" in phase.losses:
                fake = modules["d2"](spg.d2_input(coarse, sem, garment, pose, src_wo))
                terms = spg.coarse_loss(coarse, coarse_mask, target, batch["target_garment_region"], fake, perceptual, cfg)
                total = total + terms["total"]
                logged.update({f"coarse_{k}": v for k, v in terms.items()})
                fake_g, fake_l = modules["d_tsm"](*tsm_inputs(out["tryon"], out["garment_part"]))
                terms = spg.synthesis_loss(out["tryon"], out["mask"], target, fake_g, fake_l, perceptual, cfg)
                total = total + terms["total"]
                logged.update({f"synthesis_{k}": v for k, v in terms.items()})
            return total

        g = self.gan_step(control, d_loss, g_loss)
        return {
            "phase": torch.tensor(float(spg.SCHEDULE.index(phase))),
            "d_loss": d_loss.detach(),
            "g_loss": g.detach(),
            **{k: v.detach() for k, v in logged.items()},
        }

    def synthesize(self, modules, batch, warped_garment, warped_mask):
        pose, src_wo, sem_in = self._inputs(batch)
        sem = F.softmax(modules["g1"](sem_in), dim=1)
        coarse, _ = spg.coarse_result(modules["g2"], sem, pose, batch["garment_image"], src_wo)
        out = spg.synthesis_result(modules["g3"], coarse, warped_garment, pose)
        return {"tryon": out["tryon"], "mask": out["mask"], "coarse": coarse}

    def visuals(self, modules, batch):
        out = self.infer(modules, batch)
        _, src_wo, _ = self._inputs(batch)
        return {
            "source w/o garment": src_wo,
            "warped garment": out["warped_garment"],
            "coarse (G2)": out["coarse"],
            "mask": out["mask"],
            "try-on": out["tryon"].clamp(0, 1),
            "target": batch["target_image"],
        }

    def notes(self):
        return [
            *super().notes(),
            "SPG-VTON Eq. 16: the face identity loss (SphereFace) is left out; the warp model is frozen (not trained in the synthesis and joint phases)",
        ]
