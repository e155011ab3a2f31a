"""VGG-19 perceptual loss: torchvision key layout, loading fake weights, clear errors, stand-in."""

import logging

import pytest
import torch
import torch.nn.functional as F

from vtonpipe.core import MissingWeightsError
from vtonpipe.models.tryon.perceptual import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGG19_FILE,
    VGG19_LAYER_INDEX,
    PerceptualLoss,
    VGG19Features,
    default_vgg19_path,
    load_vgg19_features,
    perceptual_loss,
    vgg19_weight_file,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# torchvision vgg19().features: conv layers at these indices, (out, in) channels
TORCHVISION_CONVS = {
    0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256), 14: (256, 256), 16: (256, 256),
    19: (512, 256), 21: (512, 512), 23: (512, 512), 25: (512, 512), 28: (512, 512), 30: (512, 512), 32: (512, 512), 34: (512, 512),
}


def fake_state(upto: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision-named VGG-19 weights for the convs up to index ``upto``, plus a classifier key."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for i, (cout, cin) in TORCHVISION_CONVS.items():
        if i <= upto:
            state[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.05
            state[f"features.{i}.bias"] = torch.randn(cout, generator=g) * 0.05
    state["classifier.0.weight"] = torch.zeros(2, 2)
    return state


def test_layer_names_and_key_layout_match_torchvision():
    assert VGG19_LAYER_INDEX["relu1_1"] == 1 and VGG19_LAYER_INDEX["conv1_2"] == 2 and VGG19_LAYER_INDEX["relu2_1"] == 6
    assert [VGG19_LAYER_INDEX[f"relu{b}_1"] for b in range(1, 6)] == [1, 6, 11, 20, 29]
    assert VGG19_LAYER_INDEX["pool5"] == 36
    with torch.device("meta"):
        model = VGG19Features(("relu5_4",))
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = {}
    for i, (cout, cin) in TORCHVISION_CONVS.items():
        expected[f"features.{i}.weight"] = (cout, cin, 3, 3)
        expected[f"features.{i}.bias"] = (cout,)
    assert shapes == expected


def test_loads_fake_torchvision_weights_and_computes_the_features(tmp_path):
    state = fake_state(upto=5)
    path = tmp_path / "vgg_fake.pth"
    torch.save(state, path)
    vgg = load_vgg19_features(path, ("conv1_2", "relu2_1"))
    x = torch.rand(1, 3, 8, 6)
    h = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    h = F.relu(F.conv2d(h, state["features.0.weight"], state["features.0.bias"], padding=1))
    conv1_2 = F.conv2d(h, state["features.2.weight"], state["features.2.bias"], padding=1)
    relu2_1 = F.relu(F.conv2d(F.max_pool2d(F.relu(conv1_2), 2), state["features.5.weight"], state["features.5.bias"], padding=1))
    got = vgg(x)
    torch.testing.assert_close(got[0], conv1_2)
    torch.testing.assert_close(got[1], relu2_1)
    assert all(not p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training


def test_missing_key_and_wrong_shape_are_clear_errors(tmp_path):
    state = fake_state(upto=5)
    del state["features.5.weight"]
    torch.save(state, tmp_path / "a.pth")
    with pytest.raises(ValueError, match=r"missing keys \['features.5.weight'\]"):
        load_vgg19_features(tmp_path / "a.pth", ("relu2_1",))
    state = fake_state(upto=5)
    state["features.2.weight"] = torch.zeros(64, 32, 3, 3)
    torch.save(state, tmp_path / "b.pth")
    with pytest.raises(ValueError, match=r"features.2.weight has shape \(64, 32, 3, 3\), VGG-19 expects \(64, 64, 3, 3\)"):
        load_vgg19_features(tmp_path / "b.pth", ("relu2_1",))
    torch.save([1, 2], tmp_path / "c.pth")
    with pytest.raises(ValueError, match="expected a state dict"):
        load_vgg19_features(tmp_path / "c.pth", ("relu1_1",))


def test_missing_file_names_the_file_the_folder_and_the_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(tmp_path / "weights"))
    assert default_vgg19_path() == tmp_path / "weights" / "vgg" / VGG19_FILE
    with pytest.raises(MissingWeightsError) as err:
        perceptual_loss("vgg19")
    message = str(err.value)
    for part in (VGG19_FILE, str(tmp_path / "weights" / "vgg" / VGG19_FILE), "dcbb9e9d", "download.pytorch.org", "pyramid_l1"):
        assert part in message
    wf = vgg19_weight_file()
    assert wf.path == default_vgg19_path() and "dcbb9e9d" in wf.problem()


def test_a_file_with_the_torchvision_name_must_have_its_hash_prefix(tmp_path):
    path = tmp_path / VGG19_FILE
    torch.save(fake_state(upto=0), path)
    with pytest.raises(MissingWeightsError, match="expected one beginning dcbb9e9d"):
        load_vgg19_features(path, ("relu1_1",))


def test_perceptual_loss_kinds_name_the_loss_used(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(tmp_path / "weights"))
    assert perceptual_loss("pyramid_l1").name == "pyramid_l1" and perceptual_loss("ssim").name == "ssim"
    with caplog.at_level(logging.WARNING):
        auto = perceptual_loss("auto")
    assert auto.name == "pyramid_l1" and "pyramid_l1" in caplog.text and VGG19_FILE in caplog.text
    path = tmp_path / "fake.pth"
    torch.save(fake_state(upto=5), path)
    vgg_loss = perceptual_loss("auto", layers=("relu1_1", "relu2_1"), layer_weights=(0.5, 2.0), weights_path=path)
    assert vgg_loss.name == "vgg19"
    with pytest.raises(ValueError, match="kind"):
        perceptual_loss("lpips")


def test_vgg_perceptual_loss_value_and_gradient(tmp_path):
    path = tmp_path / "fake.pth"
    torch.save(fake_state(upto=5), path)
    loss = perceptual_loss("vgg19", layers=("relu1_1", "relu2_1"), layer_weights=(0.5, 2.0), weights_path=path)
    pred, target = torch.rand(2, 3, 8, 8, requires_grad=True), torch.rand(2, 3, 8, 8)
    fp, ft = loss.vgg(pred), loss.vgg(target)
    expected = 0.5 * (fp[0] - ft[0]).abs().mean() + 2.0 * (fp[1] - ft[1]).abs().mean()
    value = loss(pred, target)
    torch.testing.assert_close(value, expected)
    assert loss(target, target).item() == 0.0
    value.backward()
    assert pred.grad.abs().sum() > 0
    mse = perceptual_loss("vgg19", layers=("conv1_2",), layer_weights=(1.0,), distance="mse", weights_path=path)
    torch.testing.assert_close(mse(pred, target), (mse.vgg(pred)[0] - mse.vgg(target)[0]).pow(2).mean())


def test_pyramid_stand_in_hand_values():
    loss = perceptual_loss("pyramid_l1")
    assert loss(torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)).item() == pytest.approx(1.0)
    loss.pyramid_levels = 2
    target = torch.tensor([[[[1.0, -1.0], [0.0, 0.0]]]])
    # level 0: mean |0 - target| = 0.5; level 1: the 2x2 average is 0 -> 0; mean over levels 0.25
    assert loss(torch.zeros(1, 1, 2, 2), target).item() == pytest.approx(0.25)


def test_ssim_stand_in_hand_values():
    loss = perceptual_loss("ssim")
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    # two flat images: no variance, SSIM is the luminance term (2ab + C1) / (a^2 + b^2 + C1)
    a, b, c1 = 0.2, 0.6, 0.01**2
    flat = loss(torch.full((1, 3, 12, 12), a), torch.full((1, 3, 12, 12), b))
    assert flat.item() == pytest.approx(1 - (2 * a * b + c1) / (a * a + b * b + c1), rel=1e-4)
    # out-of-range predictions are clamped to [0, 1] first: 1.5 scores as 1.0
    assert loss(torch.full((1, 3, 12, 12), 1.5), torch.full((1, 3, 12, 12), b)).item() == pytest.approx(
        loss(torch.ones(1, 3, 12, 12), torch.full((1, 3, 12, 12), b)).item()
    )
    pred = torch.rand(1, 3, 16, 16, requires_grad=True)
    value = loss(pred, x[:1])
    value.backward()
    assert 0 < value.item() < 2 and pred.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="stand-in"):
        PerceptualLoss(None, stand_in="lpips")
