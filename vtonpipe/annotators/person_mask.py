"""``person_mask``: person foreground mask and face region of each person image.

Backends (both offline, MediaPipe):

- ``mediapipe`` (default): MediaPipe Pose's segmentation mask (only where Pose finds a person);
- ``selfie``: MediaPipe Selfie Segmentation (made for people close to the camera).

The probability is thresholded to {0, 1} (``threshold``, 1 where greater); a mask covering less
than ``min_area_fraction`` of the image is ``AnnotationFailure("no_person")``. The face region is
MediaPipe Face Mesh's face oval polygon (most prominent face) filled; ``face_*`` fields are null
when no face is found.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Sequence

import numpy as np

from ..converters.masks import mask_bbox
from ..models.mediapipe_models import FaceOval, PoseLandmarker, SelfieSegmenter, fill_polygon
from ..schemas.person_mask import SCHEMA
from .base import AnnotationFailure, AnnotatorSpec, Backend, ImageItem, Requirements, register_annotator, register_backend

SPEC = register_annotator(
    AnnotatorSpec(
        name="person_mask",
        level="image",
        schema=SCHEMA,
        default_backend="mediapipe",
        kinds=("person",),
        doc="Person foreground {0, 1} mask and its box; face-oval mask and box (null without a face).",
    )
)


class _PersonMaskBackend(Backend):
    """Shared: threshold a person probability map, add the face oval."""

    annotator = "person_mask"
    requirements = Requirements(packages=("mediapipe",))

    def setup(self) -> None:
        self._face = FaceOval(self.params["min_detection_confidence"])

    @abstractmethod
    def _probability(self, image: np.ndarray) -> np.ndarray | None:
        """(H, W) float32 person probability, None when the model finds no person."""

    def annotate(self, items: Sequence[ImageItem], ctx: Any) -> list[dict[str, Any] | AnnotationFailure]:
        out: list[dict[str, Any] | AnnotationFailure] = []
        for item in items:
            prob = self._probability(item.image)
            if prob is None:
                out.append(AnnotationFailure("no_person", f"{self.name}: no person detected"))
                continue
            mask = (prob > self.params["threshold"]).astype(np.uint8)
            area = float(mask.mean())
            if area < self.params["min_area_fraction"]:
                out.append(AnnotationFailure("no_person", f"person mask covers {area:.2%} of the image (< {self.params['min_area_fraction']:.0%})"))
                continue
            oval = self._face(item.image)
            face = None if oval is None else fill_polygon(oval, mask.shape)
            face_box = None if face is None else mask_bbox(face)
            if face_box is None:  # no face, or an oval that covers no pixel centre
                oval = face = None
            out.append(
                {
                    "mask": mask,
                    "area_fraction": area,
                    "bbox": mask_bbox(mask),
                    "face_mask": face,
                    "face_oval": oval,
                    "face_bbox": face_box,
                }
            )
        return out


@register_backend
class MediaPipePoseMask(_PersonMaskBackend):
    name = "mediapipe"
    version = "1"
    default_params = {"threshold": 0.5, "min_area_fraction": 0.01, "min_detection_confidence": 0.5}
    doc = "Offline: MediaPipe Pose segmentation mask + Face Mesh face oval."

    def setup(self) -> None:
        super().setup()
        self._pose = PoseLandmarker(segmentation=True, min_detection_confidence=self.params["min_detection_confidence"])

    def _probability(self, image: np.ndarray) -> np.ndarray | None:
        res = self._pose(image)
        return None if res is None else res.segmentation


@register_backend
class SelfieMask(_PersonMaskBackend):
    name = "selfie"
    version = "1"
    default_params = {"threshold": 0.5, "min_area_fraction": 0.01, "min_detection_confidence": 0.5, "model_selection": 0}
    doc = "Offline: MediaPipe Selfie Segmentation (0 general, 1 landscape model) + Face Mesh face oval."

    def setup(self) -> None:
        super().setup()
        self._segmenter = SelfieSegmenter(self.params["model_selection"])

    def _probability(self, image: np.ndarray) -> np.ndarray | None:
        return self._segmenter(image)
