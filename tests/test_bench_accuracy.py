"""`vtonpipe bench accuracy`: a run that copies the ground truth scores perfectly, a perturbed one
does not."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from vtonpipe.bench.accuracy import evaluate
from vtonpipe.cli import main
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.ingest import ingest
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.pipeline.store import ShardReader, ShardWriter
from vtonpipe.synth import write_sample

STAGES = ("keypoints", "person_mask", "garment_mask", "parsing", "densepose", "body", "smpl_flow", "landmarks")


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    """A two-person sample whose every annotation stage is the ``groundtruth`` backend."""
    tmp = tmp_path_factory.mktemp("acc")
    write_sample(tmp / "raw", people=2, seed=3)
    ingest("sample", tmp / "raw", tmp / "build", layout_name="mpv", show_progress=False)
    for name in STAGES:
        res = run_stage(tmp / "build", StageConfig(name, "groundtruth"), show_progress=False)
        assert res.failed == 0, (name, res.failures_by_reason)
    return tmp / "build"


def _scores(build):
    return {s.annotator: s.metrics for s in evaluate(build)}


def test_ground_truth_scores_perfectly(oracle):
    scores = _scores(oracle)
    assert set(scores) == set(STAGES)
    assert scores["keypoints"] == {"pck@0.1": 1.0, "mean_px_error": 0.0, "detection_rate": 1.0}
    assert scores["person_mask"]["iou"] == 1.0 and scores["garment_mask"]["iou"] == 1.0
    assert scores["parsing"]["miou"] == 1.0
    assert scores["densepose"] == {"part_accuracy": 1.0, "uv_error": 0.0, "false_body_rate": 0.0}
    assert scores["body"]["joint_px_error"] == 0.0
    flow = scores["smpl_flow"]
    assert flow["epe_visible"] == 0.0 and flow["visibility_miou"] == 1.0
    assert scores["landmarks"] == {"mean_px_error": 0.0, "attribute_accuracy": 1.0}


def _perturb(build, name, change):
    """Rewrite stage ``name`` of ``build`` with ``change(row)`` applied to every row."""
    directory = build / "annotations" / name
    reader = ShardReader(directory)
    rows = [change(dict(r)) for r in reader]
    provenance = reader.manifest["provenance"]
    reader.close()
    writer = ShardWriter(directory, reader.schema)
    writer.drop_shards([s.file for s in writer.shards])
    writer.write_shard(rows)
    writer.finish(provenance=provenance)


def test_a_perturbed_run_scores_worse(oracle, tmp_path):
    import shutil

    build = tmp_path / "build"
    shutil.copytree(oracle, build)
    rng = np.random.default_rng(0)

    def keypoints(r):
        r["keypoints"] = r["keypoints"].copy()
        r["keypoints"][:, :2] += rng.normal(0, 6, (18, 2)).astype(np.float32)
        return r

    def parsing(r):
        p = r["parsing"].copy()
        p[p == 14] = 15  # left arm called right arm
        r["parsing"] = p
        return r

    def flow(r):
        r["flow"] = r["flow"] + np.float32(3.0)
        return r

    def landmarks(r):
        lm = r["landmarks"].copy()
        lm[lm[:, 2] == 0, 0] += 4.0
        lm[0, 2] = 2.0 if lm[0, 2] != 2 else 0.0  # one attribute wrong per image
        r["landmarks"] = lm
        return r

    for name, change in (("keypoints", keypoints), ("parsing", parsing), ("smpl_flow", flow), ("landmarks", landmarks)):
        _perturb(build, name, change)
    scores = _scores(build)
    assert scores["keypoints"]["mean_px_error"] == pytest.approx(6 * math.sqrt(math.pi / 2), rel=0.25)
    assert scores["keypoints"]["pck@0.1"] < 1.0
    assert scores["parsing"]["miou"] < 0.95
    assert scores["smpl_flow"]["epe_visible"] == pytest.approx(3 * math.sqrt(2), rel=1e-4)
    assert scores["landmarks"]["mean_px_error"] == pytest.approx(4.0, rel=0.2)
    assert scores["landmarks"]["attribute_accuracy"] == pytest.approx(31 / 32)
    assert scores["densepose"]["part_accuracy"] == 1.0  # untouched stages stay perfect


def test_each_view_is_scored_on_its_own_photos_and_pairs(oracle, tmp_path):
    """Keypoints moved by 3 px on the side photos only, flows by 2 px on pairs whose target is a
    front photo: each case shows exactly its own error."""
    import shutil

    from vtonpipe.datasets.sample_truth import view_of
    from vtonpipe.pipeline.context import AnnotationContext

    build = tmp_path / "build"
    shutil.copytree(oracle, build)
    ctx = AnnotationContext(build)
    views = {i: view_of(im["path"]) for i, im in ctx.images.items() if im["kind"] == "person"}
    assert sorted(set(views.values())) == ["front", "side"]  # the fixture's two people, two views each
    target_view = {p["pair_id"]: views[p["target_image_id"]] for p in ctx.pairs}

    def keypoints(r):
        if views[r["image_id"]] == "side":
            r["keypoints"] = r["keypoints"] + np.float32([3.0, 0.0, 0.0])
        return r

    def flow(r):
        if target_view[r["pair_id"]] == "front":
            r["flow"] = r["flow"] + np.float32([2.0, 0.0])
        return r

    _perturb(build, "keypoints", keypoints)
    _perturb(build, "smpl_flow", flow)
    scores = {s.annotator: s for s in evaluate(build)}
    kp = scores["keypoints"]
    assert kp.cases["side"]["mean_px_error"] == pytest.approx(3.0) and kp.cases["front"]["mean_px_error"] == 0.0
    assert kp.cases["side"]["items"] + kp.cases["front"]["items"] == kp.items == 4
    assert 0.0 < kp.metrics["mean_px_error"] < 3.0
    flows = scores["smpl_flow"]
    for view, epe in (("front", 2.0), ("side", 0.0)):
        if view in flows.cases:
            assert flows.cases[view]["epe_visible"] == pytest.approx(epe, abs=1e-5)
    assert sum(c["items"] for c in flows.cases.values()) == flows.items
    assert "back" not in kp.cases  # no back photo: no case
    assert "garment_mask" in scores and scores["garment_mask"].cases == {}  # garments have no view


def test_pose_cases_come_from_the_samples_recipe(oracle, tmp_path):
    """A photo whose recipe (sample.json) has the arms_in_front pose is that case, with the pairs it is the target of."""
    import shutil

    from vtonpipe.bench.accuracy import cases
    from vtonpipe.pipeline.context import AnnotationContext

    build = tmp_path / "build"
    shutil.copytree(oracle, build)
    ctx = AnnotationContext(build)
    assert "arms_in_front" not in cases(ctx)
    recipe_file = ctx.dataset_root / "sample.json"
    original = recipe_file.read_text()
    try:
        recipe = json.loads(original)
        recipe["people"][0]["photos"][1]["pose"]["name"] = "arms_in_front"
        recipe_file.write_text(json.dumps(recipe))
        target = f"all/{recipe['people'][0]['images'][1]}"
        pairs = {p["pair_id"] for p in ctx.pairs if p["target_image_id"] == target}
        assert pairs and cases(ctx)["arms_in_front"] == frozenset({target} | pairs)
        scores = {s.annotator: s for s in evaluate(build)}
        assert scores["keypoints"].cases["arms_in_front"]["items"] == 1 and scores["smpl_flow"].cases["arms_in_front"]["items"] == len(pairs)
    finally:
        recipe_file.write_text(original)


def test_cli_prints_and_writes_the_table(oracle, tmp_path):
    out = CliRunner().invoke(main, ["bench", "accuracy", "--run", str(oracle), "--json", str(tmp_path / "acc.json")])
    assert out.exit_code == 0, out.output
    assert "pck@0.1" in out.output and "epe_visible" in out.output and "per-class IoU" in out.output
    assert "per case" in out.output and "front" in out.output and "side" in out.output
    saved = json.loads((tmp_path / "acc.json").read_text())
    assert {s["annotator"] for s in saved} == set(STAGES)


def test_a_dataset_without_ground_truth_is_refused(tmp_path):
    from builders import simple_build

    build = simple_build(tmp_path, 1)
    res = CliRunner().invoke(main, ["bench", "accuracy", "--run", str(build)])
    assert res.exit_code == 1 and "gt/" in res.output
