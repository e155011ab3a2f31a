"""The ``parsing`` annotator end to end: SCHP checkpoints generated in the test, run_stage, shards."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from builders import simple_build
from test_schp import calibrated_state, constant_state, write_checkpoint

from vtonpipe.annotators import backends_of, get_annotator, get_backend
from vtonpipe.annotators.parsing import SCHP_WEIGHTS, parsing_record
from vtonpipe.converters.labels import LIP_PALETTE, atr_to_lip
from vtonpipe.core import MissingWeightsError
from vtonpipe.models.nets.schp import SCHPParser, load_schp
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.context import AnnotationContext
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.pipeline.store import ShardReader
from vtonpipe.vis import DRAWERS

SMALL = {"input_size": 65}  # a full-size ResNet-101 forward is tested once, in test_schp.py


@pytest.fixture(scope="module")
def states():
    return {"lip": calibrated_state(20, seed=1), "atr": calibrated_state(18, seed=2)}


@pytest.fixture
def weights(tmp_path, monkeypatch):
    """An empty weights folder (VTONPIPE_WEIGHTS) and a writer of SCHP checkpoints into it."""
    folder = tmp_path / "weights"
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(folder))

    def put(dataset: str, state: dict[str, torch.Tensor]):
        return write_checkpoint(folder / SCHP_WEIGHTS[dataset].relpath, state)

    yield put
    for p in folder.rglob("*.pth"):
        p.unlink()


def person_rows(build):
    reader = ShardReader(build / "annotations" / "parsing")
    return {r["image_id"]: r for r in reader}


def test_spec():
    spec = get_annotator("parsing")
    assert spec.level == "image" and spec.kinds == ("person",) and "schp" in backends_of("parsing")
    assert spec.schema["parsing"].dense and spec.schema["class_pixels"].shape == (20,)


def test_constant_checkpoints_through_the_stage(tmp_path, weights, states):
    build = simple_build(tmp_path, n=2)
    weights("lip", constant_state(states["lip"], 5))
    res = run_stage(build, StageConfig("parsing", "schp", SMALL), show_progress=False)
    assert res.computed == res.total == 4 and res.failed == 0
    ctx = AnnotationContext(build)
    for image_id, r in person_rows(build).items():
        h, w = ctx.load_image(image_id).shape[:2]
        assert r["parsing"].shape == (h, w)
        assert r["parsing"].dtype == np.uint8 and (r["parsing"] == 5).all()  # upper-clothes everywhere
        assert r["native_label_set"] == "lip" and r["person_fraction"] == 1.0
        assert r["class_pixels"][5] == h * w and r["class_pixels"].sum() == h * w
        np.testing.assert_array_equal(r["bbox"], [0, 0, w, h])
        assert r["backend"] == "schp" and '"dataset":"lip"' in r["params"]
    weights("atr", constant_state(states["atr"], 7))  # ATR dress -> LIP dress (6)
    run_stage(build, StageConfig("parsing", "schp", {**SMALL, "dataset": "atr"}), show_progress=False)
    rows = person_rows(build)
    assert len(rows) == 4 and all((r["parsing"] == 6).all() and r["native_label_set"] == "atr" for r in rows.values())


def test_background_everywhere_is_a_no_person_failure(tmp_path, weights, states):
    build = simple_build(tmp_path, n=1)
    weights("lip", constant_state(states["lip"], 0))
    res = run_stage(build, StageConfig("parsing", "schp", SMALL), show_progress=False)
    assert res.failed == 2 and res.failures_by_reason == {"no_person": 2}


def test_random_checkpoint_end_to_end_matches_the_model(tmp_path, weights, states):
    build = simple_build(tmp_path, n=1)
    path = weights("atr", states["atr"])
    params = {"dataset": "atr", "input_size": 97, "flip": True}
    run_stage(build, StageConfig("parsing", "schp", params), show_progress=False)
    reader = ShardReader(build / "annotations" / "parsing")
    assert reader.manifest["provenance"][0]["weights_sha256"].keys() == {"schp/exp-schp-201908301523-atr.pth"}
    parser = SCHPParser(load_schp(path, "atr"), "atr", input_size=97, flip=True)
    ctx = AnnotationContext(build)
    for r in reader:
        image = ctx.load_image(r["image_id"])
        expected = atr_to_lip(parser([image])[0])
        np.testing.assert_array_equal(r["parsing"], expected)
        assert r["parsing"].shape == image.shape[:2] and len(np.unique(r["parsing"])) > 1
        np.testing.assert_array_equal(r["class_pixels"], np.bincount(expected.ravel(), minlength=20))


def test_missing_weights_name_the_file_and_where_to_put_it(tmp_path, weights, states):
    build = simple_build(tmp_path, n=1)
    with pytest.raises(MissingWeightsError) as e:  # no checkpoint: the stage cannot start; it names the one it needs
        run_stage(build, StageConfig("parsing", "schp", SMALL), show_progress=False)
    assert "exp-schp-201908261155-lip.pth" in str(e.value) and "exp-schp-201908301523-atr.pth" not in str(e.value)
    weights("atr", states["atr"])  # usable with ATR, but this run asks for LIP
    with pytest.raises(MissingWeightsError) as e:
        run_stage(build, StageConfig("parsing", "schp", SMALL), show_progress=False)
    msg = str(e.value)
    assert str(tmp_path / "weights" / "schp" / "exp-schp-201908261155-lip.pth") in msg
    assert "1ZrTiadzAOM332d896fw7JZQ2lWALedDB" in msg and "VTONPIPE_WEIGHTS" in msg
    assert get_backend("parsing", "schp")({"dataset": "atr"}).problems() == []


def test_params_are_checked():
    cls = get_backend("parsing", "schp")
    with pytest.raises(ValueError, match="dataset"):
        cls({"dataset": "pascal"})
    with pytest.raises(ValueError, match="input_size"):
        cls({"input_size": 8})
    with pytest.raises(ValueError, match="unknown params"):
        cls({"scales": [1.0]})


def test_parsing_record_and_drawing():
    p = np.zeros((6, 8), np.uint8)
    p[1:4, 2:5] = 13
    p[4, 6] = 19
    r = parsing_record(p, "lip", 0.01)
    np.testing.assert_array_equal(r.bbox, [2, 1, 7, 5])
    assert r.class_pixels[13] == 9 and r.class_pixels[19] == 1 and r.class_pixels[0] == 38
    assert r.person_fraction == pytest.approx(10 / 48)
    assert parsing_record(p, "lip", 0.5).reason == "no_person"
    image = np.full((6, 8, 3), 100, np.uint8)
    out = DRAWERS.get("parsing")(image, r, {})
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], [100, 100, 100])  # background untouched
    np.testing.assert_array_equal(out[2, 3], np.round(0.4 * 100 + 0.6 * LIP_PALETTE[13].astype(float)))
