"""``vtonpipe export``, ``import`` and ``import-landmarks``: a build's annotations to and from the
folder layouts labs' loaders read (registered in vtonpipe.cli; the formats are in this package)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..console import fail, parse_settings, print_annotate_summary


def _size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        fail(f"--size {text!r}: expected HxW, e.g. 1024x768")
    return h, w


@click.command("export")
@click.option(
    "--format", "format_name", required=True, help="Layout to write: viton-hd, dresscode, 3dgcl, openpose-json, densepose-dump, parsing-png, landmarks-coco."
)
@click.option("--build", required=True, type=click.Path(file_okay=False, exists=True), help="Build directory whose annotations to export.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to write (created; a rerun resumes).")
@click.option("--size", help="HxW to export at (default: each image's own size); maps and coordinates are rescaled.")
@click.option(
    "--set", "settings_kv", multiple=True, help="Format setting key=value (openpose-json: layout=coco18|body25; parsing-png: label_set=lip|cihp|atr)."
)
def export_command(format_name: str, build: str, out: str, size: str | None, settings_kv: tuple[str, ...]) -> None:
    """Write a build's images and annotations into the folder layout a lab's trainer reads
    (each format's module cites the loader it matches). Every file is written atomically;
    OUT/vtonpipe-export.json records what was written, so a rerun skips unchanged items."""
    from . import ExportError, get_format, run_export

    try:
        fmt = get_format(format_name, parse_settings(settings_kv))
        res = run_export(fmt, build, out, _size(size))
    except (ExportError, KeyError) as e:
        fail(str(e.args[0]))
    click.echo(f"{format_name}: {res.items} items ({res.written} written, {res.skipped} unchanged), {res.files} files in {res.out}")
    for annotator, n in sorted(res.missing.items()):
        click.echo(f"  left out {n} images without a {annotator} row")


def _import_stages(build: str, format_name: str, source: Path, settings: dict[str, Any], annotators: tuple[str, ...]) -> None:
    from ..core import BackendUnavailableError
    from ..pipeline.config import StageConfig
    from ..pipeline.runner import StageError, run_stage
    from . import get_format, imported  # noqa: F401  (registers the `imported` backends)

    try:
        fmt = get_format(format_name, settings)
    except (KeyError, ValueError) as e:
        fail(str(e.args[0]))
    names = annotators or fmt.imports
    unknown = sorted(set(names) - set(fmt.imports))
    if unknown:
        fail(f"format {format_name} holds no {', '.join(unknown)} annotations (it imports {', '.join(fmt.imports)})")
    params = {"format": format_name, "source": str(source.resolve()), "settings": settings}
    outcomes: list[tuple[str, Any]] = []
    for name in names:
        try:
            outcomes.append((name, run_stage(build, StageConfig(name, "imported", params))))
        except (BackendUnavailableError, StageError, ValueError, KeyError) as e:
            outcomes.append((name, e.args[0] if e.args else str(e)))
    print_annotate_summary(outcomes)
    click.echo("to reuse these rows in `vtonpipe annotate` and `dvc repro`, set in params.yaml:")
    for name in names:
        click.echo(f"  annotators.{name}: {{backend: imported, params: {json.dumps(params)}}}")
    if any(isinstance(r, str) or r.over_budget for _, r in outcomes):
        sys.exit(1)


@click.command("import")
@click.argument("source", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--format", "format_name", required=True, help="Layout of SOURCE: viton-hd, dresscode, 3dgcl, openpose-json, densepose-dump, parsing-png, landmarks-coco."
)
@click.option("--build", required=True, type=click.Path(file_okay=False, exists=True), help="Build directory (ingested from the same images).")
@click.option("--annotator", "annotators", multiple=True, help="Import only these annotators (default: every one the format holds).")
@click.option("--set", "settings_kv", multiple=True, help="Format setting key=value (as for export).")
def import_command(source: str, format_name: str, build: str, annotators: tuple[str, ...], settings_kv: tuple[str, ...]) -> None:
    """Read the annotations in folder SOURCE into annotation stages of BUILD with backend
    `imported`: writes BUILD/annotations/<annotator>/ shards (provenance: the folder and every
    file's sha256) and prints the annotate summary table. Images are matched by the
    names a vtonpipe export recorded, else by their own paths in the build. Unchanged files are
    never read twice; images without a file fail with `not_in_source`."""
    _import_stages(build, format_name, Path(source), parse_settings(settings_kv), annotators)


@click.command("import-landmarks")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@click.option("--build", required=True, type=click.Path(file_okay=False, exists=True), help="Build directory (ingested from the same images).")
def import_landmarks(file: str, build: str) -> None:
    """Read 32-point garment landmarks from a COCO-keypoints JSON FILE (``images`` with
    ``file_name``, ``annotations`` with ``keypoints`` [x, y, v] x 32, v = 2 visible, 1 occluded,
    0 absent) into the `landmarks` stage of BUILD with backend `imported`: writes
    BUILD/annotations/landmarks/ shards. Images are matched by file_name (their path in the
    build, or a unique bare file name); the others fail with `not_in_source`."""
    path = Path(file)
    _import_stages(build, "landmarks-coco", path.parent, {"file": path.name}, ("landmarks",))
