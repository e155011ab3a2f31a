"""Project paths and the ``params.yaml`` that drives the CLI and the DVC DAG."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PARAMS_FILE = "params.yaml"


def cache_dir() -> Path:
    """Project cache (anny model build, warp kernels): ``$VTONPIPE_CACHE`` or ``~/.cache/vtonpipe``."""
    return Path(os.environ.get("VTONPIPE_CACHE", Path.home() / ".cache" / "vtonpipe")).expanduser()


def weights_dir() -> Path:
    """Where users put model weights they bring: ``$VTONPIPE_WEIGHTS`` or ``<cache>/weights``."""
    env = os.environ.get("VTONPIPE_WEIGHTS")
    return Path(env).expanduser() if env else cache_dir() / "weights"


def load_params(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Read ``params.yaml`` (the DVC params file); an absent file gives ``{}``."""
    path = Path(path or DEFAULT_PARAMS_FILE)
    if not path.exists():
        return {}
    with path.open() as f:
        return yaml.safe_load(f) or {}
