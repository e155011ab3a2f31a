"""DensePose drawings: detectron2's dp_segm colours, the IUV picture, the ``show`` drawer."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vtonpipe.schemas.densepose import DenseposeRecord
from vtonpipe.vis import DRAWERS
from vtonpipe.vis.densepose import dp_segm, draw_densepose, iuv_image, part_levels


def _iuv() -> np.ndarray:
    iuv = np.zeros((6, 8, 3), np.uint8)
    iuv[1, 2] = (1, 10, 20)
    iuv[2, 3] = (12, 30, 40)
    iuv[3, 4] = (24, 250, 5)
    iuv[4, 5] = (0, 0, 0)
    return iuv


def test_part_levels_are_detectron2s_scaling():
    # MatrixVisualizer: uint8(clip(float32(I) * 255 / 24)), i.e. floor(255 I / 24) for I = 0..24
    i = np.arange(25, dtype=np.uint8)
    assert part_levels(i).tolist() == [(k * 255) // 24 for k in range(25)]
    assert part_levels(np.uint8([1, 12, 24])).tolist() == [10, 127, 255]


def test_dp_segm_colours_exactly():
    out = dp_segm(_iuv())
    assert out.dtype == np.uint8 and out.shape == (6, 8, 3)
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[None], cv2.COLORMAP_PARULA)[0, :, ::-1]  # RGB
    assert out[1, 2].tolist() == lut[10].tolist() == [37, 60, 163]
    assert out[2, 3].tolist() == lut[127].tolist() == [55, 185, 159]
    assert out[3, 4].tolist() == lut[255].tolist() == [249, 251, 14]
    body = _iuv()[..., 0] > 0
    assert not out[~body].any()  # black background, as VITON-HD's image-densepose
    jet = dp_segm(_iuv(), cv2.COLORMAP_JET)
    assert jet[3, 4].tolist() == [128, 0, 0] and jet[1, 2].tolist() == [0, 0, 168]


def test_iuv_image():
    iuv = _iuv()
    iuv[0, 0] = (0, 77, 77)  # stray U, V on background are not drawn
    out = iuv_image(iuv)
    assert out[1, 2].tolist() == [10, 10, 20] and out[3, 4].tolist() == [255, 250, 5]
    assert not out[0, 0].any()
    with pytest.raises(ValueError, match="IUV uint8"):
        iuv_image(iuv[..., 0])


def test_drawer_is_registered_and_overlays_the_parts():
    assert DRAWERS.get("densepose") is draw_densepose
    image = np.full((6, 8, 3), 100, np.uint8)
    iuv = _iuv()
    # bbox in the pixel-centre frame: pixel centres 1..6 in x, 1..4 in y are inside
    pic = draw_densepose(image, DenseposeRecord(iuv=iuv, bbox=np.float32([0.5, 0.5, 6.5, 4.5]), score=1.0, num_people=1), {})
    assert pic.shape == (6, 16, 3) and pic.dtype == np.uint8
    assert pic[2, 3].tolist() == [int(0.3 * 100 + 0.7 * c) for c in [55, 185, 159]]
    assert pic[1, 1].tolist() == [18, 127, 15] and pic[4, 6].tolist() == [18, 127, 15]  # box corners
    assert pic[0, 0].tolist() == [100, 100, 100] and pic[5, 7].tolist() == [100, 100, 100]
    np.testing.assert_array_equal(pic[:, 8:], iuv_image(iuv))
