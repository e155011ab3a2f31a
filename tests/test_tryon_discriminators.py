"""Discriminators and adversarial losses on hand-made inputs."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vtonpipe.models.tryon.common import crop_and_resize, mask_boxes
from vtonpipe.models.tryon.discriminators import (
    GlobalLocalDiscriminator,
    MultiScaleDiscriminator,
    PatchDiscriminator,
    adversarial_d_loss,
    adversarial_g_loss,
    discriminator_loss,
    feature_matching_loss,
    multiscale_patch_discriminator,
    r1_penalty,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def t(*v):
    return torch.tensor(v, dtype=torch.float32)


# two scales; each: [an intermediate feature, the prediction]
REAL = [[t(0.0), t(1.0, 0.0)], [t(0.0), t(2.0)]]
FAKE = [[t(0.0), t(0.5, -1.0)], [t(0.0), t(0.0)]]


def sp(x):
    return math.log1p(math.exp(x))


@pytest.mark.parametrize(
    ("kind", "d_value", "g_value"),
    [
        # scale 0: ((0 + 1) / 2 + (0.25 + 1) / 2) / 2 = 0.5625; scale 1: (1 + 0) / 2 = 0.5
        ("lsgan", (0.5625 + 0.5) / 2, ((0.25 + 4) / 2 + 1) / 2),
        # scale 0: (0 + 1) / 2 + (1.5 + 0) / 2 = 1.25; scale 1: 0 + 1
        ("hinge", (1.25 + 1.0) / 2, (0.25 + 0.0) / 2),
        (
            "nonsaturating",
            ((sp(-1) + sp(0)) / 2 + (sp(0.5) + sp(-1)) / 2 + sp(-2) + sp(0)) / 2,
            ((sp(-0.5) + sp(1)) / 2 + sp(0)) / 2,
        ),
    ],
)
def test_gan_losses_hand_values(kind, d_value, g_value):
    assert adversarial_d_loss(REAL, FAKE, kind).item() == pytest.approx(d_value, abs=1e-6)
    assert adversarial_g_loss(FAKE, kind).item() == pytest.approx(g_value, abs=1e-6)


def test_lsgan_optimum_and_unknown_kind():
    ones = [[t(1.0, 1.0)]]
    zeros = [[t(0.0, 0.0)]]
    assert adversarial_d_loss(ones, zeros, "lsgan").item() == 0.0  # a perfect discriminator
    assert adversarial_g_loss(ones, "lsgan").item() == 0.0  # a perfect generator
    with pytest.raises(ValueError, match="GAN loss kind"):
        adversarial_g_loss(ones, "wgan")


def test_feature_matching_hand_value():
    real = [[t(1.0, 2.0), t(0.0), t(9.0)], [t(1.0), t(9.0)]]
    fake = [[t(2.0, 2.0), t(3.0), t(-9.0)], [t(0.0), t(-9.0)]]
    # scale 0: 0.5 + 3 (predictions ignored); scale 1: 1; divided by 2 scales
    assert feature_matching_loss(real, fake).item() == pytest.approx(2.25)
    real_feat, fake_feat = t(1.0).requires_grad_(), t(3.0).requires_grad_()
    feature_matching_loss([[real_feat, t(0.0)]], [[fake_feat, t(0.0)]]).backward()
    assert real_feat.grad is None  # real features are detached
    torch.testing.assert_close(fake_feat.grad, t(1.0))  # d|f - r| / df


def test_r1_penalty_of_a_linear_discriminator():
    w = torch.tensor([1.0, 2.0]).view(1, 2, 1, 1)
    x = torch.randn(3, 2, 1, 1, requires_grad=True)
    outs = [[(x * w).sum(dim=(1, 2, 3))]]
    assert r1_penalty(outs, x).item() == pytest.approx(5.0)  # ||w||^2 for every sample


def test_discriminator_loss_adds_half_gamma_r1():
    torch.manual_seed(0)
    d = multiscale_patch_discriminator(3, ndf=4, n_layers=1, num_scales=2)
    real, fake = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16, requires_grad=True)
    plain = discriminator_loss(d, real, fake, "lsgan")
    assert set(plain) == {"total", "adv"}
    with_r1 = discriminator_loss(d, real, fake, "lsgan", r1_gamma=4.0)
    assert with_r1["total"].item() == pytest.approx(with_r1["adv"].item() + 2.0 * with_r1["r1"].item(), rel=1e-6)
    with_r1["total"].backward()
    assert fake.grad is None  # the generated input is detached


def test_patch_discriminator_layers_and_sizes():
    d = PatchDiscriminator(5, ndf=4, n_layers=3)
    outs = d(torch.rand(2, 5, 64, 48))
    # conv4 stride 2 padding 2: n -> n // 2 + 1; stride 1: n -> n + 1
    assert [tuple(o.shape[1:]) for o in outs] == [(4, 33, 25), (8, 17, 13), (16, 9, 7), (32, 10, 8), (1, 11, 9)]


def test_multiscale_discriminator_pools_between_scales():
    class Identity(nn.Module):
        def forward(self, x):
            return [x]

    x = torch.rand(1, 2, 8, 6)
    outs = MultiScaleDiscriminator(Identity, num_scales=3)(x)
    pooled = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
    torch.testing.assert_close(outs[0][0], x)
    torch.testing.assert_close(outs[1][0], pooled)
    torch.testing.assert_close(outs[2][0], F.avg_pool2d(pooled, 3, stride=2, padding=1, count_include_pad=False))
    assert len(multiscale_patch_discriminator(3, num_scales=2).scales) == 2


def test_global_local_discriminator_crops_the_head():
    d = GlobalLocalDiscriminator(lambda c: multiscale_patch_discriminator(c, ndf=4, n_layers=1, num_scales=1), 3, 4, local_size=(8, 6))
    image, extra = torch.rand(2, 3, 32, 24), torch.rand(2, 1, 32, 24)
    head = torch.zeros(2, 1, 32, 24)
    head[0, 0, 2:10, 8:14] = 1
    head[1, 0, 20:30, 0:5] = 1
    local = d.head_crops([image, extra], head)
    assert local.shape == (2, 4, 8, 6)
    boxes = mask_boxes(head, margin=0.1, aspect=8 / 6)
    torch.testing.assert_close(local, crop_and_resize(torch.cat([image, extra], 1), boxes, (8, 6)))
    g, l = d(image, local)
    assert g[0][-1].shape[:2] == (2, 1) and l[0][-1].shape[:2] == (2, 1)
