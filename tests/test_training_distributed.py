"""Data-parallel training: two gloo ranks on the CPU (child processes with the environment torchrun
exports, loopback rendezvous) equal one process with the doubled batch, stop together on a SIGTERM
to one rank, and resume the same curve."""

from __future__ import annotations

import json
import os
import signal
import socket

import pytest
import torch
from torch import nn
from training_runs import FAST, assert_same_curve, assert_same_params, child_logs, final_params, finish, fit, launch, read_log, settings_args, wait_for

from vtonpipe.training.distributed import Distributed, data_parallel, rank_seed, sync_batchnorm

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    from packed_builder import synthetic_build

    return synthetic_build(tmp_path_factory.mktemp("build"), train=10, test=5, size=(16, 12), rows_per_shard=4)


def test_rank_seeds_differ_and_derive_from_one_seed():
    seeds = [rank_seed(7, r) for r in range(4)]
    assert len(set(seeds)) == 4 and seeds == [rank_seed(7, r) for r in range(4)] and rank_seed(8, 0) != seeds[0]


def test_batchnorm_becomes_sync_batchnorm_only_on_several_cuda_ranks():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    cpu_ranks = Distributed(0, 2, 0, torch.device("cpu"))
    assert sync_batchnorm(net, cpu_ranks) is net  # SyncBatchNorm runs on GPUs only
    gpu_ranks = Distributed(0, 2, 0, torch.device("cuda", 0))
    converted = sync_batchnorm(net, gpu_ranks)
    assert isinstance(converted[1], nn.SyncBatchNorm) and converted[1].weight is net[1].weight
    assert sync_batchnorm(net, Distributed(0, 1, 0, torch.device("cuda", 0))) is net
    assert data_parallel(net, Distributed()) is net


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ranks(args: list[str], tmp_path) -> list:
    port = str(_free_port())
    return [
        launch(args, tmp_path, env={"RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port})
        for r in range(2)
    ]


def test_two_ranks_equal_the_doubled_batch_stop_together_and_resume(build, tmp_path):
    out = tmp_path / "ddp"
    common = ["--build", str(build), "--out", str(out), "--device", "cpu", *settings_args(checkpoint_every=1000)]
    procs = _ranks([*common, "--steps", "100000"], tmp_path)
    try:
        wait_for(lambda: (out / "log.csv").exists() and len(read_log(out)) >= 3, procs)
        os.kill(procs[1].pid, signal.SIGTERM)  # one rank only: both must checkpoint once and exit
    finally:
        codes = finish(procs)
    assert codes == [128 + signal.SIGTERM] * 2, child_logs(tmp_path)
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    stopped = state["step"]
    assert len(state["rng"]) == 2 and not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])
    assert state["data"]["position"] == stopped * 2 * 2
    assert len(list((out / "tb").iterdir())) == 1  # rank 0 alone writes
    assert read_log(out)[-1]["step"] == stopped

    target = stopped + 3
    assert finish(_ranks([*common, "--steps", str(target), "--resume"], tmp_path)) == [0, 0], child_logs(tmp_path)

    fit(build, tmp_path / "single", steps=target, batch_size=2 * FAST["batch_size"], checkpoint_every=1000)
    assert_same_curve(read_log(out), read_log(tmp_path / "single"), tol=1e-5)
    assert_same_params(final_params(out), final_params(tmp_path / "single"), tol=1e-5)
    ddp_metrics = json.loads((out / "metrics.json").read_text())
    single_metrics = json.loads((tmp_path / "single" / "metrics.json").read_text())
    assert ddp_metrics["pairs"] == single_metrics["pairs"] == 5
    for k in ("l1", "psnr", "region_l1"):
        assert ddp_metrics[k] == pytest.approx(single_metrics[k], abs=1e-4)
