"""SAL-VTON's LASNL (Eq. 10-12) against a hand-computed case, and its generator."""

import pytest
import torch
from tryon_steps import adam_steps

from vtonpipe.models.tryon import lasnl
from vtonpipe.models.tryon.perceptual import perceptual_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def hand_lasnl() -> lasnl.LASNL:
    """1 feature channel, hidden 1; only the 3x3 kernels' centre taps set: C_com reads landmark 0,
    L_s = relu(L_0); gamma = 1 + L_s; beta = 2 L_s."""
    layer = lasnl.LASNL(1, hidden=1, eps=1e-8)
    with torch.no_grad():
        for conv in (layer.shared[0], layer.gamma, layer.beta):
            conv.weight.zero_()
        layer.shared[0].weight[0, 0, 1, 1] = 1.0
        layer.shared[0].bias.zero_()
        layer.gamma.weight[0, 0, 1, 1] = 1.0
        layer.gamma.bias.fill_(1.0)
        layer.beta.weight[0, 0, 1, 1] = 2.0
        layer.beta.bias.zero_()
    return layer


def test_lasnl_hand_case_eq_10_to_12():
    layer = hand_lasnl()
    x = torch.tensor([1.0, 2.0, 3.0, 6.0]).view(1, 1, 1, 4)  # mean 3, variance 3.5
    heat = torch.rand(1, 32, 1, 4)  # landmarks 1..31 have zero weights
    heat[0, 0, 0] = torch.tensor([0.0, 0.5, 1.0, 0.0])
    # x_hat = (-2, -1, 0, 3) / sqrt(3.5); gamma = (1, 1.5, 2, 1); beta = (0, 1, 2, 0)
    expected = torch.tensor([-1.069045, -0.801784 + 1.0, 2.0, 1.603567]).view(1, 1, 1, 4)
    torch.testing.assert_close(layer(x, heat), expected, atol=1e-5, rtol=0)


def test_lasnl_statistics_are_per_sample_and_heatmaps_are_resized():
    layer = hand_lasnl()
    x = torch.tensor([1.0, 2.0, 3.0, 6.0]).view(1, 1, 1, 4)
    heat = torch.zeros(1, 32, 2, 8)  # twice the feature's size: bilinear halving averages 2x2 blocks
    heat[0, 0] = torch.tensor([0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 0.0, 0.0])
    expected = torch.tensor([-1.069045, 0.198216, 2.0, 1.603567]).view(1, 1, 1, 4)
    # a second sample with another scale and offset normalises to the same values (instance stats)
    out = layer(torch.cat([x, 10 * x + 5]), torch.cat([heat, heat]))
    torch.testing.assert_close(out, torch.cat([expected, expected]), atol=1e-5, rtol=0)


def test_generator_shapes_and_input_checks():
    torch.manual_seed(0)
    cfg = lasnl.LASNLConfig.tiny()
    g = lasnl.LASNLGenerator(cfg)
    person, warped, heat = torch.rand(2, 3, 16, 12), torch.rand(2, 9, 16, 12), torch.rand(2, 32, 16, 12)
    out = g(person, warped, heat)
    assert out.shape == (2, 3, 16, 12) and 0 <= out.min() and out.max() <= 1
    assert sum(isinstance(m, lasnl.LASNL) for m in g.modules()) == 2 + 3 * cfg.num_down  # bottleneck + up blocks
    with pytest.raises(ValueError, match="expected 9"):
        g(person, warped[:, :3], heat)
    with pytest.raises(ValueError, match="32 landmark"):
        g(person, warped, heat[:, :18])
    one = lasnl.LASNLGenerator(lasnl.LASNLConfig(num_warped=1, base_channels=4, max_channels=8, num_down=1, hidden=4))
    assert one(person, warped[:, :3], heat).shape == (2, 3, 16, 12)


def test_a_few_steps_lower_the_generator_loss():
    torch.manual_seed(0)
    cfg = lasnl.LASNLConfig.tiny()
    g = lasnl.LASNLGenerator(cfg)
    d = lasnl.make_discriminator(cfg).requires_grad_(False)
    perc = perceptual_loss("pyramid_l1")
    gen = torch.Generator().manual_seed(0)
    person, target = torch.rand(2, 3, 16, 12, generator=gen), torch.rand(2, 3, 16, 12, generator=gen)
    warped, heat = torch.rand(2, 9, 16, 12, generator=gen), torch.rand(2, 32, 16, 12, generator=gen)

    def g_loss():
        out = g(person, warped, heat)
        real = d(lasnl.discriminator_input(target, person, warped, heat))
        fake = d(lasnl.discriminator_input(out, person, warped, heat))
        return lasnl.generator_loss(out, target, real, fake, perc, cfg)["total"]

    g_losses = adam_steps(g.parameters(), g_loss, 8, lr=3e-3)
    assert g_losses[-1] < 0.8 * g_losses[0], g_losses  # measured: 3.97 -> 1.91

