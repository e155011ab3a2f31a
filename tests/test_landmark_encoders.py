"""Dense landmark encodings for trainers: Gaussian heatmaps and SAL-VTON's hard landmark masks
(Eq. 9), on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vtonpipe.converters.landmarks import (
    ABSENT,
    OCCLUDED,
    VISIBLE,
    hard_landmark_masks,
    landmark_heatmaps,
    landmark_mask_union,
)


def _landmarks(points: dict[int, tuple[float, float, int]]) -> np.ndarray:
    lm = np.zeros((32, 3), np.float32)
    lm[:, 2] = ABSENT
    for k, p in points.items():
        lm[k] = p
    return lm


def test_heatmaps_are_gaussians_at_pixel_centres():
    lm = _landmarks({0: (2.0, 1.0, VISIBLE), 5: (0.5, 0.0, OCCLUDED)})
    maps = landmark_heatmaps(lm, (3, 4), sigma=1.0)
    assert maps.shape == (32, 3, 4) and maps.dtype == np.float32
    assert maps[0, 1, 2] == 1.0  # row y = 1, column x = 2: the point itself
    assert maps[0, 1, 3] == pytest.approx(math.exp(-0.5))  # one pixel to the right
    assert maps[0, 0, 0] == pytest.approx(math.exp(-2.5))  # d^2 = 2^2 + 1^2
    assert maps[5, 0, 0] == pytest.approx(math.exp(-0.125))  # occluded points have a heatmap; d = 0.5
    assert maps[5, 0, 0] == maps[5, 0, 1]  # half way between two pixel centres
    assert not maps[np.setdiff1d(np.arange(32), [0, 5])].any()  # absent points: all zero
    wide = landmark_heatmaps(lm, (3, 4), sigma=2.0)
    assert wide[0, 1, 3] == pytest.approx(math.exp(-1 / 8))


def test_heatmaps_of_a_batch_of_tensors_match_numpy():
    rng = np.random.default_rng(0)
    lm = np.stack([_landmarks({k: (*rng.uniform(0, 20, 2), rng.integers(0, 3)) for k in range(32)}) for _ in range(2)])
    t = torch.from_numpy(lm)
    maps = landmark_heatmaps(t, (24, 20), sigma=3.0)
    assert isinstance(maps, torch.Tensor) and maps.shape == (2, 32, 24, 20) and maps.dtype == torch.float32
    np.testing.assert_allclose(maps.numpy(), np.stack([landmark_heatmaps(x, (24, 20), sigma=3.0) for x in lm]), atol=1e-7)
    assert (maps.flatten(2).amax(-1) > 0).numpy().tolist() == (lm[..., 2] != ABSENT).tolist()


def test_hard_masks_are_disks_of_ones():
    lm = _landmarks({3: (1.0, 1.0, VISIBLE), 4: (3.0, 2.0, OCCLUDED), 9: (0.0, 0.0, ABSENT)})
    masks = hard_landmark_masks(lm, (4, 5), radius=1.0)
    assert masks.shape == (32, 4, 5) and masks.dtype == np.float32
    np.testing.assert_array_equal(masks[3], [[0, 1, 0, 0, 0],
                                             [1, 1, 1, 0, 0],
                                             [0, 1, 0, 0, 0],
                                             [0, 0, 0, 0, 0]])  # fmt: skip
    np.testing.assert_array_equal(masks[4], [[0, 0, 0, 0, 0],
                                             [0, 0, 0, 1, 0],
                                             [0, 0, 1, 1, 1],
                                             [0, 0, 0, 1, 0]])  # fmt: skip
    assert not masks[9].any() and set(np.unique(masks)) == {0.0, 1.0}
    # radius 1.5 takes the diagonal neighbours too (d^2 = 2 <= 2.25)
    np.testing.assert_array_equal(hard_landmark_masks(lm, (4, 5), radius=1.5)[3][:3, :3], np.ones((3, 3)))
    # Eq. 9's M_l: one channel, the union of the 32 masks
    union = landmark_mask_union(lm, (4, 5), radius=1.0)
    assert union.shape == (1, 4, 5)
    np.testing.assert_array_equal(union[0], np.maximum(masks[3], masks[4]))


def test_hard_masks_of_a_batch_of_tensors():
    lm = torch.from_numpy(np.stack([_landmarks({0: (1.0, 1.0, VISIBLE)}), _landmarks({31: (4.0, 0.0, OCCLUDED)})]))
    union = landmark_mask_union(lm, (3, 5), radius=1.0)
    assert isinstance(union, torch.Tensor) and union.shape == (2, 1, 3, 5)
    assert union[0, 0].sum() == 5 and union[1, 0].sum() == 3  # a plus; a corner of a plus cut by the border
    np.testing.assert_array_equal(union.numpy()[:, 0], [landmark_mask_union(x, (3, 5), radius=1.0)[0] for x in lm.numpy()])
