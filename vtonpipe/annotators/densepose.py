"""``densepose``: DensePose IUV maps of person images.

Backends: ``render`` (default; IUV rendered from the fitted body of the ``body`` annotator) and
``rcnn`` (DensePose R50-FPN inference with detectron2's weights) live in their own modules.
"""

from __future__ import annotations

from ..core import AnnotatorSpec
from ..schemas.densepose import SCHEMA
from .registry import register_annotator

SPEC = register_annotator(
    AnnotatorSpec(
        name="densepose",
        level="image",
        schema=SCHEMA,
        default_backend="render",
        kinds=("person",),
        doc="DensePose IUV (I 0..24, U/V 0..255) of the main person.",
    )
)
