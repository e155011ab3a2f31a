"""``vtonpipe train landmarks``: the sal-hrnet task on the generic trainer, on tiny packed builds of
boxes whose corners are the landmarks; its checkpoints loaded by the sal-hrnet annotator; the
labels' backend enforced; the augmentation's geometry."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from builders import simple_build
from click.testing import CliRunner
from packed_builder import flat_row, png, write_build

from vtonpipe.annotators import get_backend
from vtonpipe.cli import main
from vtonpipe.converters.landmarks import ABSENT, OCCLUDED, VISIBLE, flip_landmarks
from vtonpipe.io import sha256_file
from vtonpipe.models.landmarks.augment import flip_where, similarity_warp
from vtonpipe.models.landmarks.decode import LandmarkPredictor
from vtonpipe.models.landmarks.hrnet import build_from_checkpoint
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.context import AnnotationContext
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.pipeline.store import ShardReader, read_manifest
from vtonpipe.training.checkpoint import seed_everything
from vtonpipe.training.data import DataConfig, MissingPriorError, PackedPairs, first_samples
from vtonpipe.training.task import get_task
from vtonpipe.training.trained import load_trained
from vtonpipe.training.trainer import Trainer

SIZE = (64, 32)  # H, W of the images and of training
TINY = {"hrnet_width": 4, "stage_modules": [1, 1, 1], "blocks": 1, "attribute_hidden": 16, "heatmap_sigma": 4.0, "garment_heatmap_sigma": 3.0}
FAST = {"batch_size": 4, "workers": 0, "height": SIZE[0], "width": SIZE[1], "log_every": 1, "grid_every": 0, "checkpoint_every": 100, "verify": False}


def box_landmarks(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Landmarks (32, 3) of a box garment: the neckline along its top edge, shoulders at the top
    corners (the wearer's left on the image's right), armpits below them, waist and hem on the
    sides and the bottom edge; sleeve points absent."""
    cx, w, h = (x0 + x1) / 2, x1 - x0, y1 - y0
    lm = np.zeros((32, 3), np.float32)
    lm[:, 2] = ABSENT
    points = {0: (cx, y0 + 0.1 * h), 7: (x1, y0), 17: (x0, y0), 8: (x1, y0 + 0.3 * h), 18: (x0, y0 + 0.3 * h), 27: (x1, y0 + 0.6 * h), 28: (x0, y0 + 0.6 * h)}
    points.update({k: (cx + f * 0.3 * w, y0) for k, f in zip(range(1, 7), (1.0, 0.5, 0.15, -0.15, -0.5, -1.0))})
    points.update({29: (x1, y1), 30: (cx, y1), 31: (x0, y1)})
    for k, (x, y) in points.items():
        lm[k] = (x, y, VISIBLE)
    return lm


def box_pair(rng: np.random.Generator, pair_id: str, split: str, backend: str = "groundtruth") -> dict:
    """A packed row: a coloured box on white (the garment) and the same box worn lower on a grey
    person image with a head; the collar's back occluded on the person."""
    h, w = SIZE
    colour = rng.integers(20, 200, 3)
    values = {}
    for role, background in (("garment", 255), ("source", 150)):
        bw, bh = rng.uniform(0.4, 0.7) * w, rng.uniform(0.35, 0.55) * h
        x0, y0 = rng.uniform(2, w - bw - 2), rng.uniform(8 if role == "source" else 2, h - bh - 2)
        image = np.full((h, w, 3), background, np.uint8)
        x0, y0, x1, y1 = round(x0), round(y0), round(x0 + bw), round(y0 + bh)
        image[y0 : y1 + 1, x0 : x1 + 1] = colour
        lm = box_landmarks(x0, y0, x1, y1)
        if role == "source":
            image[max(0, y0 - 7) : y0, (x0 + x1) // 2 - 3 : (x0 + x1) // 2 + 3] = (200, 160, 130)
            lm[0, 2] = OCCLUDED
        values[f"{role}.image"] = png(image)
        values[f"{role}.landmarks.landmarks"] = lm
        values[f"{role}.landmarks.backend"] = backend
    return flat_row(pair_id, split, values, has_target=False)


def box_build(root, *, train: int = 24, test: int = 8, backend: str = "groundtruth"):
    rng = np.random.default_rng(0)
    rows = {
        "train": [box_pair(rng, f"train-{i:03d}", "train", backend) for i in range(train)],
        "test": [box_pair(rng, f"test-{i:03d}", "test", backend) for i in range(test)],
    }
    return write_build(root, rows, ("garment.landmarks", "source.landmarks"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 40-step run on the box build: (build, run dir, the untrained network's test metrics)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("lm")
    build = box_build(root / "build")
    task_cls = get_task("landmarks", "sal-hrnet")
    settings = {**FAST, **TINY, "lr": 3e-3, "eval_every": 20}
    Trainer(task_cls, build, settings={**settings, "steps": 40}, run_dir=root / "run", device="cpu").fit()
    # the untrained network: the trainer's initial weights (it seeds, then builds), on the same test pairs
    train_cfg, task_cfg = Trainer(task_cls, build, settings=settings).config, Trainer(task_cls, build, settings=settings).task_config
    seed_everything(train_cfg.seed)
    task = task_cls(task_cfg)
    modules = {k: m.eval() for k, m in task.build().items()}
    test = PackedPairs(build, "test", task.needs(), DataConfig(height=SIZE[0], width=SIZE[1], verify=False))
    with torch.no_grad():
        untrained = {k: float(v.nanmean()) for k, v in task.evaluate(modules, first_samples(test, len(test))).items()}
    torch.set_num_threads(threads)
    return build, root / "run", untrained


def test_a_short_run_lowers_the_loss_and_beats_the_untrained_network(trained):
    _, run, untrained = trained
    with (run / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    loss = [float(r["loss"]) for r in rows if r.get("loss")]
    assert len(loss) == 40
    assert np.mean(loss[-5:]) < 0.7 * np.mean(loss[:5])
    test_rows = [r for r in rows if r.get("test/garment_px_error")]
    assert [int(r["step"]) for r in test_rows] == [20]  # held-out evaluation during the run
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pairs"] == 8
    for role in ("garment", "source"):
        assert metrics[f"{role}_px_error"] < 0.6 * untrained[f"{role}_px_error"], (metrics, untrained)
        assert metrics[f"{role}_attribute_accuracy"] > untrained[f"{role}_attribute_accuracy"] + 0.2, (metrics, untrained)
    assert metrics["garment_attribute_accuracy"] > 0.95  # the box's present / absent pattern is constant


def test_the_annotator_loads_what_the_trainer_writes(trained, tmp_path, one_torch_thread):
    _, run, _ = trained
    checkpoint = run / "checkpoints" / "last.pt"
    build = simple_build(tmp_path, n=1)
    res = run_stage(build, StageConfig("landmarks", "sal-hrnet", {"checkpoint": str(checkpoint), "flip_test": False}), show_progress=False)
    assert res.computed == res.total == 3 and res.failed == 0
    (provenance,) = read_manifest(build / "annotations" / "landmarks")["provenance"]
    assert provenance["weights_sha256"] == {str(checkpoint): sha256_file(checkpoint)}
    # the same network load_trained rebuilds, at the training resolution
    net, input_size, heatmap_sigma = build_from_checkpoint(torch.load(checkpoint, weights_only=True))
    assert input_size == SIZE and heatmap_sigma == TINY["heatmap_sigma"]
    model = load_trained(run, kind="landmarks")
    for k, v in model.modules["net"].state_dict().items():
        torch.testing.assert_close(v, net.state_dict()[k])
    ctx = AnnotationContext(build)
    predictor = LandmarkPredictor(net, input_size, heatmap_sigma, flip=False)
    for row in ShardReader(build / "annotations" / "landmarks"):
        image = ctx.load_image(row["image_id"])
        if ctx.images[row["image_id"]]["kind"] == "garment":
            expected = predictor.garments([image])[0]
        else:
            expected = predictor.people([image], [ctx.load_image(ctx.garments_of(row["image_id"])[0])])[0]
        np.testing.assert_allclose(row["landmarks"], expected, atol=1e-4)
    # Task.infer gives the same decoding on the training-resolution batch
    batch = first_samples(PackedPairs(trained[0], "test", model.task.needs(), DataConfig(height=SIZE[0], width=SIZE[1], verify=False)), 2)
    out = model.task.infer(model.modules, batch)
    torch.testing.assert_close(out["garment_landmarks"], LandmarkPredictor(net, SIZE, heatmap_sigma, flip=False).predict_garments(batch["garment_image"]))
    assert out["source_landmarks"].shape == (2, 32, 3)


def test_labels_of_another_backend_name_the_stage_to_rerun(tmp_path, one_torch_thread):
    build = box_build(tmp_path / "build", train=4, test=2, backend="geometric")
    task_cls = get_task("landmarks", "sal-hrnet")
    with pytest.raises(
        MissingPriorError, match=r"made by the `groundtruth` backend.*`geometric` \(4\).*vtonpipe annotate landmarks --dataset <name> --backend groundtruth"
    ):
        Trainer(task_cls, build, settings={**FAST, **TINY, "steps": 1}, run_dir=tmp_path / "run", device="cpu").fit()
    runner = CliRunner()
    args = ["--params", str(tmp_path / "none.yaml"), "train", "landmarks", "--build", str(build), "--out", str(tmp_path / "run2"), "--device", "cpu"]
    result = runner.invoke(main, [*args, "--labels", "groundtruth"])
    assert result.exit_code != 0 and "vtonpipe annotate landmarks --dataset <name> --backend groundtruth" in result.output
    result = runner.invoke(main, [*args, "--labels", "sal-hrnet"])
    assert result.exit_code != 0 and "not a labels backend" in result.output
    # the rows' own backend is accepted (one training step)
    result = runner.invoke(main, [*args, "--labels", "geometric", "--steps", "1", *[a for k, v in {**FAST, **TINY}.items() for a in ("--set", f"{k}={v}")]])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run2" / "checkpoints" / "last.pt").exists()


def test_augmentation_moves_points_with_the_pixels():
    h, w = SIZE
    images = torch.zeros(2, 3, h, w)
    lm = torch.zeros(2, 32, 3)
    lm[..., 2] = ABSENT
    lm[:, 7] = torch.tensor([20.0, 10.0, VISIBLE])
    lm[:, 30] = torch.tensor([15.0, 50.0, VISIBLE])
    for k in (7, 30):
        x, y = lm[0, k, :2].long().tolist()
        images[:, :, y, x] = 1.0
    # flip: only the flagged sample, ids swapped as the numpy converter swaps them
    flipped, flm = flip_where(images, lm, torch.tensor([True, False]))
    np.testing.assert_allclose(flm[0].numpy(), flip_landmarks(lm[0].numpy(), w))
    torch.testing.assert_close(flm[1], lm[1])
    assert flipped[0, 0, 10, w - 1 - 20] == 1 and torch.equal(flipped[1], images[1])
    # a half turn about the centre (p' = 2c - p) maps pixels to pixels: the bright pixels follow their points
    half_turn = torch.full((2,), math.pi)
    warped, wlm = similarity_warp(images, lm, torch.ones(2), half_turn, torch.tensor([[0.0, 0.0], [0.0, -14.0]]), outside_occludes=True)
    torch.testing.assert_close(wlm[0, [7, 30], :2], torch.tensor([[11.0, 53.0], [16.0, 13.0]]))
    for b, k in ((0, 7), (0, 30), (1, 7)):
        x, y, _ = wlm[b, k].tolist()
        assert warped[b, 0, round(y), round(x)] > 0.99, (b, k, x, y)
    # shifted 14 px up, point 30 lands at y = -1, outside the image: occluded; absent points stay at (0, 0)
    assert wlm[1, 30, 2] == OCCLUDED and wlm[1, 7, 2] == VISIBLE and (wlm[:, 0] == torch.tensor([0.0, 0.0, ABSENT])).all()
    _, kept = similarity_warp(images, lm, torch.ones(2), half_turn, torch.tensor([[0.0, 0.0], [0.0, -14.0]]), outside_occludes=False)
    assert kept[1, 30, 2] == VISIBLE


def test_the_sal_hrnet_backend_names_a_foreign_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"kind": "warp", "model": "gcl", "modules": {}}, path)
    backend = get_backend("landmarks", "sal-hrnet")({"checkpoint": str(path)})
    with pytest.raises(ValueError, match=r"not a `vtonpipe train landmarks` checkpoint: kind/model warp/gcl"):
        backend.ensure_setup()
