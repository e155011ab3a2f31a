"""What every command-line module shares: ``key=value`` options and the one way to fail."""

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
