"""Shared try-on parts: SPADE against a hand-computed case, composition, crops, schedules."""

import pytest
import torch

from vtonpipe.models.tryon.common import (
    SpatiallyAdaptiveNorm,
    compose,
    crop_and_resize,
    init_mask_output,
    mask_boxes,
    paste_crop,
    split_image_and_mask,
    to_signed,
    to_unit,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _scalar_spade(stats: str) -> SpatiallyAdaptiveNorm:
    """1 channel, 1x1 convs: shared = relu(c), gamma = 2 relu(c) + 1, beta = 0.5 - relu(c)."""
    norm = SpatiallyAdaptiveNorm(1, 1, hidden=1, stats=stats, kernel=1, eps=1e-8)
    with torch.no_grad():
        norm.shared[0].weight.fill_(1.0)
        norm.shared[0].bias.fill_(0.0)
        norm.gamma.weight.fill_(2.0)
        norm.gamma.bias.fill_(1.0)
        norm.beta.weight.fill_(-1.0)
        norm.beta.bias.fill_(0.5)
    return norm


def test_spade_batch_statistics_hand_case():
    norm = _scalar_spade("batch").train()
    x = torch.tensor([[[[1.0, 3.0]]], [[[5.0, 7.0]]]])  # (2, 1, 1, 2): batch mean 4, variance 5
    cond = torch.tensor([[[[0.0, 1.0]]], [[[-1.0, 2.0]]]])  # relu -> 0, 1 / 0, 2
    # x_hat = (-3, -1, 1, 3) / sqrt(5); gamma = (1, 3, 1, 5); beta = (0.5, -0.5, 0.5, -1.5)
    expected = torch.tensor([[[[-0.841641, -1.841641]]], [[[0.947214, 5.208204]]]])
    torch.testing.assert_close(norm(x, cond), expected, atol=1e-5, rtol=0)


def test_spade_resizes_the_condition_bilinearly():
    norm = _scalar_spade("batch").train()
    x = torch.tensor([[[[1.0, 3.0]]], [[[5.0, 7.0]]]])
    # a (2, 4) condition halves to (1, 2) by averaging 2x2 blocks: the same cond as the hand case
    cond = torch.tensor([[[[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]], [[[-1.0, -1.0, 2.0, 2.0], [-1.0, -1.0, 2.0, 2.0]]]])
    expected = torch.tensor([[[[-0.841641, -1.841641]]], [[[0.947214, 5.208204]]]])
    torch.testing.assert_close(norm(x, cond), expected, atol=1e-5, rtol=0)


def test_spade_starts_as_plain_normalisation():
    norm = SpatiallyAdaptiveNorm(3, 4, hidden=5, stats="instance")
    with torch.no_grad():
        norm.gamma.weight.zero_()
        norm.beta.weight.zero_()
    x = torch.randn(2, 3, 4, 5) * 3 + 1
    out = norm(x, torch.rand(2, 4, 8, 10))
    torch.testing.assert_close(out, torch.nn.functional.instance_norm(x, eps=1e-5))


def test_compose_hand_case():
    warped = torch.full((1, 3, 1, 3), 1.0)
    rendered = torch.full((1, 3, 1, 3), 0.2)
    mask = torch.tensor([[[[0.0, 0.25, 1.0]]]])
    # 1 * M + 0.2 * (1 - M): 0.2, 0.4, 1.0
    torch.testing.assert_close(compose(warped, rendered, mask), torch.tensor([0.2, 0.4, 1.0]).view(1, 1, 1, 3).expand(1, 3, 1, 3))


def test_range_conversions_and_output_split():
    x = torch.tensor([0.0, 0.25, 1.0])
    torch.testing.assert_close(to_signed(x), torch.tensor([-1.0, -0.5, 1.0]))
    torch.testing.assert_close(to_unit(to_signed(x)), x)
    image, mask = split_image_and_mask(torch.zeros(1, 4, 2, 2))
    assert torch.all(image == 0.5) and torch.all(mask == 0.5)
    with pytest.raises(ValueError, match="4-channel"):
        split_image_and_mask(torch.zeros(1, 3, 2, 2))


def test_mask_boxes_edges_margin_aspect_and_empty():
    mask = torch.zeros(2, 1, 10, 8)
    mask[0, 0, 2:4, 3:7] = 1  # rows 2..3, columns 3..6
    boxes = mask_boxes(mask, margin=0.0)
    torch.testing.assert_close(boxes[0], torch.tensor([2.5, 1.5, 6.5, 3.5]))
    torch.testing.assert_close(boxes[1], torch.tensor([-0.5, -0.5, 7.5, 9.5]))  # empty -> whole image
    # margin 0.25 of the 4 x 2 box, then grown to a square about the centre (4.5, 2.5)
    torch.testing.assert_close(mask_boxes(mask, margin=0.25)[0], torch.tensor([1.5, 1.0, 7.5, 4.0]))
    torch.testing.assert_close(mask_boxes(mask, margin=0.0, aspect=1.0)[0], torch.tensor([2.5, 0.5, 6.5, 4.5]))


def test_crop_and_resize_copies_an_aligned_box_and_paste_inverts_it():
    image = torch.arange(2 * 6 * 5, dtype=torch.float32).view(1, 2, 6, 5)
    box = torch.tensor([[0.5, 1.5, 3.5, 4.5]])  # columns 1..3, rows 2..4
    crop = crop_and_resize(image, box, (3, 3))
    torch.testing.assert_close(crop, image[:, :, 2:5, 1:4])
    whole = crop_and_resize(image, torch.tensor([[-0.5, -0.5, 4.5, 5.5]]), (6, 5))
    torch.testing.assert_close(whole, image)
    # half-resolution crop of a 2x2-aligned box averages 2x2 blocks
    half = crop_and_resize(image[:, :1], torch.tensor([[-0.5, -0.5, 3.5, 3.5]]), (2, 2))
    torch.testing.assert_close(half[0, 0], torch.tensor([[3.0, 5.0], [13.0, 15.0]]))  # value 5 row + column

    target = torch.zeros(1, 2, 6, 5)
    pasted = paste_crop(target, crop, box, torch.ones(1, 1, 6, 5))
    torch.testing.assert_close(pasted[:, :, 2:5, 1:4], crop)
    outside = torch.ones(1, 1, 6, 5, dtype=torch.bool)
    outside[:, :, 2:5, 1:4] = False
    assert torch.all(pasted[outside.expand(1, 2, 6, 5)] == 0)
    half_mask = torch.full((1, 1, 6, 5), 0.5)
    torch.testing.assert_close(paste_crop(target, crop, box, half_mask)[:, :, 2:5, 1:4], 0.5 * crop)


def test_init_mask_output_starts_the_mask_at_its_value_for_any_input():
    conv = torch.nn.Conv2d(5, 4, 3, padding=1)
    init_mask_output(conv, 0.1)
    x = torch.randn(2, 5, 6, 4, generator=torch.Generator().manual_seed(0))
    image, mask = split_image_and_mask(conv(x))
    torch.testing.assert_close(mask, torch.full((2, 1, 6, 4), 0.1))
    assert image.std() > 0  # the RGB channels keep their random initialisation
    # Eq. 10 / Eq. 4 at initialisation: 0.1 C_w + 0.9 I_r
    garment = torch.ones(2, 3, 6, 4)
    torch.testing.assert_close(compose(garment, image, mask), 0.1 + 0.9 * image)
    with pytest.raises(ValueError):
        init_mask_output(conv, 1.0)
    with pytest.raises(ValueError):
        init_mask_output(torch.nn.Conv2d(5, 3, 1), 0.1)
