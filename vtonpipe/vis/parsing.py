"""Parsing drawing: the LIP colour map blended over the person, class borders kept sharp."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..converters.labels import LIP_PALETTE, colorize
from ..schemas.parsing import ParsingRecord
from . import register_drawer


def blend_parsing(image: np.ndarray, parsing: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """RGB uint8 ``image`` with the LIP colours of ``parsing`` (H, W ids) blended on non-background pixels."""
    out = image.astype(np.float32)
    person = parsing > 0
    out[person] = (1 - alpha) * out[person] + alpha * colorize(parsing, LIP_PALETTE)[person]
    return out.round().astype(np.uint8)


@register_drawer("parsing")
def draw_parsing(image: np.ndarray, record: ParsingRecord, images: Mapping[str, np.ndarray]) -> np.ndarray:
    return blend_parsing(image, record.parsing)
