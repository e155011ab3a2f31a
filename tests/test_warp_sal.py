"""SAL-VTON warping model: Eq. 4, 5, 8, 9 on hand-checked tensors, deformable patch flows, forward, training steps."""

import math

import pytest
import torch

from vtonpipe.converters.landmarks import ABSENT, NUM_LANDMARKS, OCCLUDED, VISIBLE
from vtonpipe.models.warp.ops import PERCEPTUAL_STAND_IN
from vtonpipe.models.warp.sal import (
    SALConfig,
    SALLossConfig,
    SALOutput,
    SALWarp,
    fuse,
    hard_landmark_mask,
    landmark_loss,
    local_flows,
    local_warp,
    patch_points,
    sal_losses,
    smoothness_loss,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = SALConfig(person_channels=1, channels=(8, 8, 8), fpn_channels=8, patch_samples=4)


def test_eq4_local_warp_is_the_softmax_weighted_sum_of_local_warps():
    garment = torch.tensor([[[[0.0, 10.0, 20.0, 30.0]]]])  # (1, 1, 1, 4)
    flows = torch.zeros(1, 2, 2, 1, 4)
    flows[0, 1, 0] = 1.0  # landmark 1's flow reads one pixel to the right
    logits = torch.zeros(1, 2, 1, 4)
    logits[0, 1] = math.log(3.0)  # softmax weights (0.25, 0.75)
    warped = local_warp(garment, flows, logits)
    # pixel x: 0.25 G(x) + 0.75 G(x + 1); G(4) is outside (0)
    assert torch.allclose(warped[0, 0, 0], torch.tensor([7.5, 17.5, 27.5, 7.5]))


def test_eq5_fusion():
    global_warped = torch.tensor([[[[4.0, 4.0]]]])
    local_warped = torch.tensor([[[[0.0, 0.0]]]])
    logit = torch.tensor([[[[0.0, math.log(3.0)]]]])  # sigma = 0.5, 0.75
    assert torch.allclose(fuse(global_warped, local_warped, logit), torch.tensor([[[[2.0, 3.0]]]]))


def test_patch_points():
    points = patch_points(torch.tensor([[[5.5, 3.5]]]), torch.tensor([[[4.0, 2.0]]]), samples=2)
    # offsets (a + 0.5) / 2 - 0.5 = -0.25, 0.25 of the size: x 5.5 -+ 1, y 3.5 -+ 0.5
    assert points.shape == (1, 1, 2, 2, 2)
    assert points[0, 0].tolist() == [[[4.5, 3.0], [6.5, 3.0]], [[4.5, 4.0], [6.5, 4.0]]]


def test_local_flows_find_a_shifted_patch():
    # one-hot position codes: the garment's features are the person's shifted 3 px right
    h, w = 8, 12
    codes = torch.eye(h * w).view(h * w, h, w).unsqueeze(0)  # person feature at (x, y) = e_(y w + x)
    garment = torch.zeros_like(codes)
    garment[..., 3:] = codes[..., :-3]  # garment at (x + 3, y) = person at (x, y)
    person_centre = torch.tensor([[[5.5, 3.5]]])  # size 4 x 4, S = 4: samples on the pixels 4..7, 2..5
    flows, support = local_flows(
        codes,
        garment,
        person_centre,
        person_centre + torch.tensor([3.0, 0.0]),
        torch.full((1, 1, 2), 4.0),
        torch.full((1, 1, 2), 4.0),
        samples=4,
        temperature=0.01,
    )
    assert flows.shape == (1, 1, 2, h, w) and support.shape == (1, 1, h, w)
    # inside the patch every position matches its garment twin; outside the edge values extend
    assert torch.allclose(flows[0, 0, 0], torch.full((h, w), 3.0), atol=1e-4)
    assert torch.allclose(flows[0, 0, 1], torch.zeros(h, w), atol=1e-4)
    expected = torch.zeros(h, w)
    expected[2:6, 4:8] = 1
    assert torch.equal(support[0, 0], expected)


def test_eq8_charbonnier_smoothness():
    flow = torch.zeros(1, 2, 2, 2)
    flow[0, 0] = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    # alpha 0.5, eps 0: |.|; dx: (1, 1 | 0, 0) mean 0.5; dy: (2, 2 | 0, 0) mean 1
    assert smoothness_loss([flow], alpha=0.5, eps=0.0).item() == pytest.approx(1.5)
    assert smoothness_loss([flow, flow], alpha=0.5, eps=0.0).item() == pytest.approx(3.0)  # summed over levels
    assert smoothness_loss([torch.zeros(1, 2, 3, 3)]).item() == pytest.approx(2 * 1e-6**0.45)
    assert smoothness_loss([torch.zeros(1, 2, 1, 1)]).item() == 0  # a 1 x 1 level has no differences (not NaN)
    assert smoothness_loss([torch.zeros(1, 2, 1, 3)]).item() == pytest.approx(1e-6**0.45)  # x differences only


def test_eq9_hard_landmark_mask_and_masked_loss():
    landmarks = torch.tensor([[[1.0, 1.0, VISIBLE], [3.0, 3.0, OCCLUDED], [4.0, 0.0, ABSENT]]])
    mask = hard_landmark_mask(landmarks, 5, 5, radius=1.0)
    expected = torch.zeros(5, 5)
    expected[1, 0:3] = 1  # the plus-shaped disk of radius 1 around (1, 1), visible landmarks only
    expected[0:3, 1] = 1
    assert torch.equal(mask[0, 0], expected)
    local = torch.ones(1, 3, 5, 5)
    target = torch.zeros(1, 3, 5, 5)
    target[..., 4, 4] = 9.0  # outside the mask: ignored
    assert landmark_loss(local, target, mask).item() == pytest.approx(5 * 3 / 75)


def _gaussians(landmarks, height, width, sigma=2.0):
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij")
    d2 = (xs - landmarks[:, 0, None, None]) ** 2 + (ys - landmarks[:, 1, None, None]) ** 2
    return torch.exp(-d2 / (2 * sigma**2)) * (landmarks[:, 2] != ABSENT).float()[:, None, None]


def _pair(height=32, width=24, shift=(3, 2)):
    """A striped garment rectangle; the person wears it shifted by ``shift``; 4 corner landmarks."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")

    def garment_at(x0, y0):
        region = ((xs >= x0) & (xs < x0 + 12) & (ys >= y0) & (ys < y0 + 16)).float()
        return torch.stack([((xs - x0) % 4 < 2).float(), ((ys - y0) % 6 < 3).float(), torch.full(xs.shape, 0.5)]) * region, region

    garment, _ = garment_at(6, 8)
    target, target_region = garment_at(6 + shift[0], 8 + shift[1])
    landmarks = torch.zeros(NUM_LANDMARKS, 3)
    landmarks[:, 2] = ABSENT
    landmarks[[3, 4, 17, 19]] = torch.tensor([[6.0, 8.0, VISIBLE], [17.0, 8.0, VISIBLE], [6.0, 23.0, VISIBLE], [17.0, 23.0, VISIBLE]])
    person_landmarks = landmarks.clone()
    person_landmarks[[3, 4, 17, 19], :2] += torch.tensor([float(shift[0]), float(shift[1])])
    batch = [
        garment,
        _gaussians(landmarks, height, width),
        landmarks,
        target_region.unsqueeze(0),
        _gaussians(person_landmarks, height, width),
        person_landmarks,
        target,
    ]
    return [x.unsqueeze(0) for x in batch]


def test_forward_shapes_absent_landmarks_and_warp_like():
    torch.manual_seed(0)
    garment, garment_heatmaps, garment_landmarks, person, person_heatmaps, person_landmarks, _ = _pair()
    out = SALWarp(TINY)(garment, garment_heatmaps, garment_landmarks, person, person_heatmaps, person_landmarks)
    assert isinstance(out, SALOutput)
    assert out.flow.shape == (1, 2, 32, 24) and out.warped.shape == (1, 3, 32, 24)
    assert [tuple(f.shape[-2:]) for f in out.level_flows] == [(4, 3), (8, 6), (16, 12)]
    assert out.local_flows.shape == (1, NUM_LANDMARKS, 2, 32, 24) and out.local_logits.shape == (1, NUM_LANDMARKS, 32, 24)
    weights = torch.softmax(out.local_logits, dim=1)
    assert weights[0, [3, 4, 17, 19]].sum(0).min() > 0.999  # absent landmarks get no local weight
    assert torch.allclose(out.warp_like(garment), out.warped, atol=1e-6)
    # untrained flow heads start at zero: the global warp is the identity
    assert torch.allclose(out.global_warped, garment, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of 8"):
        SALWarp(TINY)(
            garment[..., :30, :],
            garment_heatmaps[..., :30, :],
            garment_landmarks,
            person[..., :30, :],
            person_heatmaps[..., :30, :],
            person_landmarks,
        )


def test_loss_terms_and_perceptual_stand_in():
    torch.manual_seed(0)
    *inputs, target = _pair()
    out = SALWarp(TINY)(*inputs)
    losses = sal_losses(out, target, inputs[5])
    assert set(losses.terms) == {"l1", "smooth", "landmark"}
    assert losses.stand_ins == {"perceptual": PERCEPTUAL_STAND_IN}
    c = SALLossConfig()
    assert losses.total.item() == pytest.approx(
        (c.weight_l1 * losses.terms["l1"] + c.weight_smooth * losses.terms["smooth"] + c.weight_landmark * losses.terms["landmark"]).item()
    )
    # Eq. 7 by hand: ||W_g - W_gt|| + ||W_f - W_gt||
    assert losses.terms["l1"].item() == pytest.approx(
        ((out.global_warped - target).abs().mean() + (out.warped - target).abs().mean()).item()
    )
    seen = []
    with_perceptual = sal_losses(out, target, inputs[5], perceptual=lambda p, t: seen.append(p) or (p - t).square().mean())
    assert with_perceptual.stand_ins == {} and len(seen) == 2  # Eq. 6 on W_g and W_f
    assert seen[0] is out.global_warped and seen[1] is out.warped


def test_training_steps_lower_the_loss():
    torch.manual_seed(0)
    *inputs, target = _pair()
    model = SALWarp(TINY)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(20):
        losses = sal_losses(model(*inputs), target, inputs[5])
        optimiser.zero_grad()
        losses.total.backward()
        optimiser.step()
        history.append({name: term.item() for name, term in {"total": losses.total, **losses.terms}.items()})
    # measured (seed 0): total 0.304 -> 0.120, l1 (Eq. 7) 0.297 -> 0.114, landmark (Eq. 9) 0.0075 -> 0.0031
    assert history[-1]["total"] < 0.7 * history[0]["total"]
    assert history[-1]["l1"] < 0.7 * history[0]["l1"]
    assert history[-1]["landmark"] < 0.7 * history[0]["landmark"]


def test_autocast_keeps_flows_in_float32():
    torch.manual_seed(0)
    *inputs, target = _pair()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = SALWarp(TINY)(*inputs)
        losses = sal_losses(out, target, inputs[5])
    assert out.flow.dtype == out.local_flows.dtype == torch.float32
    assert torch.allclose(out.global_warped, inputs[0], atol=1e-5)  # the zero-initialised global flow, exactly
    losses.total.backward()
