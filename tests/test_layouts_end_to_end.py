"""The default DAG on small trees in each of the four dataset layouts, made of sample renders:
every pair whose images annotated is packed, and pair-level priors that do not apply (no second
person in VITON / Dress Code pairs) leave null columns that the manifest explains."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from vtonpipe.cli import main
from vtonpipe.pipeline.store import ShardReader
from vtonpipe.synth import write_sample

REPO = Path(__file__).resolve().parents[1]
PEOPLE = 2


@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> Path:
    """An MPV-layout sample of 3 people: all/S000N@0=person..., @1=person..., @2=cloth..."""
    root = tmp_path_factory.mktemp("renders") / "raw"
    write_sample(root, PEOPLE, seed=3, size=(256, 192), show_progress=False)
    return root


def _files(renders: Path, person: int) -> tuple[Path, Path, Path]:
    a, b, g = (next((renders / "all").glob(f"S{person:04d}@{k}=*")) for k in range(3))
    return a, b, g


def _viton(renders: Path, root: Path) -> None:
    for split in ("train", "test"):
        (root / split / "image").mkdir(parents=True)
        (root / split / "cloth").mkdir(parents=True)
    lines = {"train": [], "test": []}
    for i in range(PEOPLE):
        a, _, g = _files(renders, i)
        split = "test" if i == PEOPLE - 1 else "train"
        shutil.copy(a, root / split / "image" / f"{i:05d}_00.jpg")
        shutil.copy(g, root / split / "cloth" / f"{i:05d}_00.jpg")
        lines[split].append(f"{i:05d}_00.jpg {i:05d}_00.jpg")
    for split, rows in lines.items():
        (root / f"{split}_pairs.txt").write_text("\n".join(rows) + "\n")


def _dresscode(renders: Path, root: Path) -> None:
    images = root / "upper_body" / "images"
    images.mkdir(parents=True)
    for i in range(PEOPLE):
        a, _, g = _files(renders, i)
        shutil.copy(a, images / f"{i:06d}_0.jpg")
        shutil.copy(g, images / f"{i:06d}_1.jpg")
    (root / "upper_body" / "train_pairs.txt").write_text("".join(f"{i:06d}_0.jpg {i:06d}_1.jpg\n" for i in range(PEOPLE - 1)))
    last = PEOPLE - 1
    (root / "upper_body" / "test_pairs_paired.txt").write_text(f"{last:06d}_0.jpg {last:06d}_1.jpg\n")
    (root / "upper_body" / "test_pairs_unpaired.txt").write_text(f"{last:06d}_0.jpg {0:06d}_1.jpg\n")


def _deepfashion(renders: Path, root: Path) -> None:
    rows = []
    for i in range(PEOPLE):
        a, b, _ = _files(renders, i)
        item = f"img/WOMEN/Tees_Tanks/id_{i:08d}"
        (root / item).mkdir(parents=True)
        for name, src in (("01_1_front.jpg", a), ("01_2_side.jpg", b)):
            shutil.copy(src, root / item / name)
            rows.append(f"{item}/{name} id_{i:08d} {'gallery' if i == PEOPLE - 1 else 'train'}")
    (root / "Eval").mkdir()
    (root / "Eval" / "list_eval_partition.txt").write_text("\n".join([str(len(rows)), "image_name item_id evaluation_status", *rows]) + "\n")


def _build(tmp_path: Path, layout: str, root: Path) -> tuple[Path, object]:
    """Ingest, default DAG (`vtonpipe annotate` with no names), pack, through the CLI."""
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    build = tmp_path / "build"
    runner = CliRunner()
    base = ["--params", str(params)]
    for args in (
        ["ingest", "--dataset", layout, "--root", str(root), "--layout", layout, "--build", str(build)],
        ["annotate", "--dataset", layout, "--build", str(build)],
        ["pack", "--dataset", layout, "--build", str(build)],
    ):
        res = runner.invoke(main, [*base, *args])
        assert res.exit_code == 0, (args, res.output)
    return build, res


def _packed(build: Path) -> list[dict]:
    rows = []
    for split in ("train", "test"):
        if (build / "packed" / split / "manifest.json").exists():
            reader = ShardReader(build / "packed" / split)
            rows += [reader.record(i) for i in reader.ids()]
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["viton", "dresscode"])
def test_single_pose_layouts_pack_every_pair_without_flow(renders, tmp_path, layout):
    root = tmp_path / "raw"
    {"viton": _viton, "dresscode": _dresscode}[layout](renders, root)
    build, res = _build(tmp_path, layout, root)
    pairs = list(ShardReader(build / "ingest" / "pairs"))
    rows = _packed(build)
    assert len(rows) == len(pairs) == PEOPLE + (1 if layout == "dresscode" else 0)
    for r in rows:
        assert r.pair["smpl_flow"] is None and r.target.image_id is None and r.target["keypoints"] is None
        assert r.source["densepose"].iuv.shape == (256, 192, 3)
        assert r.garment["garment_mask"].mask is not None
    absent = json.loads((build / "packed" / "manifest.json").read_text())["packed"]["absent"]
    assert absent["pair.smpl_flow"]["pairs"] == len(pairs)
    assert absent["pair.smpl_flow"]["reason"] == "not_applicable"
    assert "no target image" in absent["pair.smpl_flow"]["detail"]
    assert "target.keypoints" in absent and "pair.smpl_flow: null in" in res.output


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["mpv", "deepfashion"])
def test_multi_pose_layouts_pack_their_flow(renders, tmp_path, layout):
    if layout == "mpv":
        root = renders
    else:
        root = tmp_path / "raw"
        _deepfashion(renders, root)
    build, _ = _build(tmp_path, layout, root)
    pairs = list(ShardReader(build / "ingest" / "pairs"))
    rows = _packed(build)
    assert len(rows) == len(pairs) > 0
    for r in rows:
        assert r.pair["smpl_flow"].flow.shape == (256, 192, 2)
    absent = json.loads((build / "packed" / "manifest.json").read_text())["packed"]["absent"]
    assert "pair.smpl_flow" not in absent
    if layout == "deepfashion":  # no in-shop garment images
        assert absent["garment.garment_mask"]["pairs"] == len(pairs)
