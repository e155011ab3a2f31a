"""The pure-PyTorch SCHP port (vtonpipe.models.nets.schp) with checkpoints generated here.

``schp_shapes`` lists the official checkpoints' parameter names and shapes from SCHP's
networks/AugmentCE2P.py (InPlaceABN layers carry weight, bias, running_mean, running_var; no
num_batches_tracked); ``write_checkpoint`` saves them as SCHP does: ``{"state_dict": {"module."
+ name: tensor}}``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from builders import person_image

from vtonpipe.converters.labels import swap_left_right
from vtonpipe.models.nets import schp as S


def schp_shapes(num_classes: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, cout: int, cin: int, k: int, bias: bool = False) -> None:
        shapes[f"{name}.weight"] = (cout, cin, k, k)
        if bias:
            shapes[f"{name}.bias"] = (cout,)

    def abn(name: str, c: int) -> None:
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{p}"] = (c,)

    conv("conv1", 64, 3, 3), abn("bn1", 64), conv("conv2", 64, 64, 3), abn("bn2", 64), conv("conv3", 128, 64, 3), abn("bn3", 128)
    cin = 128
    for li, (planes, blocks) in enumerate(((64, 3), (128, 4), (256, 23), (512, 3)), 1):
        for b in range(blocks):
            pre = f"layer{li}.{b}"
            conv(f"{pre}.conv1", planes, cin, 1), abn(f"{pre}.bn1", planes)
            conv(f"{pre}.conv2", planes, planes, 3), abn(f"{pre}.bn2", planes)
            conv(f"{pre}.conv3", planes * 4, planes, 1), abn(f"{pre}.bn3", planes * 4)
            if b == 0:
                conv(f"{pre}.downsample.0", planes * 4, cin, 1), abn(f"{pre}.downsample.1", planes * 4)
            cin = planes * 4
    for s in range(4):
        conv(f"context_encoding.stages.{s}.1", 512, 2048, 1), abn(f"context_encoding.stages.{s}.2", 512)
    conv("context_encoding.bottleneck.0", 512, 2048 + 4 * 512, 3), abn("context_encoding.bottleneck.1", 512)
    for i, c in enumerate((256, 512, 1024), 1):
        conv(f"edge.conv{i}.0", 256, c, 1), abn(f"edge.conv{i}.1", 256)
    conv("edge.conv4", 2, 256, 3, bias=True), conv("edge.conv5", 2, 6, 1, bias=True)
    conv("decoder.conv1.0", 256, 512, 1), abn("decoder.conv1.1", 256)
    conv("decoder.conv2.0", 48, 256, 1), abn("decoder.conv2.1", 48)
    conv("decoder.conv3.0", 256, 304, 1), abn("decoder.conv3.1", 256)
    conv("decoder.conv3.2", 256, 256, 1), abn("decoder.conv3.3", 256)
    conv("decoder.conv4", num_classes, 256, 1, bias=True)
    conv("fushion.0", 256, 1024, 1), abn("fushion.1", 256), conv("fushion.3", num_classes, 256, 1, bias=True)
    return shapes


def random_state(num_classes: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights with SCHP's names: He-scaled convs, BN weights of both signs, plausible running stats."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in schp_shapes(num_classes).items():
        if len(shape) == 4:
            t = torch.randn(shape, generator=g) * (1.0 / np.prod(shape[1:])) ** 0.5
        elif name.endswith(".running_var"):
            t = torch.rand(shape, generator=g) + 0.5
        elif name.endswith(".weight"):  # InPlaceABN scale: sign must not matter
            t = (torch.rand(shape, generator=g) + 0.5) * torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0)
        else:
            t = torch.randn(shape, generator=g) * 0.1
        state[name] = t
    return state


def calibrated_state(num_classes: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """:func:`random_state` with the fusion bias centred on a reference image, so that the argmax
    follows the spatially varying part of the logits instead of one class winning everywhere."""
    state = random_state(num_classes, seed)
    model = S.AugmentCE2P(num_classes).eval()
    model.load_state_dict(state)
    x = torch.from_numpy(S.preprocess(person_image(5), 97)[0])[None]
    with torch.inference_mode():
        mean = model(x)[0].mean(dim=(1, 2))
    state["fushion.3.bias"] = state["fushion.3.bias"] - mean
    return state


def constant_state(state: dict[str, torch.Tensor], label: int) -> dict[str, torch.Tensor]:
    """``state`` whose fusion head outputs ``label`` everywhere (zero weights, one-hot bias)."""
    out = dict(state)
    out["fushion.3.weight"] = torch.zeros_like(state["fushion.3.weight"])
    bias = torch.zeros_like(state["fushion.3.bias"])
    bias[label] = 10.0
    out["fushion.3.bias"] = bias
    return out


def write_checkpoint(path: Path, state: dict[str, torch.Tensor], **extra) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 150, "state_dict": {f"module.{k}": v for k, v in state.items()}, **extra}, path)
    return path


@pytest.fixture(scope="module")
def lip_state() -> dict[str, torch.Tensor]:
    return calibrated_state(20)


@pytest.fixture(scope="module")
def lip_model(lip_state, tmp_path_factory) -> S.AugmentCE2P:
    path = write_checkpoint(tmp_path_factory.mktemp("schp") / "lip.pth", lip_state)
    model = S.load_schp(path, "lip")
    path.unlink()
    return model


def test_names_and_shapes_are_schp_s():
    for n in (20, 18):
        got = {k: tuple(v.shape) for k, v in S.AugmentCE2P(n).state_dict().items()}
        assert got == schp_shapes(n)


def test_inplace_abn_scale_is_abs_weight_plus_eps():
    torch.manual_seed(0)
    abn = S.InPlaceABN(4)
    abn.weight.data = torch.tensor([-2.0, 2.0, 0.0, -0.5])
    abn.bias.data = torch.tensor([0.1, -0.2, 0.3, 0.0])
    abn.running_mean.copy_(torch.tensor([0.5, -1.0, 0.0, 2.0]))
    abn.running_var.copy_(torch.tensor([4.0, 0.25, 1.0, 9.0]))
    x = torch.randn(2, 4, 3, 5) * 3
    eps = 1e-5
    gamma = torch.tensor([2.0, 2.0, 0.0, 0.5]) + eps
    y = (x - abn.running_mean[:, None, None]) / torch.sqrt(abn.running_var[:, None, None] + eps) * gamma[:, None, None] + abn.bias[:, None, None]
    torch.testing.assert_close(abn(x), torch.where(y >= 0, y, 0.01 * y), rtol=1e-6, atol=1e-6)
    # weight 0 still scales by eps, so channel 2 is not constant
    assert abn(x)[:, 2].std() > 0
    plain = S.InPlaceABN(4, activation=False)
    plain.load_state_dict(abn.state_dict())
    torch.testing.assert_close(plain(x), y, rtol=1e-6, atol=1e-6)


def schp_affine(width: int, height: int, size: int) -> np.ndarray:
    """SCHP's own construction: _box2cs([0, 0, w-1, h-1]) then get_affine_transform's three points."""
    bw, bh = width - 1, height - 1
    center = np.array([bw * 0.5, bh * 0.5], np.float32)
    if bw > bh:
        bh = bw
    elif bw < bh:
        bw = bh
    src_dir = np.array([0, bw * -0.5], np.float32)
    dst_dir = np.array([0, (size - 1) * -0.5], np.float32)
    src = np.stack([center, center + src_dir, np.zeros(2)]).astype(np.float32)
    dst = np.stack([[(size - 1) * 0.5] * 2, np.array([(size - 1) * 0.5] * 2) + dst_dir, np.zeros(2)]).astype(np.float32)
    for pts in (src, dst):
        d = pts[0] - pts[1]
        pts[2] = pts[1] + np.array([-d[1], d[0]], np.float32)
    return cv2.getAffineTransform(src, dst)


@pytest.mark.parametrize("wh", [(192, 256), (256, 192), (100, 100), (31, 7)])
def test_input_affine_is_schp_s_box(wh):
    w, h = wh
    np.testing.assert_allclose(S.input_affine(w, h, 473), schp_affine(w, h, 473), rtol=1e-5, atol=1e-3)


def test_affine_and_inverse_round_trip_exactly():
    m = S.input_affine(30, 20, 59)  # scale exactly 2: x -> 2 x, y -> 2 y + 10
    np.testing.assert_array_equal(m, [[2, 0, 0], [0, 2, 10]])
    inv = S.invert_affine(m)
    np.testing.assert_array_equal(inv, [[0.5, 0, 0], [0, 0.5, -5]])
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)
    x, m2 = S.preprocess(image, 59)
    assert x.shape == (3, 59, 59) and x.dtype == np.float32
    back = S.logits_to_image(torch.from_numpy(x), m2, 30, 20, 59)  # (H, W, 3) normalised BGR
    bgr = (back * np.float32(S.STD_BGR) + np.float32(S.MEAN_BGR)) * 255
    np.testing.assert_allclose(bgr[:, :, ::-1], image, atol=1e-3)
    for w, h in ((192, 256), (1000, 3)):
        m = S.input_affine(w, h, 473)
        np.testing.assert_allclose(np.vstack([m, [0, 0, 1]]) @ np.vstack([S.invert_affine(m), [0, 0, 1]]), np.eye(3), atol=1e-12)
        corners = m @ np.array([[0, w - 1], [0, h - 1], [1, 1]], float)
        longer = 0 if w >= h else 1
        np.testing.assert_allclose(corners[longer], [0, 472], atol=1e-9)
        np.testing.assert_allclose(corners[1 - longer].mean(), 236, atol=1e-9)


def test_preprocess_is_bgr_normalised_with_black_border():
    image = np.zeros((40, 20, 3), np.uint8)
    image[..., 0] = 255  # pure red
    x, _ = S.preprocess(image, 40)  # scale exactly 1: columns 10..29 hold the image
    red = [(0 - 0.406) / 0.225, (0 - 0.456) / 0.224, (1 - 0.485) / 0.229]  # B, G, R
    black = [(0 - 0.406) / 0.225, (0 - 0.456) / 0.224, (0 - 0.485) / 0.229]
    np.testing.assert_allclose(x[:, 20, 15], red, rtol=1e-6)
    np.testing.assert_allclose(x[:, 20, 5], black, rtol=1e-6)


def test_logits_back_on_the_image_grid():
    s, size = 17, 65
    u = torch.arange(s, dtype=torch.float32) - (s - 1) / 2
    ramp = u[None, :].expand(s, s)  # 0 at the centre column, linear across
    logits = torch.stack([torch.full((s, s), -100.0), -ramp, ramp])
    for w, h in ((30, 40), (40, 30)):
        labels = S.logits_to_image(logits, S.input_affine(w, h, size), w, h, size).argmax(2)
        expected = np.where(np.arange(w) < (w - 1) / 2, 1, 2)
        np.testing.assert_array_equal(labels, np.broadcast_to(expected, (h, w)))
    vertical = torch.stack([torch.full((s, s), -100.0), -ramp.T, ramp.T])
    labels = S.logits_to_image(vertical, S.input_affine(40, 30, size), 40, 30, size).argmax(2)
    np.testing.assert_array_equal(labels, np.broadcast_to(np.where(np.arange(30) < 14.5, 1, 2)[:, None], (30, 40)))


def test_checkpoint_loads_strictly(lip_state, lip_model):
    for k, v in lip_model.state_dict().items():
        assert torch.equal(v, lip_state[k]), k
    assert not lip_model.training


def test_missing_or_renamed_key_is_a_clear_error(tmp_path, lip_state):
    state = dict(lip_state)
    del state["layer3.22.bn3.running_var"]
    path = write_checkpoint(tmp_path / "missing.pth", state)
    with pytest.raises(S.CheckpointError, match=r"missing.pth: not an SCHP .*1 missing keys \['layer3.22.bn3.running_var'\]"):
        S.load_schp(path, "lip")
    state = dict(lip_state)
    state["fusion.0.weight"] = state.pop("fushion.0.weight")
    path = write_checkpoint(tmp_path / "renamed.pth", state)
    with pytest.raises(S.CheckpointError, match=r"\['fushion.0.weight'\].*unexpected keys \['fusion.0.weight'\]"):
        S.load_schp(path, "lip")
    path.unlink()


def test_wrong_dataset_shape_or_pickle_are_clear_errors(tmp_path, lip_state):
    path = write_checkpoint(tmp_path / "lip.pth", lip_state)
    with pytest.raises(S.CheckpointError, match="predicts 20 classes, SCHP-atr has 18"):
        S.load_schp(path, "atr")
    state = dict(lip_state)
    state["layer1.0.conv2.weight"] = torch.zeros(64, 64, 1, 1)
    write_checkpoint(path, state)
    with pytest.raises(S.CheckpointError, match=r"layer1.0.conv2.weight \(64, 64, 1, 1\) \(expected \(64, 64, 3, 3\)\)"):
        S.load_schp(path, "lip")
    write_checkpoint(path, lip_state, args=argparse.Namespace(lr=0.1))  # not loadable with weights_only=True
    with pytest.raises(S.CheckpointError, match="weights_only=True"):
        S.load_schp(path, "lip")
    path.unlink()


def test_full_size_forward(lip_model):
    parser = S.SCHPParser(lip_model, "lip")
    assert parser.size == 473
    x, _ = S.preprocess(np.full((256, 192, 3), 200, np.uint8), 473)
    t = time.perf_counter()
    logits = parser.logits(torch.from_numpy(x)[None])
    print(f"SCHP forward 1x3x473x473 on CPU ({torch.get_num_threads()} threads): {time.perf_counter() - t:.2f} s")
    assert logits.shape == (1, 20, 119, 119) and torch.isfinite(logits).all()


def test_flip_test_exchanges_left_and_right(lip_model):
    assert S.flip_permutation(20, S.DATASETS["lip"].lr_pairs) == [*range(14), 15, 14, 17, 16, 19, 18]
    assert S.flip_permutation(18, S.DATASETS["atr"].lr_pairs) == [*range(9), 10, 9, 11, 13, 12, 15, 14, 16, 17]
    parser = S.SCHPParser(lip_model, "lip", input_size=65, flip=True)
    x = torch.from_numpy(S.preprocess(np.random.default_rng(0).integers(0, 256, (60, 50, 3)).astype(np.uint8), 65)[0])[None]
    plain = S.SCHPParser(lip_model, "lip", input_size=65).logits
    a, b = plain(x), plain(x.flip(-1))
    perm = S.flip_permutation(20, S.DATASETS["lip"].lr_pairs)
    fused = parser.logits(x)
    torch.testing.assert_close(fused, 0.5 * (a + b[:, perm].flip(-1)), rtol=1e-4, atol=1e-4)
    # the flip test of the mirror image is the mirror of the flip test
    torch.testing.assert_close(parser.logits(x.flip(-1)), fused[:, perm].flip(-1), rtol=1e-4, atol=1e-4)


def test_parser_labels_whole_images(lip_model):
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (70, 50, 3)).astype(np.uint8), rng.integers(0, 256, (40, 90, 3)).astype(np.uint8)]
    parser = S.SCHPParser(lip_model, "lip", input_size=97)
    maps = parser(images)
    assert [m.shape for m in maps] == [(70, 50), (40, 90)] and all(m.dtype == np.uint8 and m.max() < 20 for m in maps)
    assert len(np.unique(maps[0])) > 1  # random weights still give a spatially varying map
    # batched and single-image runs agree
    np.testing.assert_array_equal(parser(images[1:])[0], maps[1])


def test_flip_test_output_is_mirror_symmetric_on_a_mirror_symmetric_image(lip_model):
    # Checks the whole geometry: box centred on (W-1)/2, inverse warp, class exchange of the flip test.
    image = person_image(1, (120, 90))
    image[:, 45:] = image[:, :45][:, ::-1]
    labels = S.SCHPParser(lip_model, "lip", input_size=97, flip=True)([image])[0]
    assert len(np.unique(labels)) > 5
    assert (labels[:, ::-1] == swap_left_right(labels)).mean() > 0.995
