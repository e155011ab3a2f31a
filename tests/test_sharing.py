"""Sharing a build: its shards read without vtonpipe (pyarrow.dataset, duckdb, numpy, the JSON
Schemas `vtonpipe schema export` writes), and a DVC local-directory remote that a second clone
pulls from without recomputing anything."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from vtonpipe.cli import main
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.ingest import ingest
from vtonpipe.pipeline.pack import pack
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.synth import write_sample

REPO = Path(__file__).resolve().parents[1]

#: run in a fresh interpreter: reads a build with pyarrow, duckdb, numpy and jsonschema only
READER = r"""
import base64, json, sys
from pathlib import Path

import duckdb
import jsonschema
import numpy as np
import pyarrow.dataset as ds

build, schemas = Path(sys.argv[1]), Path(sys.argv[2])

def shard_files(directory):
    manifest = json.loads((directory / "manifest.json").read_text())
    return manifest, [str(directory / s["file"]) for s in manifest["shards"]]

def jsonable(row):
    return {k: base64.b64encode(v).decode() if isinstance(v, bytes) else v for k, v in row.items()}

out = {}
for name in ("keypoints", "parsing"):
    manifest, files = shard_files(build / "annotations" / name)
    table = ds.dataset(files, format="parquet").to_table()
    schema = json.loads((schemas / f"{name}.v{manifest['schema']['version']}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    for row in table.to_pylist():
        jsonschema.validate(jsonable(row), schema)
    out[name] = table.num_rows

# a dense map: the NPZ member "<field>/<row>" beside the shard
manifest, files = shard_files(build / "annotations" / "parsing")
first = manifest["shards"][0]
with np.load(build / "annotations" / "parsing" / first["dense_file"], allow_pickle=False) as z:
    parsing = z["parsing/0"]
row = ds.dataset(files[:1], format="parquet").to_table().slice(0, 1).to_pylist()[0]
assert parsing.dtype == np.uint8 and int((parsing > 0).sum()) == sum(row["class_pixels"][1:])

# duckdb over the annotation shards: keypoints joined with parsing
con = duckdb.connect()
kp = str(build / "annotations" / "keypoints" / "shard-*.parquet")
pa_ = str(build / "annotations" / "parsing" / "shard-*.parquet")
rows = con.execute(
    f"SELECT k.image_id, k.backend, len(k.keypoints) AS values, p.person_fraction "
    f"FROM read_parquet('{kp}') k JOIN read_parquet('{pa_}') p USING (image_id) ORDER BY k.image_id"
).fetchall()
assert len(rows) == out["keypoints"] and all(r[2] == 18 * 3 for r in rows)
out["joined"] = len(rows)

# the packed shards: one row per pair, columns <role>.<annotator>.<field>
packed = json.loads((build / "packed" / "manifest.json").read_text())
split = sorted(packed["splits"])[0] if "splits" in packed else "train"
manifest, files = shard_files(build / "packed" / split)
schema = json.loads((schemas / f"packed.v{manifest['schema']['version']}.json").read_text())
table = ds.dataset(files, format="parquet").to_table()
for row in table.to_pylist():
    jsonschema.validate(jsonable(row), schema)
glob = str(build / "packed" / split / "shard-*.parquet")
pairs = con.execute(f'SELECT pair_id, "source.keypoints.keypoints"[4] AS neck_x FROM read_parquet(\'{glob}\') ORDER BY pair_id').fetchall()
assert len(pairs) == table.num_rows and all(p[1] is not None for p in pairs)
out["pairs"] = len(pairs)
assert not any(m == "vtonpipe" or m.startswith("vtonpipe.") for m in sys.modules), "the reader imported vtonpipe"
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def packed_build(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("share")
    write_sample(tmp / "raw", people=2, seed=3, size=(64, 48))
    ingest("sample", tmp / "raw", tmp / "build", layout_name="mpv", show_progress=False)
    for name in ("keypoints", "parsing"):
        run_stage(tmp / "build", StageConfig(name, "groundtruth"), show_progress=False)
    pack(tmp / "build", annotators=("keypoints", "parsing"), rows_per_shard=8)
    return tmp / "build"


def test_schema_export_writes_every_schema_as_json_schema(packed_build, tmp_path):
    import jsonschema

    res = CliRunner().invoke(main, ["schema", "export", "--out", str(tmp_path), "--build", str(packed_build)])
    assert res.exit_code == 0, res.output
    names = {p.name for p in tmp_path.glob("*.json")}
    assert {"images.v1.json", "pairs.v1.json", "failures.v1.json", "keypoints.v1.json", "parsing.v1.json", "landmarks.v2.json", "packed.v2.json"} <= names
    for path in tmp_path.glob("*.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))
    parsing = json.loads((tmp_path / "parsing.v1.json").read_text())
    assert parsing["x-dense"]["parsing"]["x-storage"] == "npz" and "parsing" not in parsing["properties"]
    assert parsing["properties"]["class_pixels"]["minItems"] == 20
    with pytest.raises(jsonschema.ValidationError):  # a keypoints row with 17 points is not one
        jsonschema.validate({"keypoints": [0.0] * 51}, {**json.loads((tmp_path / "keypoints.v1.json").read_text()), "required": ["keypoints"]})


def test_shards_read_with_pyarrow_and_duckdb_without_vtonpipe(packed_build, tmp_path):
    pytest.importorskip("duckdb")
    assert CliRunner().invoke(main, ["schema", "export", "--out", str(tmp_path / "schemas"), "--build", str(packed_build)]).exit_code == 0
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", READER, str(packed_build), str(tmp_path / "schemas")], capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert counts == {"keypoints": 4, "parsing": 4, "joined": 4, "pairs": 2}


# -- DVC remote -------------------------------------------------------------------------------------
DVC_YAML = """\
stages:
  sample:
    cmd: {py} -m vtonpipe.cli sample --out raw --people 2 --seed 3 --size 64x48
    outs: [raw]
  ingest:
    cmd: {py} -m vtonpipe.cli ingest --dataset t --root raw --layout mpv --build build
    deps: [raw]
    outs: [build/ingest]
  keypoints:
    cmd: {py} -m vtonpipe.cli annotate keypoints --dataset t --build build --backend groundtruth
    deps: [raw, build/ingest]
    outs: [build/annotations/keypoints]
  pack:
    cmd: {py} -m vtonpipe.cli pack --dataset t --build build
    deps: [build/ingest, build/annotations/keypoints]
    outs: [build/packed]
"""


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("dvc") is None or shutil.which("git") is None, reason="needs the dvc and git commands")
def test_dvc_push_then_pull_in_a_second_clone_recomputes_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    first, second, remote = tmp_path / "a", tmp_path / "b", tmp_path / "remote"
    first.mkdir()
    (first / "dvc.yaml").write_text(DVC_YAML.format(py=sys.executable))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "remote", "add", "-d", "shared", str(remote)], ["dvc", "repro"]):
        _run(cmd, first, env)
    _run(["dvc", "push"], first, env)
    _run(["git", "add", "-A"], first, env)
    _run(["git", "commit", "-qm", "build"], first, env)

    _run(["git", "clone", "-q", str(first), str(second)], tmp_path, env)
    assert not list(second.rglob("*.parquet")) and not (second / "raw").exists()  # git carries only dvc.yaml, dvc.lock and .gitignore files
    _run(["dvc", "pull"], second, env)
    verified = _run([sys.executable, "-m", "vtonpipe.cli", "verify", "--dataset", "t", "--build", "build"], second, env)
    assert "annotations/keypoints: ok (4 rows" in verified and "packed/train: ok" in verified
    again = _run(["dvc", "repro"], second, env)
    assert "Running stage" not in again
    for stage in ("sample", "ingest", "keypoints", "pack"):
        assert f"Stage '{stage}' didn't change, skipping" in again
