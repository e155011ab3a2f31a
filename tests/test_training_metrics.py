"""Shared evaluation metrics against values worked out by hand."""

import math

import pytest
import torch

from vtonpipe.models.ssim import gaussian_window
from vtonpipe.training.metrics import l1, label_miou, mask_iou, psnr, ssim

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_ssim_of_an_image_with_itself_is_one():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ssim(x, x), torch.ones(2))
    assert ssim(x, torch.rand(2, 3, 16, 16)).max() < 0.5


def test_ssim_of_two_flat_images_is_the_luminance_term():
    # no variance anywhere: the contrast-structure term is C2 / C2 = 1
    a, b = 0.2, 0.6
    c1 = 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    got = ssim(torch.full((1, 1, 12, 12), a), torch.full((1, 1, 12, 12), b))
    assert got.item() == pytest.approx(expected, rel=1e-4)


def test_gaussian_window_is_the_standard_one():
    g = gaussian_window(11, 1.5)
    assert g.sum().item() == pytest.approx(1.0) and g.argmax() == 5
    assert (g[4] / g[5]).item() == pytest.approx(math.exp(-1 / (2 * 1.5**2)), rel=1e-5)


def test_masked_ssim_looks_only_at_windows_centred_in_the_mask():
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y = x.clone()
    y[..., 24:] = torch.rand(1, 3, 32, 8)  # differ from column 24 on
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :9] = 1  # windows centred at columns <= 8 reach column 13 at most
    assert ssim(x, y, mask).item() == pytest.approx(1.0, abs=1e-5)
    assert ssim(x, y).item() < 0.95


def test_psnr_and_l1_of_a_known_noise_level():
    x = torch.rand(1, 3, 8, 8) * 0.6 + 0.2
    noise = torch.ones(1, 3, 8, 8)
    noise[..., ::2, :] = -1
    y = x + 0.1 * noise  # MSE exactly 0.01
    assert psnr(x, y).item() == pytest.approx(20.0, abs=1e-3)
    assert l1(x, y).item() == pytest.approx(0.1, abs=1e-6)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4, :] = 1
    y2 = y.clone()
    y2[..., 4:, :] = 0  # outside the mask: ignored
    assert psnr(x, y2, mask).item() == pytest.approx(20.0, abs=1e-3)
    assert psnr(x, y2).item() < 15


def test_miou_on_a_hand_made_case():
    pred = torch.tensor([[[1, 1, 0], [0, 2, 2]]])
    target = torch.tensor([[[1, 0, 0], [0, 2, 2]]])
    # class 0: 2 / 3, class 1: 1 / 2, class 2: 2 / 2; class 3 absent from both: left out
    assert label_miou(pred, target, 4).item() == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    p = torch.tensor([[[1, 1, 0, 0]], [[0, 0, 0, 0]]]).float()[:, None]
    t = torch.tensor([[[0, 1, 1, 0]], [[0, 0, 0, 0]]]).float()[:, None]
    assert mask_iou(p, t).tolist() == pytest.approx([1 / 3, 1.0])
