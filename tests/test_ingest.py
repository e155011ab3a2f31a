"""Ingest: tables, report, failure budget, tolerant decoding."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
from builders import garment_image, person_image, write_mpv_tree
from PIL import Image

from vtonpipe.io import ImageDecodeError, decode_image
from vtonpipe.pipeline.ingest import IngestError, ingest
from vtonpipe.pipeline.store import ShardReader


def _tree(tmp_path, n=4, **kw):
    people = [(person_image(i, (64, 48)), person_image(i + 1000, (64, 48)), garment_image(i, (64, 48))) for i in range(n)]
    return write_mpv_tree(tmp_path / "raw", people, **kw)


def test_tables_and_stable_ids(tmp_path):
    root = _tree(tmp_path)
    res = ingest("mpvtest", root, tmp_path / "b", layout_name="mpv", show_progress=False)
    assert (res.images, res.pairs, res.problems) == (12, 4, 0)
    images = {r["image_id"]: r for r in ShardReader(tmp_path / "b" / "ingest" / "images")}
    r = images["all/P0001@1=cloth_front.jpg"]
    assert r["sha256"] == hashlib.sha256((root / r["path"]).read_bytes()).hexdigest()
    assert (r["width"], r["height"], r["kind"], r["split"], r["dataset"]) == (48, 64, "garment", "train", "mpvtest")
    pairs = list(ShardReader(tmp_path / "b" / "ingest" / "pairs"))
    assert {p["source_image_id"] for p in pairs} == {f"all/P{i:04d}@1=person_half_front.jpg" for i in range(4)}
    # ingesting again gives the same ids
    ingest("mpvtest", root, tmp_path / "b2", layout_name="mpv", show_progress=False)
    assert [p["pair_id"] for p in pairs] == [p["pair_id"] for p in ShardReader(tmp_path / "b2" / "ingest" / "pairs")]


def test_unreadable_images_are_reported_and_their_pairs_dropped(tmp_path):
    root = _tree(tmp_path, n=25)
    (root / "all" / "P0003@1=cloth_front.jpg").write_bytes(b"")  # empty
    data = (root / "all" / "P0004@1=person_half_front.jpg").read_bytes()
    (root / "all" / "P0004@1=person_half_front.jpg").write_bytes(data[: len(data) // 2])  # truncated
    res = ingest("t", root, tmp_path / "b", layout_name="mpv", max_failure_rate=0.1, show_progress=False)
    assert (res.images, res.pairs) == (73, 23)
    report = json.loads(res.report.read_text())
    assert report["problem_counts"] == {"unreadable_image": 2}
    assert report["pairs_dropped"] == 2
    assert {p["where"] for p in report["problems"]} == {"all/P0003@1=cloth_front.jpg", "all/P0004@1=person_half_front.jpg"}


def test_failure_budget(tmp_path):
    root = _tree(tmp_path, n=4, extra_lines=["gone_a.jpg\tgone_b.jpg\tgone_c.jpg\ttrain"])
    with pytest.raises(IngestError, match="unusable"):
        ingest("t", root, tmp_path / "b", layout_name="mpv", max_failure_rate=0.05, show_progress=False)
    report = json.loads((tmp_path / "b" / "ingest" / "report.json").read_text())
    assert report["problem_counts"] == {"missing_file": 3}
    assert not (tmp_path / "b" / "ingest" / "images").exists()  # no tables from a failed ingest
    res = ingest("t", root, tmp_path / "b", layout_name="mpv", max_failure_rate=0.3, show_progress=False)
    assert res.pairs == 4


def test_no_usable_pairs_is_an_error(tmp_path):
    (tmp_path / "raw" / "all").mkdir(parents=True)
    (tmp_path / "raw" / "all_poseA_poseB_clothes.txt").write_text("a.jpg\tb.jpg\tc.jpg\ttrain\n")
    with pytest.raises(IngestError):
        ingest("t", tmp_path / "raw", tmp_path / "b", layout_name="mpv", max_failure_rate=1.0, show_progress=False)


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_decode_odd_images():
    rgb = np.zeros((6, 4, 3), np.uint8)
    rgb[..., 0] = 200
    gray = decode_image(_encode(Image.fromarray(np.full((6, 4), 77, np.uint8)), "PNG"))
    assert gray.shape == (6, 4, 3) and (gray == 77).all()
    rgba = np.dstack([rgb, np.zeros((6, 4), np.uint8)])
    rgba[0, 0, 3] = 255
    out = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert out[0, 0].tolist() == [200, 0, 0] and out[1, 1].tolist() == [255, 255, 255]  # transparent -> white
    sixteen = decode_image(_encode(Image.fromarray(np.full((6, 4), 4000, np.uint16)), "PNG"))
    assert sixteen.dtype == np.uint8 and sixteen.shape == (6, 4, 3)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    rotated = decode_image(_encode(Image.fromarray(rgb), "JPEG", exif=exif))
    assert rotated.shape == (4, 6, 3)
    for bad in (b"", b"GIF89a broken", b"\x89PNG\r\n\x1a\n" + b"\0" * 20):
        with pytest.raises(ImageDecodeError):
            decode_image(bad)
