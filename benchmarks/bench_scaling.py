"""How the pipeline's cost grows with the work: end to end, incremental, on a Dask cluster, at 10k images.

    python benchmarks/bench_scaling.py all [--people 40] [--sizes 1000 10000] [--out DIR]
    python benchmarks/bench_scaling.py e2e|incremental|cluster|ingest-pack ...

Each part measures its figures and its baseline in this one run:

- ``e2e``: every annotator stage of the default DAG (params.yaml) in this process on a sample
  build of ``--people`` people (3 images and 1 pair each): items/s per stage and overall images/s,
  and the efficiency, time inside the backends' model calls (``Backend.run``) over the stage's wall
  time (the rest is decoding, context reads, shard writes and hashing).
- ``incremental``: the same stages after adding 1 % new people (``vtonpipe sample`` is
  deterministic per person, so the first people do not change) and re-ingesting: the rerun's wall
  time over the full run's (target <= 5 %); every old row is kept.
- ``cluster``: the ``keypoints`` stage (MediaPipe, CPU bound) and the ``body`` stage (the batched
  torch fit; its inputs computed first, in process) recomputed on a Dask LocalCluster of 1 and of
  2 worker processes (``--scheduler processes``), wall time including the cluster's start.
- ``ingest-pack``: ``vtonpipe ingest`` and ``vtonpipe pack`` (as subprocesses) on procedurally
  generated MPV folders of ``--sizes`` images (random-block JPEGs, 256 x 192): seconds per image
  at each size and their ratio (flat means the per-image cost does not grow with the dataset), and
  each command's peak resident memory (its ``VmHWM``).

Results (2 shared CPU cores): README, "Scaling", and docs/MEASUREMENTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from vtonpipe.core.backend import Backend
from vtonpipe.logs import silence_third_party
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.ingest import ingest
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.synth import write_sample

STAGES = ("keypoints", "person_mask", "garment_mask", "parsing", "body", "densepose", "smpl_flow", "landmarks")
PARAMS = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())


class ModelClock:
    """Seconds spent inside ``Backend.run`` (the backends' model calls), per annotator."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._run = Backend.run

    def __enter__(self) -> ModelClock:
        clock, run = self, self._run

        def timed(backend, items, ctx):
            start = time.perf_counter()
            try:
                return run(backend, items, ctx)
            finally:
                name = backend.spec.name
                clock.seconds[name] = clock.seconds.get(name, 0.0) + time.perf_counter() - start

        Backend.run = timed
        return self

    def __exit__(self, *exc) -> None:
        Backend.run = self._run


def run_stages(build: Path, root: Path, **overrides) -> dict[str, tuple[float, int]]:
    """Ingest ``root`` into ``build`` and run every stage: {name: (wall seconds, items computed)}."""
    out = {}
    start = time.perf_counter()
    ingest("bench", root, build, layout_name="mpv", show_progress=False)
    out["ingest"] = (time.perf_counter() - start, 0)
    for name in STAGES:
        start = time.perf_counter()
        result = run_stage(build, StageConfig.resolve(PARAMS, name, **overrides), show_progress=False)
        out[name] = (time.perf_counter() - start, result.computed + result.failed - result.failed_before)
    return out


def sample_root(out: Path, people: int) -> Path:
    root = out / f"raw{people}"
    if not (root / "all_poseA_poseB_clothes.txt").exists():
        write_sample(root, people, seed=3)
    return root


def e2e(args: argparse.Namespace) -> None:
    root = sample_root(args.out, args.people)
    build = args.out / "e2e"
    shutil.rmtree(build, ignore_errors=True)
    with ModelClock() as clock:
        start = time.perf_counter()
        stages = run_stages(build, root)
        wall = time.perf_counter() - start
    images = 3 * args.people
    print(f"\nend to end: {args.people} people ({images} images, {args.people} pairs), every stage in this process, cold build")
    print(f"{'stage':>13} {'items':>6} {'wall s':>8} {'items/s':>8} {'model s':>8} {'efficiency':>10}")
    for name, (seconds, items) in stages.items():
        model = clock.seconds.get(name, 0.0)
        rate = f"{items / seconds:8.2f}" if items else f"{'-':>8}"
        print(f"{name:>13} {items:6d} {seconds:8.2f} {rate} {model:8.2f} {model / seconds:10.2f}")
    model = sum(clock.seconds.values())
    print(f"{'all':>13} {images:6d} {wall:8.2f} {images / wall:8.2f} {model:8.2f} {model / wall:10.2f}  (images/s over all stages)")


def incremental(args: argparse.Namespace) -> None:
    new = max(1, round(args.people / 100))
    full_root = sample_root(args.out, args.people + new)
    root = args.out / "incremental-raw"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(full_root, root)
    lines = (root / "all_poseA_poseB_clothes.txt").read_text().splitlines()
    keep, added = lines[: args.people], lines[args.people :]
    moved = args.out / "incremental-new"
    shutil.rmtree(moved, ignore_errors=True)
    moved.mkdir()
    for line in added:
        for name in line.split()[:3]:
            shutil.move(root / "all" / name, moved / name)
    (root / "all_poseA_poseB_clothes.txt").write_text("\n".join(keep) + "\n")
    build = args.out / "incremental"
    shutil.rmtree(build, ignore_errors=True)
    start = time.perf_counter()
    run_stages(build, root)
    full = time.perf_counter() - start
    for path in moved.iterdir():
        shutil.move(path, root / "all" / path.name)
    (root / "all_poseA_poseB_clothes.txt").write_text("\n".join(keep + added) + "\n")
    start = time.perf_counter()
    rerun = run_stages(build, root)
    again = time.perf_counter() - start
    computed = sum(items for _, items in rerun.values())
    print(f"\nincremental: {args.people} people, then {new} more ({100 * new / args.people:.1f} %): full run {full:.1f} s, "
          f"rerun after the addition {again:.1f} s = {100 * again / full:.1f} % of it (items computed in the rerun: {computed})")  # fmt: skip
    print("rerun per stage: " + ", ".join(f"{name} {seconds:.1f} s ({items})" for name, (seconds, items) in rerun.items()))


def cluster(args: argparse.Namespace) -> None:
    """``keypoints`` (MediaPipe, which threads its own calls) and ``body`` (the batched torch fit,
    one torch thread per worker) recomputed by a LocalCluster of 1 and of 2 worker processes."""
    root = sample_root(args.out, args.people)
    build = args.out / "cluster"
    if not (build / "ingest").exists():
        ingest("bench", root, build, layout_name="mpv", show_progress=False)
    for name in ("keypoints", "person_mask"):  # the body fit's inputs
        run_stage(build, StageConfig.resolve(PARAMS, name), show_progress=False)
    print(f"\nDask LocalCluster on {2 * args.people} person images (recomputed), wall incl. cluster start:")
    for name in ("keypoints", "body"):
        times = {}
        for workers in (1, 2):
            start = time.perf_counter()
            run_stage(build, StageConfig.resolve(PARAMS, name, scheduler="processes", workers=workers), recompute=True, show_progress=False)
            times[workers] = time.perf_counter() - start
        print(f"{name:>10}: 1 worker {times[1]:.1f} s, 2 workers {times[2]:.1f} s, speed-up {times[1] / times[2]:.2f}x")


def procedural_mpv(root: Path, images: int) -> None:
    """An MPV folder of ``images`` random-block JPEGs (256 x 192), triplets A, B, garment."""
    rng = np.random.default_rng(0)
    (root / "all").mkdir(parents=True, exist_ok=True)
    lines = []
    for p in range(images // 3):
        names = [f"P{p:06d}@0=person_whole_front.jpg", f"P{p:06d}@1=person_whole_front.jpg", f"P{p:06d}@2=cloth_front.jpg"]
        for name in names:
            blocks = rng.integers(0, 256, (8, 6, 3), dtype=np.uint8)
            Image.fromarray(blocks).resize((192, 256), Image.BILINEAR).save(root / "all" / name, quality=90)
        lines.append(" ".join(names) + (" test" if p % 4 == 0 else " train"))
    (root / "all_poseA_poseB_clothes.txt").write_text("\n".join(lines) + "\n")


#: runs the vtonpipe CLI and prints its peak resident memory (VmHWM, kB: the process's own, not the forking parent's) last on stderr
CLI_WITH_PEAK = (
    "import atexit, sys; from vtonpipe.cli import main; "
    "atexit.register(lambda: print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0], file=sys.stderr)); "
    "sys.argv[0] = 'vtonpipe'; main()"
)


def measured(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of ``vtonpipe ARGS`` in a fresh process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CLI_WITH_PEAK, *args], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"vtonpipe {' '.join(args)} failed: {done.stderr[-2000:]}")
    return wall, int(done.stderr.split()[-1]) / 1024


def ingest_pack(args: argparse.Namespace) -> None:
    rows = []
    for size in args.sizes:
        work = args.out / f"procedural{size}"
        if not (work / "raw" / "all_poseA_poseB_clothes.txt").exists():
            procedural_mpv(work / "raw", size)
        shutil.rmtree(work / "data", ignore_errors=True)
        params = {**PARAMS, "data_root": str(work / "data"), "datasets": {"proc": {"layout": "mpv", "root": str(work / "raw")}}}
        (work / "params.yaml").write_text(yaml.safe_dump(params))
        cli = ["--params", str(work / "params.yaml")]
        ingest_s, ingest_mib = measured([*cli, "ingest", "--dataset", "proc"])
        pack_s, pack_mib = measured([*cli, "pack", "--dataset", "proc"])
        manifest = json.loads((work / "data" / "proc" / "packed" / "manifest.json").read_text())
        images = 3 * (size // 3)
        rows.append((images, ingest_s, ingest_mib, pack_s, pack_mib, manifest))
    print("\ningest + pack of procedural MPV folders (256 x 192 JPEGs), each command a fresh process")
    print(f"{'images':>7} {'ingest ms/img':>13} {'ingest MiB':>10} {'pack ms/img':>11} {'pack MiB':>8} {'vs smallest (ingest, pack)':>27}")
    base = rows[0]
    for images, ingest_s, ingest_mib, pack_s, pack_mib, _ in rows:
        ratio = f"{(ingest_s / images) / (base[1] / base[0]):.2f}x, {(pack_s / images) / (base[3] / base[0]):.2f}x"
        print(f"{images:7d} {1e3 * ingest_s / images:13.2f} {ingest_mib:10.0f} {1e3 * pack_s / images:11.2f} {pack_mib:8.0f} {ratio:>27}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["all", "e2e", "incremental", "cluster", "ingest-pack"])
    parser.add_argument("--people", type=int, default=40, help="people of the sample builds (3 images each)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000], help="images of the procedural folders")
    parser.add_argument("--out", type=Path, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    silence_third_party()
    args.out = args.out or Path(tempfile.mkdtemp(prefix="vtonpipe-scaling-"))
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"work folder {args.out}; {os.cpu_count()} CPUs")
    parts = {"e2e": e2e, "incremental": incremental, "cluster": cluster, "ingest-pack": ingest_pack}
    for name, part in parts.items():
        if args.part in ("all", name):
            part(args)


if __name__ == "__main__":
    main()
