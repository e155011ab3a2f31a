"""3D-GCL warping network: Eq. 1, Eq. 4-6 on hand-checked tensors, forward shapes, ablations, training steps."""

import math

import pytest
import torch

from vtonpipe.models.render.flow import BACKGROUND, HIDDEN, VISIBLE
from vtonpipe.models.warp.gcl import (
    GCLConfig,
    GCLLossConfig,
    GCLOutput,
    GCLWarp,
    apply_correspondence,
    batch_correspondence_ground_truth,
    correspondence_flow,
    correspondence_loss,
    flow_loss,
    gcl_losses,
    global_correspondence,
    iuv_encoding,
)
from vtonpipe.models.warp.ops import PERCEPTUAL_STAND_IN

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# temperature 0.1: at the paper's 0.01 the 4 x 3-cell softmax of this tiny pair saturates at
# initialisation and L_o does not move in a few steps (measured: 0.0679 for 30 steps)
TINY = GCLConfig(channels=(8, 8, 16), feature_channels=16, hidden_channels=8, temperature=0.1)


def test_eq1_softmax_with_temperature():
    target = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # y_0 = (1, 0), y_1 = (0, 1)
    source = torch.tensor([[[[1.0, 0.6]], [[0.0, 0.8]]]])  # x_0 = (1, 0), x_1 = (0.6, 0.8)
    o = global_correspondence(target, source, temperature=0.1)
    # row 0: softmax(1 / 0.1, 0.6 / 0.1) = softmax(10, 6); row 1: softmax(0, 8)
    e4, e8 = math.exp(4), math.exp(8)
    expected = torch.tensor([[e4 / (1 + e4), 1 / (1 + e4)], [1 / (1 + e8), e8 / (1 + e8)]])
    assert torch.allclose(o[0], expected, atol=1e-6)
    assert torch.allclose(o.sum(-1), torch.ones(1, 2))


def test_correspondence_flow_and_coarse_warp():
    # 2 x 3 grid; target cell 0 (x 0, y 0) -> source cell 5 (x 2, y 1); cell 4 (x 1, y 1) -> cell 0
    o = torch.full((1, 6, 6), 0.01)
    for i, j in ((0, 5), (1, 1), (2, 2), (3, 3), (4, 0), (5, 5)):
        o[0, i, j] = 0.95
    flow = correspondence_flow(o, 2, 3)
    assert flow[0, :, 0, 0].tolist() == [2.0, 1.0]
    assert flow[0, :, 1, 1].tolist() == [-1.0, -1.0]
    assert flow[0, :, 0, 1].tolist() == [0.0, 0.0]
    image = torch.arange(6.0).view(1, 1, 2, 3)
    warped = apply_correspondence(o, image, 2, 3)  # o G: row 0 = 0.95 * 5 + 0.01 * (0 + 1 + 2 + 3 + 4)
    assert warped[0, 0, 0, 0].item() == pytest.approx(0.95 * 5 + 0.01 * 10)


def test_eq4_ground_truth_batch_from_smpl_flow_and_visibility():
    # 16 x 16 image, stride 8 -> 2 x 2 cells; cell centres at full-res pixels (4, 4), (12, 4), (4, 12), (12, 12)
    flow = torch.zeros(2, 2, 16, 16)
    visibility = torch.full((2, 16, 16), VISIBLE)
    flow[0, 0] = 4.0  # half a cell right: source cell position x + 0.5
    visibility[0, 12, 4] = HIDDEN  # target cell (row 1, col 0) hidden in the source
    flow[1, 1] = 8.0  # one cell down
    o_gt = [o.to_dense() for o in batch_correspondence_ground_truth(flow, visibility)]
    assert torch.allclose(o_gt[0], torch.tensor([
        [0.5, 0.5, 0.0, 0.0],  # cell 0 -> halfway between cells 0 and 1
        [0.0, 0.5, 0.0, 0.0],  # cell 1 -> halfway between cell 1 and a cell outside (dropped)
        [0.0, 0.0, 0.0, 0.0],  # hidden: empty row
        [0.0, 0.0, 0.0, 0.5],
    ]))  # fmt: skip
    assert torch.allclose(o_gt[1], torch.tensor([
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
        [0.0, 0.0, 0.0, 0.0],  # sources below the image
        [0.0, 0.0, 0.0, 0.0],
    ]))  # fmt: skip


def test_eq5_correspondence_loss_masks_o_by_the_ground_truth_support():
    o = torch.tensor([[[0.7, 0.3], [0.4, 0.6]]])
    o_gt = [torch.tensor([[1.0, 0.0], [0.5, 0.5]]).to_sparse()]
    garment = torch.tensor([[[[2.0, 4.0]]]])  # (1, 1, 1, 2): G = (2, 4)
    # M . o = [[0.7, 0], [0.4, 0.6]]; (o_gt - M . o) G = (0.3 * 2, 0.1 * 2 - 0.1 * 4) = (0.6, -0.2)
    # ||.||_1 = 0.8 over B N C = 2 entries
    assert correspondence_loss(o, o_gt, garment).item() == pytest.approx(0.4)
    # a perfect o on the support costs nothing, whatever it puts elsewhere
    perfect = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])
    assert correspondence_loss(perfect, o_gt, garment).item() == 0.0


def test_eq6_flow_loss_counts_only_pixels_visible_in_the_source():
    smpl_flow = torch.zeros(1, 2, 2, 2)
    visibility = torch.tensor([[[VISIBLE, HIDDEN], [VISIBLE, BACKGROUND]]])
    fine = torch.zeros(1, 2, 2, 2)
    fine[0, 0] = torch.tensor([[1.0, 100.0], [2.0, 100.0]])  # huge errors on the hidden and background pixels
    coarse = torch.tensor([0.5, 0.0]).view(1, 2, 1, 1)  # 1 x 1 level: (0.5, 0) cells = (1, 0) pixels at 2 x 2
    # 2 x 2 image: one pixel = 2 / 2 = 1 normalised unit; mean over B 2 H W = 8 entries
    # fine: (|1| + |2|) / 8; coarse: (|1| + |1|) / 8
    assert flow_loss([fine], smpl_flow, visibility).item() == pytest.approx(3 / 8)
    assert flow_loss([coarse, fine], smpl_flow, visibility).item() == pytest.approx(3 / 8 + 2 / 8)


def test_iuv_encoding():
    i = torch.tensor([[[0, 2], [24, 2]]])
    uv = torch.full((1, 2, 2, 2), 0.25)
    x = iuv_encoding(i, uv)
    assert x.shape == (1, 27, 2, 2)
    assert x[0, 2, 0, 1] == 1 and x[0, 24, 1, 0] == 1 and x[0, 0, 0, 0] == 1 and x[0, :25].sum() == 4
    assert x[0, 25:, 0, 0].tolist() == [0.0, 0.0]  # no U/V on the background
    assert x[0, 25:, 0, 1].tolist() == [0.25, 0.25]


def _pair(height=32, width=24, shift=(2, 1)):
    """A torso-part rectangle with a UV gradient and a striped garment; the target is it shifted by ``shift``."""
    dx, dy = shift
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")

    def person(x0, y0):
        body = (xs >= x0) & (xs < x0 + 12) & (ys >= y0) & (ys < y0 + 16)
        iuv_i = torch.where(body, 2, 0)
        uv = torch.stack([(xs - x0) / 11.0, (ys - y0) / 15.0]) * body
        garment = (
            torch.stack([((xs - x0) % 4 < 2).float(), ((ys - y0) % 6 < 3).float(), torch.full_like(xs, 0.5, dtype=torch.float32)]) * body
        )
        return iuv_i, uv.float(), garment, body

    s_i, s_uv, s_garment, _ = person(6, 8)
    t_i, t_uv, t_garment, t_body = person(6 + dx, 8 + dy)
    smpl_flow = torch.stack([torch.full((height, width), -float(dx)), torch.full((height, width), -float(dy))]) * t_body
    visibility = torch.where(t_body, VISIBLE, BACKGROUND)
    batch = [s_i, s_uv, s_garment, t_i, t_uv, t_garment, smpl_flow, visibility]
    return [x.unsqueeze(0) for x in batch]


def test_forward_shapes_and_ablation_without_global_correspondence():
    s_i, s_uv, s_garment, t_i, t_uv, *_ = _pair()
    for config in (TINY, GCLConfig(**{**TINY.__dict__, "global_correspondence": False})):
        out = GCLWarp(config)(s_i, s_uv, s_garment, t_i, t_uv)
        assert isinstance(out, GCLOutput)
        assert out.flow.shape == (1, 2, 32, 24) and out.warped.shape == (1, 3, 32, 24)
        assert [tuple(f.shape[-2:]) for f in out.level_flows] == [(4, 3), (8, 6), (16, 12)]
        assert [tuple(w.shape[-2:]) for w in out.level_warped] == [(4, 3), (8, 6), (16, 12)]
        assert (out.correspondence is None) == (not config.global_correspondence)
    assert out.correspondence is None
    with pytest.raises(ValueError, match="multiple of 8"):
        GCLWarp(TINY)(s_i[..., :30, :], s_uv[..., :30, :], s_garment[..., :30, :], t_i[..., :30, :], t_uv[..., :30, :])


def test_loss_terms_stand_in_and_3d_ablation():
    torch.manual_seed(0)
    s_i, s_uv, s_garment, t_i, t_uv, t_garment, smpl_flow, visibility = _pair()
    model = GCLWarp(TINY)
    out = model(s_i, s_uv, s_garment, t_i, t_uv)
    losses = gcl_losses(out, s_garment, t_garment, smpl_flow, visibility)
    assert set(losses.terms) == {"l1", "flow", "correspondence"}
    assert losses.stand_ins == {"perceptual": PERCEPTUAL_STAND_IN}
    config = GCLLossConfig()
    expected = config.weight_l1 * losses.terms["l1"] + config.weight_3d * (losses.terms["flow"] + losses.terms["correspondence"])
    assert losses.total.item() == pytest.approx(expected.item())

    calls = []

    def perceptual(prediction, target):
        calls.append(prediction.shape[-2:])
        return (prediction - target).square().mean()

    with_perceptual = gcl_losses(out, s_garment, t_garment, smpl_flow, visibility, perceptual=perceptual)
    assert with_perceptual.stand_ins == {}
    assert calls == [(4, 3), (8, 6), (16, 12)]  # applied to the garment warped at every level
    assert with_perceptual.total.item() == pytest.approx(
        losses.total.item() + config.weight_perceptual * with_perceptual.terms["perceptual"].item()
    )

    no_3d = gcl_losses(out, s_garment, t_garment, smpl_flow, visibility, GCLLossConfig(use_3d_losses=False))
    assert set(no_3d.terms) == {"l1"}
    assert no_3d.total.item() == pytest.approx(config.weight_l1 * losses.terms["l1"].item())


def test_training_steps_lower_the_loss():
    torch.manual_seed(0)
    s_i, s_uv, s_garment, t_i, t_uv, t_garment, smpl_flow, visibility = _pair()
    model = GCLWarp(TINY)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(20):
        out = model(s_i, s_uv, s_garment, t_i, t_uv)
        losses = gcl_losses(out, s_garment, t_garment, smpl_flow, visibility)
        optimiser.zero_grad()
        losses.total.backward()
        optimiser.step()
        history.append({name: term.item() for name, term in {"total": losses.total, **losses.terms}.items()})
    first, last = history[0], history[-1]
    # measured (seed 0): total 4.76 -> 2.73, L_o 0.059 -> 0.0033, l1 0.49 -> 0.30
    assert last["total"] < 0.7 * first["total"]
    assert last["correspondence"] < 0.3 * first["correspondence"]
    assert last["l1"] < 0.8 * first["l1"]


def test_autocast_keeps_flows_and_correspondence_in_float32():
    torch.manual_seed(0)
    s_i, s_uv, s_garment, t_i, t_uv, t_garment, smpl_flow, visibility = _pair()
    model = GCLWarp(TINY)
    reference = gcl_losses(model(s_i, s_uv, s_garment, t_i, t_uv), s_garment, t_garment, smpl_flow, visibility)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(s_i, s_uv, s_garment, t_i, t_uv)
        losses = gcl_losses(out, s_garment, t_garment, smpl_flow, visibility)
    assert out.flow.dtype == out.correspondence.dtype == torch.float32
    assert all(f.dtype == torch.float32 for f in out.level_flows)
    assert losses.total.item() == pytest.approx(reference.total.item(), rel=0.05)
    losses.total.backward()
