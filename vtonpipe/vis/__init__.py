"""Drawing annotations, kept apart from computing them.

Each module registers one drawer per annotator with :func:`register_drawer`: a function
``draw(image, record) -> RGB uint8`` that returns a picture of the same height as ``image``
(usually the annotation overlaid on it). ``vtonpipe show`` lays the pictures side by side.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable

import numpy as np

Drawer = Callable[[np.ndarray, dict[str, Any]], np.ndarray]
_DRAWERS: dict[str, Drawer] = {}


def register_drawer(annotator: str) -> Callable[[Drawer], Drawer]:
    def deco(fn: Drawer) -> Drawer:
        _DRAWERS[annotator] = fn
        return fn

    return deco


def drawers() -> dict[str, Drawer]:
    for module in pkgutil.iter_modules(__path__):
        if module.name not in ("panel",):
            importlib.import_module(f"{__name__}.{module.name}")
    return dict(_DRAWERS)
