"""The training data layer: pair samples decoded from a build's packed shards.

A packed row (``<build>/packed/<split>/``, :mod:`vtonpipe.schemas.packed`) holds the image bytes of
a pair's source person, target person and in-shop garment and every annotation of them (columns
``<role>.<annotator>.<field>``, pair-level ones under ``pair.``). :class:`PackedPairs` turns rows
into sample dicts of tensors holding only the keys a task asks for (``needs``), every map resized
to one training resolution by the rule of its kind (:mod:`vtonpipe.training.transforms`):

===============================  ===================================================================
key                              value (H, W = the configured resolution; coordinates in its frame)
===============================  ===================================================================
``pair_id``                      str (a list after batching)
``paired``                       bool: the garment is the one the source person wears
                                 (False where the pair has no garment image)
``source_image`` etc.            float32 (3, H, W) in [0, 1], also ``target_image``, ``garment_image``
``garment_mask``                 float32 (1, H, W) {0, 1}: the in-shop garment's pixels
``source_garment_region``        float32 (1, H, W) {0, 1}: LIP upper-clothes, dress or coat on the
                                 source person (3D-GCL's cloth classes); also ``target_``
``source_parsing``               int64 (H, W) LIP ids 0..19; also ``target_``
``source_iuv_i``                 int64 (H, W) DensePose part 0..24 (0 background); also ``target_``
``source_iuv_uv``                float32 (2, H, W) U, V in [0, 1] (0 on the background); also ``target_``
``source_keypoints``             float32 (18, 3) COCO-18 x, y px, confidence ((0, 0, 0) undetected)
``source_pose_heatmaps``         float32 (18, H, W) Gaussians of ``pose_sigma`` px (0 for undetected points)
``source_pose_disks``            float32 (18, H, W) SPG-VTON disks of ``pose_radius`` px
``garment_landmarks``            float32 (32, 3) x, y px, attribute 0 visible / 1 occluded / 2 absent
                                 (:mod:`vtonpipe.converters.landmarks`); also ``source_``, ``target_``
``garment_landmark_heatmaps``    float32 (32, H, W) Gaussians of ``landmark_sigma`` px around the visible
                                 and occluded landmarks (0 for absent ones); also ``source_``, ``target_``
``smpl_flow``                    float32 (2, H, W) target grid -> source pixels (x_s - x, y_s - y), 0 off the body
``visibility``                   int64 (H, W) 0 visible in the source, 1 hidden in the source, 2 background
===============================  ===================================================================

Asking for a key whose prior the build lacks raises :class:`MissingPriorError` naming the stage to
run, or why the prior does not apply (a single-pose dataset has no target person, so no flow).
A task may also require the backend a prior was made by (``backends``: the landmark trainer's
labels, ``vtonpipe train landmarks --labels groundtruth``): rows of another backend are a
:class:`MissingPriorError` naming the stage to rerun with that backend.

Two ways to read a split (:mod:`vtonpipe.training.stream`): :class:`PackedPairDataset` (map-style, random access by index) and
:class:`PackedPairStream` (iterable: shard-level shuffling, split by distributed rank and by
DataLoader worker, resumable at any sample position).

Where the time goes (``benchmarks/bench_loader.py``, docs/MEASUREMENTS.md): each process reads a
shard's needed columns once (Parquet column projection, the dense maps as LZ4 frames) and
decodes one sample's maps only when it is drawn; a batch is decoded as one (:func:`decode_pairs`):
its rows' images and maps at the training resolution, collated while still 8-bit, then widened
and the large pose and landmark maps drawn straight into the batch.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import (
    default_collate,
    get_worker_info,
)

from ..converters.keypoints import gaussian_heatmaps, pose_disks
from ..converters.labels import LIP_LABELS
from ..converters.landmarks import ABSENT
from ..io import decode_image
from ..pipeline.store import MANIFEST, ShardReader
from .transforms import (
    Size,
    resize_flow,
    resize_image,
    resize_iuv,
    resize_nearest,
    scale_points,
)

#: LIP ids counted as the upper garment a person wears (3D-GCL's official code: cloth = 5, 6, 7)
UPPER_GARMENT_LABELS = tuple(LIP_LABELS.index(name) for name in ("upper-clothes", "dress", "coat"))

_UPPER_GARMENT_LUT = torch.zeros(256, dtype=torch.bool)
_UPPER_GARMENT_LUT[list(UPPER_GARMENT_LABELS)] = True


def garment_region(parsing: torch.Tensor) -> torch.Tensor:
    """float32 ``(..., 1, H, W)`` {0, 1}: the pixels of LIP label maps ``parsing`` (..., H, W) that
    are an upper garment (:data:`UPPER_GARMENT_LABELS`)."""
    return _UPPER_GARMENT_LUT[parsing.long()].float().unsqueeze(-3)


PERSON_ROLES = ("source", "target")
IMAGE_ROLES = ("source", "target", "garment")

#: packed component -> (its fields the data layer reads, the roles it exists for)
_COMPONENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "parsing": (("parsing",), PERSON_ROLES),
    "densepose": (("iuv",), PERSON_ROLES),
    "keypoints": (("keypoints",), PERSON_ROLES),
    "landmarks": (("landmarks",), IMAGE_ROLES),
    "garment_mask": (("mask",), ("garment",)),
    "smpl_flow": (("flow", "visibility"), ("pair",)),
}


def _batch_keys() -> dict[str, tuple[str, str]]:
    """Every batch key -> (role, source): source is ``image`` or a packed component."""
    keys: dict[str, tuple[str, str]] = {}
    for role in IMAGE_ROLES:
        keys[f"{role}_image"] = (role, "image")
        keys[f"{role}_landmarks"] = (role, "landmarks")
        keys[f"{role}_landmark_heatmaps"] = (role, "landmarks")
    for role in PERSON_ROLES:
        for suffix in ("garment_region", "parsing"):
            keys[f"{role}_{suffix}"] = (role, "parsing")
        for suffix in ("iuv_i", "iuv_uv"):
            keys[f"{role}_{suffix}"] = (role, "densepose")
        for suffix in ("keypoints", "pose_heatmaps", "pose_disks"):
            keys[f"{role}_{suffix}"] = (role, "keypoints")
    keys["garment_mask"] = ("garment", "garment_mask")
    keys["smpl_flow"] = ("pair", "smpl_flow")
    keys["visibility"] = ("pair", "smpl_flow")
    return keys


#: batch key -> (role, "image" or packed component); ``pair_id`` and ``paired`` are always present
BATCH_KEYS: dict[str, tuple[str, str]] = _batch_keys()
ALWAYS = ("pair_id", "paired")


class MissingPriorError(LookupError):
    """A task asked for a prior that the packed build does not hold for (some of) its pairs."""


@dataclass(frozen=True)
class DataConfig:
    """How samples are decoded. Sizes and radii are in pixels of the resized frame."""

    height: int = 256
    width: int = 192
    pose_sigma: float = 6.0  # keypoint heatmap Gaussian sigma
    pose_radius: float = 4.0  # SPG-VTON pose disk radius
    landmark_sigma: float = 6.0  # landmark heatmap Gaussian sigma
    shuffle_window: int = 256  # samples shuffled together after the shard order is shuffled
    cache_shards: int = 4  # shards whose Parquet columns each process keeps in memory
    verify: bool = True  # check every shard's sha256 once when the split is opened

    @property
    def size(self) -> Size:
        return (self.height, self.width)


_ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def _image_size(data: bytes) -> Size:
    """(H, W) of encoded image bytes from the header alone, after the EXIF rotation decode_image applies."""
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        rotated = im.getexif().get(0x0112, 1) in _ROTATED
    return (w, h) if rotated else (h, w)


def decode_rgb(data: bytes, size: Size) -> tuple[np.ndarray, Size]:
    """RGB uint8 ``(h, w, 3)`` pixels of image bytes to be resized to ``size``, and the image's
    ``(H, W)`` (after its EXIF rotation).

    A JPEG at least twice ``size`` in both directions is decoded by libjpeg at 1/2, 1/4 or 1/8
    scale (its scaled inverse DCT: a low-pass filter over each block that keeps the pixel-centre
    frame, about twice as fast as a full decode) when that scale divides the image size exactly;
    the caller resizes the rest of the way. Everything else goes through
    :func:`vtonpipe.io.decode_image` at full size.
    """
    with Image.open(io.BytesIO(data)) as im:
        if im.format == "JPEG":
            w, h = im.size
            rotated = im.getexif().get(0x0112, 1) in _ROTATED
            want_w, want_h = (size[0], size[1]) if rotated else (size[1], size[0])
            if w >= 2 * want_w and h >= 2 * want_h:
                im.draft("RGB", (want_w, want_h))
                dw, dh = im.size
                if w == dw * (w // dw) and h == dh * (h // dh) and w // dw == h // dh:
                    im.load()
                    im = ImageOps.exif_transpose(im).convert("RGB")
                    return np.array(im), ((w, h) if rotated else (h, w))
    pixels = decode_image(data)
    return np.require(pixels, requirements="W"), pixels.shape[:2]


class PackedPairs:
    """One split of a build's packed shards, decoded into samples holding only the ``needs`` keys.

    ``build`` is the build directory (``data/<dataset>``), ``split`` a folder of ``packed/``.
    Checks on opening that every pair holds every needed prior (:class:`MissingPriorError`
    otherwise), made by the backend ``backends`` names for its packed component, if it names one
    (``{"landmarks": "groundtruth"}``). Safe to use from DataLoader worker processes: each process opens its own reader
    and keeps the needed Parquet columns of its ``config.cache_shards`` most recent shards.
    """

    def __init__(self, build: str | os.PathLike, split: str, needs: Iterable[str], config: DataConfig = DataConfig(), backends: Mapping[str, str] | None = None):
        self.build = Path(build)
        self.split = split
        self.directory = self.build / "packed" / split
        self.config = config
        needs = set(needs) - set(ALWAYS)
        unknown = sorted(needs - set(BATCH_KEYS))
        if unknown:
            raise KeyError(f"unknown batch keys {unknown}; known: {sorted(BATCH_KEYS)}")
        self.needs = frozenset(needs)
        self.backends = dict(backends or {})
        reader = ShardReader(self.directory, verify=config.verify)
        if config.verify:
            reader.verify()
        self.schema = reader.schema
        self.shard_rows = [s.rows for s in reader.shards]
        self.offsets = np.concatenate([[0], np.cumsum(self.shard_rows)]).astype(np.int64)
        build_manifest = self.build / "packed" / MANIFEST
        self.build_manifest = json.loads(build_manifest.read_text()) if build_manifest.exists() else {}
        self.sources = {BATCH_KEYS[k] for k in self.needs}
        self._plan_columns()
        self._check_priors(reader)
        reader.close()
        self._reader: ShardReader | None = None
        self._pid: int | None = None
        self._cache: OrderedDict[int, _ShardColumns] = OrderedDict()

    # -- planning ----------------------------------------------------------------------------
    def _plan_columns(self) -> None:
        columns = {"pair_id", "paired"}
        dense: list[tuple[str, str]] = []  # (prefix, field)
        for role, source in sorted(self.sources):
            if source == "image":
                columns.add(f"{role}.image")
                continue
            for name in _COMPONENTS[source][0]:
                column = f"{role}.{source}.{name}"
                if column in self.schema and self.schema[column].dense:
                    dense.append((f"{role}.{source}", name))
                else:
                    columns.add(column)
        # roles whose original frame size is needed (points to rescale, the flow's source) but that
        # decode no map or image of their own: read the size from the image header
        for role in self._roles_needing_size():
            if not any(r == role and s in ("image", "parsing", "densepose", "garment_mask") for r, s in self.sources):
                columns.add(f"{role}.image")
        self.columns = sorted(columns)
        self.dense = dense

    def _roles_needing_size(self) -> set[str]:
        roles = {role for role, source in self.sources if source in ("keypoints", "landmarks")}
        if ("pair", "smpl_flow") in self.sources:
            roles.add("source")
        return roles

    # -- prior checks ------------------------------------------------------------------------
    def _check_priors(self, reader: ShardReader) -> None:
        """Every needed prior present in every row, or a MissingPriorError saying what to run."""
        needed_by: dict[tuple[str, str], list[str]] = {}
        for key in sorted(self.needs):
            needed_by.setdefault(BATCH_KEYS[key], []).append(key)
        presence: dict[tuple[str, str], str] = {}
        for role, source in needed_by:
            prefix = f"{role}.{source}" if source != "image" else role
            column = f"{role}.image" if source == "image" else f"{prefix}.annotator"
            if column not in self.schema:
                keys = ", ".join(needed_by[(role, source)])
                raise MissingPriorError(
                    f"{keys} needs the `{source}` annotation of the {_what(role)}, but {self.directory} was packed without it: "
                    f"run `vtonpipe annotate {source} --dataset <name>` and then `vtonpipe pack --dataset <name>`"
                )
            if source == "image" and not self.build_manifest.get("packed", {}).get("include_images", True):
                raise MissingPriorError(
                    f"{', '.join(needed_by[(role, source)])} needs the image bytes, but {self.build} was packed without images "
                    f"(pack.include_images: false): run `vtonpipe pack --dataset <name>` with images"
                )
            presence[(role, source)] = f"{role}.image_id" if source == "image" else column
        role_columns = {f"{r}.image_id" for r in IMAGE_ROLES}
        made_by = {k: f"{k[0]}.{k[1]}.backend" for k in presence if k[1] in self.backends}
        other_backends: dict[tuple[str, str], dict[str, int]] = {k: {} for k in made_by}
        missing = {k: 0 for k in presence}
        no_target = no_garment = 0
        total = 0
        for i in range(len(self.shard_rows)):
            columns = sorted(set(presence.values()) | role_columns | set(made_by.values()))
            table = reader.read_columns(i, columns)
            values = {c: table.column(c).to_pylist() for c in columns}
            total += table.num_rows
            no_target += sum(v is None for v in values["target.image_id"])
            no_garment += sum(v is None for v in values["garment.image_id"])
            for k, column in presence.items():
                missing[k] += sum(v is None for v in values[column])
            for k, column in made_by.items():
                for made, present in zip(values[column], values[presence[k]]):
                    if present is not None and made != self.backends[k[1]]:
                        other_backends[k][made] = other_backends[k].get(made, 0) + 1
        for (role, source), count in missing.items():
            if count:
                keys = ", ".join(needed_by[(role, source)])
                reason = self._absence_reason(role, source, no_target=no_target, no_garment=no_garment)
                raise MissingPriorError(
                    f"{keys}: {_prior_name(role, source)} is absent in {count} of the {total} pairs of {self.directory}: {reason}"
                )
        for (role, source), found in other_backends.items():
            if found:
                want = self.backends[source]
                made = ", ".join(f"`{b}` ({n})" for b, n in sorted(found.items()))
                raise MissingPriorError(
                    f"{', '.join(needed_by[(role, source)])}: needs {_prior_name(role, source)} made by the `{want}` backend, but "
                    f"{sum(found.values())} of the {total} pairs of {self.directory} hold rows made by {made}: "
                    f"run `vtonpipe annotate {source} --dataset <name> --backend {want}` and then `vtonpipe pack --dataset <name>`"
                )

    def _absence_reason(self, role: str, source: str, *, no_target: int, no_garment: int) -> str:
        if role in ("target", "pair") and no_target:
            return f"{_prior_name(role, source)} is not applicable to this build's pairs (no target person: single-pose dataset)"
        if role == "garment" and no_garment:
            return "these pairs have no garment image"
        recorded = _recorded_absence(self.build_manifest, f"{role}.{source}")
        if recorded:
            return recorded
        if source == "image":
            return "the images were not packed"
        return (
            f"the `{source}` stage has no row for these pairs' images (it failed on them or did not run on them): "
            f"see {self.build / 'annotations' / source / 'failures'}, run `vtonpipe annotate {source}` and `vtonpipe pack`"
        )

    # -- access ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """(shard, row in shard) of sample ``index`` (0 <= index < len)."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range for {len(self)} pairs")
        shard = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return shard, int(index - self.offsets[shard])

    def _open(self) -> ShardReader:
        # one reader per process: file handles must not be shared across fork
        if self._reader is None or self._pid != os.getpid():
            self._reader = ShardReader(self.directory, verify=False)  # verified once when opened
            self._pid = os.getpid()
            self._cache = OrderedDict()
        return self._reader

    def _columns(self, shard: int) -> _ShardColumns:
        reader = self._open()
        cached = self._cache.get(shard)
        if cached is None:
            dense = [f"{prefix}.{name}" for prefix, name in self.dense]
            table = reader.read_columns(shard, [*self.columns, *dense])
            rows = self.schema.rows_from_table(table.select(self.columns))
            cached = _ShardColumns(rows, {c: table.column(c).combine_chunks() for c in dense})
            self._cache[shard] = cached
            while len(self._cache) > self.config.cache_shards:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(shard)
        return cached

    def raw(self, index: int) -> dict[str, Any]:
        """The packed values sample ``index`` is decoded from: the needed columns, and its dense
        maps decoded from their stored bytes (only this sample's, only the needed ones)."""
        shard, r = self.locate(index)
        cached = self._columns(shard)
        row = dict(cached.rows[r])
        for column, values in cached.dense.items():
            value = values[r]
            row[column] = self.schema[column].from_arrow_value(value.as_buffer()) if value.is_valid else None
        return row

    def sample(self, index: int) -> dict[str, Any]:
        """Sample ``index`` as a dict of tensors (see the module docstring)."""
        return {k: v[0] for k, v in self.batch([index]).items()}

    def batch(self, indices: Iterable[int]) -> dict[str, Any]:
        """Samples ``indices`` as one batch: what ``default_collate`` makes of their samples."""
        return decode_pairs([self.raw(int(i)) for i in indices], self.needs, self.config)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_reader=None, _pid=None, _cache=OrderedDict())
        return state


@dataclass(frozen=True)
class _ShardColumns:
    """The needed columns of one shard as one process keeps them: the rows of the plain columns,
    and each dense column's stored bytes (Arrow binary, decoded one sample at a time)."""

    rows: list[dict[str, Any]]
    dense: dict[str, Any]


def _what(role: str) -> str:
    return "pairs" if role == "pair" else f"{role} images"


def _prior_name(role: str, source: str) -> str:
    if source == "image":
        return f"the {role} image"
    return source if role == "pair" else f"{source} of the {role} image"


def _recorded_absence(manifest: Mapping[str, Any], prefix: str) -> str | None:
    """Why pack left ``prefix``'s columns null, as packed/manifest.json records it under
    ``packed.absent`` (``{"<role>.<annotator>": reason or {"reason": ...}}``), if it does."""
    entry = (manifest.get("packed", {}).get("absent") or {}).get(prefix)
    if isinstance(entry, Mapping):
        entry = entry.get("reason")
    return str(entry) if entry else None


def _require(row: Mapping[str, Any], column: str) -> Any:
    value = row.get(column)
    if value is None:
        raise MissingPriorError(f"pair {row.get('pair_id')}: {column} is null in its packed row")
    return value


#: batch keys drawn from the batch's points at once rather than per sample (so that these large
#: maps are made in place and never copied into the batch): key -> the points key it is drawn from
POINT_MAPS = {
    **{f"{role}_{kind}": f"{role}_keypoints" for role in PERSON_ROLES for kind in ("pose_heatmaps", "pose_disks")},
    **{f"{role}_landmark_heatmaps": f"{role}_landmarks" for role in IMAGE_ROLES},
}


def decode_pairs(rows: list[Mapping[str, Any]], needs: Iterable[str], config: DataConfig) -> dict[str, Any]:
    """A batch of the ``needs`` keys from packed rows' raw values (see the module docstring): each
    row decoded by :func:`decode_pair`, collated, then finished for the whole batch at once: 8-bit
    images, masks and label maps widened to their batch dtypes, the garment regions found and the
    :data:`POINT_MAPS` drawn (so that no large per-sample tensor is copied into the batch)."""
    needs = set(needs)
    maps = needs & POINT_MAPS.keys()
    regions = {f"{role}_parsing" for role in PERSON_ROLES if f"{role}_garment_region" in needs}
    batch = default_collate([decode_pair(row, (needs - maps) | {POINT_MAPS[k] for k in maps} | regions, config) for row in rows])
    for role in IMAGE_ROLES:
        if f"{role}_image" in batch:
            pixels = batch[f"{role}_image"]
            batch[f"{role}_image"] = torch.div(pixels, 255.0, out=_batch_tensor(pixels.shape, torch.float32))
    if "garment_mask" in batch:
        batch["garment_mask"] = _batch_tensor(batch["garment_mask"].shape, torch.float32).copy_(batch["garment_mask"])
    for role in PERSON_ROLES:
        if f"{role}_parsing" in batch:
            labels = _batch_tensor(batch[f"{role}_parsing"].shape, torch.int64).copy_(batch[f"{role}_parsing"])
            if f"{role}_garment_region" in needs:
                batch[f"{role}_garment_region"] = garment_region(labels)
            batch[f"{role}_parsing"] = labels
    for key in maps:
        points = batch[POINT_MAPS[key]]  # (B, K, 3) in the training frame
        batch[key] = draw_point_maps(key, points, config)
    return {k: v for k, v in batch.items() if k in needs or k in ALWAYS}


def draw_point_maps(key: str, points: torch.Tensor, config: DataConfig) -> torch.Tensor:
    """float32 ``(B, K, H, W)`` maps of batch key ``key`` (one of :data:`POINT_MAPS`) from its points
    ``(B, K, 3)``: keypoint heatmaps and disks of the detected points (confidence > 0), landmark
    heatmaps of the visible and occluded ones (attribute not :data:`ABSENT`)."""
    size = config.size
    flat = points.reshape(-1, points.shape[-1]).numpy()
    canvas = _batch_tensor((len(flat), *size), torch.float32, zeros=True)
    if key.endswith("_pose_heatmaps"):
        gaussian_heatmaps(flat, size, config.pose_sigma, out=canvas.numpy())
    elif key.endswith("_pose_disks"):
        pose_disks(flat, size, config.pose_radius, out=canvas.numpy())
    else:
        located = np.concatenate([flat[:, :2], (flat[:, 2:] != ABSENT).astype(np.float32)], axis=1)
        gaussian_heatmaps(located, size, config.landmark_sigma, out=canvas.numpy())
    return canvas.reshape(*points.shape[:2], *size)


def _batch_tensor(shape: tuple[int, ...], dtype: torch.dtype, *, zeros: bool = False) -> torch.Tensor:
    """A new tensor for a batch key, all zeros if ``zeros`` (lazily: pages never written are never
    touched). In a DataLoader worker it is in shared memory, as the batches ``default_collate``
    stacks there are, so that sending the batch to the main process copies nothing."""
    if get_worker_info() is None:
        return torch.from_numpy(np.zeros(shape, torch.empty(0, dtype=dtype).numpy().dtype)) if zeros else torch.empty(shape, dtype=dtype)
    nbytes = torch.empty(0, dtype=dtype).element_size() * math.prod(shape)
    storage = torch.UntypedStorage._new_shared(nbytes)  # a new shared-memory file, which reads as zeros
    return torch.empty(0, dtype=dtype).set_(storage).view(shape)


def decode_pair(row: Mapping[str, Any], needs: Iterable[str], config: DataConfig) -> dict[str, Any]:
    """One packed row's raw values decoded at the training resolution, as :func:`decode_pairs`
    collates them: the ``needs`` keys but for the :data:`POINT_MAPS` and the garment regions, images
    ``(3, H, W)``, the garment mask ``(1, H, W)`` and parsing ``(H, W)`` still uint8."""
    needs = set(needs)
    if needs & POINT_MAPS.keys():
        raise KeyError(f"{sorted(needs & POINT_MAPS.keys())} are drawn per batch: use decode_pairs")
    size = config.size
    sources = {BATCH_KEYS[k] for k in needs}
    out: dict[str, Any] = {"pair_id": row["pair_id"], "paired": torch.tensor(bool(row["paired"]))}
    frames: dict[str, Size] = {}  # role -> original (H, W)

    for role in IMAGE_ROLES:
        if (role, "image") in sources:
            pixels, frames[role] = decode_rgb(_require(row, f"{role}.image"), size)
            out[f"{role}_image"] = resize_image(torch.from_numpy(pixels).permute(2, 0, 1), size)
    if ("garment", "garment_mask") in sources:
        mask = _require(row, "garment.garment_mask.mask")
        frames["garment"] = mask.shape
        out["garment_mask"] = resize_nearest(mask, size)[None]
    for role in PERSON_ROLES:
        if (role, "parsing") in sources:
            parsing = _require(row, f"{role}.parsing.parsing")
            frames[role] = parsing.shape
            out[f"{role}_parsing"] = resize_nearest(parsing, size)
        if (role, "densepose") in sources:
            iuv = _require(row, f"{role}.densepose.iuv")
            frames[role] = iuv.shape[:2]
            out[f"{role}_iuv_i"], out[f"{role}_iuv_uv"] = resize_iuv(iuv, size)

    def frame(role: str) -> Size:
        if role not in frames:
            frames[role] = _image_size(_require(row, f"{role}.image"))
        return frames[role]

    for role in PERSON_ROLES:
        if (role, "keypoints") in sources:
            kp = _require(row, f"{role}.keypoints.keypoints")
            points = scale_points(kp, kp[:, 2] > 0, frame(role), size)
            out[f"{role}_keypoints"] = points
    for role in IMAGE_ROLES:
        if (role, "landmarks") in sources:
            lm = _require(row, f"{role}.landmarks.landmarks")
            out[f"{role}_landmarks"] = scale_points(lm, lm[:, 2] != ABSENT, frame(role), size)
    if ("pair", "smpl_flow") in sources:
        flow = _require(row, "pair.smpl_flow.flow")
        out["smpl_flow"], out["visibility"] = resize_flow(flow, _require(row, "pair.smpl_flow.visibility"), size, frame("source"))
    return {k: v for k, v in out.items() if k in needs or k in ALWAYS}


def first_samples(pairs: PackedPairs, count: int) -> dict[str, Any]:
    """The first ``count`` samples of ``pairs`` (shard order) as one batch (for sample grids)."""
    return pairs.batch(range(min(count, len(pairs))))
