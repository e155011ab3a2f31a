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

from ...converters.keypoints import MP33_MIRROR, clear_outside, main_person_score, mp33_to_coco18
from ..classical.people import count_people, merge_detections, square_tiles


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


def pose_coco18(pose: PoseResult, size: tuple[int, int], min_visibility: float) -> np.ndarray:
    """COCO-18 (18, 3) of a Pose result in an image of ``size`` (H, W): points below
    ``min_visibility`` or outside the image undetected."""
    return clear_outside(mp33_to_coco18(pose.landmarks[:, [0, 1, 3]], min_visibility), size)


def unmirror_landmarks(landmarks: np.ndarray, width: int) -> np.ndarray:
    """Landmarks (33, 4) found in the horizontally mirrored copy of a ``width``-px image, in the
    image's own frame: ``x -> width - 1 - x`` (pixel-centre frame) and each landmark taken from its
    mirror twin (MediaPipe calls the mirrored person's left arm their right, :data:`MP33_MIRROR`)."""
    out = np.asarray(landmarks, np.float32)[list(MP33_MIRROR)].copy()
    out[:, 0] = width - 1 - out[:, 0]
    return out


#: the median landmark gap (over the 33, in person sizes) past which two poses are not one person's
SAME_POSE_MAX_GAP = 0.1
#: MediaPipe's leg landmarks as (left, right) twins: hip, knee, ankle, heel, foot index
MP33_LEG_TWINS = ((23, 24), (25, 26), (27, 28), (29, 30), (31, 32))
MP33_SHOULDERS = (11, 12)  # (left, right)


def legs_disagree(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two landmark sets (33, >= 2) of one person name the legs the other way round: their
    leg landmarks lie nearer each other with left and right swapped than as named."""
    left, right = (list(side) for side in zip(*MP33_LEG_TWINS))
    same = np.linalg.norm(a[left, :2] - b[left, :2], axis=1).sum() + np.linalg.norm(a[right, :2] - b[right, :2], axis=1).sum()
    swapped = np.linalg.norm(a[left, :2] - b[right, :2], axis=1).sum() + np.linalg.norm(a[right, :2] - b[left, :2], axis=1).sum()
    return bool(swapped < same)


def hips_follow_shoulders(landmarks: np.ndarray) -> float:
    """Cosine between the left -> right hip and the left -> right shoulder vectors (image plane):
    near 1 when the hips are named the way the shoulders are, as a body's always are; -1 when the
    legs are named the other way round (a back view read as a front view below the waist)."""
    (lh, rh), (ls, rs) = MP33_LEG_TWINS[0], MP33_SHOULDERS
    hips, shoulders = landmarks[rh, :2] - landmarks[lh, :2], landmarks[rs, :2] - landmarks[ls, :2]
    return float(hips @ shoulders / (np.linalg.norm(hips) * np.linalg.norm(shoulders) + 1e-9))


def _person_size(landmarks: np.ndarray) -> float:
    return max(float(np.ptp(landmarks[:, 0])), float(np.ptp(landmarks[:, 1])), 1.0)


def mirror_gap(own: np.ndarray, mirrored: np.ndarray) -> float:
    """How far two landmark sets (33, >= 2) of one photo disagree: their median landmark gap in
    person sizes (the larger side of ``own``'s landmark box). MediaPipe's reading of a photo and of
    its mirror image (unmirrored) are 0.003-0.013 apart on the harder samples' photos read right;
    0.021 and 0.071 on the two misread 10 and 31 px off (docs/BODY_FIT.md, stop 40)."""
    return float(np.median(np.linalg.norm(mirrored[:, :2] - own[:, :2], axis=1))) / _person_size(own)


def centre_gap(a: np.ndarray, b: np.ndarray) -> float:
    """The distance between two landmark sets' (33, >= 2) median points, in ``a``'s person sizes:
    0.014 and 0.021 between the misread and the re-read pose of the two photos MediaPipe misread
    (docs/BODY_FIT.md, stop 40); two people side by side lie about a person's width apart."""
    return float(np.linalg.norm(np.median(a[:, :2], 0) - np.median(b[:, :2], 0))) / _person_size(a)


def zoomed(image: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The image scaled by ``scale`` about its centre, same size, borders replicated, and the (2, 3)
    affine map from its pixels back to the image's (pixel-centre frame)."""
    h, w = image.shape[:2]
    forward = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0.0, scale)
    out = cv2.warpAffine(image, forward, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, cv2.invertAffineTransform(forward)


def mirror_pair(detect, image: np.ndarray, scale: float = 1.0) -> tuple[PoseResult | None, np.ndarray | None]:
    """``detect`` of the image (zoomed by ``scale``) and the landmarks of its mirrored copy, both in
    the image's own frame (z in the image's pixels); (None, None) when the image's own finds no one,
    (result, None) when the mirrored copy finds no one."""
    back = None
    if scale != 1.0:
        image, back = zoomed(image, scale)
    res = detect(image)
    if res is None:
        return None, None
    mirrored = detect(np.ascontiguousarray(image[:, ::-1]))
    other = None if mirrored is None else unmirror_landmarks(mirrored.landmarks, image.shape[1])
    if back is not None:
        res = PoseResult(_unzoom(res.landmarks, back, scale), None)
        other = None if other is None else _unzoom(other, back, scale)
    return res, other


def _unzoom(landmarks: np.ndarray, back: np.ndarray, scale: float) -> np.ndarray:
    out = landmarks.copy()
    out[:, :2] = landmarks[:, :2] @ back[:, :2].T + back[:, 2]
    out[:, 2] = landmarks[:, 2] / scale
    return out


def mirror_averaged(detect, image: np.ndarray, *, reframe_gap: float | None = None, reframe_scales: tuple[float, ...] = ()) -> PoseResult | None:
    """``detect(image)`` (a :class:`PoseResult` or None) averaged with ``detect`` of the mirrored
    image, unmirrored (:func:`unmirror_landmarks`): x, y and z are means of the two, which averages
    out the part of the landmark noise that does not follow the mirror (harder sample: COCO-18 error
    1.99 -> 1.84 px, README "Harder cases"); the visibility is the smaller of the two (a point
    counts as seen when both saw it). When the two name the legs the other way round
    (:func:`legs_disagree`: a back view read as a front view below the waist by one of them), their
    mean would put both legs between the true ones; the legs are then the landmarks of the one
    whose hips are named the way its shoulders are (:func:`hips_follow_shoulders`), not averaged.

    When the two disagree by more than ``reframe_gap`` (:func:`mirror_gap`; None: never), MediaPipe
    has misread the photo: the pair is read again on the photo zoomed by each of ``reframe_scales``
    (:func:`zoomed`; 0.7: the person smaller and whole, in a wider margin), and the pair that agrees
    best is averaged. A zoomed pair counts only when it found the same person: its median point
    within :data:`SAME_POSE_MAX_GAP` person sizes of the photo's own (:func:`centre_gap`). On the
    harder samples this re-reads a back view 31 px off (2.6 px after) and a profile with raised
    arms 10.6 px off (2.6 px), and no other photo (README "Harder cases").

    The image's own result alone when the mirrored copy finds no one, or a pose whose median
    landmark lies more than :data:`SAME_POSE_MAX_GAP` person sizes away: another person, not noise;
    None when the image's own finds no one. The segmentation, if any, is the image's own."""
    res, other = mirror_pair(detect, image)
    if res is None:
        return None
    if other is None:
        return res
    own, segmentation = res.landmarks, res.segmentation
    gap = mirror_gap(own, other)
    if reframe_gap is not None and gap > reframe_gap:
        for scale in reframe_scales:
            again, again_other = mirror_pair(detect, image, scale)
            if again_other is None or centre_gap(own, again.landmarks) > SAME_POSE_MAX_GAP:
                continue
            again_gap = mirror_gap(again.landmarks, again_other)
            if again_gap < gap:
                res, other, gap = again, again_other, again_gap
    if gap > SAME_POSE_MAX_GAP:
        return PoseResult(res.landmarks, segmentation)
    landmarks = 0.5 * (res.landmarks + other)
    landmarks[:, 3] = np.minimum(res.landmarks[:, 3], other[:, 3])
    if legs_disagree(res.landmarks, other):
        legs = [i for twins in MP33_LEG_TWINS for i in twins]
        kept = res.landmarks if hips_follow_shoulders(res.landmarks) >= hips_follow_shoulders(other) else other
        landmarks[legs] = kept[legs]
    return PoseResult(landmarks, segmentation)


class MainPersonPose:
    """MediaPipe Pose that looks harder for the photo's main person (the ``keypoints`` stage's
    detector): at ``min_detection_confidence``; when it finds no one, again at
    ``retry_detection_confidence`` (None: no retries) on the whole image, then on each square tile
    of a wide or tall photo (:func:`~vtonpipe.models.classical.people.square_tiles`: a person among
    several, or off-centre), keeping the tile's pose that is most the photo's subject
    (:func:`~vtonpipe.converters.keypoints.main_person_score` of its COCO-18 points at
    ``min_visibility``), then on the image framed by a border of a quarter of its longer side (a
    half-body or tightly cropped person). Landmarks (and, with ``segmentation``, the person
    probability: 0 outside the tile that found them) in the image's frame; None when every
    attempt finds no one. The ``keypoints`` and ``person_mask`` stages both use it, so they find
    the same person."""

    def __init__(
        self, *, min_detection_confidence: float = 0.5, retry_detection_confidence: float | None = 0.2, min_visibility: float = 0.5, segmentation: bool = False
    ):
        self._pose = PoseLandmarker(segmentation=segmentation, min_detection_confidence=min_detection_confidence)
        self._retry = None if retry_detection_confidence is None else PoseLandmarker(segmentation=segmentation, min_detection_confidence=retry_detection_confidence)
        self.min_visibility = min_visibility

    def __call__(self, image: np.ndarray) -> PoseResult | None:
        res = self._pose(image)
        if res is not None or self._retry is None:
            return res
        res = self._retry(image)
        if res is not None:
            return res
        h, w = image.shape[:2]
        tiles = square_tiles(h, w)
        best, best_score = None, 0.0
        for y0, x0, th, tw in tiles if len(tiles) > 1 else ():
            found = self._retry(np.ascontiguousarray(image[y0 : y0 + th, x0 : x0 + tw]))
            if found is None:
                continue
            found.landmarks[:, :2] += (x0, y0)
            if found.segmentation is not None:
                whole = np.zeros((h, w), np.float32)
                whole[y0 : y0 + th, x0 : x0 + tw] = found.segmentation
                found = PoseResult(found.landmarks, whole)
            score = main_person_score(pose_coco18(found, (h, w), self.min_visibility), (h, w))
            if score > best_score:
                best, best_score = found, score
        if best is not None:
            return best
        pad = max(h, w) // 4
        framed = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), constant_values=int(np.median(image)))
        found = self._retry(framed)
        if found is not None:
            found.landmarks[:, :2] -= pad
            if found.segmentation is not None:
                found = PoseResult(found.landmarks, np.ascontiguousarray(found.segmentation[pad : pad + h, pad : pad + w]))
        return found


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


#: MediaPipe Pose landmark ids of the face (nose, eyes, ears, mouth corners), the shoulders, the hips
POSE_FACE, POSE_EYES, POSE_SHOULDERS, POSE_HIPS = (0, 2, 5, 7, 8, 9, 10), (2, 5), (11, 12), (23, 24)
#: head height / the face detector's box side, and torso length (shoulder to hip midpoints) / head
#: height, on the sample's bodies (head height: hairline to upper neck, the head's face-coloured part)
HEAD_PER_FACE_BOX, TORSO_PER_HEAD = 1.5, 2.25


@dataclass(frozen=True)
class SquareCrop:
    """The square ``[x0, x0 + side] x [y0, y0 + side]`` of an image (edges, px, pixel-centre frame)
    resampled to ``size x size`` pixels, ``scale = size / side`` crop px per image px: crop pixel
    centre ``(u, v)`` is the image point ``x = x0 + (u + 0.5) / scale``, ``y = y0 + (v + 0.5) / scale``."""

    x0: float
    y0: float
    side: float
    size: int

    @classmethod
    def around(cls, centre: np.ndarray, side: float, min_size: int) -> SquareCrop:
        """The square of ``side`` px centred on ``centre`` (x, y px), never downscaled: at least
        ``min_size`` crop px, more when ``side`` is larger."""
        return cls(float(centre[0]) - side / 2, float(centre[1]) - side / 2, float(side), max(min_size, int(np.ceil(side))))

    @property
    def scale(self) -> float:
        return self.size / self.side

    def matrix(self) -> np.ndarray:
        """(2, 3) float64 affine map image px -> crop px (``cv2.warpAffine``'s forward matrix)."""
        s = self.scale
        return np.array([[s, 0.0, -s * self.x0 - 0.5], [0.0, s, -s * self.y0 - 0.5]])

    def apply(self, image: np.ndarray) -> np.ndarray:
        """(size, size, C) bilinear resampling of ``image``, its border replicated outside it."""
        return cv2.warpAffine(image, self.matrix(), (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """(n, 2) crop px -> (n, 2) float64 image px."""
        return (np.asarray(points, np.float64) + 0.5) / self.scale + np.array([self.x0, self.y0])


def head_crop(landmarks: np.ndarray, margin: float = 2.0, min_size: int = 192) -> SquareCrop:
    """Square around the head of MediaPipe Pose ``landmarks`` (33, >=2) x, y px: centred on the
    mean of the face landmarks, ``margin`` head heights wide, at least ``min_size`` crop px. The
    head height is the larger of the eyes-to-shoulders distance and the torso length /
    :data:`TORSO_PER_HEAD` (the first shrinks with raised shoulders, the second with a bent torso)."""
    xy = np.asarray(landmarks, np.float64)[:, :2]
    shoulders = xy[list(POSE_SHOULDERS)].mean(0)
    eyes, hips = xy[list(POSE_EYES)].mean(0), xy[list(POSE_HIPS)].mean(0)
    head = max(np.linalg.norm(eyes - shoulders), np.linalg.norm(hips - shoulders) / TORSO_PER_HEAD)
    return SquareCrop.around(xy[list(POSE_FACE)].mean(0), margin * max(head, 1.0), min_size)


def face_box_crop(box: np.ndarray, margin: float = 2.0, min_size: int = 192) -> SquareCrop:
    """Square around a :class:`FaceDetector` ``box`` (x0, y0, x1, y1 px): centred on it,
    ``margin`` head heights (:data:`HEAD_PER_FACE_BOX` box sides) wide, at least ``min_size`` crop px."""
    x0, y0, x1, y1 = np.asarray(box, np.float64)
    head = HEAD_PER_FACE_BOX * max(x1 - x0, y1 - y0, 1.0)
    return SquareCrop.around(np.array([(x0 + x1) / 2, (y0 + y1) / 2]), margin * head, min_size)


class FaceDetector:
    """MediaPipe Face Detection's full-range model (BlazeFace for faces up to about 5 m away: in
    the whole image it finds 67 of the 72 faces, 20-32 px tall, of three 256 x 192 samples, where
    Face Mesh's own detector finds none)."""

    def __init__(self, min_detection_confidence: float = 0.5):
        import mediapipe as mp

        self._detector = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_detection_confidence)

    def detections(self, image: np.ndarray) -> np.ndarray:
        """(K, 5) float64 every face found: box x0, y0, x1, y1 px (edges) and score, most confident first."""
        image = _rgb(image)
        h, w = image.shape[:2]
        res = self._detector.process(image)
        boxes = [(d.location_data.relative_bounding_box, d.score[0]) for d in res.detections or ()]
        out = np.array([(b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h, s) for b, s in boxes], np.float64).reshape(-1, 5)
        out[:, :4] -= 0.5
        return out[np.argsort(-out[:, 4], kind="stable")]

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """(4,) float64 box x0, y0, x1, y1 px (edges) of the most confident face; None without one."""
        faces = self.detections(image)
        return faces[0, :4] if len(faces) else None


class PeopleCounter:
    """The number of people in a photo (:func:`vtonpipe.models.classical.people.count_people`: faces and
    person-size silhouettes) from two MediaPipe models that see several people, where Pose sees
    one: :class:`FaceDetector` and :class:`SelfieSegmenter` (general model). Both run on each tile
    of :func:`~vtonpipe.models.classical.people.square_tiles` (a wide group photo is cut into squares, which
    the models see at full resolution); faces of overlapping tiles are merged
    (:func:`~vtonpipe.models.classical.people.merge_detections`), the person probability is averaged where
    tiles overlap and thresholded at ``threshold``."""

    def __init__(self, min_detection_confidence: float = 0.5, threshold: float = 0.5):
        self._faces = FaceDetector(min_detection_confidence)
        self._segmenter = SelfieSegmenter(model_selection=0)
        self._threshold = threshold

    def __call__(self, image: np.ndarray) -> int:
        """People in ``image`` (0 when neither a face nor a silhouette shows)."""
        image = _rgb(image)
        h, w = image.shape[:2]
        prob, cover, faces = np.zeros((h, w), np.float32), np.zeros((h, w), np.float32), []
        for y0, x0, th, tw in square_tiles(h, w):
            tile = np.ascontiguousarray(image[y0 : y0 + th, x0 : x0 + tw])
            found = self._faces.detections(tile)
            found[:, :4] += [x0, y0, x0, y0]
            faces.append(found)
            prob[y0 : y0 + th, x0 : x0 + tw] += self._segmenter(tile)
            cover[y0 : y0 + th, x0 : x0 + tw] += 1.0
        return count_people(merge_detections(np.concatenate(faces)), prob > self._threshold * cover)


class FaceOval:
    """MediaPipe Face Mesh, reduced to the face oval polygon of the most prominent face.

    Face Mesh's own face detector misses small faces (none of the 20-32 px tall faces of the
    sample's 256 x 192 full-body photos); given a :class:`SquareCrop` around the head
    (:func:`head_crop`, :func:`face_box_crop`), it runs on that crop, upscaled, and maps the oval
    back to the image.
    """

    def __init__(self, min_detection_confidence: float = 0.5):
        import mediapipe as mp

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=False, min_detection_confidence=min_detection_confidence
        )
        self._order = list(face_oval_order())

    def __call__(self, image: np.ndarray, crop: SquareCrop | None = None) -> np.ndarray | None:
        """(36, 2) float32 polygon x, y px of ``image`` around the face, found in ``crop`` of it
        (the whole image when None); None when no face is found."""
        image = _rgb(image)
        if crop is not None:
            image = crop.apply(image)
        h, w = image.shape[:2]
        res = self._mesh.process(image)
        if not res.multi_face_landmarks:
            return None
        lm = res.multi_face_landmarks[0].landmark
        oval = np.array([(lm[i].x * w - 0.5, lm[i].y * h - 0.5) for i in self._order], np.float64)
        return (oval if crop is None else crop.to_image(oval)).astype(np.float32)


def fill_polygon(polygon: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W) mask, 1 on pixels whose centre lies inside ``polygon`` (n, 2) px; ``size`` = (H, W)."""
    mask = np.zeros(size, np.uint8)
    pts = np.round(np.asarray(polygon, np.float64) * 16).astype(np.int32)  # 4 fractional bits
    cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return mask
