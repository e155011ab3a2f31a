"""The four try-on tasks through the real Trainer on a tiny packed build (warp "smpl_flow"):
a few optimisation steps lower the try-on error on the fixed training batch, ``infer`` gives the
contract's shapes, and evaluation writes metrics.json."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from packed_builder import flat_row, synthetic_values, write_build

from vtonpipe.training import metrics
from vtonpipe.training.checkpoint import seed_everything
from vtonpipe.training.data import PackedPairs, first_samples
from vtonpipe.training.task import get_task
from vtonpipe.training.trained import load_trained
from vtonpipe.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")
H, W = 32, 24
RUN = {
    "batch_size": 2,
    "workers": 0,
    "height": H,
    "width": W,
    "log_every": 1,
    "grid_every": 0,
    "checkpoint_every": 100,
    "pose_sigma": 2.0,
    "pose_radius": 2.0,
    "landmark_sigma": 2.0,
}

#: tiny widths per model, and the phase lengths of the scheduled ones
TINY = {
    "gcl": {"base_channels": 8, "max_channels": 16, "num_down": 2, "spade_hidden": 8, "d_channels": 8, "d_layers": 2, "d_scales": 1},
    "lasnl": {"base_channels": 8, "max_channels": 16, "num_down": 2, "hidden": 8, "d_channels": 8, "d_layers": 2, "d_scales": 1},
    "spg": {"base_channels": 8, "bottleneck_blocks": 1, "d_channels": 4, "d_scales": 1, "local_size": [8, 8], "semantic_steps": 2, "synthesis_steps": 8},
    "treeblock": {
        "ngf": 4,
        "blocks": 1,
        "dilations": [1, 2],
        "face_ngf": 4,
        "face_blocks": 1,
        "face_size": [8, 8],
        "parsing_channels": 8,
        "parsing_depth": 2,
        "d_channels": 4,
        "d_layers": 1,
        "d_scales": 1,
        "parsing_steps": 2,
        "appearance_steps": 8,
        "face_steps": 2,
    },
}
STEPS = {"gcl": 10, "lasnl": 10, "spg": 12, "treeblock": 14}


def _values(seed: int) -> dict:
    values = synthetic_values(seed, (H, W))
    rng = np.random.default_rng(seed)
    kp = np.c_[rng.uniform(4, W - 5, 18), rng.uniform(4, H - 5, 18), np.ones(18)].astype(np.float32)
    kp[[2, 8]] = [[6, 10, 1], [7, 22, 1]]  # right shoulder and hip apart from the left ones
    kp[[5, 11]] = [[17, 10, 1], [16, 22, 1]]
    values["source.keypoints.keypoints"] = values["target.keypoints.keypoints"] = kp
    return values


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    root = tmp_path_factory.mktemp("tryon-build")
    rows = {
        "train": [flat_row(f"train-{i}", "train", _values(i)) for i in range(2)],
        "test": [flat_row("test-0", "test", _values(100)), flat_row("test-1", "test", _values(101), paired=False)],
    }
    return write_build(root, rows)


def _train(model: str, build, out, steps: int):
    settings = {**RUN, **TINY[model], "warp": "smpl_flow", "perceptual": "pyramid_l1", "lr": 2e-3, "d_lr": 2e-3}
    return Trainer(get_task("tryon", model), build, settings=settings, run_dir=out, steps=steps).fit()


@pytest.mark.parametrize("model", ["gcl", "lasnl", "spg", "treeblock"])
def test_training_lowers_the_tryon_error_and_infers(model, build, tmp_path):
    torch.manual_seed(0)
    result = _train(model, build, tmp_path / "run", STEPS[model])
    trained = load_trained(result.run_dir, kind="tryon")
    task = trained.task
    batch = first_samples(PackedPairs(build, "train", task.needs(), _data_config()), 2)
    seed_everything(0)  # the trainer's initial weights
    initial = {name: m.eval() for name, m in task.build().items()}
    with torch.no_grad():
        before = metrics.l1(task.infer(initial, batch)["tryon"], batch["target_image"]).mean().item()
        out = task.infer(trained.modules, batch)
    after = metrics.l1(out["tryon"], batch["target_image"]).mean().item()
    assert after < 0.8 * before, (before, after)
    assert out["tryon"].shape == (2, 3, H, W) and out["warped_garment"].shape == (2, 3, H, W) and out["warped_mask"].shape == (2, 1, H, W)
    if model in ("spg", "treeblock"):
        assert out["mask"].shape == (2, 1, H, W) and 0 <= out["mask"].min() and out["mask"].max() <= 1
    written = json.loads((result.run_dir / "metrics.json").read_text())
    assert written["pairs"] == 2 and 0 < written["ssim"] <= 1 and written["psnr"] > 0  # the paired test pair only
    config = json.loads((result.run_dir / "config.json").read_text())
    assert any("pyramid_l1" in n and "stands in" in n for n in config["notes"]) and any("smpl_flow" in n for n in config["notes"])


def _data_config():
    from vtonpipe.training.config import TrainConfig

    return TrainConfig(**{k: v for k, v in RUN.items() if k not in ("workers",)}).data()


def test_eval_writes_paired_and_unpaired_metrics(build, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from vtonpipe.cli import main

    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(tmp_path / "weights"))
    run = _train("lasnl", build, tmp_path / "run", 2).run_dir
    no_params = tmp_path / "none.yaml"
    result = CliRunner().invoke(main, ["--params", str(no_params), "eval", "--run", str(run), "--build", str(build), "--out", str(tmp_path / "m.json")])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "m.json").read_text())
    assert record["paired"]["pairs"] == 1 and record["unpaired"]["pairs"] == 1 and record["step"] == 2
    assert set(record["paired"]) == {"pairs", "ssim", "psnr", "l1", "ssim_face", "ssim_non_garment", "warp_miou"}
    assert 0 < record["paired"]["ssim"] <= 1 and record["paired"]["warp_miou"] > 0.5  # the oracle warp on its own target
    assert record["not_computed"]["fid"] == "missing weights: inception/pt_inception-2015-12-05-6726825d.pth (vtonpipe doctor)"
    result = CliRunner().invoke(main, ["--params", str(no_params), "eval", "--run", str(run), "--build", str(build), "--metric", "fid"])
    assert result.exit_code == 1 and "pt_inception-2015-12-05-6726825d.pth" in result.output


def test_smpl_flow_oracle_moves_the_source_garment_and_drops_pixels_hidden_in_the_source():
    from vtonpipe.training.warped import smpl_flow_warp

    image = torch.arange(12, dtype=torch.float32).view(1, 1, 3, 4).expand(1, 3, 3, 4) / 12
    region = torch.zeros(1, 1, 3, 4)
    region[..., 1:3] = 1  # columns 1, 2 are garment
    flow = torch.zeros(1, 2, 3, 4)
    flow[:, 0] = 1.0  # target pixel x reads source pixel x + 1
    visibility = torch.zeros(1, 3, 4, dtype=torch.int64)
    visibility[0, 2] = 1  # the last row is hidden in the source
    garment, mask = smpl_flow_warp(image, region, flow, visibility)
    expected_mask = torch.tensor([[1.0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    assert torch.equal(mask[0, 0], expected_mask)
    assert torch.allclose(garment[0, 0, :2, :2], image[0, 0, :2, 1:3]) and garment[0, :, 2].abs().sum() == 0


def test_phases_follow_their_lengths_and_the_last_runs_to_the_end():
    from vtonpipe.models.tryon import spg
    from vtonpipe.training.tryon import phase_at

    names = [phase_at(spg.SCHEDULE, (2, 3), step).name for step in range(7)]
    assert names == ["semantic"] * 2 + ["synthesis"] * 3 + ["joint"] * 2
    with pytest.raises(ValueError, match="3 phases need 2 lengths"):
        phase_at(spg.SCHEDULE, (2,), 0)


def test_a_tryon_config_is_the_models_fields_plus_the_shared_settings():
    from vtonpipe.training.config import ConfigError, resolve

    cls = get_task("tryon", "lasnl").Config
    cfg = resolve(cls, {"hidden": 4, "warp": "runs/warp/sal", "betas": [0.9, 0.99]})
    assert cfg.hidden == 4 and cfg.num_warped == 1 and cfg.betas == (0.9, 0.99) and cfg.perceptual == "auto"
    with pytest.raises(ConfigError, match="perceptual"):
        resolve(cls, {"perceptual": "vgg16"})
    assert resolve(cls, {"perceptual": "ssim"}).perceptual == "ssim"


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_lr_decay_is_linear_between_its_steps_and_resumes():
    from vtonpipe.training.config import resolve

    task_cls = get_task("tryon", "gcl")
    task = task_cls(resolve(task_cls.Config, {"lr": 1e-3, "d_lr": 4e-4, "lr_decay": [2, 6], "perceptual": "pyramid_l1"}))
    opts = task.optimizers(task.build())
    scheds = task.schedulers(opts)
    rates = []
    for _ in range(8):
        rates.append(opts["generator"].param_groups[0]["lr"])
        for s in scheds.values():
            s.step()
    # constant to step 2, then 1e-3 * (6 - step) / 4: 0.75e-3 at 3, 0.25e-3 at 5, 0 from 6 on
    assert rates == pytest.approx([1e-3, 1e-3, 1e-3, 0.75e-3, 0.5e-3, 0.25e-3, 0.0, 0.0])
    assert opts["discriminator"].param_groups[0]["lr"] == 0.0
    # a resumed run's schedulers continue from the saved step
    fresh = task.optimizers(task.build())
    again = task.schedulers(fresh)
    for group, s in again.items():
        s.load_state_dict(scheds[group].state_dict())
    assert again["generator"].get_last_lr() == [0.0]
    assert task_cls(resolve(task_cls.Config, {"perceptual": "pyramid_l1"})).schedulers(opts) == {}
    bad = task_cls(resolve(task_cls.Config, {"lr_decay": [5, 5], "perceptual": "pyramid_l1"}))
    with pytest.raises(ValueError, match="lr_decay"):
        bad.schedulers(opts)
