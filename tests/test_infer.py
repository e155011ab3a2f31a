"""`vtonpipe infer`: a trained model's outputs for a split as PNG files and a resumable shard stage."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import training_tasks  # noqa: F401  (registers warp/tiny, tryon/tiny)
from click.testing import CliRunner
from packed_builder import synthetic_build
from PIL import Image
from training_runs import FAST

from vtonpipe.cli import main
from vtonpipe.pipeline.store import ShardReader
from vtonpipe.training.data import PackedPairs
from vtonpipe.training.infer import InferError, infer
from vtonpipe.training.task import get_task
from vtonpipe.training.trained import load_trained
from vtonpipe.training.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return synthetic_build(tmp_path_factory.mktemp("build"), train=6, test=5, size=(16, 12), rows_per_shard=2)


@pytest.fixture(scope="module")
def warp_run(build, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "warp"
    Trainer(get_task("warp", "tiny"), build, settings={**FAST, "steps": 3}, run_dir=run).fit()
    return run


def test_load_trained_rebuilds_the_saved_weights(warp_run):
    trained = load_trained(warp_run, kind="warp")
    saved = torch.load(warp_run / "checkpoints" / "last.pt", weights_only=True)["modules"]["net"]
    assert trained.step == 3 and (trained.train.height, trained.train.width) == (16, 12)
    for k, v in trained.modules["net"].state_dict().items():
        assert torch.equal(v, saved[k])
    assert not any(p.requires_grad for p in trained.modules["net"].parameters())
    with pytest.raises(Exception, match="not a tryon model"):
        load_trained(warp_run, kind="tryon")


def test_infer_writes_pngs_and_a_stage_matching_the_model(build, warp_run, tmp_path):
    out = tmp_path / "warped"
    result = infer(warp_run, build, kind="warp", out=out, batch_size=2)
    assert (result.pairs, result.computed) == (5, 5)
    reader = ShardReader(out)
    assert len(reader) == 5 and reader.manifest["inferred"]["model"] == "tiny"
    trained = load_trained(warp_run, kind="warp")
    pairs = PackedPairs(build, "test", trained.task.needs(), trained.train.data())
    sample = {k: v[None] if isinstance(v, torch.Tensor) else [v] for k, v in pairs.sample(0).items()}
    with torch.no_grad():
        expected = trained.task.infer(trained.modules, sample)
    row = reader.get(sample["pair_id"][0])
    assert row["annotator"] == "infer.warp" and row["backend"] == "tiny"
    assert json.loads(row["params"])["step"] == 3
    np.testing.assert_allclose(row["flow"], expected["flow"][0].permute(1, 2, 0).numpy(), atol=1e-5)
    want = (expected["warped_garment"][0].permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(row["warped_garment"].astype(float) - want).max() <= 1
    png = np.asarray(Image.open(out / "png" / sample["pair_id"][0] / "warped_garment.png"))
    np.testing.assert_array_equal(png, row["warped_garment"])
    assert (out / "png" / sample["pair_id"][0] / "warped_mask.png").exists()
    assert not (out / "png" / sample["pair_id"][0] / "flow.png").exists()

    again = infer(warp_run, build, kind="warp", out=out, batch_size=2)
    assert again.computed == 0 and len(ShardReader(out)) == 5


def test_a_new_checkpoint_replaces_the_rows_of_the_old_one(build, warp_run, tmp_path):
    out = tmp_path / "warped"
    infer(warp_run, build, kind="warp", out=out)
    Trainer(get_task("warp", "tiny"), build, settings={**FAST, "steps": 4}, run_dir=warp_run, resume=True).fit()
    result = infer(warp_run, build, kind="warp", out=out)
    rows = list(ShardReader(out))
    assert result.computed == 5 and len(rows) == 5
    assert {json.loads(r["params"])["step"] for r in rows} == {4}


def test_unpaired_inference_takes_the_next_pairs_garment(build, tmp_path):
    run = tmp_path / "tryon"
    Trainer(get_task("tryon", "tiny"), build, settings={**FAST, "steps": 1, "adversarial": 0.0}, run_dir=run).fit()
    paired = infer(run, build, kind="tryon", out=tmp_path / "paired")
    unpaired = infer(run, build, kind="tryon", unpaired=True, out=tmp_path / "unpaired")
    assert paired.computed == unpaired.computed == 5
    p, u = ShardReader(paired.out), ShardReader(unpaired.out)
    ids = p.ids()
    for a, b in zip(ids, ids[1:] + ids[:1]):  # tryon/tiny's output depends on the garment only
        np.testing.assert_array_equal(u.get(a)["tryon"], p.get(b)["tryon"])
    assert u.get(ids[0])["composition_mask"] is None


def test_cli_infer_and_its_errors(build, warp_run, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    r = runner.invoke(main, ["infer", "warp", "--model", "tiny", "--build", str(build), "--run", str(warp_run), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "inferred 5 of 5 test pairs" in r.output
    r = runner.invoke(main, ["infer", "warp", "--model", "tiny", "--build", str(build)])
    assert r.exit_code != 0 and "no checkpoint at" in r.output and "vtonpipe train warp" in r.output
    r = runner.invoke(main, ["infer", "tryon", "--model", "tiny", "--build", str(build), "--run", str(warp_run)])
    assert r.exit_code != 0 and "not a tryon model" in r.output
    with pytest.raises(InferError, match="no/such|pack the build"):
        infer(warp_run, build, kind="warp", split="nosuch")


def test_a_try_on_warp_source_reads_the_inferred_stage(build, warp_run, tmp_path):
    from vtonpipe.training.data import DataConfig, MissingPriorError, first_samples
    from vtonpipe.training.warped import WarpSource

    stage = infer(warp_run, build, kind="warp", split="train", out=tmp_path / "train").out
    source = WarpSource(str(stage))
    assert source.needs() == set() and "inferred_warp stage" in source.describe()
    batch = first_samples(PackedPairs(build, "train", {"garment_image"}, DataConfig(16, 12)), 3)
    garment, mask = source(batch)
    reader = ShardReader(stage)
    for i, pair_id in enumerate(batch["pair_id"]):
        row = reader.get(pair_id)
        np.testing.assert_allclose(garment[i].permute(1, 2, 0).numpy(), row["warped_garment"] / 255, atol=1e-6)
        np.testing.assert_allclose(mask[i, 0].numpy(), row["warped_mask"] / 255, atol=1e-6)
    bigger = first_samples(PackedPairs(build, "train", {"garment_image"}, DataConfig(32, 24)), 2)
    assert source(bigger)[0].shape == (2, 3, 32, 24)  # resized to the batch's resolution
    test_batch = first_samples(PackedPairs(build, "test", {"garment_image"}, DataConfig(16, 12)), 2)
    with pytest.raises(MissingPriorError, match="not in the inferred_warp stage"):
        source(test_batch)
