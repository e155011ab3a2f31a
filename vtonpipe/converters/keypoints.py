"""Keypoint layouts and encodings: OpenPose COCO-18 and BODY_25, MediaPipe Pose 33, pose maps, OpenPose JSON.

A pose is a float32 ``(K, 3)`` array of rows ``(x, y, confidence)`` in the pixel frame of
docs/CONVENTIONS.md (pixel centres at integer coordinates, x right, y down); an undetected point
is ``(0, 0, 0)``. Functions taking poses also accept a stack ``(N, K, 3)`` where noted.
"""

from __future__ import annotations

import json
import os
from enum import IntEnum
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from ..io import write_bytes_atomic

COCO18_NAMES = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)  # fmt: skip

#: COCO-18 indices by name: ``COCO18.NECK == 1``, ``COCO18.LEFT_HIP == 11`` (the one home of these ids)
COCO18 = IntEnum("COCO18", [(name.upper(), i) for i, name in enumerate(COCO18_NAMES)])

BODY25_NAMES = (
    *COCO18_NAMES[:8],
    "mid_hip",
    *COCO18_NAMES[8:],
    "left_big_toe", "left_small_toe", "left_heel",
    "right_big_toe", "right_small_toe", "right_heel",
)  # fmt: skip

MP33_NAMES = (
    "nose",
    "left_eye_inner", "left_eye", "left_eye_outer",
    "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip


def mirror_order(names: Sequence[str]) -> tuple[int, ...]:
    """For each of the point ``names``, the index of the point it becomes in the mirrored image:
    its ``left``/``right`` twin, or itself (the nose, the neck)."""
    return tuple(names.index(n.replace("left", "#").replace("right", "left").replace("#", "right")) for n in names)


#: the landmark each MediaPipe landmark becomes in the mirrored image (left <-> right; the nose is its own)
MP33_MIRROR = mirror_order(MP33_NAMES)

#: MediaPipe landmark of each COCO-18 point; ``None`` for the neck (midpoint of 11 and 12)
MP33_TO_COCO18: tuple[int | None, ...] = (0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)
#: BODY_25 index of each COCO-18 point (MidHip is inserted at 8, the feet are 19..24)
COCO18_TO_BODY25 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)

#: the 17 bones OpenPose draws for COCO-18 (the first 17 of its 19 PAF limbs), as point index pairs
COCO18_SKELETON = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
#: OpenPose's rendering colours (RGB), one per COCO-18 point and one per bone of COCO18_SKELETON
OPENPOSE_COLOURS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip

Layout = Literal["coco18", "body25"]
LAYOUT_SIZES: dict[str, int] = {"coco18": 18, "body25": 25}


def _midpoint(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3) midpoint of two point rows, confidence the min; (0, 0, 0) unless both are detected."""
    both = (a[..., 2] > 0) & (b[..., 2] > 0)
    mid = np.concatenate([(a[..., :2] + b[..., :2]) / 2, np.minimum(a[..., 2:], b[..., 2:])], axis=-1)
    return np.where(both[..., None], mid, 0).astype(np.float32)


def clear_undetected(keypoints: np.ndarray, min_confidence: float = 0.0) -> np.ndarray:
    """Copy of ``keypoints`` (..., K, 3) with rows of confidence <= 0 or < ``min_confidence`` set to (0, 0, 0)."""
    out = np.array(keypoints, dtype=np.float32)
    c = out[..., 2]
    out[(c <= 0) | (c < min_confidence)] = 0
    return out


def clear_outside(keypoints: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Copy of ``keypoints`` (..., K, 3) with points outside the image ``size`` = (H, W) set to (0, 0, 0).

    The image spans ``[-0.5, W - 0.5] x [-0.5, H - 0.5]`` (pixel centres at integers).
    """
    h, w = size
    out = np.array(keypoints, dtype=np.float32)
    x, y = out[..., 0], out[..., 1]
    out[(x < -0.5) | (x > w - 0.5) | (y < -0.5) | (y > h - 0.5)] = 0
    return out


def mp33_to_coco18(landmarks: np.ndarray, min_confidence: float = 0.0) -> np.ndarray:
    """MediaPipe Pose ``(..., 33, 3)`` rows (x, y, confidence) -> COCO-18 ``(..., 18, 3)``.

    The neck is the midpoint of the shoulders (11, 12) with the smaller confidence. Points whose
    confidence is below ``min_confidence`` (or zero) become (0, 0, 0).
    """
    lm = np.asarray(landmarks, dtype=np.float32)
    if lm.shape[-2:] != (33, 3):
        raise ValueError(f"expected MediaPipe landmarks (..., 33, 3), got {lm.shape}")
    lm = clear_undetected(lm)
    idx = [0 if i is None else i for i in MP33_TO_COCO18]
    out = lm[..., idx, :]
    out[..., 1, :] = _midpoint(lm[..., 11, :], lm[..., 12, :])
    return clear_undetected(out, min_confidence)


def mp33_points(landmarks: np.ndarray, names: Sequence[str], min_confidence: float = 0.0) -> np.ndarray:
    """MediaPipe Pose landmarks ``(33, 4)`` (x, y, z, visibility) -> ``(len(names), 3)`` (x, y,
    visibility) of the :data:`MP33_NAMES` ``names``; those below ``min_confidence`` (0, 0, 0)."""
    lm = np.asarray(landmarks, dtype=np.float32)
    if lm.shape != (33, 4):
        raise ValueError(f"expected MediaPipe landmarks (33, 4), got {lm.shape}")
    out = lm[[MP33_NAMES.index(n) for n in names]][:, [0, 1, 3]]
    return clear_undetected(out, min_confidence)


def mp33_depths_to_coco18(landmarks: np.ndarray) -> np.ndarray:
    """MediaPipe Pose image landmarks ``(..., 33, >=3)`` (x, y, z, ...) -> their relative depths
    ``(..., 18)`` in COCO-18 order: MediaPipe's ``z`` (px at the image width's scale, origin the
    hips' midpoint, smaller = closer to the camera); the neck's is the shoulders' mean."""
    lm = np.asarray(landmarks, dtype=np.float32)
    if lm.ndim < 2 or lm.shape[-2] != 33 or lm.shape[-1] < 3:
        raise ValueError(f"expected MediaPipe landmarks (..., 33, 3 or 4), got {lm.shape}")
    idx = [0 if i is None else i for i in MP33_TO_COCO18]
    out = lm[..., idx, 2].copy()
    out[..., 1] = 0.5 * (lm[..., 11, 2] + lm[..., 12, 2])
    return out


#: Where each COCO-18 joint lies relative to MediaPipe's (BlazePose's) landmark of the same name:
#: ``(up, outward)`` in torso lengths (the neck to the hips' midpoint), ``up`` along the hips ->
#: neck axis, ``outward`` away from that axis (0 for the nose and neck, which are on it). COCO's
#: joints are those of anny's COCO keypoint regressor (the sample's ground truth and the body
#: fit's model keypoints). BlazePose's ankles sit about 4 % of a torso length above them, its
#: knees and ears about 2 % (and its knees 2 % inside them). The mean over the 400 person photos
#: of five samples (seeds 13-17); ``benchmarks/bench_keypoint_offsets.py`` measures them and their
#: effect on samples it did not see.
BLAZEPOSE_TO_COCO18_OFFSETS = np.array(
    [
        [-0.014, +0.000],  # nose
        [-0.008, +0.000],  # neck
        [-0.007, -0.002],  # right_shoulder
        [-0.012, +0.003],  # right_elbow
        [-0.008, -0.005],  # right_wrist
        [-0.009, -0.005],  # left_shoulder
        [-0.010, +0.003],  # left_elbow
        [-0.007, -0.000],  # left_wrist
        [-0.009, -0.004],  # right_hip
        [-0.018, +0.024],  # right_knee
        [-0.043, +0.009],  # right_ankle
        [-0.012, -0.010],  # left_hip
        [-0.018, +0.015],  # left_knee
        [-0.040, +0.002],  # left_ankle
        [-0.013, +0.002],  # right_eye
        [-0.012, +0.007],  # left_eye
        [-0.025, +0.014],  # right_ear
        [-0.026, +0.021],  # left_ear
    ],
    np.float32,
)


def torso_frame(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float] | None:
    """The body's frame in the image from COCO-18 ``(18, 3)`` points: (the hips' midpoint (2,),
    ``up`` (2,) the unit vector from it to the neck, ``across`` (2,) ``up`` turned 90 degrees,
    the torso length in px); None without the neck or either hip, or for a torso under 1e-3 px."""
    kp = np.asarray(keypoints, dtype=np.float32)
    neck, rhip, lhip = (kp[int(j)] for j in (COCO18.NECK, COCO18.RIGHT_HIP, COCO18.LEFT_HIP))
    if min(neck[2], rhip[2], lhip[2]) <= 0:
        return None
    hips = (rhip[:2] + lhip[:2]) / 2
    torso = float(np.linalg.norm(neck[:2] - hips))
    if torso < 1e-3:
        return None
    up = (neck[:2] - hips) / torso
    return hips, up, np.array([-up[1], up[0]], np.float32), torso


def blazepose_to_coco_joints(keypoints: np.ndarray, offsets: np.ndarray = BLAZEPOSE_TO_COCO18_OFFSETS) -> np.ndarray:
    """COCO-18 points ``(18, 3)`` mapped from MediaPipe's landmarks (:func:`mp33_to_coco18`) moved
    to COCO's joint definitions: each detected point shifted by ``offsets`` ``(18, 2)`` (up,
    outward; torso lengths) in the body's :func:`torso_frame`, outward being away from the
    hips -> neck axis on the point's side of it. Without a frame (no neck or hip) the points are
    returned unchanged; confidences are kept."""
    kp = np.array(keypoints, dtype=np.float32)
    if kp.shape != (18, 3):
        raise ValueError(f"expected COCO-18 keypoints (18, 3), got {kp.shape}")
    frame = torso_frame(kp)
    if frame is None:
        return kp
    hips, up, across, torso = frame
    side = np.sign((kp[:, :2] - hips) @ across)
    shift = torso * (offsets[:, :1] * up + (side * offsets[:, 1])[:, None] * across)
    found = kp[:, 2] > 0
    kp[found, :2] += shift[found]
    return kp


#: the joints whose unseen positions :func:`mp33_hidden_joints` keeps: the limbs' ends, the wrists
#: and ankles, which nothing else places (an unseen elbow or knee lies between seen joints, where
#: the body fit puts it better than MediaPipe's guess: 2.2 against 4.2 px on side views)
HIDDEN_END_JOINTS = (COCO18.RIGHT_WRIST, COCO18.LEFT_WRIST, COCO18.RIGHT_ANKLE, COCO18.LEFT_ANKLE)


def mp33_coco_joints(landmarks: np.ndarray) -> np.ndarray:
    """MediaPipe Pose landmarks ``(33, 4)`` (x, y, z, visibility) -> COCO-18 ``(18, 3)`` (x, y,
    visibility) taken whatever their visibility, moved to COCO's joints
    (:func:`blazepose_to_coco_joints`); only points MediaPipe left at 0 visibility are (0, 0, 0)."""
    lm = np.asarray(landmarks, dtype=np.float32)
    if lm.shape != (33, 4):
        raise ValueError(f"expected MediaPipe landmarks (33, 4), got {lm.shape}")
    return blazepose_to_coco_joints(mp33_to_coco18(lm[:, [0, 1, 3]]))


def mp33_hidden_joints(landmarks: np.ndarray, keypoints: np.ndarray, size: tuple[int, int], joints: Sequence[int] = HIDDEN_END_JOINTS) -> np.ndarray:
    """MediaPipe's guesses (18, 3) of the COCO-18 ``joints`` the ``keypoints`` (18, 3) leave
    undetected: its landmarks ``(33, 4)`` (x, y, z, visibility) taken whatever their visibility
    (a wrist behind the torso of a back view still has one, at visibility 0.05-0.2), moved to
    COCO's joints (:func:`blazepose_to_coco_joints`), inside the image ``size`` = (H, W);
    confidence 1 there, (0, 0, 0) elsewhere."""
    guess = clear_outside(mp33_coco_joints(landmarks), size)
    keep = np.zeros(18, bool)
    keep[list(joints)] = True
    keep &= (np.asarray(keypoints)[:, 2] <= 0) & (guess[:, 2] > 0)
    out = np.zeros((18, 3), np.float32)
    out[keep, :2] = guess[keep, :2]
    out[keep, 2] = 1.0
    return out


def coco18_to_body25(keypoints: np.ndarray) -> np.ndarray:
    """COCO-18 ``(..., 18, 3)`` -> BODY_25 ``(..., 25, 3)``.

    MidHip (8) is the midpoint of the hips with the smaller confidence ((0, 0, 0) unless both
    hips are detected); the foot points 19..24 are unknown, so (0, 0, 0).
    """
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.shape[-2:] != (18, 3):
        raise ValueError(f"expected COCO-18 keypoints (..., 18, 3), got {kp.shape}")
    out = np.zeros((*kp.shape[:-2], 25, 3), np.float32)
    out[..., COCO18_TO_BODY25, :] = kp
    out[..., 8, :] = _midpoint(kp[..., 8, :], kp[..., 11, :])
    return out


def body25_to_coco18(keypoints: np.ndarray) -> np.ndarray:
    """BODY_25 ``(..., 25, 3)`` -> COCO-18 ``(..., 18, 3)`` (drops MidHip and the feet)."""
    kp = np.asarray(keypoints, dtype=np.float32)
    if kp.shape[-2:] != (25, 3):
        raise ValueError(f"expected BODY_25 keypoints (..., 25, 3), got {kp.shape}")
    return kp[..., COCO18_TO_BODY25, :].copy()


def keypoint_bbox(keypoints: np.ndarray) -> np.ndarray | None:
    """float32 ``(x0, y0, x1, y1)`` px around the detected points of one pose (K, 3); None if none is."""
    kp = np.asarray(keypoints)
    found = kp[kp[:, 2] > 0, :2]
    if not len(found):
        return None
    return np.concatenate([found.min(0), found.max(0)]).astype(np.float32)


def subject_score(box: np.ndarray, size: tuple[int, int]) -> float:
    """How much a person box ``(x0, y0, x1, y1)`` px is the photo's subject: size x centrality, in
    [0, 1]. size = (box width + box height) / (W + H); centrality = 1 - 0.5 * (distance from the
    box centre to the image centre) / (half the image diagonal), so a person in a corner weighs
    half as much as the same person centred. ``size`` = (H, W). Every stage that picks one person
    of several (the keypoint detectors, DensePose R-CNN) picks the highest score."""
    h, w = size
    extent = ((box[2] - box[0]) + (box[3] - box[1])) / (w + h)
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    offset = np.linalg.norm(centre - np.array([(w - 1) / 2, (h - 1) / 2])) / (0.5 * np.hypot(w, h))
    return float(extent * (1 - 0.5 * min(offset, 1.0)))


def main_person_score(keypoints: np.ndarray, size: tuple[int, int]) -> float:
    """How much a pose (18, 3) is the photo's subject: :func:`subject_score` of its keypoint box
    (0 without a detected point). ``size`` = (H, W)."""
    box = keypoint_bbox(keypoints)
    return 0.0 if box is None else subject_score(box, size)


# -- dense encodings ---------------------------------------------------------------------------
def _supports(nonzero: np.ndarray) -> np.ndarray:
    """int ``(K, 2)``: ``(first, last + 1)`` of the true entries of each row of bool ``(K, N)``
    (``(0, 0)`` for a row with none)."""
    n = nonzero.shape[1]
    first, last = nonzero.argmax(1), n - nonzero[:, ::-1].argmax(1)
    return np.where(nonzero.any(1)[:, None], np.stack([first, last], 1), 0)


def _canvas(out: np.ndarray | None, shape: tuple[int, int, int]) -> np.ndarray:
    """``out`` (checked: float32 of ``shape``, expected all zeros) or a new zero array."""
    if out is None:
        return np.zeros(shape, np.float32)
    if out.shape != shape or out.dtype != np.float32:
        raise ValueError(f"out must be float32 {shape}, got {out.dtype} {out.shape}")
    return out


def gaussian_heatmaps(keypoints: np.ndarray, size: tuple[int, int], sigma: float = 6.0, *, out: np.ndarray | None = None) -> np.ndarray:
    """float32 ``(K, H, W)``: ``exp(-d^2 / (2 sigma^2))`` around each detected point, 0 for undetected ones.

    ``d`` is the distance in px from the pixel centre ``(x=j, y=i)`` to the point; ``size`` = (H, W).
    The Gaussian is separable, so each map is the outer product of a column and a row factor,
    written only over the rectangle where both are nonzero: into ``out`` (float32 ``(K, H, W)``,
    all zeros, e.g. shared memory) when given, which is returned.
    """
    kp = np.asarray(keypoints, dtype=np.float32)
    h, w = size
    gx = np.exp(-((np.arange(w, dtype=np.float32)[None, :] - kp[:, :1]) ** 2) / (2 * sigma**2))  # (K, W)
    gy = np.exp(-((np.arange(h, dtype=np.float32)[None, :] - kp[:, 1:2]) ** 2) / (2 * sigma**2))  # (K, H)
    # factors below sqrt(float32's smallest normal) are set to 0, so that no product is a denormal
    # (denormal arithmetic is many times slower on x86; the values dropped are < 1e-19)
    floor = np.sqrt(np.finfo(np.float32).tiny)
    gx[gx < floor] = 0
    gy[gy < floor] = 0
    maps = _canvas(out, (len(kp), h, w))
    cols, rows = _supports(gx > 0), _supports(gy > 0)
    for k in np.flatnonzero(kp[:, 2] > 0):
        (x0, x1), (y0, y1) = cols[k], rows[k]
        maps[k, y0:y1, x0:x1] = gy[k, y0:y1, None] * gx[k, None, x0:x1]
    return maps


def pose_disks(keypoints: np.ndarray, size: tuple[int, int], radius: float = 4.0, *, out: np.ndarray | None = None) -> np.ndarray:
    """float32 ``(K, H, W)``: 1 on pixels whose centre is within ``radius`` px of the point (SPG-VTON's pose maps).

    Undetected points give an all-zero channel; ``size`` = (H, W). Each disk is written over the
    rows and columns within ``radius`` of its point only: into ``out`` (float32 ``(K, H, W)``, all
    zeros) when given, which is returned.
    """
    kp = np.asarray(keypoints, dtype=np.float32)
    h, w = size
    dx2 = (np.arange(w, dtype=np.float32)[None, :] - kp[:, :1]) ** 2  # (K, W)
    dy2 = (np.arange(h, dtype=np.float32)[None, :] - kp[:, 1:2]) ** 2  # (K, H)
    maps = _canvas(out, (len(kp), h, w))
    cols, rows = _supports(dx2 <= radius**2), _supports(dy2 <= radius**2)
    for k in np.flatnonzero(kp[:, 2] > 0):
        (x0, x1), (y0, y1) = cols[k], rows[k]
        maps[k, y0:y1, x0:x1] = dy2[k, y0:y1, None] + dx2[k, None, x0:x1] <= radius**2
    return maps


# -- OpenPose JSON -----------------------------------------------------------------------------
def to_openpose_json(people: np.ndarray | Sequence[np.ndarray], layout: Layout = "coco18", decimals: int | None = 3) -> dict[str, Any]:
    """OpenPose's JSON (format 1.3) of COCO-18 poses ``(N, 18, 3)``, written in ``layout``.

    ``{"version": 1.3, "people": [{"pose_keypoints_2d": [x0, y0, c0, x1, ...]}, ...]}``; values
    rounded to ``decimals`` (None: the float32 values exactly, as the shortest repr reading back
    to them). ``"body25"`` converts with :func:`coco18_to_body25` (what VITON-HD and
    HR-VITON's loaders index: MidHip at 8, hips at 9 and 12).
    """
    poses = np.asarray(people, dtype=np.float32).reshape(-1, 18, 3)
    if layout == "body25":
        poses = coco18_to_body25(poses)
    elif layout != "coco18":
        raise ValueError(f"unknown layout {layout!r}; known: {sorted(LAYOUT_SIZES)}")
    return {
        "version": 1.3,
        "people": [{"pose_keypoints_2d": [float(v) if decimals is None else round(float(v), decimals) for v in p.reshape(-1)]} for p in poses],
    }


def from_openpose_json(obj: Mapping[str, Any], layout: Layout = "coco18") -> np.ndarray:
    """Poses ``(N, K, 3)`` float32 in ``layout`` from an OpenPose JSON dict in either layout.

    The file's layout is told by its length (18 or 25 points); older files' ``pose_keypoints``
    key is read too.
    """
    if layout not in LAYOUT_SIZES:
        raise ValueError(f"unknown layout {layout!r}; known: {sorted(LAYOUT_SIZES)}")
    poses = []
    for n, person in enumerate(obj.get("people", [])):
        values = person.get("pose_keypoints_2d", person.get("pose_keypoints"))
        if values is None:
            raise ValueError(f"person {n} has no pose_keypoints_2d")
        kp = np.asarray(values, dtype=np.float32)
        if kp.size not in (18 * 3, 25 * 3):
            raise ValueError(f"person {n}: {kp.size} values is neither COCO-18 (54) nor BODY_25 (75)")
        kp = kp.reshape(-1, 3)
        if len(kp) != LAYOUT_SIZES[layout]:
            kp = body25_to_coco18(kp) if layout == "coco18" else coco18_to_body25(kp)
        poses.append(kp)
    return np.stack(poses) if poses else np.zeros((0, LAYOUT_SIZES[layout], 3), np.float32)


def write_openpose_json(path: str | os.PathLike, people: np.ndarray | Sequence[np.ndarray], layout: Layout = "coco18") -> None:
    """Write :func:`to_openpose_json` of COCO-18 ``people`` to ``path`` (atomically, compact)."""
    write_bytes_atomic(path, json.dumps(to_openpose_json(people, layout)).encode())


def read_openpose_json(path: str | os.PathLike, layout: Layout = "coco18") -> np.ndarray:
    """Poses ``(N, K, 3)`` in ``layout`` from an OpenPose JSON file (see :func:`from_openpose_json`)."""
    return from_openpose_json(json.loads(Path(path).read_text()), layout)
