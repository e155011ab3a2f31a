"""I/O at the edges: atomic writes, hashing and tolerant image decoding."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_UMASK = os.umask(0)
os.umask(_UMASK)


class ImageDecodeError(ValueError):
    """An image file that cannot be decoded (truncated, corrupt, not an image, empty)."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def exclusive_lock(lock_file: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_file`` (POSIX ``flock``) across processes: one
    process builds a cached file, the others wait and then read it."""
    import fcntl

    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    Readers never see a half-written file, and an interrupted write leaves the old file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n").encode())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


#: images with more pixels are refused before their pixels are decoded (memory stays bounded)
MAX_IMAGE_PIXELS = int(os.environ.get("VTONPIPE_MAX_IMAGE_PIXELS", "64000000"))
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS  # PIL refuses twice as many when it reads the header


def decode_image(data: bytes, *, name: str = "image", background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Decode image bytes to RGB uint8 (H, W, 3), the orientation its EXIF tag asks for.

    Grayscale is replicated to 3 channels, alpha is composited over ``background``, 16-bit and
    palette images are converted. Raises :class:`ImageDecodeError` on anything undecodable; its
    message starts with ``name`` (the file the bytes came from).
    """
    if not data:
        raise ImageDecodeError(f"{name}: empty file")
    try:
        with warnings.catch_warnings():  # PIL warns above the limit; the check below refuses instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
        with im:
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS:
                raise ImageDecodeError(
                    f"{name}: {w}x{h} pixels exceeds the limit of {MAX_IMAGE_PIXELS} (a decompression bomb?); raise VTONPIPE_MAX_IMAGE_PIXELS if it is real"
                )
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                hi = arr.max() if arr.size else 1.0
                im = Image.fromarray((arr * (255.0 / max(hi, 1.0))).astype(np.uint8))
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                canvas = Image.new("RGBA", im.size, (*background, 255))
                im = Image.alpha_composite(canvas, im)
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except UnidentifiedImageError as e:
        raise ImageDecodeError(f"{name}: not a readable image (no decoder recognises its bytes)") from e
    except Image.DecompressionBombError as e:
        raise ImageDecodeError(f"{name}: {e} (raise VTONPIPE_MAX_IMAGE_PIXELS if it is real)") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageDecodeError(f"{name}: cannot decode: {e}") from e
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ImageDecodeError(f"{name}: degenerate image shape {rgb.shape}")
    return np.ascontiguousarray(rgb)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); see :func:`decode_image`."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ImageDecodeError(f"cannot read {path}: {e}") from e
    return decode_image(data, name=str(path))


def write_image(path: str | os.PathLike, image: np.ndarray, quality: int = 95) -> None:
    """Write an RGB uint8 image atomically; the format follows the extension."""
    path = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"unsupported image extension: {path.suffix}")
    buf = io.BytesIO()
    kwargs = {"quality": quality, "subsampling": 0} if fmt == "JPEG" else {}
    Image.fromarray(image).save(buf, format=fmt, **kwargs)
    write_bytes_atomic(path, buf.getvalue())
