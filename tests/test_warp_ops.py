"""Shared warping utilities: pixel-centre sampling, flow resizing, correlation, TPS, Charbonnier, colour wheel."""

import math

import pytest
import torch

from vtonpipe.models.warp.ops import (
    ThinPlateSpline,
    charbonnier,
    correlation,
    identity_grid,
    normalize_channels,
    normalized_to_pixels,
    pixels_to_normalized,
    resize_flow,
    sample_at,
    spatial_gradients,
    tps_control_points,
    warp_by_flow,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_pixel_centres_map_to_grid_sample_coordinates():
    points = torch.tensor([[-0.5, -0.5], [0.0, 0.0], [3.5, 1.5]])  # edges and a centre of a 2 x 4 image
    normalised = pixels_to_normalized(points, height=2, width=4)
    assert torch.allclose(normalised, torch.tensor([[-1.0, -1.0], [-0.75, -0.5], [1.0, 1.0]]))
    assert torch.allclose(normalized_to_pixels(normalised, 2, 4), points)


def test_sample_at_pixel_centres_reads_pixels():
    image = torch.arange(12.0).view(1, 1, 3, 4)
    points = torch.tensor([[[[2.0, 1.0], [0.5, 0.0]]]])  # (x=2, y=1) -> 6; halfway between 0 and 1
    assert torch.allclose(sample_at(image, points).flatten(), torch.tensor([6.0, 0.5]), atol=1e-6)


def test_warp_by_integer_flow_recovers_shifted_image():
    torch.manual_seed(0)
    for (h, w), tolerance in (((8, 16), 0.0), ((10, 12), 1e-6)):  # power-of-two sizes: bit-exact arithmetic
        source = torch.rand(2, 3, h, w)
        flow = torch.zeros(2, 2, h, w)
        flow[:, 0], flow[:, 1] = 3.0, -2.0  # target (x, y) reads source (x + 3, y - 2)
        warped = warp_by_flow(source, flow)
        # interior: every target pixel whose source lies inside
        assert (warped[..., 2:, : w - 3] - source[..., : h - 2, 3:]).abs().max() <= tolerance
        # outside the source: zeros
        assert torch.equal(warped[..., :2, :], torch.zeros_like(warped[..., :2, :]))


def test_resize_flow_scales_vectors_exactly_in_the_pixel_centre_frame():
    # an affine flow f(x) = a x + b on a 6 x 8 grid, resized x2: f'(x') = 2 (a x_low + b),
    # x_low = (x' + 0.5) / 2 - 0.5; bilinear interpolation of an affine field is exact inside
    h, w = 6, 8
    grid = identity_grid(h, w)
    flow = torch.stack([0.25 * grid[0] + 1.0, -0.5 * grid[1] + 2.0]).unsqueeze(0)
    up = resize_flow(flow, (12, 16))
    big = identity_grid(12, 16)
    low = (big + 0.5) / 2 - 0.5
    expected = torch.stack([2 * (0.25 * low[0] + 1.0), 2 * (-0.5 * low[1] + 2.0)])
    assert torch.allclose(up[0, :, 1:-1, 1:-1], expected[:, 1:-1, 1:-1], atol=1e-5)
    # anisotropic: vectors scale by W'/W and H'/H
    constant = torch.ones(1, 2, 4, 6)
    assert torch.allclose(resize_flow(constant, (12, 12)), torch.tensor([2.0, 3.0]).view(1, 2, 1, 1).expand(1, 2, 12, 12))


def test_normalized_features_give_cosines_and_correlation_entries():
    features = torch.tensor([[[[3.0, 1.0]], [[1.0, 3.0]]]])  # (1, 2, 1, 2): positions (3, 1) and (1, 3)
    normalised = normalize_channels(features)
    # centred over channels: (1, -1) and (-1, 1), unit norm: +-1/sqrt(2)
    assert torch.allclose(normalised[0, :, 0, 0], torch.tensor([1.0, -1.0]) / math.sqrt(2), atol=1e-5)
    target = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # positions (1, 0), (0, 1)
    source = torch.tensor([[[[2.0, 1.0, 0.0]], [[0.0, 1.0, 3.0]]]])  # positions (2, 0), (1, 1), (0, 3)
    c = correlation(target, source)
    assert c.shape == (1, 2, 3)
    assert c[0].tolist() == [[2.0, 1.0, 0.0], [0.0, 1.0, 3.0]]


def test_tps_identity_control_points_give_the_identity_grid():
    control = tps_control_points(4)
    tps = ThinPlateSpline(control, height=20, width=14)
    grid = tps(control.unsqueeze(0).repeat(2, 1, 1))
    assert grid.shape == (2, 2, 20, 14)
    assert torch.allclose(grid, identity_grid(20, 14).expand(2, -1, -1, -1), atol=1e-4)


def test_tps_interpolates_control_points_and_reproduces_affine_maps():
    control = tps_control_points(3)
    tps = ThinPlateSpline(control, height=9, width=9)
    # a translation by +0.25 normalised in x (= +1.125 px on a 9-px width) is affine: exact everywhere
    shifted = tps((control + torch.tensor([0.25, 0.0])).unsqueeze(0))
    assert torch.allclose(shifted - identity_grid(9, 9), torch.tensor([1.125, 0.0]).view(1, 2, 1, 1).expand(1, 2, 9, 9), atol=1e-4)
    # a non-affine displacement: the centre control point (normalised (0, 0) = pixel (4, 4)) moves
    displaced = control.clone()
    displaced[4] += torch.tensor([0.2, -0.1])
    grid = tps(displaced.unsqueeze(0))
    assert torch.allclose(grid[0, :, 4, 4], normalized_to_pixels(displaced[4], 9, 9), atol=1e-4)


def test_charbonnier_values():
    # (x^2 + eps^2)^alpha with alpha 0.5, eps 4: x = 0 -> 4, x = 3 -> 5
    assert charbonnier(torch.tensor([0.0, 3.0, -3.0]), alpha=0.5, eps=4.0).tolist() == [4.0, 5.0, 5.0]
    # the default (Sun et al.): alpha 0.45, eps 1e-3
    assert charbonnier(torch.tensor([2.0])).item() == pytest.approx((4 + 1e-6) ** 0.45)


def test_spatial_gradients():
    x = torch.tensor([[[[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]]])
    dx, dy = spatial_gradients(x)
    assert dx.tolist() == [[[[1.0, 2.0], [0.0, 0.0]]]]
    assert dy.tolist() == [[[[2.0, 1.0, -1.0]]]]


def test_sampling_positions_stay_float32_under_autocast():
    # bfloat16 has an 8-bit mantissa: a position near x = 200 would round to whole pixels or worse
    torch.manual_seed(0)
    source = torch.rand(1, 1, 4, 256)
    flow = torch.zeros(1, 2, 4, 256)
    flow[:, 0] = 0.5
    with torch.autocast("cpu", dtype=torch.bfloat16):
        warped = warp_by_flow(source, flow.bfloat16())
        tps = ThinPlateSpline(tps_control_points(3), 4, 256)
        grid = tps(tps_control_points(3).unsqueeze(0).bfloat16().float())
    expected = (source[..., 200:210] + source[..., 201:211]) / 2
    assert torch.allclose(warped[..., 200:210], expected, atol=1e-6)
    assert grid.dtype == torch.float32 and torch.allclose(grid, identity_grid(4, 256).unsqueeze(0), atol=1e-3)
