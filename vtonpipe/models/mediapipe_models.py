"""MediaPipe's legacy ``mp.solutions`` models (the tflite files shipped in mediapipe 0.10.21), in vtonpipe's frame.

Each wrapper builds its MediaPipe graph once and is then called per image (static image mode: no
tracking between calls, so results do not depend on call order). Inputs are RGB uint8 (H, W, 3).
MediaPipe's normalised coordinates ``t`` map to pixels as ``x = t * W - 0.5``, ``y = t * H - 0.5``
(docs/CONVENTIONS.md). ``mediapipe`` is imported when a model is built, not with this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


@dataclass
class PoseResult:
    """``landmarks``: (33, 4) float32 x px, y px, z px (MediaPipe's z x W: depth relative to the
    hip midpoint, smaller = closer to the camera), visibility in [0, 1]. ``segmentation``: (H, W)
    float32 person probability, or None when segmentation is off."""

    landmarks: np.ndarray
    segmentation: np.ndarray | None


class PoseLandmarker:
    """MediaPipe Pose (BlazePose full, ``model_complexity=1``) on one person per image."""

    def __init__(self, *, segmentation: bool = False, min_detection_confidence: float = 0.5):
        import mediapipe as mp

        self._pose = mp.solutions.pose.Pose(
            static_image_mode=True,
            model_complexity=1,
            enable_segmentation=segmentation,
            min_detection_confidence=min_detection_confidence,
        )

    def __call__(self, image: np.ndarray) -> PoseResult | None:
        """The person's landmarks (and mask); None when no person is detected."""
        image = _rgb(image)
        h, w = image.shape[:2]
        res = self._pose.process(image)
        if res.pose_landmarks is None:
            return None
        lm = np.array([(p.x, p.y, p.z, p.visibility) for p in res.pose_landmarks.landmark], np.float32)
        lm[:, 0] = lm[:, 0] * w - 0.5
        lm[:, 1] = lm[:, 1] * h - 0.5
        lm[:, 2] *= w
        mask = None if res.segmentation_mask is None else np.asarray(res.segmentation_mask, np.float32)
        return PoseResult(lm, mask)


class SelfieSegmenter:
    """MediaPipe Selfie Segmentation: person probability per pixel.

    ``model_selection``: 0 the general model (256x256 input), 1 the landscape one (144x256).
    """

    def __init__(self, model_selection: int = 0):
        import mediapipe as mp

        self._seg = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=model_selection)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(H, W) float32 person probability in [0, 1]."""
        return np.asarray(self._seg.process(_rgb(image)).segmentation_mask, np.float32)


def face_oval_order() -> tuple[int, ...]:
    """Face-mesh landmark ids around the face oval, in polygon order (chained from MediaPipe's edges)."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_FACE_OVAL

    nxt: dict[int, int] = {}
    for a, b in FACEMESH_FACE_OVAL:
        nxt[a] = b
    start = min(nxt)
    order = [start]
    while nxt[order[-1]] != start:
        order.append(nxt[order[-1]])
    if len(order) != len(FACEMESH_FACE_OVAL):
        raise RuntimeError("MediaPipe's FACEMESH_FACE_OVAL is not a single closed loop")
    return tuple(order)


class FaceOval:
    """MediaPipe Face Mesh, reduced to the face oval polygon of the most prominent face."""

    def __init__(self, min_detection_confidence: float = 0.5):
        import mediapipe as mp

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=False, min_detection_confidence=min_detection_confidence
        )
        self._order = list(face_oval_order())

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """(36, 2) float32 polygon x, y px around the face; None when no face is found."""
        image = _rgb(image)
        h, w = image.shape[:2]
        res = self._mesh.process(image)
        if not res.multi_face_landmarks:
            return None
        lm = res.multi_face_landmarks[0].landmark
        return np.array([(lm[i].x * w - 0.5, lm[i].y * h - 0.5) for i in self._order], np.float32)


def fill_polygon(polygon: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W) mask, 1 on pixels whose centre lies inside ``polygon`` (n, 2) px; ``size`` = (H, W)."""
    mask = np.zeros(size, np.uint8)
    pts = np.round(np.asarray(polygon, np.float64) * 16).astype(np.int32)  # 4 fractional bits
    cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return mask
