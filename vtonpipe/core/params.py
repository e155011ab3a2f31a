"""Params hashing: the canonical JSON of a configuration and its short, stable hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces; numpy scalars, tuples and sets become plain values."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_jsonable)


def params_hash(obj: Any) -> str:
    """Stable 16-hex-digit hash of a JSON-able object (sha256 of its canonical JSON)."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:16]


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-able")
