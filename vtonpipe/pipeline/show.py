"""``vtonpipe show``: one PNG with every annotation of an image (or a pair) drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..annotators import annotator_specs
from ..core import PAIR_ROLES
from ..vis import DRAWERS
from ..vis.panel import compose, failure_panel
from .context import AnnotationContext
from .layout import BuildLayout
from .store import MANIFEST, ShardReader


def render_show(build: str | Path, item_id: str, height: int = 384) -> np.ndarray:
    """The picture ``vtonpipe show`` writes: :func:`show_panels` side by side."""
    return compose(show_panels(build, item_id), height=height)


def show_panels(build: str | Path, item_id: str) -> list[tuple[str, np.ndarray]]:
    """(title, RGB picture) for ``item_id`` (an image id, or a pair id for pair-level annotations):
    the photo, then one panel per stage that covers it, drawing its annotation, or its failure
    reason and message where it failed."""
    ctx = AnnotationContext(build)
    layout = BuildLayout(build)
    specs = annotator_specs()
    if item_id in ctx.images:
        image = ctx.load_image(item_id)
        level, kind, images = "image", ctx.images[item_id]["kind"], {}
    else:
        try:
            pair = ctx.pair(item_id)
        except KeyError:
            raise KeyError(f"{item_id!r} is neither an image id nor a pair id of {build}") from None
        image = ctx.load_image(pair["target_image_id"] or pair["source_image_id"])
        level, kind = "pair", None
        images = {role: ctx.load_image(pair[col]) for role, col in PAIR_ROLES.items() if pair[col]}
    panels = [(item_id.rsplit("/", 1)[-1], image)]
    for name in sorted(specs):
        spec = specs[name]
        if spec.level != level or (kind and kind not in spec.kinds) or not (layout.annotation(name) / MANIFEST).exists():
            continue
        reader = ctx.reader(name)
        if item_id in reader and name in DRAWERS:
            row = reader.get(item_id)
            panels.append((f"{name}/{row['backend']}", DRAWERS.get(name)(image, spec.schema.record(row), images)))
        elif item_id not in reader and (failure := _failure(layout, name, item_id)):
            panels.append((f"{name}/{failure['backend']}", failure_panel(image, failure["error"], failure["message"])))
    return panels


def _failure(layout: BuildLayout, name: str, item_id: str) -> dict | None:
    """The failure stage ``name`` recorded for ``item_id`` (the latest), or None."""
    directory = layout.failures(name)
    if not (directory / MANIFEST).exists():
        return None
    found = [f for f in ShardReader(directory) if f["item_id"] == item_id]
    return found[-1] if found else None
