"""``vtonpipe train {warp,tryon,landmarks}``: the training commands (registered in vtonpipe.cli).

Every command runs unchanged under ``torchrun`` (docs/TRAINING.md). Torch and the trainer are
imported when a command runs, so ``vtonpipe --help`` stays fast.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from ..console import fail, parse_settings
from .config import KINDS, PER_MODEL_KINDS


@click.group()
def train() -> None:
    """Train the warping, try-on and landmark networks from a build's packed shards.

    Settings come from params.yaml train.<kind>.<model> (train.landmarks for the landmark
    network), overridden by --set key=value. Each command writes its run directory (default
    BUILD/runs/<kind>/<model>): config.json, checkpoints/, log.csv, tb/, grids/ and metrics.json.
    """


def _command(kind: str) -> click.Command:
    @click.option("--model", required=kind in PER_MODEL_KINDS, help="Registered model name (an unknown name lists the registered ones).")
    @click.option("--build", required=True, type=click.Path(file_okay=False, exists=True), help="Build directory holding packed/ (e.g. data/sample).")
    @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override one setting (YAML value); repeatable.")
    @click.option("--resume", is_flag=True, help="Continue from the run directory's checkpoints/last.pt (start afresh if there is none).")
    @click.option("--out", type=click.Path(file_okay=False), help="Run directory (default BUILD/runs/<kind>/<model>).")
    @click.option("--device", default="auto", show_default=True, help="cpu, cuda (each torchrun rank its own GPU), cuda:N, or auto.")
    @click.option("--steps", type=int, help="Optimiser steps to train to (overrides the `steps` setting).")
    @click.pass_context
    def command(
        ctx: click.Context,
        model: str | None,
        build: str,
        overrides: tuple[str, ...],
        resume: bool,
        out: str | None,
        device: str,
        steps: int | None,
        **options: Any,
    ) -> None:
        from ..config import load_params
        from ..core.errors import MissingWeightsError
        from .checkpoint import CheckpointError
        from .config import ConfigError, settings_section
        from .data import MissingPriorError
        from .task import get_task
        from .trainer import RunDirError, Trainer

        logging.getLogger("vtonpipe.training").setLevel(logging.INFO)
        params = ctx.obj["params"] if ctx.obj else load_params()
        try:
            task = get_task(kind, model)
        except KeyError as e:
            fail(e.args[0])
        try:
            settings = {**settings_section(params or {}, kind, task.model), **parse_settings(overrides), **{k: v for k, v in options.items() if v is not None}}
            result = Trainer(task, build, settings=settings, run_dir=out, device=device, resume=resume, steps=steps).fit()
        except (ConfigError, MissingPriorError, MissingWeightsError, RunDirError, CheckpointError) as e:
            fail(str(e))
        if result.interrupted is not None:
            if result.rank == 0:
                click.echo(f"stopped by signal {result.interrupted} at step {result.step}; resume with --resume", err=True)
            sys.exit(128 + result.interrupted)
        if result.rank != 0:
            return
        click.echo(f"trained to step {result.step}: {result.run_dir}")
        if result.metrics:
            click.echo("test: " + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()))

    command.__doc__ = f"Train a {kind} model from BUILD's packed shards; writes the run directory (checkpoints, log.csv, tb/, grids/, metrics.json)." + (
        " The model may be left out when only one is registered." if kind not in PER_MODEL_KINDS else ""
    )
    for option in reversed(_KIND_OPTIONS.get(kind, ())):
        command = option(command)
    return train.command(kind)(command)


#: options of one kind's command only, each setting the task setting of its name
_KIND_OPTIONS = {
    "landmarks": (
        click.option(
            "--labels",
            metavar="BACKEND",
            help="The landmarks backend whose packed rows are the labels: groundtruth (the sample), geometric, or that of imported labels "
            "(the `labels` setting; another backend's rows are an error naming the stage to rerun).",
        ),
    ),
}


for _kind in KINDS:
    _command(_kind)


@click.command()
@click.argument("kind", type=click.Choice(["warp", "tryon"]))
@click.option("--model", required=True, help="Registered model name.")
@click.option("--build", required=True, type=click.Path(file_okay=False, exists=True), help="Build directory holding packed/ (e.g. data/sample).")
@click.option("--run", "run_dir", type=click.Path(exists=True), help="Run directory or checkpoint (default BUILD/runs/<kind>/<model>).")
@click.option("--split", default="test", show_default=True, help="Packed split to infer.")
@click.option("--unpaired", is_flag=True, help="Give each pair the next pair's garment (the unpaired protocol).")
@click.option("--out", type=click.Path(file_okay=False), help="Output stage (default BUILD/inferred/<kind>/<model>/<split>[-unpaired]).")
@click.option("--device", default="cpu", show_default=True, help="torch device.")
@click.option("--batch-size", default=8, show_default=True, help="Pairs per forward pass.")
def infer(kind: str, model: str, build: str, run_dir: str | None, split: str, unpaired: bool, out: str | None, device: str, batch_size: int) -> None:
    """Write a trained KIND model's outputs for every pair of a split: PNG files under OUT/png/
    and a shard stage (warped garments, or try-on images) that resumes when rerun."""
    from .checkpoint import CheckpointError
    from .data import MissingPriorError
    from .infer import InferError
    from .infer import infer as run_infer
    from .trainer import default_run_dir

    run = run_dir or default_run_dir(build, kind, model)
    try:
        result = run_infer(run, build, kind=kind, split=split, unpaired=unpaired, out=out, device=device, batch_size=batch_size)
    except (CheckpointError, InferError, MissingPriorError) as e:
        fail(str(e))
    click.echo(f"inferred {result.computed} of {result.pairs} {split} pairs ({result.pairs - result.computed} already done): {result.out}")


@click.command("eval")
@click.option("--run", "run", required=True, type=click.Path(exists=True), help="A try-on run directory (or one of its checkpoints).")
@click.option("--build", required=True, type=click.Path(file_okay=False, exists=True), help="Build directory holding packed/<split>/.")
@click.option("--split", default="test", show_default=True, help="Packed split to evaluate.")
@click.option(
    "--metric",
    "distribution",
    multiple=True,
    type=click.Choice(["fid", "kid", "is", "lpips"]),
    help="Also compute a distribution metric (needs its weight files); repeatable.",
)
@click.option("--out", type=click.Path(dir_okay=False), help="metrics.json path (default RUN/eval/metrics.json).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--batch-size", default=8, show_default=True, type=int)
def evaluate(run: str, build: str, split: str, distribution: tuple[str, ...], out: str | None, device: str, batch_size: int) -> None:
    """Evaluate a trained try-on run on BUILD's split: SSIM, PSNR, L1, masked SSIM on the face and
    the non-garment region and warp mIoU on the paired pairs (FID / KID / IS / LPIPS with --metric
    when their weight files are present); writes metrics.json (default RUN/eval/metrics.json)."""
    from ..core.errors import MissingWeightsError
    from .checkpoint import CheckpointError
    from .data import MissingPriorError
    from .evaluate import evaluate_run

    try:
        record = evaluate_run(run, build, split=split, device=device, batch_size=batch_size, distribution=distribution, out=out)
    except (MissingWeightsError, MissingPriorError, CheckpointError) as e:
        fail(str(e))
    paired = record["paired"]
    unpaired = {k: v for k, v in record["unpaired"].items() if k != "pairs" and v is not None}
    click.echo(f"{record['model']} step {record['step']} on {build} {split}: {paired['pairs']} paired, {record['unpaired']['pairs']} unpaired pairs")
    click.echo("paired: " + ", ".join(f"{k} {v:.4f}" for k, v in paired.items() if k != "pairs" and v is not None))
    if unpaired:
        click.echo("unpaired: " + ", ".join(f"{k} {v:.4f}" for k, v in unpaired.items()))
