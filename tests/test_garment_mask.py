"""Classical garment segmentation on product shots drawn here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from builders import garment_image

from vtonpipe.models.classical.garment_mask import segment_garment


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _truth(img: np.ndarray, bg: tuple[int, int, int]) -> np.ndarray:
    return (np.abs(img.astype(int) - bg).sum(axis=2) > 0).astype(np.uint8)


def test_coloured_garment_on_white():
    img = garment_image(3)
    m = segment_garment(img).mask
    assert m.dtype == np.uint8 and set(np.unique(m)) <= {0, 1}
    assert _iou(m.astype(bool), _truth(img, (250, 250, 250)).astype(bool)) > 0.97


def test_light_garment_with_texture_on_tinted_gradient_background():
    h, w = 256, 192
    rng = np.random.default_rng(0)
    yy = np.linspace(0, 1, h)[:, None, None]
    bg = (np.array([236, 238, 242]) - 8 * yy).astype(np.float32) * np.ones((h, w, 3))
    img = (bg + rng.normal(0, 1.5, bg.shape)).clip(0, 255).astype(np.uint8)
    truth = np.zeros((h, w), np.uint8)
    cv2.ellipse(truth, (96, 128), (60, 95), 0, 0, 360, 1, -1)
    stripes = np.broadcast_to(((np.arange(h)[:, None] // 8) % 2).astype(bool), (h, w))
    garment = np.where(stripes[..., None], [205, 200, 190], [170, 60, 60]).astype(np.uint8)
    img[truth == 1] = garment[truth == 1]
    m = segment_garment(img).mask
    assert _iou(m.astype(bool), truth.astype(bool)) > 0.95


def test_white_garment_on_a_white_background_a_few_delta_e_apart():
    """A white shirt (246) on a white backdrop (253) with JPEG noise: ~3 delta E apart, below the
    noise of single pixels but well above it once smoothed."""
    h, w = 256, 192
    rng = np.random.default_rng(1)
    img = np.full((h, w, 3), 253.0) + rng.normal(0, 1.5, (h, w, 3))
    truth = np.zeros((h, w), np.uint8)
    cv2.rectangle(truth, (50, 40), (142, 220), 1, -1)
    cv2.rectangle(truth, (20, 40), (172, 90), 1, -1)  # the sleeves
    img[truth == 1] -= 7.0
    ok, jpeg = cv2.imencode(".jpg", img.clip(0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
    img = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
    m = segment_garment(img).mask
    assert _iou(m.astype(bool), truth.astype(bool)) > 0.95


def test_holes_inside_the_garment_are_filled_but_the_background_is_not():
    img = np.full((128, 96, 3), 250, np.uint8)
    cv2.rectangle(img, (20, 20), (75, 110), (40, 90, 160), -1)
    cv2.rectangle(img, (40, 50), (55, 60), (250, 250, 250), -1)  # a white logo inside
    m = segment_garment(img).mask
    assert m[55, 47] == 1 and m[5, 5] == 0 and m[64, 90] == 0


def test_bad_input():
    with pytest.raises(ValueError, match="RGB uint8"):
        segment_garment(np.zeros((10, 10), np.uint8))
    blank = segment_garment(np.full((40, 30, 3), 250, np.uint8)).mask
    assert blank.sum() == 0
