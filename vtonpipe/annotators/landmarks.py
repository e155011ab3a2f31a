"""``landmarks``: SAL-VTON's 32 garment landmarks (:mod:`vtonpipe.converters.landmarks`) on
in-shop garment images and on person images (the points of the upper garment the person wears).

Backends: ``geometric`` (default, offline; :mod:`vtonpipe.annotators.landmarks_geometric`: the
garment mask's contour, and the person's keypoints, parsing and mask), ``sal-hrnet``
(:mod:`vtonpipe.annotators.landmarks_hrnet`: SAL-VTON's two-branch HRNet from a checkpoint
``vtonpipe train landmarks`` writes) and ``groundtruth`` (the embedded sample's exact landmarks).

Images of garments without an upper part (dataset category ``lower_body``, the sample's
bottoms) fail with ``no_upper_garment``.
"""

from __future__ import annotations

import numpy as np

from ..converters.landmarks import NO_LANDMARK_CATEGORIES
from ..core import AnnotationFailure, AnnotatorSpec
from ..schemas.landmarks import SCHEMA, LandmarksRecord
from .registry import register_annotator

SPEC = register_annotator(
    AnnotatorSpec(
        name="landmarks",
        level="image",
        schema=SCHEMA,
        default_backend="geometric",
        kinds=("person", "garment"),
        doc="32 garment landmarks (x, y, visible/occluded/absent).",
    )
)


def check_upper_garment(category: str | None) -> None:
    """Raise ``no_upper_garment`` for a garment category without landmarks (trousers, skirts...)."""
    if category in NO_LANDMARK_CATEGORIES:
        raise AnnotationFailure("no_upper_garment", f"category {category!r} has no upper garment: the 32 landmarks are defined on upper garments")


def landmarks_record(landmarks: np.ndarray, category: str | None) -> LandmarksRecord:
    """The record of landmarks (32, 3) (x, y px, attribute)."""
    return LandmarksRecord(landmarks=np.asarray(landmarks, np.float32), garment_category=category)
