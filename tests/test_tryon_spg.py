"""SPG-VTON: inputs, Eq. 10-11 on hand-made tensors, focal loss, schedule, optimisation steps."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from tryon_steps import adam_steps

from vtonpipe.models.tryon import spg
from vtonpipe.models.tryon.perceptual import perceptual_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")
H, W = 16, 16


def parsing(seed: int) -> torch.Tensor:
    return torch.randint(0, 20, (2, H, W), generator=torch.Generator().manual_seed(seed))


def test_synthesis_composes_eq_10():
    class Fixed(nn.Module):
        def forward(self, x):  # rendered (tanh(a) + 1) / 2 = 0.2, mask sigmoid(0) = 0.5
            out = torch.zeros(x.shape[0], 4, *x.shape[2:])
            out[:, :3] = math.atanh(2 * 0.2 - 1)
            return out

    model = spg.SPGVTON(spg.SPGConfig.tiny()).eval()
    model.g3 = Fixed()
    warped = torch.ones(1, 3, H, W)
    out = model.synthesize(torch.rand(1, 3, H, W), warped, torch.zeros(1, 18, H, W))
    # I^_t = C_w * M + I_r * (1 - M) = 1 * 0.5 + 0.2 * 0.5
    torch.testing.assert_close(out["tryon"], torch.full((1, 3, H, W), 0.6))
    torch.testing.assert_close(out["garment_part"], torch.full((1, 3, H, W), 0.5))
    torch.testing.assert_close(out["rendered"], torch.full((1, 3, H, W), 0.2))


def test_reconstruction_eq_11_hand_value():
    tryon, target = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.25)
    mask = torch.full((1, 1, 2, 2), 0.75)
    # alpha_1 * 0.25 + alpha_2 * |1 - 0.75| = 2 * 0.25 + 0.5 * 0.25
    assert spg.synthesis_reconstruction(tryon, target, mask).item() == pytest.approx(0.625)
    assert spg.synthesis_reconstruction(tryon, target, mask, alpha_1=1.0, alpha_2=0.0).item() == pytest.approx(0.25)


def test_focal_loss_hand_value():
    logits = torch.tensor([0.0, math.log(3.0)]).view(1, 2, 1, 1).expand(1, 2, 1, 2).contiguous()  # p = (0.25, 0.75)
    target = torch.tensor([[[1, 0]]])
    expected = (-(0.25**2) * math.log(0.75) - (0.75**2) * math.log(0.25)) / 2
    assert spg.focal_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    assert spg.focal_loss(logits, target, gamma=0.0).item() == pytest.approx(F.cross_entropy(logits, target).item(), rel=1e-6)


def test_random_erase_paints_one_rectangle():
    image = torch.zeros(3, 3, 20, 30)
    out = spg.random_erase(image, (0.1, 0.2), generator=torch.Generator().manual_seed(0))
    for i in range(3):
        erased = out[i, 0] == 0.5
        ys, xs = torch.nonzero(erased, as_tuple=True)
        box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        assert erased.sum() == box  # a filled rectangle
        assert 0.05 * 600 <= box <= 0.25 * 600  # about the requested area (rounded, clipped)
        assert torch.all(out[i] == out[i, :1])  # every channel alike
    assert torch.equal(out, spg.random_erase(image, (0.1, 0.2), generator=torch.Generator().manual_seed(0)))


def test_semantic_inputs_remove_head_and_garment_from_the_reference_map():
    source = torch.tensor([[[2, 13, 5], [9, 14, 7]]])  # hair, face, upper-clothes / pants, arm, coat
    inputs = spg.SPGVTON.semantic_inputs(source, torch.ones(1, 1, 2, 3), torch.zeros(1, 18, 2, 3))
    assert inputs.shape == (1, spg.G1_IN, 2, 3)
    reference, face, hair = inputs[:, :20], inputs[:, 20], inputs[:, 21]
    assert torch.equal(reference.argmax(1), torch.tensor([[[0, 0, 0], [9, 14, 0]]]))
    assert torch.equal(face, torch.tensor([[[0.0, 1, 0], [0, 0, 0]]])) and torch.equal(hair, torch.tensor([[[1.0, 0, 0], [0, 0, 0]]]))


def test_coarse_ignores_the_predicted_garment_classes():
    torch.manual_seed(0)
    model = spg.SPGVTON(spg.SPGConfig.tiny()).eval()
    sem = torch.softmax(torch.randn(1, 20, H, W), 1)
    args = (torch.zeros(1, 18, H, W), torch.rand(1, 3, H, W), torch.rand(1, 3, H, W))
    image, mask = model.coarse(sem, *args)
    changed = sem.clone()
    changed[:, 5:8] = torch.rand(1, 3, H, W)
    image2, mask2 = model.coarse(changed, *args)
    torch.testing.assert_close(image, image2)
    torch.testing.assert_close(mask, mask2)
    assert image.shape == (1, 3, H, W) and mask.shape == (1, 1, H, W)


def test_conv9_starts_with_every_unit_active():
    """Table I's Conv9 has only OUT units behind a ReLU; ``conv9_bias`` starts each active on nearly every pixel."""
    torch.manual_seed(0)
    model = spg.SPGVTON(spg.SPGConfig(base_channels=8, bottleneck_blocks=1))
    seen = {}
    model.g3.net[-3].register_forward_hook(lambda m, i, o: seen.setdefault("conv9", o))
    model.g3(torch.rand(2, spg.G3_IN, 32, 24))
    active = (seen["conv9"] > 0).float().mean((0, 2, 3))
    assert active.shape == (4,) and bool((active > 0.9).all()), active
    assert torch.all(model.g2.net[-3][0].bias == 1.0) and torch.all(model.g1.net[-3][0].bias == 1.0)


def test_generator_and_discriminator_layouts():
    g = spg.SPGGenerator(5, 4, base_channels=4, bottleneck_blocks=4)
    assert g(torch.rand(1, 5, 16, 24)).shape == (1, 4, 16, 24)
    assert sum(isinstance(m, nn.Conv2d) for m in g.modules()) == 11 + 2 * 6  # Table I's 11 convs + 6 resblocks
    with pytest.raises(ValueError, match="divisible by 8"):
        g(torch.rand(1, 5, 12, 24))
    d = spg.SPGDiscriminator(7, 8)
    assert [tuple(o.shape[1:]) for o in d(torch.rand(1, 7, 32, 24))] == [(8, 32, 24), (8, 32, 24), (8, 16, 12), (8, 16, 12), (16, 8, 6), (1, 8, 6)]
    ds = spg.make_discriminators(spg.SPGConfig.tiny())
    for name, c in (("d1", spg.D1_IN), ("d2", spg.D2_IN)):
        assert ds[name](torch.rand(1, c, H, W))[0][-1].shape == (1, 1, H // 4, W // 4)
    g_out, l_out = ds["d_tsm"](torch.rand(1, spg.DG_IN, H, W), torch.rand(1, spg.DL_IN, 8, 8))
    assert g_out[0][-1].shape == (1, 1, 4, 4) and l_out[0][-1].shape == (1, 1, 2, 2)


def test_schedule_is_stagewise_then_joint():
    modules = {"g1", "g2", "g3", "warp"} | set(spg.make_discriminators(spg.SPGConfig.tiny()).keys())
    losses = {"semantic", "coarse", "warp", "synthesis"}
    assert [p.name for p in spg.SCHEDULE] == ["semantic", "synthesis", "joint"]
    for phase in spg.SCHEDULE:
        assert set(phase.train) <= modules and set(phase.frozen) <= modules and set(phase.losses) <= losses
        assert not set(phase.train) & set(phase.frozen)
    first, second, joint = spg.SCHEDULE
    assert first.train == ("g1", "d1") and second.frozen == ("g1",) and "g1" not in second.train
    assert set(joint.train) == modules and set(joint.losses) == losses
    assert [p.steps for p in spg.SCHEDULE] == [70_000, 70_000, 100_000] and [p.batch_size for p in spg.SCHEDULE] == [16, 8, 8]


@pytest.fixture
def tiny_spg():
    """Random inputs; structured targets (a garment rectangle on a plain background) that a few
    steps can approach."""
    torch.manual_seed(0)
    cfg = spg.SPGConfig.tiny()
    model, ds = spg.SPGVTON(cfg), spg.make_discriminators(cfg).requires_grad_(False)
    g = torch.Generator().manual_seed(0)
    target_parsing = torch.zeros(2, H, W, dtype=torch.int64)
    target_parsing[:, 1:4, 5:11] = 2  # hair
    target_parsing[:, 4:7, 6:10] = 13  # face
    target_parsing[:, 7:14, 3:13] = 5  # upper-clothes
    region = (target_parsing == 5)[:, None].float()
    b = {
        "source_parsing": parsing(1),
        "target_parsing": target_parsing,
        "garment_image": torch.rand(2, 3, H, W, generator=g),
        "garment_mask": (torch.rand(2, 1, H, W, generator=g) > 0.5).float(),
        "target_pose_disks": (torch.rand(2, 18, H, W, generator=g) > 0.9).float(),
        "source_without_garment": torch.rand(2, 3, H, W, generator=g),
        "target_image": 0.3 + 0.5 * region.expand(2, 3, H, W),
        "target_garment_region": region,
        "warped_garment": torch.rand(2, 3, H, W, generator=g),
    }
    return cfg, model, ds, b


@pytest.mark.parametrize("stage", ["semantic", "coarse", "synthesis"])
def test_a_few_steps_lower_each_stage_loss(tiny_spg, stage):
    cfg, model, ds, b = tiny_spg
    perc = perceptual_loss("pyramid_l1")
    sem_in = spg.SPGVTON.semantic_inputs(b["source_parsing"], b["garment_mask"], b["target_pose_disks"])
    sem_target = F.one_hot(b["target_parsing"], 20).permute(0, 3, 1, 2).float()
    face = (b["target_parsing"] == 13)[:, None].float()
    hair = (b["target_parsing"] == 2)[:, None].float()

    def semantic():
        logits = model.semantic(sem_in)
        fake = ds["d1"](spg.d1_input(F.softmax(logits, 1), sem_in))
        return spg.semantic_loss(logits, b["target_parsing"], fake, cfg)["total"]

    def coarse():
        image, mask = model.coarse(sem_target, b["target_pose_disks"], b["garment_image"], b["source_without_garment"])
        fake = ds["d2"](spg.d2_input(image, sem_target, b["garment_image"], b["target_pose_disks"], b["source_without_garment"]))
        return spg.coarse_loss(image, mask, b["target_image"], b["target_garment_region"], fake, perc, cfg)["total"]

    def synthesis():
        out = model.synthesize(b["target_image"], b["warped_garment"], b["target_pose_disks"], generator=torch.Generator().manual_seed(3))
        d_tsm = ds["d_tsm"]
        glob = d_tsm.global_d(spg.global_input(out["tryon"], out["garment_part"], b["target_pose_disks"], b["source_without_garment"]))
        local = d_tsm.local_d(spg.local_input(out["tryon"], face, hair, out["garment_part"], b["target_pose_disks"], b["source_without_garment"], local_size=cfg.local_size))
        return spg.synthesis_loss(out["tryon"], out["mask"], b["target_image"], glob, local, perc, cfg)["total"]

    fn, generator = {"semantic": (semantic, model.g1), "coarse": (coarse, model.g2), "synthesis": (synthesis, model.g3)}[stage]
    losses = adam_steps(generator.parameters(), fn, 8, lr=1e-2)
    # measured: semantic 29.2 -> 5.2, coarse 10.1 -> 7.0, synthesis 11.2 -> 9.4
    assert losses[-1] < 0.9 * losses[0], losses


def test_composition_and_garment_masks_start_at_mask_init():
    model = spg.SPGVTON(spg.SPGConfig.tiny()).eval()
    g = torch.Generator().manual_seed(3)
    out = model.synthesize(torch.rand(2, 3, H, W, generator=g), torch.rand(2, 3, H, W, generator=g), torch.zeros(2, 18, H, W))
    torch.testing.assert_close(out["mask"], torch.full((2, 1, H, W), 0.1))
    torch.testing.assert_close(out["tryon"], out["garment_part"] + 0.9 * out["rendered"])
    sem = F.softmax(torch.randn(2, 20, H, W, generator=g), dim=1)
    _, garment_mask = model.coarse(sem, torch.zeros(2, 18, H, W), torch.rand(2, 3, H, W, generator=g), torch.rand(2, 3, H, W, generator=g))
    torch.testing.assert_close(garment_mask, torch.full((2, 1, H, W), 0.1))


def test_adam_betas_default_to_the_papers():
    from vtonpipe.training.tasks.tryon_spg import SPGTryon

    assert tuple(SPGTryon.Config().betas) == (0.0, 0.999)  # Sec. IV-C
