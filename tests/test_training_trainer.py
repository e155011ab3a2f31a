"""The trainer core with a test-only task: settings, registry, step control, run directory,
checkpoints and exact resume, gradient accumulation, the CLI, a kill and resume."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
import training_tasks
from packed_builder import synthetic_build
from torch import nn
from training_runs import assert_same_curve, assert_same_params, child_logs, final_params, finish, fit, launch, read_log, settings_args, wait_for

from vtonpipe.training.checkpoint import CheckpointError, load_checkpoint
from vtonpipe.training.config import ConfigError, TrainConfig, settings_section, split_settings
from vtonpipe.training.logging import sample_grid
from vtonpipe.training.task import StepControl, Task, get_task, register_task
from vtonpipe.training.trainer import RunDirError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return synthetic_build(tmp_path_factory.mktemp("build"), train=10, test=5, size=(16, 12), rows_per_shard=4)


# -- settings and registry --------------------------------------------------------------------
def test_settings_resolve_into_typed_configs():
    params = {"train": {"tryon": {"tiny": {"steps": 50, "lr": 1, "channels": 8}}, "landmarks": {"batch_size": 4}}}
    section = settings_section(params, "tryon", "tiny")
    train_cfg, model_cfg = split_settings({**section, "accumulate": 2}, training_tasks.TinyTryon.Config)
    assert (train_cfg.steps, train_cfg.accumulate, train_cfg.batch_size) == (50, 2, TrainConfig.batch_size)
    assert model_cfg.lr == 1.0 and isinstance(model_cfg.lr, float) and model_cfg.channels == 8
    assert settings_section(params, "landmarks", "sal") == {"batch_size": 4}
    assert settings_section({}, "warp", "gcl") == {}
    with pytest.raises(ConfigError, match=r"unknown settings \['lrr'\].*lr"):
        split_settings({"lrr": 1}, training_tasks.TinyTryon.Config)
    with pytest.raises(ConfigError, match="channels: expected int"):
        split_settings({"channels": 2.5}, training_tasks.TinyTryon.Config)
    with pytest.raises(ConfigError, match="amp: expected bool"):
        split_settings({"amp": 1}, training_tasks.TinyTryon.Config)
    with pytest.raises(ConfigError, match="accumulate must be positive"):
        split_settings({"accumulate": 0}, training_tasks.TinyTryon.Config)


def test_registry_lookup_and_clashes():
    assert get_task("tryon", "tiny") is training_tasks.TinyTryon
    with pytest.raises(KeyError, match=r"no tryon model 'nope'; registered tryon models: \[.*'tiny'"):
        get_task("tryon", "nope")

    class Clash(Task):
        kind, model = "warp", "clash"

        @dataclass(frozen=True)
        class Config:
            steps: int = 3

    with pytest.raises(ValueError, match="clash with trainer settings"):
        register_task(Clash)


# -- step control -----------------------------------------------------------------------------
def test_step_control_accumulates_and_keeps_groups_apart():
    g, d = nn.Linear(2, 2), nn.Linear(2, 1)
    opts = {"g": torch.optim.SGD(g.parameters(), lr=1.0), "d": torch.optim.SGD(d.parameters(), lr=1.0)}
    control = StepControl(opts, torch.amp.GradScaler("cpu", enabled=False), accumulate=2)
    x = torch.ones(1, 2)
    before = g.weight.detach().clone()
    control.micro_step = 0
    loss = d(g(x)).sum()
    control.backward(loss, "g")
    assert d.weight.grad is None  # the generator's loss leaves no gradient on the discriminator
    first = g.weight.grad.clone()
    assert torch.allclose(first, (d.weight.T @ x).detach() / 2)  # divided by accumulate
    assert not control.step("g") and torch.equal(g.weight, before)  # not the last micro-batch
    control.micro_step = 1
    control.backward(d(g(x)).sum(), "g")
    assert control.step("g") and g.weight.grad is None
    assert torch.allclose(g.weight, before - 2 * first)
    with pytest.raises(KeyError, match="no optimiser group 'x'"):
        control.step("x")


# -- a run in one process ---------------------------------------------------------------------
def test_a_run_writes_its_directory(build, tmp_path):
    out = tmp_path / "run"
    result = fit(build, out, steps=6, log_every=2, checkpoint_every=3, grid_every=3, keep_checkpoints=1)
    assert result.step == 6 and result.interrupted is None
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "tryon" and config["train"]["steps"] == 6 and config["model_config"]["lr"] == 0.05
    assert config["needs"] == ["garment_image", "target_garment_region", "target_image"] and config["pairs"] == {"train": 10, "test": 5}
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.pt", "step-0000006.pt"]  # keep_checkpoints=1
    rows = read_log(out)
    assert [r["step"] for r in rows] == [2, 4, 6] and rows[-1]["l1"] < rows[0]["l1"]
    assert rows[-1]["epoch"] == pytest.approx(6 * 2 / 10)
    assert sorted(p.name for p in (out / "grids").iterdir()) == ["step-0000003.png", "step-0000006.png"]
    assert any((out / "tb").iterdir())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pairs"] == 5 and metrics["step"] == 6 and {"l1", "psnr", "region_l1"} <= set(metrics)
    assert metrics == {**result.metrics, "pairs": 5, "step": 6, "split": "test"}
    with pytest.raises(RunDirError, match="--resume"):
        fit(build, out, steps=6)


def test_checkpoints_load_weights_only_and_name_their_model(build, tmp_path):
    fit(build, tmp_path / "run", steps=1)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    assert state["step"] == 1 and state["data"]["position"] == 2 and len(state["rng"]) == 1
    assert set(state["optimizers"]) == {"generator", "discriminator"} and state["scaler"] == {}  # no AMP on the CPU
    with pytest.raises(CheckpointError, match="tryon/tiny, not warp/gcl"):
        load_checkpoint(last, kind="warp", model="gcl")


def test_resume_continues_the_same_loss_curve(build, tmp_path):
    fit(build, tmp_path / "straight", steps=8)
    fit(build, tmp_path / "split", steps=3)
    fit(build, tmp_path / "split", steps=8, resume=True)
    assert_same_curve(read_log(tmp_path / "split"), read_log(tmp_path / "straight"))
    assert_same_params(final_params(tmp_path / "split"), final_params(tmp_path / "straight"), tol=0)


def test_accumulation_equals_the_doubled_batch(build, tmp_path):
    # one optimiser group (with a discriminator, the second micro-batch's generator loss would see
    # the discriminator stepped by the first: accumulation is then not the doubled batch)
    fit(build, tmp_path / "acc", steps=4, accumulate=2, adversarial=0)
    fit(build, tmp_path / "big", steps=4, batch_size=4, adversarial=0)
    assert_same_params(final_params(tmp_path / "acc"), final_params(tmp_path / "big"))
    assert_same_curve(read_log(tmp_path / "acc"), read_log(tmp_path / "big"), tol=1e-5)


def test_sample_grid_layout():
    cols = {"a": torch.zeros(2, 3, 4, 5), "mask": torch.ones(2, 1, 4, 5), "small": torch.ones(2, 3, 2, 2)}
    grid = sample_grid(cols, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 6 + 1, 3)
    assert (grid[1:5, 1:6] == 0).all() and (grid[1:5, 7:12] == 255).all() and (grid[0] == 255).all()
    with pytest.raises(ValueError, match="expected"):
        sample_grid({"flow": torch.zeros(2, 2, 4, 5)})


# -- the CLI in a subprocess: kill -9 and resume ----------------------------------------------
def test_cli_run_killed_then_resumed_continues_from_the_saved_step(build, tmp_path):
    out = tmp_path / "killed"
    args = ["--build", str(build), "--out", str(out), *settings_args(checkpoint_every=4)]
    proc = launch([*args, "--steps", "100000"], tmp_path)
    try:
        wait_for(lambda: (out / "checkpoints" / "last.pt").exists() and len(read_log(out)) >= 9, [proc])
    finally:
        proc.kill()  # SIGKILL: no handler runs, the log may be ahead of the checkpoint
        proc.join(30)
    saved = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["step"]
    assert saved % 4 == 0 and saved >= 4
    target = saved + 3
    assert finish([launch([*args, "--steps", str(target), "--resume"], tmp_path)]) == [0], child_logs(tmp_path)
    fit(build, tmp_path / "reference", steps=target, checkpoint_every=4)
    assert_same_curve(read_log(out), read_log(tmp_path / "reference"))
    assert_same_params(final_params(out), final_params(tmp_path / "reference"), tol=0)
    assert json.loads((out / "metrics.json").read_text())["step"] == target


def test_cli_errors_name_the_problem(build, tmp_path):
    from click.testing import CliRunner

    from vtonpipe.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["--params", str(tmp_path / "none.yaml"), "train", "tryon", "--model", "nope", "--build", str(build)])
    assert result.exit_code == 1 and "no tryon model 'nope'" in result.output
    result = runner.invoke(main, ["--params", str(tmp_path / "none.yaml"), "train", "tryon", "--model", "tiny", "--build", str(build), "--set", "lrr=1"])
    assert result.exit_code == 1 and "unknown settings ['lrr']" in result.output
