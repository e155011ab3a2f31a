"""Accuracy metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from vtonpipe.bench.metrics import (
    FlowAccuracy,
    IUVAccuracy,
    KeypointAccuracy,
    LandmarkAccuracy,
    PointError,
    SegmentationIoU,
    torso_size,
)


def _skeleton() -> np.ndarray:
    gt = np.zeros((18, 3), np.float32)
    gt[:, 2] = 2
    gt[:, 0] = np.arange(18) * 3.0
    gt[2, :2], gt[5, :2], gt[8, :2], gt[11, :2] = (0, 0), (30, 0), (0, 40), (30, 40)
    return gt


def test_torso_size():
    assert torso_size(_skeleton()) == pytest.approx(50.0)  # 30-40-50 triangle


def test_pck_counts_misses_and_ignores_points_outside_the_image():
    gt = _skeleton()
    gt[17, 2] = 0  # outside the image: not counted
    pred = gt.copy()
    pred[:, 2] = 0.9
    pred[0, 0] += 4.9  # within 0.1 * 50 = 5 px
    pred[1, 0] += 5.1  # just outside
    pred[3] = 0  # undetected
    acc = KeypointAccuracy()
    acc.update(pred, gt)
    r = acc.result()
    assert r["pck@0.1"] == pytest.approx(15 / 17)
    assert r["detection_rate"] == pytest.approx(16 / 17)
    assert r["mean_px_error"] == pytest.approx((4.9 + 5.1) / 16, rel=1e-5)
    assert acc.per_joint_pck()[3] == 0 and np.isnan(acc.per_joint_pck()[17])


def test_segmentation_iou():
    gt = np.array([[0, 0, 1, 1], [0, 2, 2, 1]])
    pred = np.array([[0, 1, 1, 1], [0, 2, 0, 1]])
    m = SegmentationIoU(4)
    m.update(pred, gt)
    iou = m.per_class_iou()
    assert iou[0] == pytest.approx(2 / 4) and iou[1] == pytest.approx(3 / 4) and iou[2] == pytest.approx(1 / 2)
    assert np.isnan(iou[3])
    assert m.result()["miou"] == pytest.approx((0.5 + 0.75 + 0.5) / 3)
    assert m.result()["pixel_accuracy"] == pytest.approx(6 / 8)


def test_iuv_accuracy():
    gt = np.zeros((2, 2, 3), np.uint8)
    gt[0, 0] = (1, 100, 100)
    gt[0, 1] = (2, 0, 255)
    pred = gt.copy()
    pred[0, 0, 1] = 151  # |dU| = 51 / 255 = 0.2
    pred[0, 1, 0] = 3  # wrong part
    pred[1, 1, 0] = 5  # background called body
    a = IUVAccuracy()
    a.update(pred, gt)
    r = a.result()
    assert r["part_accuracy"] == pytest.approx(0.5)
    assert r["uv_error"] == pytest.approx(0.1)  # mean of |dU| 0.2 and |dV| 0
    assert r["false_body_rate"] == pytest.approx(0.5)


def test_flow_accuracy():
    gt_flow = np.zeros((2, 2, 2), np.float32)
    flow = gt_flow.copy()
    flow[0, 0] = (3, 4)  # 5 px off on a visible pixel
    flow[1, 1] = (100, 0)  # hidden pixel: not counted
    gt_vis = np.array([[0, 0], [2, 1]], np.uint8)
    vis = np.array([[0, 1], [2, 1]], np.uint8)
    f = FlowAccuracy()
    f.update(flow, vis, gt_flow, gt_vis)
    r = f.result()
    assert r["epe_visible"] == pytest.approx(2.5)
    assert r["visibility_iou_visible"] == pytest.approx(0.5) and r["visibility_iou_hidden"] == pytest.approx(0.5)
    assert r["visibility_miou"] == pytest.approx((0.5 + 0.5 + 1) / 3)


def test_landmarks_and_points():
    gt = np.zeros((32, 3), np.float32)
    gt[:, 2] = 2
    gt[0] = (10, 10, 0)
    gt[1] = (20, 20, 1)
    pred = gt.copy()
    pred[0, :2] += (6, 8)
    pred[1, 2] = 0
    lm = LandmarkAccuracy()
    lm.update(pred, gt)
    assert lm.result() == {"mean_px_error": pytest.approx(10.0), "attribute_accuracy": pytest.approx(31 / 32)}
    pe = PointError()
    joints = np.array([[0, 0, 2], [10, 0, 1], [50, 50, 0]], np.float32)  # the last is outside the image
    pe.update(np.array([[3, 4], [10, 2], [0, 0]], np.float32), joints)
    assert pe.result()["mean_px_error"] == pytest.approx(3.5)
