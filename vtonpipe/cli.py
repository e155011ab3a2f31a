"""The ``vtonpipe`` command line: options are parsed here and resolved with ``params.yaml`` (the
DVC params file) into the typed configurations of :mod:`vtonpipe.pipeline.config`; the work is
done by the pipeline modules."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from .config import load_params
from .console import fail, parse_settings, print_annotate_summary


def _params(ctx: click.Context) -> dict[str, Any]:
    return ctx.obj["params"]


def _build_dir(ctx: click.Context, dataset: str, build: str | None) -> Path:
    from .pipeline.config import build_dir

    return build_dir(_params(ctx), dataset, build)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--params", "params_file", default="params.yaml", show_default=True, help="DVC params file with the defaults.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging, and the third-party logs (TensorFlow Lite, absl, warp) that are otherwise silenced.")
@click.version_option(package_name="vtonpipe")
@click.pass_context
def main(ctx: click.Context, params_file: str, verbose: bool) -> None:
    """vtonpipe: virtual try-on priors as versioned shards.

    A dataset build lives in DATA_ROOT/DATASET (params.yaml: data_root): ingest/ tables,
    annotations/<annotator>/ shards, packed/ training shards. `dvc repro` runs the whole DAG.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        from .logs import silence_third_party

        silence_third_party()
    ctx.obj = {"params": load_params(params_file)}


@main.command()
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: datasets.sample.root).")
@click.option("--people", type=int, help="Number of people (default: sample.people).")
@click.option("--seed", type=int, help="Random seed (default: sample.seed).")
@click.option("--size", help="HEIGHTxWIDTH, e.g. 256x192, 512x384, 1024x768 (default: sample.size).")
@click.option("--back-views", type=float, default=0.0, show_default=True, help="Share of the person photos that show the back (person_whole_back.jpg).")
@click.option("--arms-in-front", type=float, default=0.0, show_default=True, help="Share of the person photos whose forearms fold across the belly (pose arms_in_front).")
@click.option("--textured-backgrounds", type=float, default=0.0, show_default=True, help="Share of the person photos shot against a busy textured backdrop.")
@click.option("--side-light", type=float, default=0.0, show_default=True, help="Share of the person photos lit by a warm low side light with little fill.")
@click.option("--one-piece", type=float, default=0.0, show_default=True, help="Share of the people in a dress or a jumpsuit (the in-shop garment is all of it).")
@click.option("--hair-over-shoulders", type=float, default=0.0, show_default=True, help="Share of the women with long hair falling over the front of the shoulders.")
@click.option("--bags", type=float, default=0.0, show_default=True, help="Share of the people wearing a shoulder bag across the body (an occluder, background in the ground truth).")
@click.pass_context
def sample(
    ctx: click.Context,
    out: str | None,
    people: int | None,
    seed: int | None,
    size: str | None,
    back_views: float,
    arms_in_front: float,
    textured_backgrounds: float,
    side_light: float,
    one_piece: float,
    hair_over_shoulders: float,
    bags: float,
) -> None:
    """Write the embedded sample dataset in MPV layout: OUT/all/*.jpg person and garment images
    and OUT/all_poseA_poseB_clothes.txt triplets (same seed, same bytes)."""
    from .pipeline.config import SampleConfig
    from .synth import parse_size, write_sample

    conf = SampleConfig.resolve(_params(ctx), out=out, people=people, seed=seed, size=size)
    if not conf.out:
        fail("pass --out or set datasets.sample.root in params.yaml")
    try:
        summary = write_sample(
            conf.out, conf.people, conf.seed, parse_size(conf.size), show_progress=True,
            back_share=back_views, arms_in_front_share=arms_in_front, textured_share=textured_backgrounds, side_light_share=side_light,
            one_piece_share=one_piece, hair_over_shoulders_share=hair_over_shoulders, bag_share=bags,
        )
    except ValueError as e:
        fail(str(e))
    click.echo(f"sample: {summary.people} people, {summary.images} images, {summary.pairs} pairs in {summary.root}")


@main.command()
@click.option("--dataset", required=True, help="Dataset name; params.yaml datasets.<name> gives layout and root.")
@click.option("--root", type=click.Path(file_okay=False), help="Dataset root (default: datasets.<name>.root).")
@click.option("--layout", help="Adapter: mpv, deepfashion, viton, dresscode (default: datasets.<name>.layout or the name).")
@click.option("--build", type=click.Path(file_okay=False), help="Build directory (default: DATA_ROOT/DATASET).")
@click.option("--max-failure-rate", type=float, help="Fail when more than this share of images or pair lines is unusable.")
@click.option("--workers", type=int, help="Threads hashing and decoding images.")
@click.pass_context
def ingest(
    ctx: click.Context, dataset: str, root: str | None, layout: str | None, build: str | None, max_failure_rate: float | None, workers: int | None
) -> None:
    """Scan a dataset and write BUILD/ingest/{images,pairs}/ shards and BUILD/ingest/report.json.

    Missing files, duplicates, unreadable images and list lines pointing outside the root are
    listed in the report; the run fails only past --max-failure-rate.
    """
    from .datasets import DatasetLayoutError
    from .pipeline.config import IngestConfig
    from .pipeline.ingest import IngestError
    from .pipeline.ingest import ingest as run_ingest

    conf = IngestConfig.resolve(_params(ctx), dataset, root=root, layout=layout, max_failure_rate=max_failure_rate, workers=workers)
    if not conf.root:
        fail(f"no root for dataset {dataset!r}: pass --root or set datasets.{dataset}.root in params.yaml")
    try:
        res = run_ingest(
            dataset, conf.root, _build_dir(ctx, dataset, build), layout_name=conf.layout, max_failure_rate=conf.max_failure_rate, workers=conf.workers
        )
    except (IngestError, DatasetLayoutError, FileNotFoundError, KeyError) as e:
        fail(str(e.args[0]) if isinstance(e, KeyError) else str(e))
    click.echo(f"{dataset}: {res.images} images, {res.pairs} pairs, {res.problems} problems (report: {res.report})")


@main.command()
@click.argument("annotators", nargs=-1)
@click.option("--dataset", required=True, help="Dataset name (build directory DATA_ROOT/DATASET).")
@click.option("--build", type=click.Path(file_okay=False), help="Build directory (default: DATA_ROOT/DATASET).")
@click.option("--backend", help="Backend (only with one annotator; default: annotators.<name>.backend).")
@click.option("--param", "param_kv", multiple=True, help="Backend param override key=value (only with one annotator).")
@click.option("--batch-size", type=int, help="Items per backend call.")
@click.option("--workers", type=int, help="Worker processes (each loads the backend once).")
@click.option("--device", help="torch device for torch backends (cpu, cuda).")
@click.option(
    "--stage",
    help="Write annotations/STAGE/ instead of annotations/<annotator>/: a second stage of one annotator beside the main one "
    "(only with one annotator; downstream stages and pack read the main one).",
)
@click.option(
    "--scheduler",
    help="local (this process, or --workers processes), processes (a Dask LocalCluster of --workers processes) or a Dask scheduler address tcp://HOST:PORT (default: annotate.scheduler).",
)
@click.option(
    "--max-failure-rate",
    type=float,
    help="Failure budget of every stage run (default: annotators.<name>.max_failure_rate, else annotate.max_failure_rate, else 1).",
)
@click.option("--retry-failed", is_flag=True, help="Retry items recorded as failed.")
@click.option("--recompute", is_flag=True, help="Discard this configuration's existing rows and compute everything again.")
@click.pass_context
def annotate(
    ctx: click.Context,
    annotators: tuple[str, ...],
    dataset: str,
    build: str | None,
    backend: str | None,
    param_kv: tuple[str, ...],
    batch_size: int | None,
    workers: int | None,
    device: str | None,
    stage: str | None,
    scheduler: str | None,
    max_failure_rate: float | None,
    retry_failed: bool,
    recompute: bool,
) -> None:
    """Run annotator stages and write BUILD/annotations/<annotator>/ shards; prints one summary
    table (stage, computed, reused, failed, top failure reasons, over budget).

    With no ANNOTATORS, runs every annotator listed under `annotators:` in params.yaml, in
    dependency order. Work already done (same image bytes, backend, version and params) is
    skipped, so an interrupted run resumes; per-item failures go to annotations/<name>/failures/
    and never stop the run. A stage over its failure budget keeps its rows and the stages after
    it still run on the items that have their upstream rows; the command then exits 1.
    """
    from .annotators import annotator_specs
    from .core import BackendUnavailableError
    from .exporters import imported  # noqa: F401  (registers the `imported` backends)
    from .pipeline.config import StageConfig
    from .pipeline.dag import stage_order
    from .pipeline.lock import StageLockedError
    from .pipeline.runner import StageError, run_stage

    params = _params(ctx)
    names = list(annotators) or list(params.get("annotators") or {})
    if not names:
        fail("no annotators given and none listed in params.yaml")
    if (backend or param_kv or stage) and len(names) != 1:
        fail("--backend, --param and --stage need exactly one annotator")
    if stage is not None and (not stage.isidentifier() or (stage != names[0] and stage in annotator_specs())):
        fail(f"--stage {stage!r} must be a new name (letters, digits, _), not another annotator's")
    overrides = {
        "backend": backend,
        "batch_size": batch_size,
        "workers": workers,
        "device": device,
        "scheduler": scheduler,
        "stage": stage,
        "max_failure_rate": max_failure_rate,
    }
    try:
        configs = {n: StageConfig.resolve(params, n, extra_params=parse_settings(param_kv), **overrides) for n in names}
        backends = {n: c.make_backend() for n, c in configs.items()}
        order = stage_order(backends)
    except (KeyError, ValueError) as e:
        fail(str(e.args[0]))
    build_dir = _build_dir(ctx, dataset, build)
    outcomes: list[tuple[str, Any]] = []  # (annotator, StageResult or the error that stopped it)
    for name in order:
        try:
            outcomes.append((name, run_stage(build_dir, configs[name], retry_failed=retry_failed, recompute=recompute, backend=backends[name])))
        except (BackendUnavailableError, StageError, StageLockedError, ValueError, KeyError) as e:
            outcomes.append((name, e.args[0] if e.args else str(e)))
    print_annotate_summary(outcomes)
    if any(isinstance(r, str) or r.over_budget for _, r in outcomes):
        sys.exit(1)


@main.command()
@click.option("--dataset", required=True, help="Dataset name (build directory DATA_ROOT/DATASET).")
@click.option("--build", type=click.Path(file_okay=False), help="Build directory (default: DATA_ROOT/DATASET).")
@click.option("--rows-per-shard", type=int, help="Pairs per packed shard.")
@click.option("--no-images", is_flag=True, help="Do not copy the image bytes into the packed shards.")
@click.pass_context
def pack(ctx: click.Context, dataset: str, build: str | None, rows_per_shard: int | None, no_images: bool) -> None:
    """Join the ingest tables and every complete annotation stage into training shards of pair
    samples; writes BUILD/packed/<split>/ shards and BUILD/packed/manifest.json (schema versions,
    shard sha256s, provenance of every annotation)."""
    from .pipeline.config import PackConfig
    from .pipeline.pack import pack as run_pack

    conf = PackConfig.resolve(_params(ctx), rows_per_shard=rows_per_shard, include_images=False if no_images else None)
    try:
        res = run_pack(_build_dir(ctx, dataset, build), annotators=conf.annotators, rows_per_shard=conf.rows_per_shard, include_images=conf.include_images)
    except FileNotFoundError as e:
        fail(str(e))
    click.echo(f"packed {res.rows} pairs (dropped: {res.dropped or 'none'}); manifest {res.manifest}")
    for prefix, entry in sorted(res.absent.items()):
        click.echo(f"  {prefix}: null in {entry['pairs']} pairs ({entry['reason']}: {entry['detail']})")


@main.command()
@click.argument("item_id")
@click.option("--dataset", required=True, help="Dataset name (build directory DATA_ROOT/DATASET).")
@click.option("--build", type=click.Path(file_okay=False), help="Build directory (default: DATA_ROOT/DATASET).")
@click.option("--out", type=click.Path(dir_okay=False), help="PNG to write (default: show-<id>.png).")
@click.option("--height", default=384, show_default=True, help="Panel height in pixels.")
@click.option(
    "--warp", "warps", multiple=True, type=click.Path(exists=True),
    help="Run directory (or checkpoint) of a trained warp (`vtonpipe train warp`): draw its warp of the pair next to the SMPL-flow warp; repeatable.",
)  # fmt: skip
@click.pass_context
def show(ctx: click.Context, item_id: str, dataset: str, build: str | None, out: str | None, height: int, warps: tuple[str, ...]) -> None:
    """Write one PNG with every annotation of ITEM_ID (an image id such as
    all/X=person_half_front.jpg, or a pair id) drawn side by side."""
    from .io import write_image
    from .pipeline.show import show_panels
    from .vis.panel import compose

    build_dir = _build_dir(ctx, dataset, build)
    try:
        panels = show_panels(build_dir, item_id)
        if warps:
            from .training.checkpoint import CheckpointError
            from .training.data import MissingPriorError
            from .training.warp_show import warp_panels

            try:
                for run in warps:
                    panels += warp_panels(build_dir, item_id, run)
            except (CheckpointError, MissingPriorError) as e:
                fail(str(e))
        picture = compose(panels, height=height)
    except KeyError as e:
        fail(str(e.args[0]))
    out = out or f"show-{item_id.replace('/', '_').rsplit('.', 1)[0]}.png"
    write_image(out, picture)
    click.echo(out)


@main.command()
@click.option("--dataset", required=True, help="Dataset name (build directory DATA_ROOT/DATASET).")
@click.option("--build", type=click.Path(file_okay=False), help="Build directory (default: DATA_ROOT/DATASET).")
@click.pass_context
def verify(ctx: click.Context, dataset: str, build: str | None) -> None:
    """Check every shard of a build against the sha256 and schema version in its manifest;
    prints one line per shard directory and writes nothing. Exits 1 on any mismatch."""
    from .pipeline.verify import verify_build

    results = verify_build(_build_dir(ctx, dataset, build))
    if not results:
        fail("no shard directories found")
    for directory, status in results.items():
        click.echo(f"{directory}: {status}")
    if any(s.startswith("error") for s in results.values()):
        sys.exit(1)


@main.group()
def schema() -> None:
    """The column schemas of every table: `schema export` writes them as JSON Schema."""


@schema.command("export")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write <name>.v<version>.json files to.")
@click.option(
    "--build", type=click.Path(file_okay=False, exists=True), help="Also write the packed-row schema of this build's packed shards (packed.v<version>.json)."
)
def schema_export(out: str, build: str | None) -> None:
    """Write every registered schema (dataset tables, annotations, failures) as JSON Schema
    (draft 2020-12), one file OUT/<name>.v<version>.json per schema and version; with --build, also the packed-row schema
    composed from the components that build's packed shards were written with."""
    from .io import write_json_atomic
    from .pipeline.store import StoreError, read_manifest, schema_of
    from .schemas import SCHEMAS

    schemas = [sch for _, sch in SCHEMAS.items()]
    if build:
        packed = sorted(p.parent for p in (Path(build) / "packed").glob("*/manifest.json"))
        if not packed:
            fail(f"{build} has no packed shards: run `vtonpipe pack` first")
        try:
            schemas.append(schema_of(read_manifest(packed[0])))
        except StoreError as e:
            fail(str(e))
    for sch in schemas:
        path = Path(out) / f"{sch.name}.v{sch.version}.json"
        write_json_atomic(path, sch.json_schema())
        click.echo(path)


@main.group()
def dag() -> None:
    """The DVC DAG derived from the registry and params.yaml: `dag write` writes dvc.yaml,
    `dag check` prints whether the committed one is current."""


@dag.command("write")
@click.option("--dataset", default="sample", show_default=True, help="Dataset whose DAG to write.")
@click.option("--out", default="dvc.yaml", show_default=True, type=click.Path(dir_okay=False), help="File to write.")
@click.pass_context
def dag_write(ctx: click.Context, dataset: str, out: str) -> None:
    """Write OUT (dvc.yaml): one stage per command, deps = the outputs it reads + the source files
    of the code it runs, params = its params.yaml sections."""
    from .io import write_bytes_atomic

    write_bytes_atomic(out, _render_dag(ctx, dataset).encode())
    click.echo(out)


def _render_dag(ctx: click.Context, dataset: str) -> str:
    """dvc.yaml's text for ``dataset``; a dependency cycle in params.yaml's backends is a clear error."""
    from .exporters import imported  # noqa: F401  (registers the `imported` backends params.yaml may select)
    from .training.dag import render_dag

    try:
        return render_dag(_params(ctx), Path.cwd(), dataset)
    except KeyError as e:
        fail(str(e.args[0] if e.args else e))


@dag.command("check")
@click.option("--dataset", default="sample", show_default=True, help="Dataset whose DAG to check.")
@click.option("--file", "path", default="dvc.yaml", show_default=True, type=click.Path(dir_okay=False), help="File to compare.")
@click.pass_context
def dag_check(ctx: click.Context, dataset: str, path: str) -> None:
    """Print whether FILE equals what `dag write` would write; writes nothing, exits 1 if stale."""
    current = Path(path).read_text() if Path(path).exists() else ""
    if current != _render_dag(ctx, dataset):
        fail(f"{path} is stale: run `vtonpipe dag write`")
    click.echo(f"{path} is current")


@main.group()
def bench() -> None:
    """Measure annotations: `bench accuracy` prints (and can write) their accuracy against the
    sample dataset's ground truth. Speed benchmarks are scripts in benchmarks/."""


@bench.command("accuracy")
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False, exists=True), help="Build directory of a sample dataset, e.g. data/sample.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the scores (with per-joint and per-class details) here.")
def bench_accuracy(run_dir: str, json_out: str | None) -> None:
    """Score every annotation stage of RUN against the exact ground truth of the sample dataset;
    prints a table (keypoint PCK and px error, parsing mIoU, IUV part accuracy and UV error, body
    joint error, flow EPE and visibility IoU, landmark error), the same per case (front / side /
    back, arms-in-front, dress, jumpsuit, long hair over the shoulders, bag, textured-background,
    side-lit person photos; pairs by their target photo), and optionally writes it as JSON."""
    from dataclasses import asdict

    from rich.console import Console

    from .bench.accuracy import evaluate
    from .bench.tables import cases_table, scores_table
    from .io import write_json_atomic

    try:
        scores = evaluate(run_dir)
    except FileNotFoundError as e:
        fail(str(e))
    console = Console()
    console.print(scores_table(scores, f"accuracy of {run_dir} against the sample ground truth"))
    by_case = cases_table(scores)
    if by_case is not None:
        Console(width=max(console.width, 120)).print(by_case)  # its columns unabridged in a log
    for s in scores:
        if "per_class_iou" in s.details:
            click.echo(f"{s.annotator} per-class IoU: " + ", ".join(f"{k} {v:.3f}" for k, v in s.details["per_class_iou"].items()))
    if json_out:
        write_json_atomic(json_out, [asdict(s) for s in scores])


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--verbose", is_flag=True, help="The long hints: where to put each missing file, its source and checksum.")
def doctor(as_json: bool, verbose: bool) -> None:
    """Print which annotator backends are usable here and, for the rest, what is missing (a
    compact table; --verbose: which package to install, which weight file to put where, its source
    and checksum), then the same for the weight files of the try-on trainers (VGG-19) and of
    `vtonpipe eval` (Inception, AlexNet, LPIPS). Writes nothing."""
    import importlib.util

    from rich.console import Console
    from rich.table import Table

    from .annotators import annotator_specs, backends_of
    from .config import cache_dir, weights_dir
    from .models.tryon.perceptual import vgg19_weight_file
    from .training.distribution import WEIGHT_FILES

    files = {vgg19_weight_file(): ["train tryon (perceptual loss)"]}
    for metric, needed in WEIGHT_FILES.items():
        for f in needed:
            files.setdefault(f, []).append(f"eval --metric {metric}")
    weights = [{"file": f.relpath, "used_by": ", ".join(used_by), "present": f.problem() is None, "problem": f.problem()} for f, used_by in files.items()]
    rows = []
    for name, spec in sorted(annotator_specs().items()):
        for bname, cls in backends_of(name).items():
            backend = cls()  # with the backend's default params
            packages = [p for p in backend.requirements.packages if importlib.util.find_spec(p) is None]
            absent = [Path(w.relpath).name for w in backend.weight_files() if w.problem()]
            short = ([f"pip install {' '.join(packages)}"] if packages else []) + ([f"weights: {', '.join(absent)}"] if absent else [])
            problems = backend.problems()
            rows.append({"annotator": name, "backend": bname, "default": bname == spec.default_backend, "usable": not problems, "problems": problems, "missing": short})
    if as_json:
        click.echo(json.dumps({"weights_dir": str(weights_dir()), "cache_dir": str(cache_dir()), "backends": rows, "training_weights": weights}, indent=2))
        return
    console = Console()
    table = Table(title=f"vtonpipe backends (weights dir: {weights_dir()})")
    for col in ("annotator", "backend", "usable", "what is missing"):
        table.add_column(col, overflow="fold")
    for r in rows:
        missing = "\n".join(r["problems"] if verbose else r["missing"])
        table.add_row(r["annotator"], r["backend"] + (" (default)" if r["default"] else ""), "[green]yes" if r["usable"] else "[red]no", missing)
    console.print(table)
    extras = Table(title="weight files of the try-on trainers and of vtonpipe eval (optional: without them a named stand-in is used, or the metric is not computed)")
    for col in ("file", "used by", "present") + (("what is missing",) if verbose else ()):
        extras.add_column(col, overflow="fold")
    for w in weights:
        extras.add_row(w["file"], w["used_by"], "[green]yes" if w["present"] else "[red]no", *((w["problem"] or "",) if verbose else ()))
    console.print(extras)
    if not verbose:
        console.print("vtonpipe doctor --verbose: where to put each missing file, where to get it and its sha256")


from .exporters.cli import export_command, import_command, import_landmarks
from .training.cli import evaluate, infer, train

for _command in (export_command, import_command, import_landmarks, train, infer, evaluate):
    main.add_command(_command)

if __name__ == "__main__":
    main()
