"""The DVC DAG on a copy of this repository: a full run (priors, then two-step training runs),
then a second run that does nothing, then a params change that reruns only the affected stages."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _copy_repo(dst: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        if f == "dvc.lock" or not (REPO / f).is_file():
            continue
        (dst / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, dst / f)


@pytest.mark.slow
def test_dvc_repro_twice_and_selective_rerun(tmp_path):
    _copy_repo(tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["sample"]["people"] = 4  # person 3 is the one test pair the trainers evaluate on
    for section in (params["train"]["warp"]["gcl"], params["train"]["tryon"]["gcl"], params["train"]["landmarks"]):
        section.update(steps=2, log_every=1, checkpoint_every=2, grid_every=0, eval_every=0)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], tmp_path)
    stages = list(yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"])

    first = _run(["dvc", "repro"], tmp_path)
    for stage in stages:
        assert f"Running stage '{stage}'" in first
    assert (tmp_path / "data" / "sample" / "packed" / "manifest.json").exists()

    second = _run(["dvc", "repro"], tmp_path)
    assert "Running stage" not in second
    for stage in stages:
        assert f"Stage '{stage}' didn't change, skipping" in second

    params["annotators"]["garment_mask"]["params"] = {"border": 5}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    third = _run(["dvc", "repro"], tmp_path)
    reran = {s for s in stages if f"Running stage '{s}'" in third}
    assert reran == {"garment_mask", *_downstream(tmp_path / "dvc.yaml", "garment_mask")}
    assert "sample" not in reran and "ingest" not in reran


def _downstream(dvc_yaml: Path, stage: str) -> set[str]:
    """Stages that (transitively) depend on an output of ``stage``."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]

    def outs(s):
        return [next(iter(o)) if isinstance(o, dict) else o for o in stages[s].get("outs", [])]

    found, frontier = set(), {stage}
    while frontier:
        produced = [o for s in frontier for o in outs(s)]
        frontier = {
            s for s in stages if s not in found and s != stage and any(d == o or d.startswith(o + "/") for d in stages[s].get("deps", []) for o in produced)
        }
        found |= frontier
    return found
