"""Tiny packed builds written directly with ShardWriter and the packed schema (no DAG run)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from PIL import Image

from vtonpipe.annotators import get_annotator
from vtonpipe.pipeline.store import MANIFEST, ShardWriter
from vtonpipe.schemas.packed import packed_schema

#: packed component -> schema name (version 1 of each)
ALL_COMPONENTS = (
    "garment.garment_mask",
    "garment.landmarks",
    "source.parsing",
    "source.densepose",
    "source.keypoints",
    "source.landmarks",
    "target.parsing",
    "target.densepose",
    "target.keypoints",
    "target.landmarks",
    "pair.smpl_flow",
)


def components(prefixes: Iterable[str] = ALL_COMPONENTS) -> dict[str, dict[str, Any]]:
    out = {}
    for prefix in prefixes:
        name = prefix.split(".", 1)[1]
        schema = get_annotator(name).schema  # the current version
        out[prefix] = {"name": schema.name, "version": schema.version}
    return out


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def flat_row(pair_id: str, split: str, values: Mapping[str, Any], *, paired: bool | None = True, has_target: bool = True) -> dict[str, Any]:
    """A packed row from ``values`` = {"source.image": bytes, "source.parsing.parsing": array, ...};
    each component present in ``values`` gets its ``annotator`` column set."""
    row: dict[str, Any] = {"pair_id": pair_id, "split": split, "dataset": "hand", "paired": paired}
    for role in ("source", "target", "garment"):
        if role == "target" and not has_target:
            continue
        row[f"{role}.image_id"] = f"{pair_id}/{role}.png"
    row.update(values)
    for column in values:
        parts = column.split(".")
        if len(parts) == 3:
            row[f"{parts[0]}.{parts[1]}.annotator"] = parts[1]
    return row


def write_build(
    root: Path,
    rows_by_split: Mapping[str, Sequence[Mapping[str, Any]]],
    prefixes: Iterable[str] = ALL_COMPONENTS,
    *,
    rows_per_shard: int = 4,
    include_images: bool = True,
    absent: Mapping[str, str] | None = None,
) -> Path:
    """Write ``root/packed/<split>/`` shards of the given rows and ``root/packed/manifest.json``."""
    comps = components(prefixes)
    schema = packed_schema(comps)
    for split, rows in rows_by_split.items():
        writer = ShardWriter(root / "packed" / split, schema, name=f"packed/{split}", extra={"components": comps})
        for start in range(0, len(rows), rows_per_shard):
            writer.write_shard(rows[start : start + rows_per_shard])
        writer.finish()
    manifest = {"format": "vtonpipe-build", "packed": {"components": comps, "include_images": include_images}}
    if absent:
        manifest["packed"]["absent"] = dict(absent)
    (root / "packed" / MANIFEST).write_text(json.dumps(manifest))
    return root


def synthetic_values(seed: int, size: tuple[int, int] = (16, 12), *, with_target: bool = True) -> dict[str, Any]:
    """Packed values of one synthetic pair at ``size`` (H, W): smooth images where the target is
    the garment's colours over the source's layout, parsing, IUV, keypoints, landmarks, flow."""
    h, w = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(0, 1, 3)
    garment = (np.clip(np.stack([base[c] * xx / w + (1 - base[c]) * yy / h for c in range(3)], -1), 0, 1) * 255).astype(np.uint8)
    source = (np.clip(garment.astype(np.float32) * 0.5 + rng.uniform(0, 120), 0, 255)).astype(np.uint8)
    target = np.clip(garment.astype(np.int32)[::-1] + 10, 0, 255).astype(np.uint8)
    parsing = np.zeros((h, w), np.uint8)
    parsing[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 5
    parsing[: h // 4, w // 3 : 2 * w // 3] = 13
    iuv = np.zeros((h, w, 3), np.uint8)
    iuv[parsing > 0, 0] = 1 + (xx[parsing > 0] * 24 // w)
    iuv[..., 1] = (xx * 255 // max(1, w - 1)) * (parsing > 0)
    iuv[..., 2] = (yy * 255 // max(1, h - 1)) * (parsing > 0)
    kp = np.zeros((18, 3), np.float32)
    kp[:10] = np.c_[rng.uniform(0, w - 1, 10), rng.uniform(0, h - 1, 10), rng.uniform(0.5, 1, 10)]
    lm = np.zeros((32, 3), np.float32)
    lm[:, 2] = 2
    lm[:8] = np.c_[rng.uniform(0, w - 1, 8), rng.uniform(0, h - 1, 8), rng.integers(0, 2, 8)]
    values: dict[str, Any] = {
        "source.image": png(source),
        "garment.image": png(garment),
        "garment.garment_mask.mask": (garment.sum(-1) > 200).astype(np.uint8),
        "garment.landmarks.landmarks": lm,
        "source.parsing.parsing": parsing,
        "source.densepose.iuv": iuv,
        "source.keypoints.keypoints": kp,
        "source.landmarks.landmarks": lm,
    }
    if with_target:
        flow = np.zeros((h, w, 2), np.float32)
        flow[..., 0] = 1.0
        visibility = np.where(parsing > 0, 0, 2).astype(np.uint8)
        values.update(
            {
                "target.image": png(target),
                "target.parsing.parsing": parsing[::-1].copy(),
                "target.densepose.iuv": iuv[::-1].copy(),
                "target.keypoints.keypoints": kp,
                "target.landmarks.landmarks": lm,
                "pair.smpl_flow.flow": flow * (visibility != 2)[..., None],
                "pair.smpl_flow.visibility": visibility,
            }
        )
    return values


def synthetic_build(root: Path, *, train: int = 10, test: int = 5, size: tuple[int, int] = (16, 12), rows_per_shard: int = 4) -> Path:
    """A build of synthetic pairs with every prior: ``train`` + ``test`` pairs, uneven shards."""
    rows = {
        "train": [flat_row(f"train-{i:03d}", "train", synthetic_values(i, size)) for i in range(train)],
        "test": [flat_row(f"test-{i:03d}", "test", synthetic_values(1000 + i, size)) for i in range(test)],
    }
    return write_build(root, rows, rows_per_shard=rows_per_shard)
