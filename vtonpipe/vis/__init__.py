"""Drawing annotations, kept apart from computing them.

Each module registers one drawer per annotator in :data:`DRAWERS`: a function
``draw(image, record, images) -> RGB uint8`` that returns a picture of the same height as
``image`` (usually the annotation overlaid on it). ``record`` is the annotator's typed record;
``images`` holds the pair's RGB images by role (``source``, ``target``, ``garment``) for pair-level
annotations and is empty for image-level ones. ``vtonpipe show`` lays the pictures side by side.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from ..core.registry import Registry

Drawer = Callable[[np.ndarray, Any, Mapping[str, np.ndarray]], np.ndarray]
#: annotator name -> its drawer
DRAWERS: Registry[str, Drawer] = Registry("drawer", builtins="vtonpipe.vis", skip=("panel",))


def register_drawer(annotator: str) -> Callable[[Drawer], Drawer]:
    return lambda fn: DRAWERS.add(annotator, fn)
