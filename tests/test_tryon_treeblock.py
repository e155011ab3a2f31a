"""Down to the Last Detail: Tree-Block shapes and receptive field, Eq. 4-5, networks, steps."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from tryon_steps import adam_steps

from vtonpipe.models.tryon import treeblock as tb
from vtonpipe.models.tryon.common import crop_and_resize
from vtonpipe.models.tryon.perceptual import perceptual_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")
H, W = 16, 16


def positive(module: nn.Module) -> nn.Module:
    """Positive weights and biases: every ReLU passes, so gradients reach every tap."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.01 + 0.09 * torch.rand(p.shape, generator=g))
    return module


def gradient_support(net: nn.Module, size: int = 41) -> torch.Tensor:
    """|d out[0, 0, c, c] / d input| summed over channels, (size, size), for the centre pixel c."""
    x = torch.rand(1, 2, size, size, requires_grad=True)
    c = size // 2
    net(x)[0, 0, c, c].backward()
    return x.grad[0].abs().sum(0)


def extent(support: torch.Tensor) -> tuple[int, int]:
    ys, xs = torch.nonzero(support > 0, as_tuple=True)
    return int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)


def test_tree_block_shapes_and_tree():
    block = tb.TreeBlock(6, (1, 2, 4, 8))
    x = torch.rand(2, 6, 13, 11)
    assert block(x).shape == x.shape
    assert [len(level) for level in block.fusions] == [2, 1]  # ((1, 2), (4, 8)), then their pair
    assert [len(level) for level in tb.TreeBlock(3, (1, 2, 3)).fusions] == [1, 1]  # (1, 2) then (that, 3)
    assert len(tb.TreeBlock(3, (2,)).fusions) == 0
    with torch.no_grad():  # Eq. 3: zero branches and fusions leave the skip: F^n = F^{n-1}
        for p in block.parameters():
            p.zero_()
    torch.testing.assert_close(block(x), x)


def test_tree_block_receptive_field_by_gradient():
    block = positive(tb.TreeBlock(2, (1, 2, 4, 8)))
    support = gradient_support(block)
    assert block.receptive_field == 17
    assert extent(support) == (17, 17)
    centre_row = torch.nonzero(support[20] > 0)[:, 0] - 20
    assert centre_row.tolist() == [-8, -4, -2, -1, 0, 1, 2, 4, 8]  # the dilated taps
    stacked = positive(nn.Sequential(tb.TreeBlock(2, (1, 3)), tb.TreeBlock(2, (1, 3))))
    assert extent(gradient_support(stacked)) == (1 + 2 * 2 * 3,) * 2  # 13


def test_composition_eq_4_through_the_appearance_generator():
    class Fixed(nn.Module):
        def forward(self, x):  # rendered 0.2, mask sigmoid(log 3) = 0.75
            out = torch.zeros(x.shape[0], 4, *x.shape[2:])
            out[:, :3] = math.atanh(2 * 0.2 - 1)
            out[:, 3] = math.log(3.0)
            return out

    model = tb.TreeBlockVTON(tb.TreeBlockConfig.tiny())
    model.appearance = Fixed()
    out = model.appear(torch.rand(1, 3, H, W), torch.rand(1, 20, H, W), torch.ones(1, 3, H, W))
    # C~^w * M + I~_r * (1 - M) = 0.75 + 0.2 * 0.25
    torch.testing.assert_close(out["tryon"], torch.full((1, 3, H, W), 0.8))
    torch.testing.assert_close(out["mask"], torch.full((1, 1, H, W), 0.75))


def test_attention_loss_eq_5_hand_value():
    mask = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])
    cloth = torch.ones(1, 1, 2, 2)
    # |M - M_c| mean = 0.25; TV: x differences (1, 0) -> 0.5, y differences (1, 0) -> 0.5
    assert tb.total_variation(mask).item() == pytest.approx(1.0)
    assert tb.attention_loss(mask, cloth, lambda_tv=0.5).item() == pytest.approx(0.25 + 0.5)


def test_networks_shapes_and_face_paste():
    torch.manual_seed(0)
    cfg = tb.TreeBlockConfig.tiny()
    model = tb.TreeBlockVTON(cfg)
    inputs = tb.TreeBlockVTON.parsing_inputs(torch.rand(2, 20, H, W), torch.rand(2, 1, H, W), torch.rand(2, 18, H, W))
    assert model.transform_parsing(inputs).shape == (2, 20, H, W)
    out = model.appear(torch.rand(2, 3, H, W), torch.rand(2, 20, H, W), torch.rand(2, 3, H, W))
    assert out["tryon"].shape == (2, 3, H, W) and out["mask"].shape == (2, 1, H, W)
    head = torch.zeros(2, 1, H, W)
    head[:, :, 2:6, 5:10] = 1
    tryon = torch.rand(2, 3, H, W)
    ref = model.refine_face(torch.rand(2, 3, H, W), head, tryon, head)
    assert ref["face"].shape == (2, 3, *cfg.face_size)
    outside = (head == 0).expand(2, 3, H, W)
    torch.testing.assert_close(ref["refined"][outside], tryon[outside])  # only the head changes
    assert not torch.allclose(ref["refined"][~outside], tryon[~outside])
    ds = tb.make_discriminators(cfg)
    assert ds["d_parsing"](torch.cat([torch.rand(2, 20, H, W), inputs], 1))[0][-1].shape[1] == 1
    with pytest.raises(ValueError, match="divisible by 4"):
        tb.ParsingUNet(channels=2, depth=2)(torch.rand(1, tb.PARSING_IN, 10, 16))


def test_make_perceptual_uses_conv1_2_with_squared_error(tmp_path, monkeypatch):
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(tmp_path))
    assert tb.make_perceptual("pyramid_l1").name == "pyramid_l1"
    state = {"features.0.weight": torch.rand(64, 3, 3, 3), "features.0.bias": torch.rand(64), "features.2.weight": torch.rand(64, 64, 3, 3), "features.2.bias": torch.rand(64)}
    torch.save(state, tmp_path / "vgg.pth")
    loss = tb.make_perceptual("vgg19", str(tmp_path / "vgg.pth"))
    assert loss.vgg.layers == ("conv1_2",) and loss.distance == "mse"


@pytest.fixture
def tiny_tb():
    torch.manual_seed(0)
    cfg = tb.TreeBlockConfig.tiny()
    model, ds = tb.TreeBlockVTON(cfg), tb.make_discriminators(cfg).requires_grad_(False)
    g = torch.Generator().manual_seed(0)
    target_parsing = torch.zeros(2, H, W, dtype=torch.int64)
    target_parsing[:, 1:4, 5:11] = 2
    target_parsing[:, 4:7, 6:10] = 13
    target_parsing[:, 7:14, 3:13] = 5
    region = (target_parsing == 5)[:, None].float()
    b = {
        "source_image": torch.rand(2, 3, H, W, generator=g),
        "parsing_inputs": torch.rand(2, tb.PARSING_IN, H, W, generator=g),
        "target_parsing": target_parsing,
        "target_image": 0.3 + 0.5 * region.expand(2, 3, H, W),
        "target_garment_region": region,
        "warped_garment": torch.rand(2, 3, H, W, generator=g),
        "head": tb.head_mask(target_parsing),
    }
    return cfg, model, ds, b


@pytest.mark.parametrize("stage", ["parsing", "appearance", "face"])
def test_a_few_steps_lower_each_stage_loss(tiny_tb, stage):
    cfg, model, ds, b = tiny_tb
    perc = perceptual_loss("pyramid_l1")
    sem = F.one_hot(b["target_parsing"], 20).permute(0, 3, 1, 2).float()

    def parsing():
        logits = model.transform_parsing(b["parsing_inputs"])
        fake = ds["d_parsing"](torch.cat([F.softmax(logits, 1), b["parsing_inputs"]], 1))
        return tb.parsing_loss(logits, b["target_parsing"], fake, cfg)["total"]

    def appearance():
        out = model.appear(b["source_image"], sem, b["warped_garment"])
        fake = ds["d_appearance"](torch.cat([b["source_image"], out["tryon"]], 1))
        return tb.appearance_loss(out["tryon"], out["mask"], b["target_image"], b["target_garment_region"], fake, perc, cfg)["total"]

    def face():
        ref = model.refine_face(b["source_image"], b["head"], b["warped_garment"], b["head"])
        target_face = crop_and_resize(b["target_image"], ref["target_boxes"], cfg.face_size)
        src_face = crop_and_resize(b["source_image"], tb.head_boxes(b["head"], cfg), cfg.face_size)
        fake = ds["d_face"](torch.cat([src_face, ref["face"]], 1))
        return tb.face_loss(ref["face"], target_face, ref["refined"], b["target_image"], fake, perc, cfg)["total"]

    fn, net = {"parsing": (parsing, model.parsing), "appearance": (appearance, model.appearance), "face": (face, model.face)}[stage]
    losses = adam_steps(net.parameters(), fn, 8, lr=1e-2)
    # measured: parsing 4.06 -> 3.03, appearance 4.04 -> 2.37, face 4.77 -> 2.21
    assert losses[-1] < 0.8 * losses[0], losses


def test_schedule_follows_algorithm_1():
    modules = {"parsing", "appearance", "face", "warp"} | set(tb.make_discriminators(tb.TreeBlockConfig.tiny()).keys())
    assert [p.name for p in tb.SCHEDULE] == ["premiere", "appearance", "face", "joint"]
    trained_before: set[str] = set()
    for phase in tb.SCHEDULE:
        assert set(phase.train) | set(phase.frozen) <= modules and not set(phase.train) & set(phase.frozen)
        assert set(phase.losses) <= {"parsing", "appearance", "face", "warp"}
        if phase.name != "joint":  # each post-training step fixes what was trained before it
            assert trained_before - {"d_parsing"} <= set(phase.frozen) | {"d_parsing", "d_appearance"}
        trained_before |= set(phase.train)
    joint = tb.SCHEDULE[-1]
    assert joint.losses == ("appearance",) and {"parsing", "warp", "appearance"} <= set(joint.train)


def test_composition_mask_starts_at_mask_init():
    model = tb.TreeBlockVTON(tb.TreeBlockConfig.tiny()).eval()
    g = torch.Generator().manual_seed(4)
    out = model.appear(torch.rand(2, 3, 16, 16, generator=g), F.softmax(torch.randn(2, 20, 16, 16, generator=g), 1), torch.rand(2, 3, 16, 16, generator=g))
    torch.testing.assert_close(out["mask"], torch.full((2, 1, 16, 16), 0.1))


def test_largest_region_keeps_each_samples_biggest_8_connected_blob():
    mask = torch.zeros(2, 1, 8, 8)
    mask[0, 0, 0:3, 0:3] = 1  # 9 pixels
    mask[0, 0, 5, 5] = mask[0, 0, 6, 6] = mask[0, 0, 7, 7] = 1  # a 3-pixel diagonal (8-connected)
    mask[1, 0, 4, 4] = mask[1, 0, 5, 5] = 1  # 2 pixels, diagonal: one region
    mask[1, 0, 0, 7] = 1
    out = tb.largest_region(mask)
    expected = torch.zeros_like(mask)
    expected[0, 0, 0:3, 0:3] = 1
    expected[1, 0, 4, 4] = expected[1, 0, 5, 5] = 1
    torch.testing.assert_close(out, expected)
    assert tb.largest_region(torch.zeros(1, 1, 4, 4)).sum() == 0
