"""Issue 14's targets on a small harder sample, every stage at params.yaml's default.

A sample with back views and forearms across the torso (``vtonpipe sample --back-views 0.25
--arms-in-front 0.3``, 12 people, a seed no benchmark uses) goes through the default annotators
(MediaPipe keypoints and masks, the geometric parser, the anny fit, the rendered DensePose and
flow) and ``bench accuracy`` scores it against its ground truth. The joint error (<= 2 px) and
hidden-state IoU (>= 0.6) targets are asserted. Flow EPE and DensePose part accuracy are not met
on this sample and are asserted at the level measured here (a regression fails them), with the
target beside: one pair (S0011, arms overhead -> walking with a forearm across the torso) holds
30 % of the EPE (docs/BODY_FIT.md, stops 29-43).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from vtonpipe.bench.accuracy import evaluate
from vtonpipe.cli import main
from vtonpipe.synth import write_sample

REPO = Path(__file__).resolve().parents[1]
PEOPLE, SEED = 12, 31
STAGES = ["keypoints", "person_mask", "garment_mask", "parsing", "body", "densepose", "smpl_flow"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scores(tmp_path_factory) -> dict[str, dict[str, float]]:
    tmp = tmp_path_factory.mktemp("harder")
    write_sample(tmp / "raw", PEOPLE, seed=SEED, back_share=0.25, arms_in_front_share=0.3)
    params = tmp / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    build = tmp / "build"
    runner = CliRunner()
    for args in (
        ["ingest", "--dataset", "sample", "--root", str(tmp / "raw"), "--build", str(build)],
        ["annotate", *STAGES, "--dataset", "sample", "--build", str(build)],
    ):
        res = runner.invoke(main, ["--params", str(params), *args])
        assert res.exit_code == 0, (args, res.output)
    return {s.annotator: s.metrics for s in evaluate(build)}


#: measured on this sample (stop 43: the fit started from five twists of the arms: 1.40 px, EPE 2.61 px, part accuracy 0.9145), and the issue's targets
EPE_NOW, EPE_TARGET = 2.61, 2.5
PART_ACCURACY_NOW, PART_ACCURACY_TARGET = 0.9145, 0.92


def test_joint_error_meets_the_target(scores):
    assert scores["body"]["joint_px_error"] <= 2.0, scores["body"]


def test_hidden_state_iou_meets_the_target(scores):
    assert scores["smpl_flow"]["visibility_iou_hidden"] >= 0.6, scores["smpl_flow"]


def test_flow_and_densepose_stay_at_their_measured_level(scores):
    """Not yet the targets: the level measured on this sample, with a margin for other CPUs."""
    assert scores["smpl_flow"]["epe_visible"] <= EPE_NOW + 0.4, (scores["smpl_flow"], EPE_TARGET)
    assert scores["densepose"]["part_accuracy"] >= PART_ACCURACY_NOW - 0.01, (scores["densepose"], PART_ACCURACY_TARGET)
