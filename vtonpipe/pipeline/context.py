"""Read access to a build for backends (:class:`vtonpipe.core.Context`): dataset tables, image
pixels and upstream annotations."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..core import AnnotationFailure
from ..io import ImageDecodeError, read_image
from .layout import BuildLayout
from .store import ShardReader, read_manifest


class AnnotationContext:
    """The :class:`~vtonpipe.core.Context` of a build directory. Cheap to build in each worker."""

    def __init__(self, build: str | Path, dataset_root: str | Path | None = None, image_cache: int = 64):
        self.layout = BuildLayout(build)
        manifest = read_manifest(self.layout.images)
        self.dataset_root = Path(dataset_root or manifest["dataset_root"])
        self.images = {r["image_id"]: r for r in ShardReader(self.layout.images)}
        self.pairs = list(ShardReader(self.layout.pairs))
        self._pairs_by_id = {p["pair_id"]: p for p in self.pairs}
        self._garments: dict[str, list[str]] = defaultdict(list)
        for p in self.pairs:
            g = p["garment_image_id"]
            for person in (p["source_image_id"], p["target_image_id"]):
                if person and g and p["paired"] is not False and g not in self._garments[person]:
                    self._garments[person].append(g)
        self._readers: dict[str, ShardReader] = {}
        self._pixels: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = image_cache

    def image_sha256(self, image_id: str) -> str:
        return self.images[image_id]["sha256"]

    def pair(self, pair_id: str) -> dict[str, Any]:
        return self._pairs_by_id[pair_id]

    def image_path(self, image_id: str) -> Path:
        return self.dataset_root / self.images[image_id]["path"]

    def load_image(self, image_id: str) -> np.ndarray:
        """RGB uint8 (H, W, 3) pixels; AnnotationFailure('decode_error') if unreadable."""
        if image_id in self._pixels:
            self._pixels.move_to_end(image_id)
            return self._pixels[image_id]
        try:
            pixels = read_image(self.image_path(image_id))
        except ImageDecodeError as e:
            raise AnnotationFailure("decode_error", str(e)) from e
        self._pixels[image_id] = pixels
        while len(self._pixels) > self._cache_size:
            self._pixels.popitem(last=False)
        return pixels

    def garments_of(self, image_id: str) -> list[str]:
        """In-shop garment images the person wears, per the pairs table (paired pairs only)."""
        return list(self._garments.get(image_id, ()))

    def reader(self, annotator: str) -> ShardReader:
        """The shard reader of stage ``annotator`` (opened once)."""
        if annotator not in self._readers:
            self._readers[annotator] = ShardReader(self.layout.annotation(annotator))
        return self._readers[annotator]

    def has(self, annotator: str) -> bool:
        """Whether stage ``annotator`` has written its shard directory."""
        return (self.layout.annotation(annotator) / "manifest.json").exists()

    def annotation(self, annotator: str, item_id: str) -> Any:
        """The upstream record of ``item_id``; AnnotationFailure('missing_upstream') if it has none."""
        try:
            return self.reader(annotator).record(item_id)
        except KeyError:
            raise AnnotationFailure("missing_upstream", f"no {annotator} annotation for {item_id} (did it fail upstream?)") from None

    def annotation_key(self, annotator: str, item_id: str) -> str | None:
        """``input_sha256:backend:version:params_hash`` of the upstream row, None without one."""
        reader = self.reader(annotator)
        if item_id not in reader:
            return None
        row = reader.get(item_id, dense=False)
        return ":".join(str(row[k]) for k in ("input_sha256", "backend", "version", "params_hash"))

    def provenance(self, annotator: str) -> list[dict[str, Any]]:
        return read_manifest(self.layout.annotation(annotator)).get("provenance", [])
