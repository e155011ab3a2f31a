"""SAL-VTON's landmark HRNet: branch shapes, losses and decoding on hand-checked cases, the flip
test, and the ``sal-hrnet`` backend on a checkpoint written in the test."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from builders import simple_build

from vtonpipe.annotators import get_backend
from vtonpipe.converters.landmarks import (
    ABSENT,
    FLIP,
    OCCLUDED,
    VISIBLE,
    flip_landmarks,
)
from vtonpipe.core import MissingWeightsError
from vtonpipe.io import sha256_file
from vtonpipe.models.landmarks.decode import (
    LandmarkPredictor,
    decode_heatmaps,
    flip_heatmaps,
    heatmap_targets,
    modulate_heatmaps,
    rescale_points,
    taylor_maximum,
)
from vtonpipe.models.landmarks.hrnet import (
    LandmarkNetConfig,
    SALLandmarkNet,
    build_from_checkpoint,
)
from vtonpipe.models.landmarks.losses import (
    attribute_cross_entropy,
    garment_attribute_targets,
    heatmap_mse,
)
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.context import AnnotationContext
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.pipeline.store import ShardReader, read_manifest
from vtonpipe.training.checkpoint import CheckpointDir

TINY = LandmarkNetConfig(hrnet_width=4, stage_modules=(1, 1, 1), blocks=1, attribute_hidden=8)
TINY_SIZE = (64, 32)  # the input resolution the tiny networks run at


def save_trained(net: SALLandmarkNet, directory) -> Path:
    """``net`` saved as the trainer saves a landmarks run (its checkpoints/last.pt) at TINY_SIZE."""
    settings = {"train": {"height": TINY_SIZE[0], "width": TINY_SIZE[1]}, "model_config": {**TINY.to_dict(), "labels": "groundtruth", "heatmap_sigma": 6.0}}
    CheckpointDir(Path(directory) / "checkpoints").save(
        {"kind": "landmarks", "model": "sal-hrnet", "step": 0, "modules": {"net": net.state_dict()}, "config": settings}
    )
    return Path(directory) / "checkpoints" / "last.pt"


@pytest.fixture
def tiny_net(one_torch_thread) -> SALLandmarkNet:
    torch.manual_seed(0)
    return SALLandmarkNet(TINY).eval()


def test_branches_take_and_give_the_documented_shapes(tiny_net):
    garment, person = torch.rand(2, 3, 64, 32), torch.rand(2, 3, 64, 32)
    garment_maps = torch.rand(2, 32, 64, 32)
    out = tiny_net(garment, person, garment_maps)
    assert out.garment_heatmaps.shape == out.person_heatmaps.shape == (2, 32, 16, 8)
    assert out.garment_logits.shape == (2, 32, 2) and out.person_logits.shape == (2, 32, 3)
    with torch.no_grad():
        maps, _ = tiny_net.forward_person(person, garment, garment_maps)
    torch.testing.assert_close(maps, out.person_heatmaps)
    # the person branch reads the garment heatmaps
    assert not torch.allclose(tiny_net.forward_person(person, garment, torch.zeros_like(garment_maps))[0], maps)
    with pytest.raises(ValueError, match="multiples of 32"):
        tiny_net.forward_garment(torch.rand(1, 3, 48, 32))
    with pytest.raises(ValueError, match="38 input channels"):
        tiny_net.person(torch.rand(1, 6, 64, 32))


def test_the_default_network_is_w18_small():
    config = LandmarkNetConfig()
    assert (config.hrnet_width, config.stage_modules, config.blocks) == (18, (1, 3, 2), 2)
    branch = SALLandmarkNet(config).garment
    widths = [m.branches[k][0].conv1.in_channels for m in branch.stages[-1] for k in range(4)]
    assert widths == [18, 36, 72, 144] * 2


def test_config_round_trips_through_json():
    config = LandmarkNetConfig(hrnet_width=8, stage_modules=(1, 2, 1), garment_heatmap_sigma=3.0)
    assert LandmarkNetConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown landmark network config keys"):
        LandmarkNetConfig.from_dict({"hrnet_width": 8, "depth": 3})


def test_losses_on_hand_computed_cases():
    pred = torch.zeros(1, 32, 2, 2)
    target = torch.zeros(1, 32, 2, 2)
    pred[0, 0, 0, 0], target[0, 0, 1, 1] = 0.5, 1.0
    assert heatmap_mse(pred, target).item() == pytest.approx((0.25 + 1.0) / (32 * 4))
    logits = torch.zeros(1, 32, 3)
    logits[0, :, 1] = math.log(2.0)  # softmax (1/4, 1/2, 1/4)
    classes = torch.full((1, 32), VISIBLE)
    classes[0, :16] = OCCLUDED
    assert attribute_cross_entropy(logits, classes).item() == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(4))
    attributes = torch.tensor([[VISIBLE, OCCLUDED, ABSENT] + [ABSENT] * 29]).float()
    assert garment_attribute_targets(attributes)[0, :4].tolist() == [0, 0, 1, 1]  # present, present, absent, absent
    with pytest.raises(ValueError):
        heatmap_mse(pred, target[..., :1])


def test_taylor_step_on_a_hand_computed_neighbourhood():
    # log-heatmap around the argmax (row 2, col 2): P = Px(col) + Py(row), separable, so dxy = 0
    px = torch.tensor([-9.0, -1.0, 0.0, -0.5, -9.0])  # dx = (-0.5 - -1) / 2 = 0.25, dxx = -0.5 - 0 + -1 = -1.5
    py = torch.tensor([-9.0, -0.5, 0.0, -1.0])  # dy = -0.25, dyy = -1.5
    log_maps = torch.full((1, 32, 4, 5), -20.0)
    log_maps[0, 0] = py[:, None] + px[None, :]
    xy = taylor_maximum(log_maps)
    # x = 2 - dx / dxx = 2 + 1/6, y = 2 - dy / dyy = 2 - 1/6
    torch.testing.assert_close(xy[0, 0], torch.tensor([2.0 + 1 / 6, 2.0 - 1 / 6]))
    # a cross term: P = -(u^2 + u v + v^2) / 2 about (1.3, 1.6), on a 4 x 4 grid: the exact maximum
    yy, xx = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    u, v = xx - 1.3, yy - 1.6
    log_maps[0, 1] = -20.0
    log_maps[0, 1, :, :4] = -(u**2 + u * v + v**2) / 2
    torch.testing.assert_close(taylor_maximum(log_maps)[0, 1], torch.tensor([1.3, 1.6]))


def test_taylor_step_falls_back_to_the_argmax_cell():
    log_maps = torch.full((1, 32, 5, 5), -20.0)
    log_maps[0, 0] = 0.0  # flat: no maximum, the first cell
    log_maps[0, 1, 0, 4] = 1.0  # a corner: no neighbours on two sides
    # a saddle of the quadratic fit: dxx = dyy = -0.2, dxy = (-0.01 + 2 + 2 - 0.01) / 4, det < 0
    log_maps[0, 2, 1:4, 1:4] = torch.tensor([[-0.01, -0.1, -2.0], [-0.1, 0.0, -0.1], [-2.0, -0.1, -0.01]])
    out = taylor_maximum(log_maps)
    torch.testing.assert_close(out[0, :3], torch.tensor([[0.0, 0.0], [4.0, 0.0], [2.0, 2.0]]))


def test_modulation_is_a_normalised_gaussian_blur():
    maps = torch.zeros(1, 32, 9, 9)
    maps[0, 0, 4, 4] = 1.0
    blurred = modulate_heatmaps(maps, 1.0)
    one_d = torch.exp(-(torch.arange(-4.0, 5.0) ** 2) / 2)
    one_d = one_d / torch.exp(-(torch.arange(-3.0, 4.0) ** 2) / 2).sum()  # kernel radius ceil(3 sigma) = 3
    one_d[[0, -1]] = 0.0
    torch.testing.assert_close(blurred[0, 0], one_d[:, None] * one_d[None, :])
    assert not blurred[0, 1:].any()


def test_targets_decode_back_to_the_points():
    lm = torch.tensor([[[10.0, 20.0, VISIBLE]] + [[17.3, 37.9, OCCLUDED]] + [[0.0, 0.0, ABSENT]] * 30])
    maps = heatmap_targets(lm, (64, 32), sigma=6.0)
    assert maps.shape == (1, 32, 16, 8) and not maps[0, 2:].any()
    xy = rescale_points(decode_heatmaps(maps, 6.0 / 4)[..., :2], (16, 8), (64, 32))
    # DARK recovers the points to a fraction of a px: 0.01 px for the inner one, 0.15 px for the
    # one 1.7 sigma from the left border (the zero-padded blur pulls it inwards)
    err = (xy[0, :2] - lm[0, :2, :2]).norm(dim=-1)
    assert err[0] < 0.2 and err[1] < 0.02
    assert rescale_points(torch.tensor([[0.0, 0.0]]), (16, 8), (64, 32)).tolist() == [[1.5, 1.5]]  # cell 0 covers px 0..3


def test_flip_heatmaps_mirrors_and_swaps_the_sides():
    maps = torch.zeros(1, 32, 3, 4)
    maps[0, 1, 0, 0] = 1.0  # neck_left at the left edge
    maps[0, 30, 2, 1] = 1.0  # hem_middle
    flipped = flip_heatmaps(maps)
    assert flipped[0, 6, 0, 3] == 1.0 and flipped[0, 30, 2, 2] == 1.0 and flipped.sum() == 2
    torch.testing.assert_close(flip_heatmaps(flipped), maps)
    assert FLIP[6] == 1


def test_the_flip_test_makes_predictions_mirror_symmetric(tiny_net):
    rng = np.random.default_rng(0)
    person, garment = rng.integers(0, 255, (2, 96, 48, 3), dtype=np.uint8)
    predictor = LandmarkPredictor(tiny_net, TINY_SIZE, 6.0, flip=True)
    lm = predictor.people([person], [garment])[0]
    mirrored = predictor.people([person[:, ::-1]], [garment[:, ::-1]])[0]
    np.testing.assert_array_equal(mirrored[:, 2], flip_landmarks(lm, 48)[:, 2])
    np.testing.assert_allclose(mirrored[:, :2], flip_landmarks(lm, 48)[:, :2], atol=1e-4)
    g = predictor.garments([garment])[0]
    assert set(np.unique(g[:, 2])) <= {VISIBLE, ABSENT} and (g[g[:, 2] == ABSENT, :2] == 0).all()
    assert not np.allclose(LandmarkPredictor(tiny_net, TINY_SIZE, 6.0, flip=False).people([person], [garment])[0], lm)


PRESENT_IDS = [*range(7), *range(27, 32)]  # neckline, waist, hem (a set closed under FLIP)


def _designed_checkpoint(directory) -> Path:
    """A tiny checkpoint with flat heatmaps (every point decodes to heatmap cell (0, 0)) and
    attribute biases: garment points PRESENT_IDS present, the rest absent; person points occluded."""
    torch.manual_seed(1)
    net = SALLandmarkNet(TINY)
    with torch.no_grad():
        for branch, bias in ((net.garment, torch.tensor([0.0, 5.0]).repeat(32, 1)), (net.person, torch.tensor([0.0, 5.0, 0.0]).repeat(32, 1))):
            branch.heatmap_head.weight.zero_()
            branch.heatmap_head.bias.zero_()
            last = branch.attribute_head[-1]
            last.weight.zero_()
            if branch is net.garment:
                bias[PRESENT_IDS] = torch.tensor([5.0, 0.0])
            last.bias.copy_(bias.reshape(-1))
    return save_trained(net, directory)


def test_sal_hrnet_backend_through_the_stage(tmp_path, one_torch_thread):
    build = simple_build(tmp_path, n=2)  # 256 x 192 images; garments paired with both poses of a person
    checkpoint = _designed_checkpoint(tmp_path / "run")
    res = run_stage(build, StageConfig("landmarks", "sal-hrnet", {"checkpoint": str(checkpoint)}), show_progress=False)
    assert res.computed == res.total == 6 and res.failed == 0
    ctx = AnnotationContext(build)
    corner = [0.5 * 192 / 8 - 0.5, 0.5 * 256 / 16 - 0.5]  # heatmap cell (0, 0) in a 256 x 192 image
    for row in ShardReader(build / "annotations" / "landmarks"):
        lm = row["landmarks"]
        if ctx.images[row["image_id"]]["kind"] == "garment":
            absent = np.setdiff1d(np.arange(32), PRESENT_IDS)
            assert (lm[PRESENT_IDS, 2] == VISIBLE).all() and (lm[absent, 2] == ABSENT).all()
            np.testing.assert_allclose(lm[PRESENT_IDS, :2], np.tile(corner, (len(PRESENT_IDS), 1)))
            assert (lm[absent, :2] == 0).all()
        else:
            assert (lm[:, 2] == OCCLUDED).all()
            np.testing.assert_allclose(lm[:, :2], np.tile(corner, (32, 1)))
    (provenance,) = read_manifest(build / "annotations" / "landmarks")["provenance"]
    assert provenance["weights_sha256"] == {str(checkpoint): sha256_file(checkpoint)}


def test_sal_hrnet_rows_are_the_networks_predictions(tmp_path, tiny_net):
    build = simple_build(tmp_path, n=1)
    checkpoint = save_trained(tiny_net, tmp_path / "run")
    run_stage(build, StageConfig("landmarks", "sal-hrnet", {"checkpoint": str(checkpoint), "flip_test": False}), show_progress=False)
    ctx = AnnotationContext(build)
    net, input_size, heatmap_sigma = build_from_checkpoint(torch.load(checkpoint, weights_only=True))
    assert input_size == TINY_SIZE and heatmap_sigma == 6.0
    predictor = LandmarkPredictor(net, input_size, heatmap_sigma, flip=False)
    rows = {r["image_id"]: r["landmarks"] for r in ShardReader(build / "annotations" / "landmarks")}
    for image_id, lm in rows.items():
        image = ctx.load_image(image_id)
        if ctx.images[image_id]["kind"] == "garment":
            expected = predictor.garments([image])[0]
        else:
            expected = predictor.people([image], [ctx.load_image(ctx.garments_of(image_id)[0])])[0]
        np.testing.assert_allclose(lm, expected, atol=1e-3)  # float noise of batching, through DARK's log


def test_a_missing_checkpoint_names_its_path_and_the_trainer(tmp_path):
    backend = get_backend("landmarks", "sal-hrnet")({"checkpoint": str(tmp_path / "runs" / "last.pt")})
    with pytest.raises(
        MissingWeightsError, match=r"missing checkpoint .*runs/last\.pt.*vtonpipe train landmarks.*runs/landmarks/sal-hrnet/checkpoints/last\.pt"
    ):
        backend.check_available()
    assert "data/sample/runs/landmarks/sal-hrnet/checkpoints/last.pt" in get_backend("landmarks", "sal-hrnet")().problems()[0]
