"""Dataset adapters on tiny trees built here, including broken ones."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from builders import garment_image, person_image, write_mpv_tree

from vtonpipe.datasets import DatasetLayoutError, get_adapter
from vtonpipe.io import write_image


def _img(path: Path, seed: int = 0) -> None:
    write_image(path, person_image(seed, (64, 48)))


def _kinds(scan):
    return {e.path: e.kind for e in scan.images}


def _problems(scan):
    return sorted((p.kind, p.where) for p in scan.problems)


# -- MPV -----------------------------------------------------------------------------------------
def test_mpv_reads_triplets(tmp_path):
    people = [(person_image(i, (64, 48)), person_image(i + 9, (64, 48)), garment_image(i, (64, 48))) for i in range(3)]
    write_mpv_tree(tmp_path, people, splits=["train", "train", "test"])
    scan = get_adapter("mpv").scan(tmp_path)
    assert scan.problems == []
    assert len(scan.images) == 9 and len(scan.pairs) == 3 and scan.pair_lines == 3
    p = scan.pairs[2]
    assert p.source == "all/P0002@1=person_half_front.jpg"
    assert p.target == "all/P0002@1=person_whole_back.jpg"
    assert p.garment == "all/P0002@1=cloth_front.jpg"
    assert (p.split, p.paired) == ("test", True)
    assert _kinds(scan)["all/P0000@1=cloth_front.jpg"] == "garment"


def test_mpv_broken_lines_are_problems_not_crashes(tmp_path):
    people = [(person_image(i, (64, 48)), person_image(i, (64, 48)), garment_image(i, (64, 48))) for i in range(2)]
    extra = [
        "P0000@1=person_half_front.jpg\tmissing=person.jpg\tP0000@1=cloth_front.jpg\ttrain",  # missing file
        "../../etc/passwd\tP0000@1=person_whole_back.jpg\tP0000@1=cloth_front.jpg\ttrain",  # escapes the root
        "/abs/x.jpg\tP0000@1=person_whole_back.jpg\tP0000@1=cloth_front.jpg\ttrain",  # absolute
        "only two\tfields",  # malformed
        "a.jpg\tb.jpg\tc.jpg\tsometimes",  # unknown split
        "P0001@1=person_half_front.jpg\tP0001@1=person_whole_back.jpg\tP0001@1=cloth_front.jpg\ttest",  # duplicate of line 2
    ]
    write_mpv_tree(tmp_path, people, splits=["train", "test"], extra_lines=extra)
    _img(tmp_path / "all" / "P0000@1=person_half_front.png")  # same name, other extension
    scan = get_adapter("mpv").scan(tmp_path)
    kinds = [k for k, _ in _problems(scan)]
    assert kinds.count("missing_file") == 1
    assert kinds.count("outside_root") == 2
    assert kinds.count("bad_line") == 2
    assert kinds.count("duplicate_pair") == 1
    assert kinds.count("duplicate_name") == 1
    assert len(scan.pairs) == 2 and scan.pair_lines == 8


def test_mpv_symlink_outside_root_is_refused(tmp_path):
    outside = tmp_path / "outside.jpg"
    _img(outside)
    root = tmp_path / "mpv"
    write_mpv_tree(root, [(person_image(0, (64, 48)), person_image(1, (64, 48)), garment_image(0, (64, 48)))])
    os.symlink(outside, root / "all" / "link.jpg")
    (root / "all_poseA_poseB_clothes.txt").write_text("link.jpg\tP0000@1=person_whole_back.jpg\tP0000@1=cloth_front.jpg\ttrain\n")
    scan = get_adapter("mpv").scan(root)
    assert [p.kind for p in scan.problems] == ["outside_root"]
    assert scan.pairs == []


def test_mpv_without_list_is_a_layout_error(tmp_path):
    (tmp_path / "all").mkdir()
    with pytest.raises(DatasetLayoutError, match="all_poseA_poseB_clothes"):
        get_adapter("mpv").scan(tmp_path)


# -- DeepFashion In-shop -------------------------------------------------------------------------
def _deepfashion(root: Path, rows: list[tuple[str, str, str]]) -> None:
    for name, _, _ in rows:
        _img(root / name, len(name))
    lines = [str(len(rows)), "image_name item_id evaluation_status", *(" ".join(r) for r in rows)]
    (root / "Eval").mkdir(parents=True, exist_ok=True)
    (root / "Eval" / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")


def test_deepfashion_pose_pairs_within_item(tmp_path):
    d = "img/WOMEN/Dresses/id_00000002"
    e = "img/MEN/Tees_Tanks/id_00000007"
    _deepfashion(
        tmp_path,
        [
            (f"{d}/02_1_front.jpg", "id_00000002", "train"),
            (f"{d}/02_2_side.jpg", "id_00000002", "train"),
            (f"{d}/02_3_back.jpg", "id_00000002", "train"),
            (f"{d}/02_6_flat.jpg", "id_00000002", "train"),
            (f"{e}/01_1_front.jpg", "id_00000007", "query"),
            (f"{e}/01_4_full.jpg", "id_00000007", "gallery"),
        ],
    )
    scan = get_adapter("deepfashion").scan(tmp_path)
    assert scan.problems == []
    assert _kinds(scan)[f"{d}/02_6_flat.jpg"] == "garment"
    train = [p for p in scan.pairs if p.split == "train"]
    test = [p for p in scan.pairs if p.split == "test"]
    assert len(train) == 6 and len(test) == 2  # 3*2 and 2*1 ordered pairs
    assert all(p.garment == f"{d}/02_6_flat.jpg" and p.paired for p in train)
    assert all(p.garment is None and p.paired is None for p in test)
    assert {(p.source, p.target) for p in test} == {(f"{e}/01_1_front.jpg", f"{e}/01_4_full.jpg"), (f"{e}/01_4_full.jpg", f"{e}/01_1_front.jpg")}


def test_deepfashion_broken_partition(tmp_path):
    d = "img/WOMEN/Dresses/id_00000002"
    _deepfashion(tmp_path, [(f"{d}/02_1_front.jpg", "id_00000002", "train"), (f"{d}/02_2_side.jpg", "id_00000002", "train")])
    with (tmp_path / "Eval" / "list_eval_partition.txt").open("a") as f:
        f.write(f"{d}/02_1_front.jpg id_00000002 train\n")  # listed twice
        f.write(f"{d}/02_9_gone.jpg id_00000002 train\n")  # missing
        f.write("img/x.jpg id_1\n")  # malformed
        f.write("img/x.jpg id_1 validation\n")  # unknown status
    scan = get_adapter("deepfashion").scan(tmp_path)
    assert sorted(p.kind for p in scan.problems) == ["bad_line", "bad_line", "duplicate_name", "missing_file"]
    assert len(scan.pairs) == 2


# -- VITON / VITON-HD ----------------------------------------------------------------------------
def _viton(root: Path, split: str, pairs: list[tuple[str, str]], where: str = "root") -> None:
    for person, cloth in pairs:
        _img(root / split / "image" / person)
        write_image(root / split / "cloth" / cloth, garment_image(0, (64, 48)))
    lst = root / f"{split}_pairs.txt" if where == "root" else root / split / f"{split}_pairs.txt"
    lst.write_text("\n".join(f"{p} {c}" for p, c in pairs) + "\n")


def test_viton_hd_pairs(tmp_path):
    _viton(tmp_path, "train", [("00000_00.jpg", "00000_00.jpg"), ("00001_00.jpg", "00001_00.jpg")])
    _viton(tmp_path, "test", [("00891_00.jpg", "01430_00.jpg")], where="split")
    scan = get_adapter("vitonhd").scan(tmp_path)
    assert scan.problems == []
    assert [(p.source, p.target, p.garment, p.split, p.paired) for p in scan.pairs] == [
        ("train/image/00000_00.jpg", None, "train/cloth/00000_00.jpg", "train", True),
        ("train/image/00001_00.jpg", None, "train/cloth/00001_00.jpg", "train", True),
        ("test/image/00891_00.jpg", None, "test/cloth/01430_00.jpg", "test", False),
    ]


def test_viton_original_naming_and_broken_lines(tmp_path):
    _viton(tmp_path, "train", [("000001_0.jpg", "000001_1.jpg")])
    with (tmp_path / "train_pairs.txt").open("a") as f:
        f.write("000002_0.jpg 000002_1.jpg\n")  # both missing
        f.write("000003_0.jpg\n")  # malformed
        f.write("../../x.jpg 000001_1.jpg\n")  # outside
    scan = get_adapter("viton").scan(tmp_path)
    assert sorted(p.kind for p in scan.problems) == ["bad_line", "missing_file", "missing_file", "outside_root"]
    assert len(scan.pairs) == 1 and scan.pairs[0].paired is True


def test_viton_without_lists(tmp_path):
    (tmp_path / "train" / "image").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError):
        get_adapter("viton").scan(tmp_path)


# -- Dress Code ----------------------------------------------------------------------------------
def _dresscode(root: Path, category: str, ids: list[str]) -> None:
    for i in ids:
        _img(root / category / "images" / f"{i}_0.jpg")
        write_image(root / category / "images" / f"{i}_1.jpg", garment_image(0, (64, 48)))


def test_dresscode_per_category_lists(tmp_path):
    _dresscode(tmp_path, "upper_body", ["000001", "000002"])
    _dresscode(tmp_path, "dresses", ["020001"])
    (tmp_path / "upper_body" / "train_pairs.txt").write_text("000001_0.jpg 000001_1.jpg\n")
    (tmp_path / "upper_body" / "test_pairs_paired.txt").write_text("000002_0.jpg 000002_1.jpg\n")
    (tmp_path / "upper_body" / "test_pairs_unpaired.txt").write_text("000002_0.jpg 000001_1.jpg\n")
    (tmp_path / "dresses" / "train_pairs.txt").write_text("020001_0.jpg 020001_1.jpg\n")
    scan = get_adapter("dresscode").scan(tmp_path)
    assert [p.kind for p in scan.problems] == ["split_conflict"]  # 000001_1 is train and test garment
    pairs = {(p.source, p.garment, p.split, p.paired) for p in scan.pairs}
    assert pairs == {
        ("upper_body/images/000001_0.jpg", "upper_body/images/000001_1.jpg", "train", True),
        ("upper_body/images/000002_0.jpg", "upper_body/images/000002_1.jpg", "test", True),
        ("upper_body/images/000002_0.jpg", "upper_body/images/000001_1.jpg", "test", False),
        ("dresses/images/020001_0.jpg", "dresses/images/020001_1.jpg", "train", True),
    }
    cats = {e.path: e.category for e in scan.images}
    assert cats["dresses/images/020001_0.jpg"] == "dresses"


def test_dresscode_root_lists_with_category_column(tmp_path):
    _dresscode(tmp_path, "lower_body", ["013563"])
    _dresscode(tmp_path, "upper_body", ["000001"])
    (tmp_path / "train_pairs.txt").write_text("013563_0.jpg 013563_1.jpg 1\n000001_0.jpg 000001_1.jpg 0\n000001_0.jpg 000001_1.jpg 7\n")
    scan = get_adapter("dresscode").scan(tmp_path)
    assert [p.kind for p in scan.problems] == ["bad_line"]
    assert {p.source for p in scan.pairs} == {"lower_body/images/013563_0.jpg", "upper_body/images/000001_0.jpg"}


def test_dresscode_without_categories(tmp_path):
    with pytest.raises(DatasetLayoutError):
        get_adapter("dresscode").scan(tmp_path)


def test_unknown_adapter():
    with pytest.raises(KeyError, match="known"):
        get_adapter("lookbook")
