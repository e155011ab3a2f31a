"""``person_mask``: person foreground mask and face region of each person image.

Backends (both offline, MediaPipe):

- ``mediapipe`` (default): MediaPipe Pose's segmentation mask, with the ``keypoints`` stage's
  detector (:class:`~vtonpipe.models.nets.mediapipe.MainPersonPose`: retried at
  ``retry_detection_confidence``, on tiles, framed), so the mask is the person the keypoints are;
- ``selfie``: MediaPipe Selfie Segmentation (made for people close to the camera).

The probability is thresholded to {0, 1} (``threshold``, 1 where greater); a mask covering less
than ``min_area_fraction`` of the image is ``AnnotationFailure("no_person")``. The face region is
MediaPipe Face Mesh's face oval polygon (most prominent face) filled; ``face_*`` fields are null
when no face is found. Face Mesh on a whole full-body photo misses the faces of VTON-size images
(20-32 px tall at 256 x 192: none of the sample's 24), so it runs on a square around the head,
``face_margin`` head heights wide, upscaled to at least ``face_crop_px`` px a side (a large face
keeps its resolution). ``mediapipe`` locates the head from its Pose landmarks
(:func:`~vtonpipe.models.nets.mediapipe.head_crop`), ``selfie`` with MediaPipe's full-range
face detector (:func:`~vtonpipe.models.nets.mediapipe.face_box_crop`; no face detected, no
face oval).
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np

from ..converters.masks import mask_bbox
from ..core import (
    AnnotationFailure,
    AnnotatorSpec,
    Backend,
    Context,
    ImageItem,
    Requirements,
)
from ..models.nets.mediapipe import (
    FaceDetector,
    FaceOval,
    MainPersonPose,
    SelfieSegmenter,
    SquareCrop,
    face_box_crop,
    fill_polygon,
    head_crop,
)
from ..schemas.person_mask import SCHEMA, PersonMaskRecord
from .registry import register_annotator, register_backend

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

    spec = SPEC
    requirements = Requirements(packages=("mediapipe",))

    def setup(self) -> None:
        self._face = FaceOval(self.params["min_detection_confidence"])

    @abstractmethod
    def _person(self, image: np.ndarray) -> tuple[np.ndarray, SquareCrop | None] | None:
        """(H, W) float32 person probability and the square around the head to find the face in
        (None: no head found); None when the model finds no person."""

    def annotate_one(self, item: ImageItem, ctx: Context) -> PersonMaskRecord:
        person = self._person(item.image)
        if person is None:
            raise AnnotationFailure("no_person", f"{self.name}: no person detected")
        prob, head = person
        mask = (prob > self.params["threshold"]).astype(np.uint8)
        area = float(mask.mean())
        if area < self.params["min_area_fraction"]:
            raise AnnotationFailure("no_person", f"person mask covers {area:.2%} of the image (< {self.params['min_area_fraction']:.0%})")
        oval = None if head is None else self._face(item.image, head)
        face = None if oval is None else fill_polygon(oval, mask.shape)
        face_box = None if face is None else mask_bbox(face)
        if face_box is None:  # no face, or an oval that covers no pixel centre
            oval = face = None
        return PersonMaskRecord(mask=mask, area_fraction=area, bbox=mask_bbox(mask), face_mask=face, face_oval=oval, face_bbox=face_box)


FACE_PARAMS = {"face_margin": 2.0, "face_crop_px": 192}  # head square: side in head heights, least side in crop px


@register_backend
class MediaPipePoseMask(_PersonMaskBackend):
    name = "mediapipe"
    version = "3"
    default_params = {"threshold": 0.5, "min_area_fraction": 0.01, "min_detection_confidence": 0.5, "retry_detection_confidence": 0.2, **FACE_PARAMS}
    doc = "Offline: MediaPipe Pose segmentation mask (the keypoint stage's detector and retries) + Face Mesh face oval around Pose's head."

    def setup(self) -> None:
        super().setup()
        p = self.params
        self._pose = MainPersonPose(min_detection_confidence=p["min_detection_confidence"], retry_detection_confidence=p["retry_detection_confidence"], segmentation=True)

    def _person(self, image: np.ndarray) -> tuple[np.ndarray, SquareCrop] | None:
        res = self._pose(image)
        if res is None:
            return None
        return res.segmentation, head_crop(res.landmarks, self.params["face_margin"], self.params["face_crop_px"])


@register_backend
class SelfieMask(_PersonMaskBackend):
    name = "selfie"
    version = "2"
    default_params = {"threshold": 0.5, "min_area_fraction": 0.01, "min_detection_confidence": 0.5, "model_selection": 0, **FACE_PARAMS}
    doc = "Offline: MediaPipe Selfie Segmentation (0 general, 1 landscape model) + Face Mesh face oval around the detected face."

    def setup(self) -> None:
        super().setup()
        self._segmenter = SelfieSegmenter(self.params["model_selection"])
        self._detector = FaceDetector(self.params["min_detection_confidence"])

    def _person(self, image: np.ndarray) -> tuple[np.ndarray, SquareCrop | None]:
        box = self._detector(image)
        head = None if box is None else face_box_crop(box, self.params["face_margin"], self.params["face_crop_px"])
        return self._segmenter(image), head
