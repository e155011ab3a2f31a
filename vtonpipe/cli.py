"""The ``vtonpipe`` command line. Every command reads ``params.yaml`` in the working directory
(the DVC params file) for its defaults; options override it."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from .config import annotator_params, load_params


def _params(ctx: click.Context) -> dict[str, Any]:
    return ctx.obj["params"]


def _build_dir(params: dict[str, Any], dataset: str, build: str | None) -> Path:
    return Path(build) if build else Path(params.get("data_root", "data")) / dataset


def _dataset_conf(params: dict[str, Any], dataset: str) -> dict[str, Any]:
    return dict((params.get("datasets") or {}).get(dataset) or {})


def _parse_kv(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``k=v`` options; values are parsed as YAML (numbers, booleans, lists)."""
    import yaml

    out = {}
    for kv in pairs:
        if "=" not in kv:
            raise click.BadParameter(f"expected key=value, got {kv!r}")
        k, v = kv.split("=", 1)
        out[k] = yaml.safe_load(v)
    return out


def _fail(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--params", "params_file", default="params.yaml", show_default=True, help="DVC params file with the defaults.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.version_option(package_name="vtonpipe")
@click.pass_context
def main(ctx: click.Context, params_file: str, verbose: bool) -> None:
    """vtonpipe: virtual try-on priors as versioned shards.

    A dataset build lives in DATA_ROOT/DATASET (params.yaml: data_root): ingest/ tables,
    annotations/<annotator>/ shards, packed/ training shards. `dvc repro` runs the whole DAG.
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = {"params": load_params(params_file)}


@main.command()
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default: datasets.sample.root).")
@click.option("--people", type=int, help="Number of people (default: sample.people).")
@click.option("--seed", type=int, help="Random seed (default: sample.seed).")
@click.option("--size", help="HEIGHTxWIDTH, e.g. 256x192, 512x384, 1024x768 (default: sample.size).")
@click.pass_context
def sample(ctx: click.Context, out: str | None, people: int | None, seed: int | None, size: str | None) -> None:
    """Write the embedded sample dataset in MPV layout: OUT/all/*.jpg person and garment images
    and OUT/all_poseA_poseB_clothes.txt triplets (same seed, same bytes)."""
    from .synth import parse_size, write_sample

    params = _params(ctx)
    conf = params.get("sample") or {}
    out = out or _dataset_conf(params, "sample").get("root")
    if not out:
        _fail("pass --out or set datasets.sample.root in params.yaml")
    try:
        summary = write_sample(
            out, people or conf.get("people", 8), seed if seed is not None else conf.get("seed", 0), parse_size(size or conf.get("size", "256x192")), show_progress=True
        )
    except ValueError as e:
        _fail(str(e))
    click.echo(f"sample: {summary.people} people, {summary.images} images, {summary.pairs} pairs in {summary.root}")


@main.command()
@click.option("--dataset", required=True, help="Dataset name; params.yaml datasets.<name> gives layout and root.")
@click.option("--root", type=click.Path(file_okay=False), help="Dataset root (default: datasets.<name>.root).")
@click.option("--layout", help="Adapter: mpv, deepfashion, viton, dresscode (default: datasets.<name>.layout or the name).")
@click.option("--build", type=click.Path(file_okay=False), help="Build directory (default: DATA_ROOT/DATASET).")
@click.option("--max-failure-rate", type=float, help="Fail when more than this share of images or pair lines is unusable.")
@click.option("--workers", type=int, help="Threads hashing and decoding images.")
@click.pass_context
def ingest(ctx: click.Context, dataset: str, root: str | None, layout: str | None, build: str | None, max_failure_rate: float | None, workers: int | None) -> None:
    """Scan a dataset and write BUILD/ingest/{images,pairs}/ shards and BUILD/ingest/report.json.

    Missing files, duplicates, unreadable images and list lines pointing outside the root are
    listed in the report; the run fails only past --max-failure-rate.
    """
    from .datasets import DatasetLayoutError
    from .pipeline.ingest import IngestError, ingest as run_ingest

    params = _params(ctx)
    conf = _dataset_conf(params, dataset)
    root = root or conf.get("root")
    if not root:
        _fail(f"no root for dataset {dataset!r}: pass --root or set datasets.{dataset}.root in params.yaml")
    rate = max_failure_rate if max_failure_rate is not None else (params.get("ingest") or {}).get("max_failure_rate", 0.05)
    try:
        res = run_ingest(dataset, root, _build_dir(params, dataset, build), layout_name=layout or conf.get("layout"), max_failure_rate=rate, workers=workers)
    except (IngestError, DatasetLayoutError, FileNotFoundError) as e:
        _fail(str(e))
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
@click.option("--retry-failed", is_flag=True, help="Retry items recorded as failed.")
@click.option("--recompute", is_flag=True, help="Discard this configuration's existing rows and compute everything again.")
@click.pass_context
def annotate(ctx: click.Context, annotators: tuple[str, ...], dataset: str, build: str | None, backend: str | None, param_kv: tuple[str, ...], batch_size: int | None, workers: int | None, device: str | None, retry_failed: bool, recompute: bool) -> None:
    """Run annotator stages and write BUILD/annotations/<annotator>/ shards.

    With no ANNOTATORS, runs every annotator listed under `annotators:` in params.yaml, in
    dependency order. Work already done (same image bytes, backend, version and params) is
    skipped, so an interrupted run resumes; per-item failures go to annotations/<name>/failures/.
    """
    from .annotators import BackendUnavailableError, get_backend
    from .pipeline.runner import StageError, run_stage

    params = _params(ctx)
    names = list(annotators) or list((params.get("annotators") or {}))
    if not names:
        _fail("no annotators given and none listed in params.yaml")
    if (backend or param_kv) and len(names) != 1:
        _fail("--backend and --param need exactly one annotator")
    try:
        configured = {
            n: get_backend(n, backend or annotator_params(params, n).get("backend"))({**(annotator_params(params, n).get("params") or {}), **_parse_kv(param_kv)})
            for n in names
        }
        names = _dependency_order(names, configured)
    except (KeyError, ValueError) as e:
        _fail(str(e.args[0]))
    defaults = params.get("annotate") or {}
    build_dir = _build_dir(params, dataset, build)
    for name in names:
        conf = annotator_params(params, name)
        stage_params = {**(conf.get("params") or {}), **_parse_kv(param_kv)}
        try:
            res = run_stage(
                build_dir,
                name,
                backend or conf.get("backend"),
                stage_params,
                batch_size=batch_size or conf.get("batch_size", defaults.get("batch_size", 8)),
                workers=workers or conf.get("workers", defaults.get("workers", 1)),
                rows_per_shard=conf.get("rows_per_shard", defaults.get("rows_per_shard", 256)),
                retry_failed=retry_failed,
                recompute=recompute,
                max_failure_rate=conf.get("max_failure_rate", defaults.get("max_failure_rate", 1.0)),
                device=device or conf.get("device", defaults.get("device", "cpu")),
            )
        except (BackendUnavailableError, StageError, ValueError, KeyError) as e:
            _fail(str(e))
        click.echo(
            f"{name}/{res.backend}: {res.total} items: {res.computed} computed, {res.reused} reused, "
            f"{res.skipped} already done, {res.failed} failed {res.failures_by_reason or ''}".rstrip()
        )


def _dependency_order(names: list[str], backends: dict[str, Any]) -> list[str]:
    """``names`` sorted so that each annotator comes after the upstream ones its backend reads;
    ``backends``: annotator -> configured backend instance."""
    order: list[str] = []

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in chain:
            raise KeyError(f"annotator dependency cycle: {' -> '.join(chain + (name,))}")
        for dep in backends[name].requires:
            if dep in backends:
                visit(dep, chain + (name,))
        order.append(name)

    for n in names:
        visit(n, ())
    return order


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
    from .pipeline.pack import pack as run_pack

    params = _params(ctx)
    conf = params.get("pack") or {}
    try:
        res = run_pack(
            _build_dir(params, dataset, build),
            annotators=conf.get("annotators"),
            rows_per_shard=rows_per_shard or conf.get("rows_per_shard", 64),
            include_images=not no_images and conf.get("include_images", True),
        )
    except FileNotFoundError as e:
        _fail(str(e))
    click.echo(f"packed {res.rows} pairs (dropped: {res.dropped or 'none'}); manifest {res.manifest}")


@main.command()
@click.argument("item_id")
@click.option("--dataset", required=True, help="Dataset name (build directory DATA_ROOT/DATASET).")
@click.option("--build", type=click.Path(file_okay=False), help="Build directory (default: DATA_ROOT/DATASET).")
@click.option("--out", type=click.Path(dir_okay=False), help="PNG to write (default: show-<id>.png).")
@click.option("--height", default=384, show_default=True, help="Panel height in pixels.")
@click.pass_context
def show(ctx: click.Context, item_id: str, dataset: str, build: str | None, out: str | None, height: int) -> None:
    """Write one PNG with every annotation of ITEM_ID (an image id such as
    all/X=person_half_front.jpg, or a pair id) drawn side by side."""
    from .io import write_image
    from .pipeline.show import render_show

    try:
        picture = render_show(_build_dir(_params(ctx), dataset, build), item_id, height=height)
    except KeyError as e:
        _fail(str(e.args[0]))
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

    results = verify_build(_build_dir(_params(ctx), dataset, build))
    if not results:
        _fail("no shard directories found")
    for directory, status in results.items():
        click.echo(f"{directory}: {status}")
    if any(s.startswith("error") for s in results.values()):
        sys.exit(1)


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
    joint error, flow EPE and visibility IoU, landmark error) and optionally writes it as JSON."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from .bench.accuracy import evaluate
    from .io import write_json_atomic

    try:
        scores = evaluate(run_dir)
    except FileNotFoundError as e:
        _fail(str(e))
    table = Table(title=f"accuracy of {run_dir} against the sample ground truth")
    for col in ("annotator", "backend", "items", "missing", "metric", "value"):
        table.add_column(col)
    for s in scores:
        for i, (metric, value) in enumerate(s.metrics.items()):
            head = (s.annotator, s.backend, str(s.items), str(s.missing)) if i == 0 else ("", "", "", "")
            table.add_row(*head, metric, f"{value:.4f}")
    Console().print(table)
    for s in scores:
        if "per_class_iou" in s.details:
            click.echo(f"{s.annotator} per-class IoU: " + ", ".join(f"{k} {v:.3f}" for k, v in s.details["per_class_iou"].items()))
    if json_out:
        write_json_atomic(json_out, [asdict(s) for s in scores])


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(as_json: bool) -> None:
    """Print which annotator backends are usable here and, for the rest, what to install or
    which weight file to put where (with its checksum). Writes nothing."""
    from rich.console import Console
    from rich.table import Table

    from .annotators import annotator_specs, backends_of
    from .config import cache_dir, weights_dir

    rows = []
    for name, spec in sorted(annotator_specs().items()):
        for bname, cls in backends_of(name).items():
            problems = cls().problems()  # with the backend's default params
            rows.append({"annotator": name, "backend": bname, "default": bname == spec.default_backend, "usable": not problems, "problems": problems})
    if as_json:
        click.echo(json.dumps({"weights_dir": str(weights_dir()), "cache_dir": str(cache_dir()), "backends": rows}, indent=2))
        return
    table = Table(title=f"vtonpipe backends (weights dir: {weights_dir()})")
    for col in ("annotator", "backend", "usable", "what is missing"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["annotator"], r["backend"] + (" (default)" if r["default"] else ""), "[green]yes" if r["usable"] else "[red]no", "\n".join(r["problems"]))
    Console().print(table)


from .training.cli import train  # noqa: E402  (the `vtonpipe train` group)
main.add_command(train)

if __name__ == "__main__":
    main()
