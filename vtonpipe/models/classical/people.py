"""Counting the people in a photo from face boxes and a person mask (detector-agnostic).

Pure functions in the pixel frame of docs/CONVENTIONS.md; the MediaPipe detectors that feed them
are :class:`vtonpipe.models.nets.mediapipe.PeopleCounter`.

A person is counted from what of them shows, either alone: a **face** (a detector's box) or a
**silhouette** (a connected piece of the person mask of person size). A silhouette without a
face is a person turned away; a silhouette with several faces side by side is people touching;
a face on no silhouette is a person the segmentation missed. Faces in one column of one
silhouette (centres less than two face widths apart horizontally: a face printed on a shirt
under its wearer's, a face-like detection beside the real one) are one person, and so are silhouettes in one column (a body the
mask split at a belt or a dark garment): people in a photo stand side by side, not above one
another.
"""

from __future__ import annotations

import cv2
import numpy as np

#: least area of a silhouette, as a share of the largest one (smaller pieces: hands, bags, noise)
MIN_SILHOUETTE_SHARE = 0.2
#: silhouettes whose horizontal spans share more than this of the narrower one's width are one person
SILHOUETTE_OVERLAP = 0.5
#: a face's column: this many face widths either side of its centre (two faces whose columns
#: overlap, centres less than two widths apart, are one person: about a head and shoulders apart
#: at least for two people, a face-like detection beside the real one, a print under it)
FACE_COLUMN = 1.0
#: wide images are cut into square tiles when longer / shorter side exceeds this (detectors see a square)
TILE_ASPECT = 4 / 3


def square_tiles(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Tiles ``(y0, x0, tile height, tile width)`` px covering an image of ``height`` x ``width``
    for square-input detectors: the whole image when its longer side is at most TILE_ASPECT times
    its shorter, else squares of the shorter side along the longer one, overlapping by half or
    more, the first and last flush with the image's ends."""
    short, long = min(height, width), max(height, width)
    if long <= TILE_ASPECT * short:
        return [(0, 0, height, width)]
    starts = np.unique(np.linspace(0, long - short, int(np.ceil(2 * (long - short) / short)) + 1).round().astype(int))
    return [(0, int(s), short, short) if width > height else (int(s), 0, short, short) for s in starts]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(K, M) intersection over union of boxes ``a`` (K, >=4) and ``b`` (M, >=4) x0, y0, x1, y1."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a, area_b = ((r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1]) for r in (a, b))
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def merge_detections(boxes: np.ndarray, iou: float = 0.3) -> np.ndarray:
    """Non-maximum suppression: of (K, 5) boxes x0, y0, x1, y1, score (detections of overlapping
    tiles) the most confident of each group overlapping by more than ``iou``, by falling score."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 5)
    keep: list[int] = []
    for i in np.argsort(-boxes[:, 4], kind="stable"):
        if not keep or box_iou(boxes[i : i + 1], boxes[keep]).max() <= iou:
            keep.append(int(i))
    return boxes[keep]


def columns(spans: np.ndarray, overlap: float) -> np.ndarray:
    """(N,) column id of (N, 2) horizontal spans x0, x1 px: spans whose common part exceeds
    ``overlap`` of the narrower one's width share a column, directly or through others."""
    spans = np.asarray(spans, np.float64).reshape(-1, 2)
    column = np.arange(len(spans))
    common = np.minimum(spans[:, None, 1], spans[None, :, 1]) - np.maximum(spans[:, None, 0], spans[None, :, 0])
    narrower = np.minimum.outer(spans[:, 1] - spans[:, 0], spans[:, 1] - spans[:, 0])
    linked = common > overlap * np.maximum(narrower, 1e-9)
    for _ in range(len(spans)):  # spread the smallest id along links until nothing changes
        spread = np.where(linked, column[None, :], column[:, None]).min(1)
        if (spread == column).all():
            break
        column = spread
    return column


def count_people(faces: np.ndarray, person: np.ndarray) -> int:
    """People shown by ``faces`` (K, >=4) boxes x0, y0, x1, y1 px and ``person`` (H, W) bool mask
    (module docstring): silhouettes are the mask's 8-connected pieces of at least
    MIN_SILHOUETTE_SHARE of the largest one's area, those in one column (:func:`columns`,
    SILHOUETTE_OVERLAP) one; each holds as many people as the columns (FACE_COLUMN) of the faces
    whose box centre it covers, at least one; the columns of faces on no silhouette add one each.
    0 without faces and silhouettes."""
    person = np.asarray(person).astype(bool)
    faces = np.asarray(faces, np.float64)[..., :4].reshape(-1, 4)
    n, pieces, stats, _ = cv2.connectedComponentsWithStats(person.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    kept = np.flatnonzero(areas >= MIN_SILHOUETTE_SHARE * areas.max()) + 1 if len(areas) else np.zeros(0, np.int64)
    x0 = stats[kept, cv2.CC_STAT_LEFT]
    silhouette_column = columns(np.column_stack([x0, x0 + stats[kept, cv2.CC_STAT_WIDTH]]), SILHOUETTE_OVERLAP)
    column_of_piece = np.full(n, -1)
    column_of_piece[kept] = silhouette_column
    h, w = person.shape
    cx = np.clip(np.rint((faces[:, 0] + faces[:, 2]) / 2), 0, w - 1).astype(np.int64)
    cy = np.clip(np.rint((faces[:, 1] + faces[:, 3]) / 2), 0, h - 1).astype(np.int64)
    face_on = column_of_piece[pieces[cy, cx]]  # the silhouette column under each face, -1 none
    reach = FACE_COLUMN * (faces[:, 2] - faces[:, 0])
    face_spans = np.column_stack([(faces[:, 0] + faces[:, 2]) / 2 - reach, (faces[:, 0] + faces[:, 2]) / 2 + reach])
    count = 0
    for column in np.unique(silhouette_column):
        on = face_on == column
        count += len(np.unique(columns(face_spans[on], 0.0))) if on.any() else 1
    off = face_on < 0
    return count + len(np.unique(columns(face_spans[off], 0.0)))
