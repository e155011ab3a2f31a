"""Training-loader throughput: packed shards vs a VITON-HD-style folder of files, same batches.

Both loops feed a DataLoader batches of the same keys at the same training resolution: person and
in-shop garment images, garment mask, LIP parsing and the garment region, DensePose I and UV,
COCO-18 keypoints, their heatmaps and SPG pose disks. The packed loop reads
``packed/<split>/`` through :class:`vtonpipe.training.data.PackedPairs` as training does (one
batch decoded as one, the pose maps drawn per batch: ``make_loader``); the folder loop opens one
file per prior the way HR-VITON's ``cp_dataset.py`` does (PIL open + resize per image, parsing and
DensePose PNGs, ``*_keypoints.json`` with json.load), encodes the same heatmaps and disks per
sample with the same functions, and lets the DataLoader collate. ``--no-pose-maps`` leaves the
pose maps out of both, which isolates reading and decoding from the encodings.

Both data sets are written to a scratch folder from one build's packed train split (``make demo``
gives ``data/sample``): its pairs repeated to ``--pairs``, optionally upscaled ``--upscale`` times
(4 turns the 256x192 sample into VITON-HD's 1024x768: images bicubic and re-encoded as JPEG
quality 95, maps nearest, keypoints in the pixel-centre frame).

    python benchmarks/bench_loader.py [--build data/sample] [--upscale 4] [--size 256x192]
                                      [--pairs 64] [--batch-size 8] [--batches 24] [--workers 0]
                                      [--no-pose-maps]
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from vtonpipe.converters.keypoints import gaussian_heatmaps, pose_disks, read_openpose_json, write_openpose_json
from vtonpipe.converters.labels import write_palette_png
from vtonpipe.io import decode_image
from vtonpipe.pipeline.store import ShardReader, ShardWriter
from vtonpipe.schemas.packed import packed_schema
from vtonpipe.training.data import DataConfig, PackedPairs, garment_region
from vtonpipe.training.stream import PackedPairStream, make_loader
from vtonpipe.training.transforms import resize_iuv, scale_points

NEEDS = {
    "source_image", "garment_image", "garment_mask", "source_parsing", "source_garment_region",
    "source_iuv_i", "source_iuv_uv", "source_keypoints", "source_pose_heatmaps", "source_pose_disks",
}  # fmt: skip
COMPONENTS = ("garment.garment_mask", "source.parsing", "source.densepose", "source.keypoints")


# -- the two data sets from one build -----------------------------------------------------------
def _jpeg(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def source_pairs(build: Path, pairs: int, upscale: int) -> list[dict]:
    """``pairs`` VITON-style pairs (person, garment and their priors) from ``build``'s packed train split."""
    reader = ShardReader(build / "packed" / "train")
    rows = [reader.record(i) for i in reader.ids()]
    out = []
    for n in range(pairs):
        row = rows[n % len(rows)]
        src, gar = row.source, row.garment
        person, garment = decode_image(src.image), decode_image(gar.image)
        kp = src["keypoints"].keypoints.copy()
        if upscale > 1:
            h, w = person.shape[:2]
            big = (w * upscale, h * upscale)
            person = np.asarray(Image.fromarray(person).resize(big, Image.BICUBIC))
            garment = np.asarray(Image.fromarray(garment).resize(big, Image.BICUBIC))
            found = kp[:, 2] > 0
            kp[found, :2] = (kp[found, :2] + 0.5) * upscale - 0.5
        rep = (lambda a: np.repeat(np.repeat(a, upscale, 0), upscale, 1)) if upscale > 1 else (lambda a: a)
        out.append(
            {
                "id": f"{n:05d}_00",
                "person": _jpeg(person),
                "garment": _jpeg(garment),
                "garment_mask": rep(gar["garment_mask"].mask),
                "parsing": rep(src["parsing"].parsing),
                "iuv": rep(src["densepose"].iuv),
                "keypoints": kp,
            }
        )
    return out


def write_packed(root: Path, pairs: list[dict], rows_per_shard: int = 64) -> Path:
    comps = {c: {"name": c.split(".")[1], "version": 1} for c in COMPONENTS}
    schema = packed_schema(comps)
    writer = ShardWriter(root / "packed" / "train", schema, name="packed/train", extra={"components": comps})
    rows = []
    for p in pairs:
        rows.append(
            {
                "pair_id": p["id"], "split": "train", "dataset": "bench", "paired": True,
                "source.image_id": f"image/{p['id']}.jpg", "source.image": p["person"],
                "garment.image_id": f"cloth/{p['id']}.jpg", "garment.image": p["garment"],
                "garment.garment_mask.annotator": "garment_mask", "garment.garment_mask.mask": p["garment_mask"],
                "source.parsing.annotator": "parsing", "source.parsing.parsing": p["parsing"],
                "source.densepose.annotator": "densepose", "source.densepose.iuv": p["iuv"],
                "source.keypoints.annotator": "keypoints", "source.keypoints.keypoints": p["keypoints"],
            }
        )  # fmt: skip
    for start in range(0, len(rows), rows_per_shard):
        writer.write_shard(rows[start : start + rows_per_shard])
    writer.finish()
    (root / "packed" / "manifest.json").write_text(json.dumps({"packed": {"components": comps, "include_images": True}}))
    return root


def write_folder(root: Path, pairs: list[dict]) -> Path:
    """VITON-HD's layout: train/{image,cloth,cloth-mask,image-parse-v3,openpose_json,image-densepose}/, train_pairs.txt."""
    train = root / "train"
    for sub in ("image", "cloth", "cloth-mask", "image-parse-v3", "openpose_json", "image-densepose"):
        (train / sub).mkdir(parents=True, exist_ok=True)
    for p in pairs:
        (train / "image" / f"{p['id']}.jpg").write_bytes(p["person"])
        (train / "cloth" / f"{p['id']}.jpg").write_bytes(p["garment"])
        Image.fromarray(p["garment_mask"] * 255).save(train / "cloth-mask" / f"{p['id']}.png")
        write_palette_png(train / "image-parse-v3" / f"{p['id']}.png", p["parsing"])
        write_openpose_json(train / "openpose_json" / f"{p['id']}_keypoints.json", p["keypoints"][None])
        Image.fromarray(p["iuv"]).save(train / "image-densepose" / f"{p['id']}.png")
    (root / "train_pairs.txt").write_text("".join(f"{p['id']}.jpg {p['id']}.jpg\n" for p in pairs))
    return root


class FolderPairs(Dataset):
    """The folder loop: one file open and decode per prior, PIL resizes, as HR-VITON's CPDataset."""

    def __init__(self, root: Path, config: DataConfig, needs: set[str]):
        self.root = root / "train"
        self.names = [line.split() for line in (root / "train_pairs.txt").read_text().splitlines()]
        self.config = config
        self.needs = needs

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> dict:
        person_name, cloth_name = self.names[index]
        stem = person_name[: -len(".jpg")]
        h, w = self.config.size
        out = {"pair_id": stem}
        for key, path in (("source_image", self.root / "image" / person_name), ("garment_image", self.root / "cloth" / cloth_name)):
            im = Image.open(path).convert("RGB").resize((w, h), Image.BILINEAR)
            out[key] = torch.from_numpy(np.array(im)).permute(2, 0, 1).float().div_(255.0)
        mask = Image.open(self.root / "cloth-mask" / cloth_name.replace(".jpg", ".png")).resize((w, h), Image.NEAREST)
        out["garment_mask"] = torch.from_numpy((np.array(mask) >= 128).astype(np.float32))[None]
        parse_big = Image.open(self.root / "image-parse-v3" / f"{stem}.png")
        frame = (parse_big.height, parse_big.width)
        parse = torch.from_numpy(np.array(parse_big.resize((w, h), Image.NEAREST))).long()
        out["source_parsing"] = parse
        out["source_garment_region"] = garment_region(parse)
        iuv = np.array(Image.open(self.root / "image-densepose" / f"{stem}.png").convert("RGB"))
        out["source_iuv_i"], out["source_iuv_uv"] = resize_iuv(iuv, (h, w))
        kp = read_openpose_json(self.root / "openpose_json" / f"{stem}_keypoints.json")[0]
        points = scale_points(kp, kp[:, 2] > 0, frame, (h, w))
        out["source_keypoints"] = points
        if "source_pose_heatmaps" in self.needs:
            out["source_pose_heatmaps"] = torch.from_numpy(gaussian_heatmaps(points.numpy(), (h, w), self.config.pose_sigma))
        if "source_pose_disks" in self.needs:
            out["source_pose_disks"] = torch.from_numpy(pose_disks(points.numpy(), (h, w), self.config.pose_radius))
        return out


class Cycle(torch.utils.data.Sampler):
    """Indices 0..n-1 in order, forever (the packed stream also runs unshuffled and endless)."""

    def __init__(self, n: int):
        self.n = n

    def __iter__(self):
        while True:
            yield from range(self.n)


# -- timing -------------------------------------------------------------------------------------
def rates(loaders: dict[str, DataLoader], batches: int, repeats: int) -> dict[str, tuple[float, float, dict]]:
    """Per loader: best samples/s over ``repeats`` runs of ``batches`` batches, by wall clock and by
    this process's CPU time (with no worker processes all the work is in this process, and CPU
    time is the figure a machine shared with other jobs distorts least), and its first batch.
    The loaders' runs alternate, so that neither gains from going second (warm allocator, caches)."""
    its = {name: iter(loader) for name, loader in loaders.items()}
    first = {name: next(it) for name, it in its.items()}  # warm-up: workers started, first shard read
    best = {name: (0.0, 0.0) for name in loaders}
    for _ in range(repeats):
        for name, it in its.items():
            t0, c0 = time.perf_counter(), time.process_time()
            n = sum(len(next(it)["pair_id"]) for _ in range(batches))
            wall, cpu = n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)
            best[name] = (max(best[name][0], wall), max(best[name][1], cpu))
    return {name: (*best[name], first[name]) for name in loaders}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="data/sample", type=Path, help="build with packed/train (make demo)")
    ap.add_argument("--upscale", type=int, default=4, help="resolution factor applied to the build's images and maps")
    ap.add_argument("--size", default="256x192", help="training resolution HEIGHTxWIDTH")
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--batches", type=int, default=24, help="timed batches per loop (after one warm-up batch)")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per loop; the best counts")
    ap.add_argument("--no-pose-maps", action="store_true", help="leave out the keypoint heatmaps and disks (both loops encode them alike)")
    args = ap.parse_args()
    if not (args.build / "packed" / "train").is_dir():
        raise SystemExit(f"{args.build}/packed/train not found: build the sample first (`make demo`) or pass --build")
    torch.set_num_threads(1)
    h, w = (int(v) for v in args.size.split("x"))
    config = DataConfig(height=h, width=w)
    needs = NEEDS - {"source_pose_heatmaps", "source_pose_disks"} if args.no_pose_maps else NEEDS
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        pairs = source_pairs(args.build, args.pairs, args.upscale)
        packed_root = write_packed(scratch / "packed_build", pairs)
        folder_root = write_folder(scratch / "folder", pairs)
        big = decode_image(pairs[0]["person"]).shape[:2]
        print(f"{len(pairs)} pairs at {big[0]}x{big[1]} -> batches of {args.batch_size} at {h}x{w}, {args.workers} workers")

        packed = PackedPairs(packed_root, "train", needs, config)
        stream = PackedPairStream(packed, args.batch_size, shuffle=False)
        folder = DataLoader(FolderPairs(folder_root, config, needs), batch_size=args.batch_size, num_workers=args.workers, sampler=Cycle(len(pairs)))
        measured = rates({"folder": folder, "packed": make_loader(stream, workers=args.workers)}, args.batches, args.repeats)
    (folder_wall, folder_cpu, folder_batch), (packed_wall, packed_cpu, packed_batch) = measured["folder"], measured["packed"]

    # the same batch content: same pairs, keys, shapes and dtypes; equal values but for the images'
    # resampler (PIL's bilinear vs torch's antialiased bilinear: within a few levels)
    assert set(folder_batch) - {"pair_id"} == set(packed_batch) - {"pair_id", "paired"} == needs
    assert list(folder_batch["pair_id"]) == list(packed_batch["pair_id"])
    for key in sorted(needs):
        a, b = folder_batch[key], packed_batch[key]
        assert a.shape == b.shape and a.dtype == b.dtype, (key, a.shape, b.shape)
        tol = 0.03 if key.endswith("_image") else 1e-3  # (OpenPose JSON rounds coordinates)
        assert (a.float() - b.float()).abs().mean() <= tol, (key, (a.float() - b.float()).abs().mean())
    print(f"{'':36s}{'samples/s (wall)':>18s}{'per CPU second' if not args.workers else '':>16s}")
    for name, wall, cpu in (("folder (PIL + PNG + JSON per file)", folder_wall, folder_cpu), ("packed shards (PackedPairs)", packed_wall, packed_cpu)):
        print(f"{name:36s}{wall:18.1f}{f'{cpu:16.1f}' if not args.workers else ''}")
    print(f"ratio packed / folder: {packed_wall / folder_wall:.2f}x (wall)" + ("" if args.workers else f", {packed_cpu / folder_cpu:.2f}x (CPU time)"))


if __name__ == "__main__":
    main()
