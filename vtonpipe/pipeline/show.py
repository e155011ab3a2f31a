"""``vtonpipe show``: one PNG with every annotation of an image (or a pair) drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..annotators import annotator_specs
from ..vis import drawers
from ..vis.panel import compose
from .context import AnnotationContext
from .layout import BuildLayout
from .store import MANIFEST


def render_show(build: str | Path, item_id: str, height: int = 384) -> np.ndarray:
    """Panels for ``item_id`` (an image id, or a pair id for pair-level annotations)."""
    ctx = AnnotationContext(build)
    layout = BuildLayout(build)
    specs = annotator_specs()
    draw = drawers()
    if item_id in ctx.images:
        image = ctx.load_image(item_id)
        level = "image"
    else:
        try:
            pair = ctx.pair(item_id)
        except KeyError:
            raise KeyError(f"{item_id!r} is neither an image id nor a pair id of {build}") from None
        image = ctx.load_image(pair["target_image_id"] or pair["source_image_id"])
        level = "pair"
    panels = [(item_id.rsplit("/", 1)[-1], image)]
    for name in sorted(specs):
        if specs[name].level != level or not (layout.annotation(name) / MANIFEST).exists() or name not in draw:
            continue
        reader = ctx.reader(name)
        if item_id in reader:
            record = reader.get(item_id)
            panels.append((f"{name}/{record['backend']}", draw[name](image, {**record, "_ctx": ctx})))
    return compose(panels, height=height)
