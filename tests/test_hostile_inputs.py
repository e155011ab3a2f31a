"""A corpus of hostile dataset files, built here: every one is a recorded problem with a reason or
is read correctly, the runs complete, and no traceback reaches the user (issue 13, part 3)."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import yaml
from builders import garment_image, person_image
from PIL import Image

from vtonpipe.pipeline.store import ShardReader


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header says ``width`` x ``height`` (8-bit RGB) with one tiny compressed row."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _corpus(root: Path) -> dict[str, tuple[bytes, str | None]]:
    """name under all/ -> (bytes, the ingest problem kind it must give, or None when it is read)."""
    person = Image.fromarray(person_image(0, (64, 48)))
    garment = Image.fromarray(garment_image(0, (64, 48)))
    jpeg = _save(person, "JPEG")
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    rgba = np.dstack([np.asarray(garment), np.full((64, 48), 255, np.uint8)])
    return {
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "unreadable_image"),
        "empty.jpg": (b"", "unreadable_image"),
        "text.jpg": (b"this is not an image\n", "unreadable_image"),
        "bomb.png": (_png_claiming(60000, 60000), "unreadable_image"),
        "tiny.png": (_save(Image.new("RGB", (1, 1), (9, 9, 9)), "PNG"), None),  # read; its annotators record failures
        "cmyk.jpg": (_save(person.convert("CMYK"), "JPEG"), None),
        "sixteen.png": (_save(Image.fromarray(np.asarray(person.convert("L")).astype(np.uint16) * 257), "PNG"), None),
        "gray.jpg": (_save(person.convert("L"), "JPEG"), None),
        "rgba.png": (_save(Image.fromarray(rgba, "RGBA"), "PNG"), None),
        "palette.png": (_save(garment.convert("P"), "PNG"), None),
        "exif.jpg": (_save(person, "JPEG", exif=exif), None),
        "ünïcödé=人.jpg": (jpeg, None),
        "garment.jpg": (_save(garment, "JPEG"), None),
    }


def _write_dataset(tmp_path: Path) -> Path:
    root = tmp_path / "raw"
    (root / "all").mkdir(parents=True)
    for name, (data, _) in _corpus(root).items():
        (root / "all" / name).write_bytes(data)
    (tmp_path / "outside.jpg").write_bytes((root / "all" / "garment.jpg").read_bytes())
    g = "garment.jpg"
    lines = [
        f"cmyk.jpg\tgray.jpg\t{g}\ttrain",
        "sixteen.png\texif.jpg\trgba.png\ttrain",
        "ünïcödé=人.jpg\tcmyk.jpg\tpalette.png\ttest",
        f"truncated.jpg\tgray.jpg\t{g}\ttrain",
        f"empty.jpg\ttext.jpg\t{g}\ttrain",
        f"bomb.png\ttiny.png\t{g}\ttrain",
        f"cmyk.jpg\tgray.jpg\t{g}\ttrain",  # a duplicate line
        f"../outside.jpg\tgray.jpg\t{g}\ttrain",  # outside the root
        f"missing.jpg\tgray.jpg\t{g}\ttrain",
        "only two\tfields",
    ]
    # a UTF-8 BOM and CRLF line ends: the first name must still be found
    (root / "all_poseA_poseB_clothes.txt").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())
    return root


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vtonpipe.cli", *args], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=600)


def test_hostile_files_are_recorded_or_read_and_nothing_crashes(tmp_path):
    root = _write_dataset(tmp_path)
    params = {
        "data_root": str(tmp_path / "data"),
        "datasets": {"hostile": {"layout": "mpv", "root": str(root)}},
        "ingest": {"max_failure_rate": 1.0},
        "annotators": {"garment_mask": {"backend": "classical", "max_failure_rate": 1.0}, "keypoints": {"backend": "mediapipe", "max_failure_rate": 1.0}},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    ingest = _cli(tmp_path, "ingest", "--dataset", "hostile")
    assert ingest.returncode == 0, ingest.stderr
    build = tmp_path / "data" / "hostile"
    report = json.loads((build / "ingest" / "report.json").read_text())
    where = {p["where"]: p["kind"] for p in report["problems"]}
    for name, (_, kind) in _corpus(root).items():
        if kind is not None:
            assert where.get(f"all/{name}") == kind, (name, where)
    bomb = next(p for p in report["problems"] if p["where"] == "all/bomb.png")
    assert "3600000000 pixels" in bomb["detail"] and "VTONPIPE_MAX_IMAGE_PIXELS" in bomb["detail"]
    kinds = sorted(p["kind"] for p in report["problems"])
    assert kinds.count("outside_root") == 1 and kinds.count("missing_file") == 1 and kinds.count("duplicate_pair") == 1 and kinds.count("bad_line") == 1

    images = {r["image_id"]: r for r in ShardReader(build / "ingest" / "images")}
    readable = {f"all/{n}" for n, (_, kind) in _corpus(root).items() if kind is None}
    assert set(images) == readable  # the BOM-prefixed first name included
    assert (images["all/exif.jpg"]["width"], images["all/exif.jpg"]["height"]) == (64, 48)  # EXIF-rotated 48x64 file
    pairs = list(ShardReader(build / "ingest" / "pairs"))
    assert len(pairs) == 3

    annotate = _cli(tmp_path, "annotate", "garment_mask", "keypoints", "--dataset", "hostile")
    assert annotate.returncode == 0, annotate.stdout + annotate.stderr
    for out in (ingest, annotate):
        assert "Traceback" not in out.stdout + out.stderr


def test_a_decompression_bomb_is_refused_with_bounded_memory(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(60000, 60000))
    code = (  # VmHWM: this process's peak RSS (getrusage's maxrss carries the parent's over exec)
        "import re, sys\n"
        "from vtonpipe.io import ImageDecodeError, read_image\n"
        "try:\n    read_image(sys.argv[1])\nexcept ImageDecodeError as e:\n    print('refused:', e)\n"
        "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
        "print('maxrss_mb', int(hwm) // 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, text=True).stdout
    assert "refused:" in out and "exceeds" in out
    assert int(out.split("maxrss_mb")[1]) < 400  # 60000x60000 RGB would be 10 GB


def test_an_image_over_the_pixel_limit_is_refused_before_decoding():
    import pytest

    from vtonpipe.io import MAX_IMAGE_PIXELS, ImageDecodeError, decode_image

    with pytest.raises(ImageDecodeError, match=f"9000x9000 pixels exceeds the limit of {MAX_IMAGE_PIXELS}"):
        decode_image(_png_claiming(9000, 9000), name="big.png")
