"""`vtonpipe annotate` as a whole DAG: failure budgets, the summary table, stages after an
over-budget one, `show` of failed items, and the messages users see."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from builders import person_image, simple_build, summary_rows
from click.testing import CliRunner

from vtonpipe.annotators import get_annotator, register_backend
from vtonpipe.cli import main
from vtonpipe.converters.masks import mask_bbox
from vtonpipe.core import AnnotationFailure, Backend
from vtonpipe.io import write_image
from vtonpipe.pipeline.ingest import ingest
from vtonpipe.pipeline.show import show_panels
from vtonpipe.pipeline.store import ShardReader
from vtonpipe.schemas.person_mask import PersonMaskRecord


@register_backend
class MaskFromKeypoints(Backend):
    """Test downstream stage: the box of the image's keypoints row as a person mask."""

    spec = get_annotator("person_mask")
    name = "test-from-keypoints"
    requires = ("keypoints",)

    def annotate(self, items, ctx):
        out = []
        for item in items:
            try:
                kp = ctx.annotation("keypoints", item.image_id).keypoints
            except AnnotationFailure as f:
                out.append(f)
                continue
            mask = np.zeros(item.image.shape[:2], np.uint8)
            x0, y0 = kp[:, :2].min(0).astype(int)
            x1, y1 = kp[:, :2].max(0).astype(int)
            mask[y0 : y1 + 1, x0 : x1 + 1] = 1
            out.append(PersonMaskRecord(mask=mask, area_fraction=float(mask.mean()), bbox=mask_bbox(mask)))
        return out


@pytest.fixture
def half_detected(tmp_path, monkeypatch):
    """A build of 3 people (6 person images) whose keypoints exist for 4 images only, and a
    params.yaml running keypoints (budget 10%) then a person_mask stage that reads them."""
    build = simple_build(tmp_path, 3)
    persons = sorted(r["image_id"] for r in ShardReader(build / "ingest" / "images") if r["kind"] == "person")
    kp = np.tile(np.array([[40, 50, 1.0]], np.float32), (18, 1)) + np.arange(18, dtype=np.float32)[:, None] * [3, 4, 0]
    path = tmp_path / "kp.npz"
    np.savez(path, ids=np.array(persons[:4]), values=np.stack([kp] * 4))
    params = {
        "annotators": {
            "keypoints": {"backend": "test-from-file", "params": {"path": str(path)}, "max_failure_rate": 0.1},
            "person_mask": {"backend": "test-from-keypoints", "max_failure_rate": 0.1},
        }
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return build, persons


def test_over_budget_stage_is_reported_and_the_next_stage_still_runs(half_detected):
    build, persons = half_detected
    runner = CliRunner()
    res = runner.invoke(main, ["annotate", "--dataset", "t", "--build", str(build)])
    assert res.exit_code == 1, res.output
    rows = summary_rows(res.output)
    assert (rows["keypoints"]["computed"], rows["keypoints"]["failed"], rows["keypoints"]["top reasons"]) == ("4", "2", "no_person 2")
    assert rows["keypoints"]["over budget"] == "yes (33% > 10%)"
    assert (rows["person_mask"]["top reasons"], rows["person_mask"]["over budget"]) == ("missing_upstream 2", "no")
    masks = ShardReader(build / "annotations" / "person_mask")
    assert sorted(masks.ids()) == persons[:4]  # downstream ran on the items that have upstream rows

    again = runner.invoke(main, ["annotate", "--dataset", "t", "--build", str(build)])  # nothing to do
    assert again.exit_code == 1
    rows = summary_rows(again.output)
    assert (rows["keypoints"]["already done"], rows["keypoints"]["top reasons"]) == ("4", "no_person 2")  # recorded reasons
    assert runner.invoke(main, ["annotate", "--dataset", "t", "--build", str(build), "--max-failure-rate", "0.5"]).exit_code == 0


def test_show_draws_the_failure_of_a_failed_stage(half_detected):
    build, persons = half_detected
    CliRunner().invoke(main, ["annotate", "--dataset", "t", "--build", str(build)])
    failed = show_panels(build, persons[5])
    assert [t for t, _ in failed] == [persons[5].rsplit("/", 1)[-1], "keypoints/test-from-file", "person_mask/test-from-keypoints"]
    photo = failed[0][1]
    assert np.abs(failed[1][1].astype(int) - photo).mean() > 20  # dimmed and written on, not the bare photo
    ok = show_panels(build, persons[0])
    assert [t for t, _ in ok][1:] == ["keypoints/test-from-file", "person_mask/test-from-keypoints"]


def test_unsupported_formats_and_undecodable_files_are_named(tmp_path):
    root = tmp_path / "raw"
    (root / "train" / "image").mkdir(parents=True)
    (root / "train" / "cloth").mkdir(parents=True)
    write_image(root / "train" / "image" / "a_00.jpg", person_image(0))
    write_image(root / "train" / "image" / "b_00.png", person_image(1))
    (root / "train" / "image" / "c_00.tif").write_bytes(b"II*\x00")
    (root / "train" / "image" / "d_00.jpg").write_bytes(b"not a jpeg at all")
    for name in ("a_00.jpg", "b_00.jpg", "c_00.jpg", "d_00.jpg"):
        write_image(root / "train" / "cloth" / name, person_image(2))
    (root / "train_pairs.txt").write_text("a_00.jpg a_00.jpg\nb_00.png b_00.jpg\nc_00.tif c_00.jpg\nd_00.jpg d_00.jpg\n")
    res = ingest("v", root, tmp_path / "build", layout_name="viton", max_failure_rate=1.0, show_progress=False)
    report = yaml.safe_load((tmp_path / "build" / "ingest" / "report.json").read_text())
    details = {p["kind"]: p["detail"] for p in report["problems"]}
    assert details["unsupported_format"] == "train/image/c_00.tif: unsupported image format .tif (supported: .jpg, .jpeg, .png, .bmp, .webp)"
    assert "d_00.jpg" in details["unreadable_image"] and "BytesIO" not in details["unreadable_image"]
    assert res.pairs == 2


@pytest.mark.slow
def test_third_party_logs_are_silenced_unless_verbose(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    (tmp_path / "params.yaml").write_text("data_root: d\ndatasets:\n  sample: {layout: mpv, root: d/sample/raw}\n")

    def vtonpipe(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "vtonpipe.cli", *args]
        return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)

    for args in (["sample", "--people", "1", "--size", "256x192"], ["ingest", "--dataset", "sample"]):
        assert vtonpipe(*args).returncode == 0
    quiet = vtonpipe("annotate", "keypoints", "--dataset", "sample")
    assert quiet.returncode == 0, quiet.stderr
    assert "TensorFlow Lite" not in quiet.stderr and "absl::InitializeLog" not in quiet.stderr and " inference_feedback_manager.cc" not in quiet.stderr
    assert "keypoints" in quiet.stdout
    loud = vtonpipe("-v", "annotate", "keypoints", "--dataset", "sample", "--recompute")
    assert loud.returncode == 0 and "TensorFlow Lite" in loud.stderr


def test_the_stderr_filter_drops_native_noise_even_when_two_lines_merge():
    from vtonpipe.logs import _forward

    noise = b"W0000 00:00:1796278734.099999    7345 inference_feedback_manager.cc:114] Feedback manager requires a model"
    merged = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU." + noise  # two native threads at once
    text = b"\n".join([noise, merged, b"Traceback (most recent call last):", b"ValueError: a real error", b"no newline at the end"])
    source_read, source_write = os.pipe()
    sink_read, sink_write = os.pipe()
    os.write(source_write, text)
    os.close(source_write)
    _forward(source_read, sink_write)
    os.close(sink_write)
    with os.fdopen(sink_read, "rb") as sink:
        assert sink.read() == b"Traceback (most recent call last):\nValueError: a real error\nno newline at the end"
