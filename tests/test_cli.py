"""The command line: help texts, doctor, and a small end-to-end run through every command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from vtonpipe.cli import main

#: every command, and what its --help must name: the files it writes (or that it writes nothing)
WRITES = {
    ("sample",): ("OUT/all/*.jpg", "all_poseA_poseB_clothes.txt"),
    ("ingest",): ("BUILD/ingest/{images,pairs}/", "report.json"),
    ("annotate",): ("BUILD/annotations/<annotator>/", "failures/", "summary table"),
    ("pack",): ("BUILD/packed/<split>/", "BUILD/packed/manifest.json"),
    ("show",): ("one PNG",),
    ("verify",): ("writes nothing",),
    ("doctor",): ("Writes nothing",),
    ("dag", "write"): ("Write OUT (dvc.yaml)",),
    ("export",): ("OUT/vtonpipe-export.json",),
    ("import",): ("BUILD/annotations/<annotator>/",),
    ("import-landmarks",): ("BUILD/annotations/landmarks/",),
    ("schema", "export"): ("OUT/<name>.v<version>.json",),
    ("dag", "check"): ("writes nothing",),
    ("bench", "accuracy"): ("writes it as JSON",),
    ("infer",): ("PNG files under OUT/png/", "shard stage"),
    **{("train", kind): ("writes the run directory (checkpoints, log.csv, tb/, grids/, metrics.json)",) for kind in ("warp", "tryon", "landmarks")},
    ("eval",): ("writes metrics.json",),
}


def _leaf_commands(group, path=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _leaf_commands(command, (*path, name))
        else:
            yield (*path, name)


def test_every_command_says_what_it_writes():
    runner = CliRunner()
    assert runner.invoke(main, ["--help"]).exit_code == 0
    assert set(_leaf_commands(main)) == set(WRITES), "a command was added or removed: say here what it writes"
    for path, fragments in WRITES.items():
        out = runner.invoke(main, [*path, "--help"])
        text = " ".join(out.output.split())  # click re-wraps help text
        assert out.exit_code == 0, path
        for fragment in fragments:
            assert fragment in text, f"`vtonpipe {' '.join(path)} --help` does not say {fragment!r}"


def test_doctor_json_lists_backends():
    out = CliRunner().invoke(main, ["doctor", "--json"])
    assert out.exit_code == 0
    report = json.loads(out.output)
    gm = [b for b in report["backends"] if b["annotator"] == "garment_mask" and b["backend"] == "classical"]
    assert gm and gm[0]["usable"] and gm[0]["default"]


def test_doctor_table_is_compact_unless_verbose(tmp_path, monkeypatch):
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(tmp_path))  # an empty weights folder: every weight file missing
    monkeypatch.setenv("COLUMNS", "300")
    short = CliRunner().invoke(main, ["doctor"])
    long = CliRunner().invoke(main, ["doctor", "--verbose"])
    assert short.exit_code == 0 and long.exit_code == 0
    assert "weights: model_final_162be9.pkl" in short.output and "put it at" not in short.output
    assert "doctor --verbose" in short.output
    assert f"put it at {tmp_path}" in long.output and "sha256" in long.output
    assert len(short.output.splitlines()) < len(long.output.splitlines())


def test_sample_ingest_annotate_pack_show(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(
        "data_root: d\ndatasets:\n  sample: {layout: mpv, root: d/sample/raw}\nannotators:\n  garment_mask: {backend: classical}\n"
    )
    runner = CliRunner()
    for args in (
        ["sample", "--people", "2", "--seed", "1", "--size", "128x96"],
        ["ingest", "--dataset", "sample"],
        ["annotate", "--dataset", "sample"],
        ["pack", "--dataset", "sample"],
    ):
        res = runner.invoke(main, args)
        assert res.exit_code == 0, (args, res.output)
    manifest = json.loads((tmp_path / "d/sample/packed/manifest.json").read_text())
    assert set(manifest["annotations"]) == {"garment_mask"}
    garment = next(p for p in (tmp_path / "d/sample/raw/all").iterdir() if "cloth" in p.name)
    res = runner.invoke(main, ["show", f"all/{garment.name}", "--dataset", "sample", "--out", "show.png", "--height", "100"])
    assert res.exit_code == 0, res.output
    picture = np.asarray(Image.open(tmp_path / "show.png"))
    assert picture.shape[0] == 120 and picture.shape[1] > 150  # title strip + two panels
    bad = runner.invoke(main, ["show", "all/nope.jpg", "--dataset", "sample"])
    assert bad.exit_code == 1 and "neither an image id nor a pair id" in bad.output


def test_errors_are_clear(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(main, ["ingest", "--dataset", "mpv", "--root", str(tmp_path / "nowhere")])
    assert res.exit_code == 1 and "does not exist" in res.output
    res = runner.invoke(main, ["annotate", "no_such_annotator", "--dataset", "x"])
    assert res.exit_code == 1 and "unknown annotator" in res.output
    res = runner.invoke(main, ["sample", "--out", "s", "--size", "12x8"])
    assert res.exit_code == 1 and "too small" in res.output
    params = Path(__file__).resolve().parents[1].joinpath("params.yaml").read_text()  # the parser reading densepose, which reads parsing
    (tmp_path / "cycle.yaml").write_text(params.replace("params: {body_parts: keypoints}", "params: {body_parts: densepose}").replace("parsing_weight: 1.0", "parsing_weight: 0.0"))
    for command in (["dag", "write", "--out", "dvc.yaml"], ["dag", "check"]):
        res = runner.invoke(main, ["--params", "cycle.yaml", *command])
        assert res.exit_code == 1 and "annotator dependency cycle: parsing -> densepose -> parsing" in res.output, res.output
    assert not (tmp_path / "dvc.yaml").exists()


def test_verify_flags_a_corrupted_shard(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("data_root: d\ndatasets:\n  sample: {layout: mpv, root: d/sample/raw}\n")
    runner = CliRunner()
    for args in (["sample", "--people", "2", "--size", "64x48"], ["ingest", "--dataset", "sample"], ["annotate", "garment_mask", "--dataset", "sample"]):
        assert runner.invoke(main, args).exit_code == 0
    ok = runner.invoke(main, ["verify", "--dataset", "sample"])
    assert ok.exit_code == 0 and "annotations/garment_mask: ok (2 rows" in ok.output
    shard = tmp_path / "d/sample/annotations/garment_mask/shard-00000.npz"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    bad = runner.invoke(main, ["verify", "--dataset", "sample"])
    assert bad.exit_code == 1 and "annotations/garment_mask: error: checksum mismatch" in bad.output


def test_a_stage_section_s_params_belong_to_its_backend():
    from vtonpipe.pipeline.config import StageConfig

    params = {"annotators": {"densepose": {"backend": "render", "params": {"snap_to_mask_px": 1}}}}
    assert StageConfig.resolve(params, "densepose").params == {"snap_to_mask_px": 1}
    assert StageConfig.resolve(params, "densepose", backend="render").params == {"snap_to_mask_px": 1}
    other = StageConfig.resolve(params, "densepose", backend="rcnn", extra_params={"score_threshold": 0.9})
    assert (other.backend, other.params) == ("rcnn", {"score_threshold": 0.9})  # not render's snap_to_mask_px
