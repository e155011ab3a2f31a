"""3D-GCL's SPADE generator: shapes, ranges, Eq. 8, and a few optimisation steps."""

import pytest
import torch
from tryon_steps import adam_steps

from vtonpipe.models.tryon import gcl
from vtonpipe.models.tryon.perceptual import perceptual_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def batch(seed: int = 0, h: int = 16, w: int = 12):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(2, 3, h, w, generator=g) for _ in range(3))


def test_output_shape_range_and_deterministic_eval():
    torch.manual_seed(0)
    cfg = gcl.GCLConfig.tiny()
    g = gcl.GCLGenerator(cfg)
    agnostic, warped, _ = batch()
    out = g(agnostic, warped)
    assert out.shape == (2, 3, 16, 12) and out.min() >= 0 and out.max() <= 1
    g.eval()
    torch.testing.assert_close(g(agnostic, warped), g(agnostic, warped))  # no noise at evaluation
    with pytest.raises(ValueError, match="divisible by 4"):
        g(torch.rand(1, 3, 18, 12), torch.rand(1, 3, 18, 12))
    d_outs = gcl.make_discriminator(cfg)(gcl.discriminator_input(out, agnostic, warped))
    assert len(d_outs) == cfg.d_scales and d_outs[0][-1].shape[1] == 1


def test_noise_strength_is_learned_and_used_in_training():
    torch.manual_seed(0)
    g = gcl.GCLGenerator(gcl.GCLConfig.tiny())
    noises = [m for m in g.modules() if isinstance(m, gcl.NoiseInjection)]
    assert len(noises) == 2 * len(g.blocks)
    for n in noises:
        n.strength.data.fill_(0.5)
    agnostic, warped, _ = batch()
    assert not torch.allclose(g(agnostic, warped), g(agnostic, warped))


def test_eq8_weights_the_three_terms():
    cfg = gcl.GCLConfig(lambda_adv=2.0, lambda_l1=3.0, lambda_perc=5.0, gan="lsgan")
    out, target = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    losses = gcl.generator_loss(out, target, [[torch.zeros(1, 1, 2, 2)]], perceptual_loss("pyramid_l1"), cfg)
    assert set(losses) == {"total", "adv", "l1", "perceptual_pyramid_l1"}
    # adv = (0 - 1)^2 = 1, l1 = 0.5, pyramid L1 = 0.5 at every level
    assert losses["total"].item() == pytest.approx(2.0 * 1.0 + 3.0 * 0.5 + 5.0 * 0.5)


def test_a_few_steps_lower_the_generator_loss():
    torch.manual_seed(0)
    cfg = gcl.GCLConfig.tiny()
    g = gcl.GCLGenerator(cfg)
    d = gcl.make_discriminator(cfg).requires_grad_(False)
    perc = perceptual_loss("pyramid_l1")
    agnostic, warped, target = batch()

    def loss():
        torch.manual_seed(1)  # the same noise every step
        out = g(agnostic, warped)
        return gcl.generator_loss(out, target, d(gcl.discriminator_input(out, agnostic, warped)), perc, cfg)["total"]

    losses = adam_steps(g.parameters(), loss, 8, lr=3e-3)
    assert losses[-1] < 0.8 * losses[0], losses  # measured: 6.31 -> 3.97
