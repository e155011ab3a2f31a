"""What every export/import format shares: the build seen as records, the export run (atomic,
resumable files, a progress bar), the names of exported files, and resizing to ``--size``.

A format (one module of this package, registered in :data:`vtonpipe.exporters.FORMATS`) is a
:class:`Format`: ``export_items`` yields one :class:`ExportItem` per image (or per file) with the
bytes of every file it writes, and, for formats a team's folder arrives in, ``import_files`` and
``read`` say which files of a source folder hold an image's annotation and decode them into the
annotator's record. :mod:`vtonpipe.exporters.imported` turns those into the ``imported`` backends.

Names: an exported file is named after its image's file (its path in the layout,
``Format.image_paths``); the run records ``image_id -> exported image path`` in
``vtonpipe-export.json`` at the top of the output, which import reads back. A folder that vtonpipe did not write (a team's dataset with their annotations) has none:
its images are then matched by the images' own paths in the build (the build was ingested from
that folder).

Resuming: ``vtonpipe-export.json`` also records, per item, the sha256 of its inputs (format,
settings, size, the image bytes and the key of every annotation row it reads) and of each file
written; a rerun skips an item whose inputs are unchanged and whose files are all there with
those checksums. Each file is written atomically; the record is saved every
:data:`SAVE_EVERY` items and at the end, so an interrupted run redoes at most those.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
from PIL import Image

from ..core import AnnotationFailure, canonical_json
from ..io import read_image, sha256_bytes, sha256_file, write_bytes_atomic, write_json_atomic
from ..pipeline.layout import BuildLayout
from ..pipeline.store import ShardReader, read_manifest
from ..progress import progress_bar
from ..training.transforms import resize_iuv, resize_nearest, scale_points

#: the record of an export run, at the top of its output folder
STATE_FILE = "vtonpipe-export.json"
SAVE_EVERY = 64
Size = tuple[int, int]


class ExportError(RuntimeError):
    """An export that cannot run: a stage the format needs has not run, an unknown setting."""


# -- the build -----------------------------------------------------------------------------------
class BuildView:
    """Read access to a build for exporters: the images and pairs tables, image bytes and
    pixels, and each annotation stage's records (readers opened once)."""

    def __init__(self, build: str | Path):
        self.layout = BuildLayout(build)
        self.dataset_root = Path(read_manifest(self.layout.images)["dataset_root"])
        self.images: dict[str, dict[str, Any]] = {r["image_id"]: r for r in ShardReader(self.layout.images)}
        self.pairs: list[dict[str, Any]] = list(ShardReader(self.layout.pairs))
        self._readers: dict[str, ShardReader | None] = {}

    def has(self, annotator: str) -> bool:
        return (self.layout.annotation(annotator) / "manifest.json").exists()

    def require(self, *annotators: str) -> None:
        missing = [a for a in annotators if not self.has(a)]
        if missing:
            raise ExportError(f"the build {self.layout.root} has no {', '.join(missing)} annotations: run `vtonpipe annotate {' '.join(missing)}` first")

    def _reader(self, annotator: str) -> ShardReader | None:
        if annotator not in self._readers:
            self._readers[annotator] = ShardReader(self.layout.annotation(annotator)) if self.has(annotator) else None
        return self._readers[annotator]

    def record(self, annotator: str, image_id: str) -> Any | None:
        """The stage's typed record of ``image_id``; None where the stage has no row for it."""
        reader = self._reader(annotator)
        return reader.record(image_id) if reader is not None and image_id in reader else None

    def row_key(self, annotator: str, image_id: str) -> str:
        """What the stage's row of ``image_id`` depends on (``input_sha256:backend:version:params_hash``), "" without one."""
        reader = self._reader(annotator)
        if reader is None or image_id not in reader:
            return ""
        row = reader.get(image_id, dense=False)
        return ":".join(str(row[k]) for k in ("input_sha256", "backend", "version", "params_hash"))

    def image_bytes(self, image_id: str) -> bytes:
        return (self.dataset_root / self.images[image_id]["path"]).read_bytes()

    def image(self, image_id: str) -> np.ndarray:
        """RGB uint8 (H, W, 3)."""
        return read_image(self.dataset_root / self.images[image_id]["path"])

    def size(self, image_id: str) -> Size:
        row = self.images[image_id]
        return int(row["height"]), int(row["width"])

    def of_kind(self, kind: str) -> list[str]:
        return sorted(i for i, r in self.images.items() if r["kind"] == kind)

    def close(self) -> None:
        for reader in self._readers.values():
            if reader is not None:
                reader.close()


def unique_stems(view: BuildView, ids: Iterable[str], ok: Callable[[str], bool] = lambda s: True) -> dict[str, str]:
    """``image_id -> file stem`` for exported files: the image file's own stem where those are
    unique among ``ids`` and pass ``ok`` (what the format's loader can read), else ``NNNNN_00``
    numbered in id order (VITON-HD's own pattern)."""
    ids = sorted(ids)
    stems = {i: Path(view.images[i]["path"]).stem for i in ids}
    if len(set(stems.values())) == len(stems) and all(ok(s) for s in stems.values()):
        return stems
    return {i: f"{n:05d}_00" for n, i in enumerate(ids)}


# -- resizing to --size ----------------------------------------------------------------------------
def resize_rgb(image: np.ndarray, size: Size | None) -> np.ndarray:
    """RGB uint8 at ``size`` (H, W): area-averaged when shrinking, bilinear when enlarging."""
    if size is None or image.shape[:2] == tuple(size):
        return image
    shrink = size[0] * size[1] < image.shape[0] * image.shape[1]
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def resize_labels(labels: np.ndarray, size: Size | None) -> np.ndarray:
    """A label map or mask (H, W) at ``size`` by nearest pixel centre (no id is mixed or invented)."""
    if size is None or labels.shape[:2] == tuple(size):
        return labels
    return resize_nearest(labels, size).numpy()


def rescale_points(points: np.ndarray, valid: np.ndarray, from_size: Size, to_size: Size | None) -> np.ndarray:
    """Points (K, >=2) x, y px from ``from_size`` to ``to_size`` (H, W), pixel centres at integers
    (``x' = (x + 0.5) W' / W - 0.5``); rows where ``valid`` (K,) is false keep their values."""
    if to_size is None or tuple(from_size) == tuple(to_size):
        return np.asarray(points, np.float32)
    return scale_points(np.asarray(points, np.float32), np.asarray(valid, bool), from_size, to_size).numpy()


def resize_iuv_u8(iuv: np.ndarray, size: Size | None) -> np.ndarray:
    """DensePose IUV (H, W, 3) uint8 at ``size``: I by nearest pixel, UV bilinear within a part."""
    if size is None or iuv.shape[:2] == tuple(size):
        return iuv
    parts, uv = resize_iuv(iuv, size)
    out = np.zeros((*size, 3), np.uint8)
    out[..., 0] = parts.numpy().astype(np.uint8)
    out[..., 1:] = np.round(uv.permute(1, 2, 0).numpy() * 255).clip(0, 255).astype(np.uint8)
    return out


# -- encoding files --------------------------------------------------------------------------------
def png_bytes(array: np.ndarray) -> bytes:
    """PNG of a uint8 (H, W) map (L mode) or RGB (H, W, 3) picture. Palette PNGs:
    :func:`vtonpipe.converters.labels.encode_palette_png`."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(image: np.ndarray, quality: int = 95) -> bytes:
    """JPEG (no chroma subsampling) of RGB uint8 (H, W, 3) or a gray (H, W) map."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="JPEG", quality=quality, subsampling=0)
    return buf.getvalue()


def json_bytes(obj: Any) -> bytes:
    """Compact JSON; floats written with Python's shortest repr (float32 values read back exactly)."""
    return json.dumps(obj, separators=(",", ":")).encode()


def photo_bytes(view: BuildView, image_id: str, size: Size | None) -> bytes:
    """The image as a JPEG: its own bytes when it is one already at the exported size, else re-encoded."""
    data = view.image_bytes(image_id)
    if data[:3] == b"\xff\xd8\xff" and (size is None or view.size(image_id) == tuple(size)):
        return data
    return jpeg_bytes(resize_rgb(view.image(image_id), size))


def read_label_png(path: Path) -> np.ndarray:
    """The ids (H, W) uint8 of a P- or L-mode PNG (the pixel values, never the palette colours)."""
    with Image.open(path) as im:
        if im.mode not in ("P", "L"):
            raise AnnotationFailure("bad_source_file", f"{path}: a label map is a P or L mode PNG, not {im.mode}")
        return np.asarray(im, np.uint8).copy()


# -- the export run --------------------------------------------------------------------------------
@dataclass
class ExportItem:
    """One unit of an export: ``files()`` gives ``{relative path: bytes}``; ``inputs`` is what
    they depend on (the run skips the item when it and the files on disk are unchanged)."""

    key: str
    inputs: str
    files: Callable[[], Mapping[str, bytes]]


@dataclass
class ExportResult:
    out: Path
    items: int = 0
    written: int = 0
    skipped: int = 0
    files: int = 0
    missing: dict[str, int] = field(default_factory=dict)


class Format:
    """A folder layout some trainer reads. ``loader``: the repository and file whose reading
    the layout matches. ``imports``: annotators whose rows :meth:`read` makes from such a folder."""

    name: ClassVar[str]
    doc: ClassVar[str] = ""
    loader: ClassVar[str] = ""
    #: settings (``--set key=value``) and their defaults
    settings: ClassVar[Mapping[str, Any]] = {}
    #: annotators :meth:`export_items` reads (it fails when one has not run)
    needs: ClassVar[tuple[str, ...]] = ()
    imports: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: Mapping[str, Any] | None = None):
        settings = dict(settings or {})
        unknown = set(settings) - set(self.settings)
        if unknown:
            raise ExportError(f"format {self.name}: unknown settings {sorted(unknown)}; known: {sorted(self.settings) or 'none'}")
        self.options = {**self.settings, **settings}

    # -- export ---------------------------------------------------------------------------------
    def image_paths(self, view: BuildView) -> dict[str, str]:
        """``image_id -> path`` in the layout of every image the format exports."""
        raise NotImplementedError

    def export_items(self, view: BuildView, size: Size | None, names: Mapping[str, str], missing: dict[str, int]) -> Iterator[ExportItem]:
        """The items to write; ``names`` is ``image_id -> image_path``; an image lacking a row the
        item needs is counted in ``missing`` (by annotator) and skipped."""
        raise NotImplementedError

    # -- import ---------------------------------------------------------------------------------
    def import_files(self, annotator: str, image_path: str, kind: str) -> list[str]:
        """The files (relative to the source folder) holding ``annotator``'s annotation of the
        image at ``image_path`` (its path in the layout); [] when the format has none for it."""
        return []

    def read(self, annotator: str, source: Path, files: list[str], image_path: str, image: np.ndarray, source_size: Size | None) -> Any:
        """The annotator's record from ``files`` of ``source`` for the build image at
        ``image_path`` in the layout, ``image`` (RGB
        uint8, its size the record's); ``source_size`` (H, W) is the size the files were written
        at when the export recorded one (None: the image's own)."""
        raise NotImplementedError


def has_rows(view: BuildView, image_id: str, annotators: Iterable[str], missing: dict[str, int]) -> bool:
    """Whether every stage in ``annotators`` has a row of ``image_id``; counts each one that has
    none in ``missing`` (the image is then left out of the export)."""
    absent = [a for a in annotators if not view.row_key(a, image_id)]
    for a in absent:
        missing[a] = missing.get(a, 0) + 1
    return not absent


def text_item(rel: str, lines: Iterable[str], header: str | None = None) -> ExportItem:
    """An item writing the sorted, distinct ``lines`` (a pair list) to ``rel``, after ``header``."""
    text = ("\n".join([*([header] if header else []), *sorted(set(lines))]) + "\n").encode()
    return ExportItem(rel, sha256_bytes(text), lambda: {rel: text})


def item_inputs(fmt: Format, size: Size | None, view: BuildView, image_id: str, annotators: Iterable[str]) -> str:
    """sha256 of what an image's exported files depend on."""
    parts = [fmt.name, canonical_json(fmt.options), str(size), view.images[image_id]["sha256"]]
    parts += [f"{a}={view.row_key(a, image_id)}" for a in annotators]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def run_export(fmt: Format, build: str | Path, out: str | Path, size: Size | None = None, show_progress: bool = True) -> ExportResult:
    """Write ``fmt``'s layout of ``build`` under ``out`` (see the module docstring)."""
    view = BuildView(build)
    out = Path(out)
    try:
        view.require(*fmt.needs)
        state_path = out / STATE_FILE
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        if state and state.get("format") != fmt.name:
            raise ExportError(f"{out} holds a {state.get('format')} export, not {fmt.name}: choose another --out")
        names = fmt.image_paths(view)
        done = dict(state.get("items", {}))
        state = {
            "format": fmt.name,
            "loader": fmt.loader,
            "settings": fmt.options,
            "size": list(size) if size else None,
            "build": str(Path(build).resolve()),
            "names": names,
            "items": done,
        }
        result = ExportResult(out)
        items = list(fmt.export_items(view, size, names, result.missing))
        result.items = len(items)
        with progress_bar(f"export {fmt.name}", total=len(items), enabled=show_progress) as advance:
            for n, item in enumerate(items):
                if _unchanged(out, done.get(item.key), item.inputs):
                    result.skipped += 1
                else:
                    files = dict(item.files())
                    for rel, data in files.items():
                        write_bytes_atomic(out / rel, data)
                    done[item.key] = {"inputs": item.inputs, "files": {rel: sha256_bytes(data) for rel, data in files.items()}}
                    result.written += 1
                result.files += len(done[item.key]["files"])
                if n % SAVE_EVERY == SAVE_EVERY - 1:
                    write_json_atomic(state_path, state)
                advance(1)
        state["missing"] = result.missing
        write_json_atomic(state_path, state)
        return result
    finally:
        view.close()


def _unchanged(out: Path, record: Mapping[str, Any] | None, inputs: str) -> bool:
    if not record or record.get("inputs") != inputs:
        return False
    return all((out / rel).is_file() and sha256_file(out / rel) == sha for rel, sha in record["files"].items())


def export_state(source: Path) -> dict[str, Any] | None:
    """The record of the export that wrote ``source`` (a folder, or a file in one): its
    ``names`` (image_id -> image path) and ``size``; None when vtonpipe did not write it."""
    state = source / STATE_FILE if source.is_dir() else source.parent / STATE_FILE
    return json.loads(state.read_text()) if state.exists() else None


# -- records of imported files -----------------------------------------------------------------------
def keypoints_record(people: np.ndarray) -> Any:
    """The ``keypoints`` record of COCO-18 poses (N, 18, 3) read from a file, the main person
    first: score = mean confidence of its detected points, bbox around them."""
    from ..converters.keypoints import keypoint_bbox
    from ..schemas.keypoints import KeypointsRecord

    people = np.asarray(people, np.float32)
    if not len(people) or not (people[0, :, 2] > 0).any():
        raise AnnotationFailure("no_person", "the file has no detected keypoint of a first person")
    main = people[0]
    found = main[:, 2] > 0
    return KeypointsRecord(keypoints=main, people=people, num_people=len(people), score=float(main[found, 2].mean()), bbox=keypoint_bbox(main))


def garment_mask_record(mask: np.ndarray, image: np.ndarray) -> Any:
    """The ``garment_mask`` record of a {0, 1} mask (H, W) of ``image`` (RGB): background colour
    the median of the image's pixels outside the mask."""
    from ..converters.masks import mask_bbox
    from ..schemas.garment_mask import GarmentMaskRecord

    mask = np.asarray(mask, np.uint8)
    if not mask.any():
        raise AnnotationFailure("no_garment", "the mask file has no garment pixel")
    outside = image[mask == 0]
    background = np.median(outside, axis=0) if len(outside) else np.full(3, 255)
    return GarmentMaskRecord(mask=mask, area_fraction=float(mask.mean()), bbox=mask_bbox(mask), background_rgb=np.asarray(background).astype(np.uint8))


def densepose_record(iuv: np.ndarray, box: np.ndarray | None, score: float, num_people: int) -> Any:
    """The ``densepose`` record of an IUV map (H, W, 3) uint8; ``box`` x0, y0, x1, y1 in the
    pixel-centre frame (None: around the body pixels)."""
    from ..converters.masks import mask_box_edges
    from ..schemas.densepose import DenseposeRecord

    if box is None:
        box = mask_box_edges(iuv[..., 0] > 0)
    if box is None:
        raise AnnotationFailure("no_person", "no body pixel in the DensePose file")
    return DenseposeRecord(iuv=iuv, bbox=np.asarray(box, np.float32), score=float(score), num_people=int(num_people))


# -- plain pickles ---------------------------------------------------------------------------------
#: the only globals a plain pickle (dicts, lists, numbers, strings, numpy arrays) refers to
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: a plain pickle holds only dicts, lists, numbers, strings and numpy arrays")
        return super().find_class(module, name)


def pickle_bytes(obj: Any) -> bytes:
    """A pickle of plain values (dicts, lists, numbers, strings, numpy arrays), protocol 4."""
    return pickle.dumps(obj, protocol=4)


def read_plain_pickle(path: Path) -> Any:
    """Unpickle a file holding only plain values; any other class is refused (no code runs)."""
    with open(path, "rb") as f:
        return _PlainUnpickler(f).load()


def parsing_from_lip(lip: np.ndarray, native_label_set: str) -> Any:
    """The ``parsing`` record of an imported map already converted to LIP ids (H, W) uint8;
    ``no_person`` when it has no person pixel."""
    from ..annotators.parsing import parsing_record

    record = parsing_record(lip, native_label_set, 0.0)
    if isinstance(record, AnnotationFailure):
        raise record
    return record
