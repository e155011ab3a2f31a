"""The stage runner: resume after a kill, incremental work, failures, provenance."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from builders import (
    garment_image,
    make_build,
    person_image,
    simple_build,
    summary_rows,
    write_mpv_tree,
)

from vtonpipe.annotators import get_annotator, get_backend, register_backend
from vtonpipe.core import (
    AnnotationFailure,
    Backend,
    BackendUnavailableError,
    Requirements,
    WeightFile,
)
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.ingest import ingest
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.pipeline.store import ShardReader
from vtonpipe.schemas.garment_mask import GarmentMaskRecord

GM = "garment_mask"


def _rows(build: Path, name: str = GM) -> list[dict]:
    return list(ShardReader(build / "annotations" / name))


def _failures(build: Path, name: str = GM) -> list[dict]:
    return list(ShardReader(build / "annotations" / name / "failures"))


def test_rows_carry_key_and_provenance(tmp_path):
    build = simple_build(tmp_path, 3)
    res = run_stage(build, StageConfig(GM), show_progress=False)
    assert (res.total, res.computed, res.failed) == (3, 3, 0)
    rows = _rows(build)
    assert len(rows) == 3
    for r in rows:
        assert (r["annotator"], r["backend"], r["version"]) == (GM, "classical", get_backend(GM, "classical").version)
        assert len(r["params_hash"]) == 16 and json.loads(r["params"])["border"] == 4
        assert r["mask"].shape == (256, 192) and r["mask"].dtype == np.uint8
    manifest = json.loads((build / "annotations" / GM / "manifest.json").read_text())
    assert manifest["complete"] and manifest["provenance"][0]["params_hash"] == rows[0]["params_hash"]
    assert manifest["provenance"][0]["params"]["border"] == 4


def test_rerun_skips_and_added_images_cost_only_their_own_work(tmp_path):
    people = [(person_image(i), person_image(i + 50), garment_image(i)) for i in range(4)]
    build = make_build(tmp_path, people)
    assert run_stage(build, StageConfig(GM), show_progress=False).computed == 4
    again = run_stage(build, StageConfig(GM), show_progress=False)
    assert (again.computed, again.skipped) == (0, 4)
    # two more people appear in the dataset
    people += [(person_image(i), person_image(i + 50), garment_image(i)) for i in range(4, 6)]
    write_mpv_tree(tmp_path / "raw", people)
    ingest("t", tmp_path / "raw", build, layout_name="mpv", show_progress=False)
    more = run_stage(build, StageConfig(GM), show_progress=False)
    assert (more.computed, more.skipped) == (2, 4)
    ids = [r["image_id"] for r in _rows(build)]
    assert len(ids) == len(set(ids)) == 6


def test_an_image_changed_in_place_is_recomputed_and_its_old_row_dropped(tmp_path):
    build = simple_build(tmp_path, 3)
    run_stage(build, StageConfig(GM, rows_per_shard=2), show_progress=False)
    changed = "all/P0001@1=cloth_front.jpg"
    write_mpv_tree(tmp_path / "raw", [(person_image(i), person_image(i + 100), garment_image(i + (7 if i == 1 else 0))) for i in range(3)])
    ingest("t", tmp_path / "raw", build, layout_name="mpv", show_progress=False)
    res = run_stage(build, StageConfig(GM, rows_per_shard=2), show_progress=False)
    assert (res.computed, res.skipped) == (1, 2)
    rows = _rows(build)
    assert sorted(r["image_id"] for r in rows) == sorted({r["image_id"] for r in rows}) and len(rows) == 3
    sha = {r["image_id"]: r["sha256"] for r in ShardReader(build / "ingest" / "images")}
    assert all(r["input_sha256"] == sha[r["image_id"]] for r in rows)
    assert next(r for r in rows if r["image_id"] == changed)["input_sha256"] == sha[changed]


def test_param_change_recomputes_and_drops_stale_shards(tmp_path):
    build = simple_build(tmp_path, 2)
    run_stage(build, StageConfig(GM), show_progress=False)
    res = run_stage(build, StageConfig(GM, params={"border": 6}), show_progress=False)
    assert res.computed == 2
    rows = _rows(build)
    assert len(rows) == 2 and all(json.loads(r["params"])["border"] == 6 for r in rows)
    assert len(list((build / "annotations" / GM).glob("shard-*.parquet"))) == 1


def test_recompute_discards_existing_rows(tmp_path):
    build = simple_build(tmp_path, 2)
    run_stage(build, StageConfig(GM), show_progress=False)
    before = {s.name for s in (build / "annotations" / GM).glob("shard-*.parquet")}
    res = run_stage(build, StageConfig(GM), recompute=True, show_progress=False)
    assert (res.computed, res.skipped) == (2, 0)
    after = {s.name for s in (build / "annotations" / GM).glob("shard-*.parquet")}
    assert len(_rows(build)) == 2 and not before & after


def test_identical_inputs_are_computed_once(tmp_path):
    g = garment_image(7)
    build = make_build(tmp_path, [(person_image(i), person_image(i + 1), g) for i in range(3)])
    res = run_stage(build, StageConfig(GM), show_progress=False)
    assert (res.computed, res.reused) == (1, 2)
    rows = _rows(build)
    assert len({r["image_id"] for r in rows}) == 3 and len({r["input_sha256"] for r in rows}) == 1


def test_failures_are_recorded_and_skipped_on_rerun(tmp_path):
    blank = np.full((256, 192, 3), 250, np.uint8)
    build = make_build(tmp_path, [(person_image(0), person_image(1), garment_image(0)), (person_image(2), person_image(3), blank)])
    res = run_stage(build, StageConfig(GM), show_progress=False)
    assert (res.computed, res.failed, res.failures_by_reason) == (1, 1, {"no_garment": 1})
    fails = _failures(build)
    assert [(f["item_id"], f["error"]) for f in fails] == [("all/P0001@1=cloth_front.jpg", "no_garment")]
    again = run_stage(build, StageConfig(GM), show_progress=False)
    assert (again.computed, again.skipped, again.failed) == (0, 2, 1)
    retried = run_stage(build, StageConfig(GM), retry_failed=True, show_progress=False)
    assert (retried.computed, retried.failed) == (0, 1)
    assert len(_failures(build)) == 1
    assert not retried.over_budget  # 1/2 failed, no budget given
    over = run_stage(build, StageConfig(GM, max_failure_rate=0.25), show_progress=False)
    assert over.over_budget and over.failures_by_reason == {"no_garment": 1}  # a rerun knows its recorded reasons
    assert len(_rows(build)) == 1  # rows computed before are kept


def test_image_corrupted_after_ingest_is_a_recorded_failure(tmp_path):
    build = simple_build(tmp_path, 2)
    (tmp_path / "raw" / "all" / "P0000@1=cloth_front.jpg").write_bytes(b"\xff\xd8 not a jpeg any more")
    res = run_stage(build, StageConfig(GM), show_progress=False)
    assert (res.computed, res.failures_by_reason) == (1, {"decode_error": 1})


@register_backend
class _Flaky(Backend):
    """Test backend: fails hard on images whose id contains 'P0001', a clean failure on 'P0002'."""

    spec = get_annotator(GM)
    name = "test-flaky"
    default_params = {}

    def annotate(self, items, ctx):
        out = []
        for item in items:
            if "P0001" in item.image_id:
                raise ZeroDivisionError("boom")
            if "P0002" in item.image_id:
                out.append(AnnotationFailure("no_garment", "clean failure"))
                continue
            m = np.ones(item.image.shape[:2], np.uint8)
            out.append(GarmentMaskRecord(mask=m, area_fraction=1.0, bbox=np.array([0, 0, m.shape[1], m.shape[0]]), background_rgb=np.zeros(3, np.uint8)))
        return out


def test_an_exception_is_isolated_to_its_item(tmp_path):
    build = simple_build(tmp_path, 4)
    res = run_stage(build, StageConfig(GM, "test-flaky", batch_size=4), show_progress=False)
    assert (res.computed, res.failed) == (2, 2)
    assert res.failures_by_reason == {"error:ZeroDivisionError": 1, "no_garment": 1}


@register_backend
class _NeedsWeights(Backend):
    spec = get_annotator(GM)
    name = "test-weights"
    requirements = Requirements(
        packages=("no_such_package_xyz",), weights=(WeightFile("test/model.pth", "https://example.org/model.pth", "ab" * 32, "test model"),)
    )

    def annotate(self, items, ctx):
        raise AssertionError("never called")


def test_unavailable_backend_names_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(tmp_path / "w"))
    build = simple_build(tmp_path, 1)
    with pytest.raises(BackendUnavailableError) as e:
        run_stage(build, StageConfig(GM, "test-weights"), show_progress=False)
    msg = str(e.value)
    assert "no_such_package_xyz" in msg
    assert str(tmp_path / "w" / "test" / "model.pth") in msg and "ab" * 32 in msg and "https://example.org/model.pth" in msg
    assert not (build / "annotations" / GM).exists()


def test_unknown_params_are_refused(tmp_path):
    build = simple_build(tmp_path, 1)
    with pytest.raises(ValueError, match="unknown params"):
        run_stage(build, StageConfig(GM, params={"bordr": 3}), show_progress=False)


def test_two_worker_processes_share_the_work_and_build_the_backend_once_each(tmp_path):
    build = simple_build(tmp_path, 6)
    log = tmp_path / "log"
    log.mkdir()
    res = run_stage(build, StageConfig(GM, "test-logged", {"log_dir": str(log)}, workers=2, batch_size=1), show_progress=False)
    assert res.computed == 6
    events = [p.name.split("-")[:2] for p in log.iterdir()]
    setups = sorted(pid for event, pid in events if event == "setup")
    batches = [pid for event, pid in events if event == "batch"]
    assert len(setups) == 2 and len(set(setups)) == 2 and str(os.getpid()) not in setups  # two other processes, once each
    assert set(batches) == set(setups) and len(batches) == 6  # both did batches: the work was shared
    parallel = {r["image_id"]: r["mask"] for r in _rows(build)}
    (build / "annotations" / GM / "manifest.json").unlink()
    run_stage(build, StageConfig(GM, workers=1), show_progress=False)
    serial = {r["image_id"]: r["mask"] for r in _rows(build)}
    assert parallel.keys() == serial.keys() and all(np.array_equal(parallel[k], serial[k]) for k in serial)


@pytest.mark.slow
def test_resume_after_the_stage_process_is_killed(tmp_path):
    n = 24
    people = [(person_image(i, (64, 48)), person_image(i, (64, 48)), garment_image(i, (768, 576))) for i in range(n)]
    build = make_build(tmp_path, people)
    (tmp_path / "params.yaml").write_text("annotators:\n  garment_mask:\n    batch_size: 1\n    rows_per_shard: 2\n")
    cmd = [sys.executable, "-m", "vtonpipe.cli", "annotate", GM, "--dataset", "t", "--build", str(build)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = build / "annotations" / GM / "manifest.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if manifest.exists() and len(json.loads(manifest.read_text())["shards"]) >= 3:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the stage finished before it could be killed: make it slower"
    before = json.loads(manifest.read_text())
    assert not before["complete"] and 0 < before["rows"] < n

    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    row = summary_rows(out)[GM]
    assert (row["computed"], row["already done"]) == (str(n - before["rows"]), str(before["rows"]))
    ids = [r["image_id"] for r in _rows(build)]
    assert len(ids) == n and len(set(ids)) == n
    assert json.loads(manifest.read_text())["complete"]


def _write_lock(build: Path, **holder) -> Path:
    path = build / "annotations" / GM / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"started": time.time(), "command": "vtonpipe annotate garment_mask", **holder}))
    return path


def test_a_second_run_on_a_locked_stage_refuses_naming_the_holder(tmp_path):
    from vtonpipe.pipeline.lock import StageLockedError

    build = simple_build(tmp_path, 2)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = _write_lock(build, host=socket.gethostname(), pid=holder.pid)
        with pytest.raises(StageLockedError, match=f"pid {holder.pid} on {socket.gethostname()}.*vtonpipe annotate garment_mask"):
            run_stage(build, StageConfig(GM), show_progress=False)
        assert lock.exists() and not (build / "annotations" / GM / "manifest.json").exists()
        _write_lock(build, host="another-node", pid=1)  # a live-or-not process elsewhere: never taken over
        with pytest.raises(StageLockedError, match="another-node"):
            run_stage(build, StageConfig(GM), show_progress=False)
    finally:
        holder.kill()
        holder.wait()


def test_a_dead_runs_lock_is_taken_over_and_released(tmp_path):
    build = simple_build(tmp_path, 2)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = _write_lock(build, host=socket.gethostname(), pid=dead.pid)
    res = run_stage(build, StageConfig(GM), show_progress=False)
    assert res.computed == 2 and not lock.exists()


def test_cli_annotate_reports_the_lock_holder(tmp_path):
    build = simple_build(tmp_path, 2)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _write_lock(build, host=socket.gethostname(), pid=holder.pid)
        out = subprocess.run(
            [sys.executable, "-m", "vtonpipe.cli", "annotate", GM, "--dataset", "t", "--build", str(build)],
            check=False,
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 1
        assert f"is being written by pid {holder.pid}" in out.stderr and "Traceback" not in out.stderr
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_a_dask_local_cluster_of_two_workers_gives_the_local_rows(tmp_path):
    build = simple_build(tmp_path, 6)
    log = tmp_path / "log"
    log.mkdir()
    res = run_stage(build, StageConfig(GM, "test-logged", {"log_dir": str(log)}, workers=2, batch_size=1, scheduler="processes"), show_progress=False)
    assert (res.computed, res.failed) == (6, 0)
    events = [p.name.split("-")[:2] for p in log.iterdir()]
    setups = [pid for event, pid in events if event == "setup"]
    batches = [pid for event, pid in events if event == "batch"]
    assert len(setups) == 2 and len(set(setups)) == 2 and str(os.getpid()) not in setups  # once per worker, not per batch
    assert set(batches) == set(setups) and len(batches) == 6
    on_dask = {r["image_id"]: r for r in _rows(build)}
    (build / "annotations" / GM / "manifest.json").unlink()
    run_stage(build, StageConfig(GM, "test-logged", {"log_dir": str(log)}), show_progress=False)
    local = {r["image_id"]: r for r in _rows(build)}
    assert on_dask.keys() == local.keys()
    for k, row in local.items():
        assert np.array_equal(on_dask[k]["mask"], row["mask"]) and on_dask[k]["params_hash"] == row["params_hash"]


def test_an_unknown_scheduler_is_a_clear_error(tmp_path):
    build = simple_build(tmp_path, 1)
    with pytest.raises(ValueError, match="scheduler must be local, processes or a Dask address"):
        run_stage(build, StageConfig(GM, scheduler="yarn"), show_progress=False)


@pytest.mark.slow
def test_a_killed_worker_process_loses_and_duplicates_no_row(tmp_path):
    n = 12
    people = [(person_image(i, (64, 48)), person_image(i + 50, (64, 48)), garment_image(i, (64, 48))) for i in range(n)]
    build = make_build(tmp_path, people)
    log = tmp_path / "log"
    log.mkdir()
    (tmp_path / "params.yaml").write_text(
        f"annotators:\n  garment_mask:\n    backend: test-logged\n    params: {{log_dir: {log}, batch_seconds: 0.25}}\n    batch_size: 1\n    rows_per_shard: 2\n    workers: 2\n"
    )
    cmd = [
        sys.executable,
        "-c",
        "import builders, sys; from vtonpipe.cli import main; sys.argv[0] = 'vtonpipe'; main()",
        "annotate",
        GM,
        "--dataset",
        "t",
        "--build",
        str(build),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(log.glob("batch-*"))) < 4:
        time.sleep(0.02)
    victim = int(next(log.glob("setup-*")).name.split("-")[1])
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert "Traceback" not in out + err
    manifest = build / "annotations" / GM / "manifest.json"
    first = json.loads(manifest.read_text()) if manifest.exists() else {"rows": 0, "complete": False}
    assert proc.returncode == 1, "the stage finished before its worker was killed: make its batches slower"
    assert "a worker process died" in err and not first["complete"]

    rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    row = summary_rows(rerun)[GM]
    assert (row["computed"], row["already done"]) == (str(n - first["rows"]), str(first["rows"]))
    ids = [r["image_id"] for r in _rows(build)]
    assert len(ids) == n and len(set(ids)) == n


def test_a_second_stage_of_one_annotator_writes_its_own_directory(tmp_path):
    from vtonpipe.pipeline.pack import stages_present

    build = simple_build(tmp_path, 2)
    run_stage(build, StageConfig(GM), show_progress=False)
    res = run_stage(build, StageConfig(GM, params={"border": 6}, stage="garment_mask_wide"), show_progress=False)
    assert res.computed == 2 and res.directory == build / "annotations" / "garment_mask_wide"
    wide = _rows(build, "garment_mask_wide")
    assert {r["annotator"] for r in wide} == {GM} and {json.loads(r["params"])["border"] for r in wide} == {6}
    assert {json.loads(r["params"])["border"] for r in _rows(build)} == {4}  # the main stage is untouched
    from vtonpipe.pipeline.layout import BuildLayout

    assert stages_present(BuildLayout(build)) == [GM]  # pack reads the main stage only
    out = subprocess.run(
        [sys.executable, "-m", "vtonpipe.cli", "annotate", GM, "--dataset", "t", "--build", str(build), "--stage", "keypoints"],
        check=False, cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode != 0 and "must be a new name" in out.stderr


def test_pack_without_images_keeps_the_annotations_and_the_loader_says_so(tmp_path):
    from vtonpipe.pipeline.pack import pack
    from vtonpipe.training.data import MissingPriorError, PackedPairs

    build = simple_build(tmp_path, 4)
    run_stage(build, StageConfig(GM), show_progress=False)
    result = pack(build, include_images=False, show_progress=False)
    rows = [r for split in result.rows for r in ShardReader(build / "packed" / split)]
    assert len(rows) == 4 and all(r["source.image"] is None and r["garment.image"] is None for r in rows)
    assert all(r["garment.garment_mask.mask"] is not None for r in rows)
    with pytest.raises(MissingPriorError, match="packed without images"):
        PackedPairs(build, "train", {"garment_image"})
    assert len(PackedPairs(build, "train", {"garment_mask"})) == 3
