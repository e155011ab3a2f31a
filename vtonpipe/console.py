"""What every command-line module shares: ``key=value`` options, the one way to fail and the annotate summary table."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click
import yaml


def parse_settings(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` options (``--param``, ``--set``); values are parsed as YAML (numbers,
    booleans, lists)."""
    out = {}
    for kv in pairs:
        if "=" not in kv:
            raise click.BadParameter(f"expected key=value, got {kv!r}")
        k, v = kv.split("=", 1)
        out[k] = yaml.safe_load(v)
    return out


def fail(message: str) -> NoReturn:
    """Print ``error: message`` in red on stderr and exit with status 1."""
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)


def print_annotate_summary(outcomes: list[tuple[str, Any]]) -> None:
    """One table for an ``annotate`` run; stages that could not run list the error below it."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="annotate")
    for col in ("stage", "backend", "items", "computed", "reused", "already done", "failed", "top reasons", "over budget"):
        table.add_column(col, overflow="fold")
    errors = []
    for name, r in outcomes:
        if isinstance(r, str):
            table.add_row(name, "", "", "", "", "", "", "", "[red]not run")
            errors.append(f"{name}: {r}")
            continue
        top = sorted(r.failures_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        over = f"[red]yes ({r.failure_rate:.0%} > {r.max_failure_rate:.0%})" if r.over_budget else "no"
        table.add_row(
            name,
            r.backend,
            str(r.total),
            str(r.computed),
            str(r.reused),
            str(r.skipped - r.failed_before),
            str(r.failed),
            ", ".join(f"{k} {v}" for k, v in top),
            over,
        )
    console = Console(width=160)
    console.print(table)
    for e in errors:
        click.secho(f"error: {e}", fg="red", err=True)
