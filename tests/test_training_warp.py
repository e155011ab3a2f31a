"""The three warping tasks (vtonpipe/training/tasks/warp_{gcl,tps,sal}.py) through the real trainer
on tiny packed builds: their losses fall on a fixed batch, runs write metrics.json with the warp
metrics, infer's outputs, resume after a kill, the ablation switches, the SMPL-flow oracle warp,
SAL-VTON's person representation and the perceptual loss choice."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from packed_builder import flat_row, synthetic_values, write_build
from training_runs import assert_same_curve, assert_same_params, child_logs, final_params, finish, launch, read_log, settings_args, wait_for

from vtonpipe.core.errors import MissingWeightsError
from vtonpipe.models.warp.gcl import GCLConfig, GCLLossConfig
from vtonpipe.training.data import DataConfig, PackedPairs, first_samples
from vtonpipe.training.task import get_task
from vtonpipe.training.trained import load_trained
from vtonpipe.training.trainer import Trainer
from vtonpipe.training.warp import config_part, smpl_flow_warp, warp_metrics

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = (32, 24)
#: small networks for 32 x 24 inputs (SAL: 3 stages, multiples of 8; TPS: 2 stages, multiples of 4)
SMALL = {
    "gcl": {"channels": (8, 8, 8), "feature_channels": 8, "hidden_channels": 8, "temperature": 0.1},
    "tps": {"channels": (8, 8), "regression_channels": (8, 8), "match_height": SIZE[0], "match_width": SIZE[1]},
    "sal": {"channels": (8, 8, 8), "fpn_channels": 8, "patch_samples": 4},
}
RUN = {"batch_size": 2, "workers": 0, "height": SIZE[0], "width": SIZE[1], "log_every": 1, "grid_every": 0, "checkpoint_every": 100, "lr": 0.001}
LOG_COLUMNS = {
    "gcl": ("loss", "l1", "flow", "correspondence", "epoch"),
    "tps": ("loss", "warp_l1", "cycle_l1", "epoch"),
    "sal": ("loss", "l1", "smooth", "landmark", "epoch"),
}


def full_keypoints(height: int, width: int) -> np.ndarray:
    """COCO-18 keypoints of an upright figure, all detected (the agnostic person image needs the neck, shoulders and hips)."""
    kp = np.zeros((18, 3), np.float32)
    xs = (0.5, 0.5, 0.3, 0.2, 0.15, 0.7, 0.8, 0.85, 0.38, 0.38, 0.38, 0.62, 0.62, 0.62, 0.45, 0.55, 0.4, 0.6)
    ys = (0.1, 0.2, 0.22, 0.4, 0.55, 0.22, 0.4, 0.55, 0.55, 0.75, 0.95, 0.55, 0.75, 0.95, 0.08, 0.08, 0.09, 0.09)
    for j in range(18):
        kp[j] = (xs[j] * (width - 1), ys[j] * (height - 1), 0.9)
    return kp


def warp_values(seed: int) -> dict:
    values = synthetic_values(seed, SIZE)
    values["target.keypoints.keypoints"] = full_keypoints(*SIZE)
    return values


def warp_build(root, *, train: int = 2, test: int = 3):
    rows = {
        "train": [flat_row(f"train-{i:03d}", "train", warp_values(i)) for i in range(train)],
        "test": [flat_row(f"test-{i:03d}", "test", warp_values(1000 + i)) for i in range(test)],
    }
    return write_build(root, rows, rows_per_shard=2)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return warp_build(tmp_path_factory.mktemp("warp-build"))


def train(model, build, out, *, resume=False, **settings):
    return Trainer(get_task("warp", model), build, settings={**RUN, **SMALL[model], **settings}, run_dir=out, device="cpu", resume=resume).fit()


@pytest.mark.parametrize("model", ["gcl", "tps", "sal"])
def test_a_run_lowers_the_loss_and_writes_the_warp_metrics(model, build, tmp_path):
    # the train split is one batch (2 pairs, batch_size 2): every step sees the same batch
    result = train(model, build, tmp_path / model, steps=6)
    rows = read_log(tmp_path / model, LOG_COLUMNS[model])
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert rows[-1]["loss"] < rows[0]["loss"], [r["loss"] for r in rows]
    metrics = json.loads((tmp_path / model / "metrics.json").read_text())
    assert metrics["pairs"] == 3 and {"miou", "l1", "ssim"} <= set(metrics) and "lpips" not in metrics
    assert 0 <= metrics["miou"] <= 1 and 0 <= metrics["l1"] <= 1 and -1 <= metrics["ssim"] <= 1
    assert metrics == {**result.metrics, "pairs": 3, "step": 6, "split": "test"}
    assert (tmp_path / model / "grids" / "step-0000006.png").exists()


@pytest.fixture(scope="module")
def trained_runs(build, tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the function-scoped one_torch_thread
    try:
        return {model: train(model, build, root / model, steps=2).run_dir for model in ("gcl", "tps", "sal")}
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("model", ["gcl", "tps", "sal"])
def test_infer_and_visuals_of_a_trained_warp(model, build, trained_runs):
    trained = load_trained(trained_runs[model], kind="warp")
    assert trained.model == model and trained.step == 2 and not trained.modules["net"].training
    batch = first_samples(PackedPairs(build, "test", trained.task.needs(), DataConfig(*SIZE)), 3)
    with torch.no_grad():
        out = trained.task.infer(trained.modules, batch)
        visuals = trained.task.visuals(trained.modules, batch)
    h, w = SIZE
    assert {k: tuple(v.shape) for k, v in out.items()} == {"warped_garment": (3, 3, h, w), "warped_mask": (3, 1, h, w), "flow": (3, 2, h, w)}
    assert out["warped_garment"].min() >= 0 and out["warped_garment"].max() <= 1 and out["warped_mask"].max() <= 1
    assert list(visuals) == ["garment", "warped", "target", "flow"] and all(v.shape[0] == 3 and v.shape[1] == 3 for v in visuals.values())
    # the target column is the target image on its garment region
    assert torch.equal(visuals["target"], batch["target_image"] * batch["target_garment_region"])


def test_gcl_resume_after_a_kill_continues_the_same_loss_curve(build, tmp_path):
    out = tmp_path / "killed"
    settings = {**RUN, **SMALL["gcl"], "checkpoint_every": 3}
    args = ["--build", str(build), "--out", str(out), "--device", "cpu", *settings_args(**settings)]
    proc = launch([*args, "--steps", "100000"], tmp_path, task=("warp", "gcl"))
    try:
        wait_for(lambda: (out / "checkpoints" / "last.pt").exists() and len(read_log(out, LOG_COLUMNS["gcl"])) >= 7, [proc])
    finally:
        proc.kill()  # SIGKILL: the log may be ahead of the checkpoint
        proc.join(30)
    saved = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["step"]
    assert saved % 3 == 0 and saved >= 3
    target = saved + 2
    assert finish([launch([*args, "--steps", str(target), "--resume"], tmp_path, task=("warp", "gcl"))]) == [0], child_logs(tmp_path)
    train("gcl", build, tmp_path / "reference", steps=target, checkpoint_every=3)
    assert_same_curve(read_log(out, LOG_COLUMNS["gcl"]), read_log(tmp_path / "reference", LOG_COLUMNS["gcl"]), tol=1e-5)
    assert_same_params(final_params(out, "warp", "gcl"), final_params(tmp_path / "reference", "warp", "gcl"))


def test_gcl_settings_mirror_the_model_configs_and_switch_the_ablations():
    task_cls = get_task("warp", "gcl")
    default = task_cls()
    assert config_part(default.config, GCLConfig) == GCLConfig() and config_part(default.config, GCLLossConfig) == GCLLossConfig()
    assert {"smpl_flow", "visibility"} <= default.needs()
    no_3d = task_cls(task_cls.Config(use_3d_losses=False))
    assert not {"smpl_flow", "visibility"} & no_3d.needs()  # the ablation reads no SMPL prior
    assert len(task_cls(task_cls.Config(global_correspondence=False)).build()["net"].gacrms) == 3
    assert len(default.build()["net"].gacrms) == 2


def test_gcl_without_3d_losses_trains_on_image_losses_alone(build, tmp_path):
    train("gcl", build, tmp_path / "no3d", steps=2, use_3d_losses=False, global_correspondence=False)
    config = json.loads((tmp_path / "no3d" / "config.json").read_text())
    assert "smpl_flow" not in config["needs"] and config["model_config"]["use_3d_losses"] is False
    with (tmp_path / "no3d" / "log.csv").open() as f:
        header = f.readline().strip().split(",")
    assert "l1" in header and "flow" not in header and "correspondence" not in header


def test_smpl_flow_warp_shifts_the_source_garment_on_the_body():
    h, w = 6, 5
    image = torch.rand(1, 3, h, w)
    region = torch.zeros(1, 1, h, w)
    region[..., 1:4, 2:4] = 1
    flow = torch.zeros(1, 2, h, w)
    flow[:, 0] = 1.0  # every target pixel reads the source pixel one to its right
    visibility = torch.zeros(1, h, w, dtype=torch.int64)
    visibility[:, :, 0] = 2  # the first column is background
    warped, mask = smpl_flow_warp({"source_image": image, "source_garment_region": region, "smpl_flow": flow, "visibility": visibility})
    expected = torch.zeros(1, 1, h, w)
    expected[..., 1:4, 1:3] = 1  # the region shifted one pixel left
    assert torch.allclose(mask, expected, atol=1e-6)
    assert torch.allclose(warped[..., :, 1:4], (image * region)[..., :, 2:5], atol=1e-6)
    assert (warped[..., 0] == 0).all()  # background column: black


def test_warp_metrics_of_a_perfect_and_of_an_empty_warp():
    h, w = 16, 12
    target = torch.rand(2, 3, h, w)
    region = torch.zeros(2, 1, h, w)
    region[..., 4:12, 3:9] = 1
    batch = {"target_image": target, "target_garment_region": region}
    perfect = warp_metrics(target * region, region, batch)
    assert torch.allclose(perfect["miou"], torch.ones(2)) and torch.allclose(perfect["l1"], torch.zeros(2)) and torch.allclose(perfect["ssim"], torch.ones(2))
    empty = warp_metrics(torch.zeros_like(target), torch.zeros_like(region), batch)
    assert torch.equal(empty["miou"], torch.zeros(2))
    assert torch.allclose(empty["l1"], (target * region).flatten(1).mean(1))


def test_sal_person_representation_names_a_pair_without_hips(build):
    task = get_task("warp", "sal")(get_task("warp", "sal").Config(**{k: v for k, v in SMALL["sal"].items()}))
    batch = first_samples(PackedPairs(build, "test", task.needs(), DataConfig(*SIZE)), 2)
    batch["target_keypoints"][1, 11] = 0  # the left hip undetected in the second pair
    with pytest.raises(ValueError, match=r"pair test-001: no person representation for SAL-VTON.*undetected"):
        task.warp(task.build(), batch)


def test_perceptual_loss_choice(tmp_path):
    task_cls = get_task("warp", "gcl")
    missing = str(tmp_path / "vgg19.pth")
    auto = task_cls(task_cls.Config(vgg_weights=missing))
    perceptual_note, lpips_note = auto.notes()  # no LPIPS weights here either
    assert perceptual_note == (
        f"perceptual loss: l1 alone (no VGG-19 weights supplied, perceptual term omitted); put torchvision's vgg19-dcbb9e9d.pth at {missing} for the papers' VGG-19 term"
    )
    assert lpips_note.startswith("evaluation without LPIPS: missing weight file alexnet-owt-7be5be79.pth")
    assert auto.optimizers(auto.build()) and auto.perceptual is None
    required = task_cls(task_cls.Config(perceptual="vgg19", vgg_weights=missing))
    with pytest.raises(MissingWeightsError, match=r"missing VGG-19 weight file vgg19\.pth.*download\.pytorch\.org"):
        required.optimizers(required.build())
    assert get_task("warp", "tps")().notes() == [lpips_note]  # SPG-VTON's warping losses have no perceptual term


def test_show_panels_of_a_trained_warp_next_to_the_smpl_flow_warp(build, trained_runs):
    from vtonpipe.training.warp_show import find_pair, warp_panels
    from vtonpipe.vis.panel import compose

    assert find_pair(build, "test-002") == ("test", 2)
    with pytest.raises(KeyError, match="'nope' is not in the packed shards"):
        find_pair(build, "nope")
    panels = warp_panels(build, "test-002", trained_runs["gcl"])
    assert [t.split(" IoU")[0] for t, _ in panels] == ["gcl@2 input", "gcl@2", "gcl@2 flow", "SMPL", "SMPL flow", "target"]
    assert all(p.shape == (*SIZE, 3) and p.dtype == np.uint8 for _, p in panels)
    assert compose(panels, height=64).shape[0] == 64 + 20


def test_lpips_joins_the_warp_metrics_only_with_its_weights(build, trained_runs, monkeypatch):
    import vtonpipe.training.warp as warp_module
    from vtonpipe.models.nets.lpips import LPIPS

    trained = load_trained(trained_runs["gcl"], kind="warp")
    batch = first_samples(PackedPairs(build, "test", trained.task.needs(), DataConfig(64, 48)), 2)  # AlexNet's smallest input
    with torch.no_grad():
        without = trained.task.evaluate(trained.modules, batch)
    assert "lpips" not in without and any(n.startswith("evaluation without LPIPS") for n in trained.task.notes())

    torch.manual_seed(0)
    network = LPIPS()  # random weights stand in for the user's files
    monkeypatch.setattr(warp_module, "weight_problems", lambda metric: [])
    monkeypatch.setattr(warp_module, "load_lpips", lambda: network)
    with torch.no_grad():
        scores = trained.task.evaluate(trained.modules, batch)
        warped = trained.task.infer(trained.modules, batch)["warped_garment"]
        expected = network(warped, batch["target_image"] * batch["target_garment_region"])
    assert scores["lpips"].shape == (2,) and torch.allclose(scores["lpips"], expected)
    assert not any(n.startswith("evaluation without LPIPS") for n in trained.task.notes())
