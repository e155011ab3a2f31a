"""Counting people from face boxes and a person mask (vtonpipe.models.classical.people), on hand-made inputs."""

from __future__ import annotations

import numpy as np

from vtonpipe.models.classical.people import (
    columns,
    count_people,
    merge_detections,
    square_tiles,
)

H, W = 200, 400


def silhouette(mask: np.ndarray, x0: int, x1: int, y0: int = 20, y1: int = 190) -> np.ndarray:
    mask[y0:y1, x0:x1] = True
    return mask


def face(cx: float, cy: float, size: float = 16.0) -> list[float]:
    return [cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2, 0.9]


def test_square_tiles_cover_wide_and_tall_images():
    assert square_tiles(256, 192) == [(0, 0, 256, 192)]  # portrait up to 4:3: the whole image
    assert square_tiles(192, 256) == [(0, 0, 192, 256)]
    assert square_tiles(256, 768) == [(0, x, 256, 256) for x in (0, 128, 256, 384, 512)]
    assert square_tiles(600, 200) == [(y, 0, 200, 200) for y in (0, 100, 200, 300, 400)]
    for h, w in ((256, 384), (256, 1000), (300, 1000)):
        tiles = square_tiles(h, w)
        cover = np.zeros(w, int)
        for y0, x0, th, tw in tiles:
            assert (y0, th) == (0, h) and tw == h and x0 + tw <= w
            cover[x0 : x0 + tw] += 1
        assert cover.min() >= 1 and tiles[-1][1] + h == w
        starts = [t[1] for t in tiles]
        assert max(np.diff(starts)) <= h / 2  # neighbours overlap by half a tile or more


def test_merge_detections_keeps_the_most_confident_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10, 0.6], [1, 1, 11, 11, 0.9], [30, 0, 40, 10, 0.7], [5, 0, 15, 10, 0.8]])
    # IoU of box 1 with box 0: 81 / 119 = 0.68 (merged); with box 3: 54 / 146 = 0.37 (merged at 0.3, kept at 0.5)
    np.testing.assert_array_equal(merge_detections(boxes), boxes[[1, 2]])
    np.testing.assert_array_equal(merge_detections(boxes, iou=0.5), boxes[[1, 3, 2]])
    assert merge_detections(np.zeros((0, 5))).shape == (0, 5)


def test_columns_join_overlapping_spans():
    spans = np.array([[0, 10], [8, 20], [19, 30], [50, 60], [55, 58]])
    # any overlap: 0-1-2 chain into one column; 3 and 4 another
    assert columns(spans, 0.0).tolist() == [0, 0, 0, 3, 3]
    # more than half the narrower one's width: 0-1 share 2 px of 10, 1-2 1 of 11; 3-4 all 3 px of the narrower
    assert columns(spans, 0.5).tolist() == [0, 1, 2, 3, 3]


def test_count_people_from_faces_and_silhouettes():
    empty = np.zeros((H, W), bool)
    assert count_people(np.zeros((0, 5)), empty) == 0
    two = silhouette(silhouette(empty.copy(), 40, 120), 250, 330)
    assert count_people([], two) == 2  # two people turned away
    assert count_people([face(80, 40), face(290, 40)], two) == 2
    # touching people: one silhouette, two faces side by side
    touching = silhouette(empty.copy(), 40, 200)
    assert count_people([face(80, 40), face(160, 40)], touching) == 2
    # one person: a face and a face printed on the shirt under it, or a face-like detection
    # beside the face (centres less than two face widths apart)
    one = silhouette(empty.copy(), 40, 120)
    assert count_people([face(80, 40), face(84, 110)], one) == 1
    assert count_people([face(80, 40), face(100, 44)], one) == 1
    # a face the segmentation missed counts on its own; a small piece (a bag) does not
    assert count_people([face(80, 40), face(300, 60)], one) == 2
    bag = silhouette(one.copy(), 200, 220, 100, 140)  # 800 px, < 20% of the person's 13600
    assert count_people([face(80, 40)], bag) == 1
    # a body the mask split at the waist: two pieces in one column
    split = silhouette(silhouette(empty.copy(), 40, 120, 20, 100), 45, 115, 104, 190)
    assert count_people([], split) == 1 and count_people([face(80, 40)], split) == 1
