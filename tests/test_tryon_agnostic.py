"""Garment-agnostic inputs: batched front ends of vtonpipe.converters.labels."""

import numpy as np
import pytest
import torch

from vtonpipe.converters import labels
from vtonpipe.models.tryon.agnostic import (
    FACE,
    HAIR,
    UPPER_GARMENT,
    agnostic_parsing,
    agnostic_person,
    drop_labels,
    label_mask,
    lip_ids,
    one_hot,
    remove_garment,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def person(h: int = 32, w: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A blocky LIP parsing (hair, face, upper-clothes, arms, pants) and COCO-18 keypoints."""
    p = np.zeros((h, w), np.uint8)
    p[1:4, 9:15] = 2  # hair
    p[4:8, 9:15] = 13  # face
    p[8:20, 7:17] = 5  # upper-clothes
    p[8:18, 4:7] = 15  # right arm (image left)
    p[8:18, 17:20] = 14  # left arm
    p[20:31, 8:16] = 9  # pants
    kp = np.zeros((18, 3), np.float32)
    for j, (x, y) in {1: (12, 8), 2: (8, 9), 5: (16, 9), 3: (5, 13), 6: (18, 13), 4: (5, 17), 7: (18, 17), 8: (9, 20), 11: (15, 20)}.items():
        kp[j] = (x, y, 1.0)
    return p, kp


def test_lip_ids_come_from_the_label_table():
    assert lip_ids(UPPER_GARMENT) == (5, 6, 7)
    assert lip_ids(FACE + HAIR) == (13, 2)
    with pytest.raises(ValueError, match="unknown LIP classes"):
        lip_ids(("shirt",))


def test_masks_drop_and_one_hot():
    parsing = torch.tensor([[[0, 2, 13], [5, 7, 9]]])
    torch.testing.assert_close(label_mask(parsing, UPPER_GARMENT), torch.tensor([[[[0.0, 0, 0], [1, 1, 0]]]]))
    torch.testing.assert_close(drop_labels(parsing, HAIR + FACE + UPPER_GARMENT), torch.tensor([[[0, 0, 0], [0, 0, 9]]]))
    oh = one_hot(parsing)
    assert oh.shape == (1, 20, 2, 3) and torch.all(oh.sum(1) == 1) and oh[0, 13, 0, 2] == 1
    with pytest.raises(ValueError, match="parsing must be integer"):
        label_mask(parsing.float(), FACE)


def test_remove_garment_paints_the_region():
    image = torch.rand(1, 3, 2, 2)
    region = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    out = remove_garment(image, region)
    assert torch.all(out[:, :, 0, 0] == 0.5) and torch.all(out[:, :, 1, 1] == 0.5)
    torch.testing.assert_close(out[:, :, 0, 1], image[:, :, 0, 1])


def test_agnostic_person_and_parsing_match_the_labels_recipes():
    p, kp = person()
    rgb = np.random.default_rng(0).integers(0, 256, (*p.shape, 3), dtype=np.uint8)
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    parsing = torch.from_numpy(p.astype(np.int64))[None]
    keypoints = torch.from_numpy(kp)[None]
    out = agnostic_person(image, parsing, keypoints)
    expected = labels.image_agnostic(rgb, p, kp)
    np.testing.assert_array_equal((out[0].permute(1, 2, 0) * 255).round().numpy().astype(np.uint8), expected)
    assert (out[0, :, 12, 12] == 128 / 255).all()  # the torso is gray
    np.testing.assert_array_equal(agnostic_parsing(parsing, keypoints)[0].numpy(), labels.parse_agnostic(p, kp))


def test_agnostic_person_names_the_sample_without_keypoints():
    p, kp = person()
    image = torch.rand(2, 3, *p.shape)
    parsing = torch.from_numpy(p.astype(np.int64))[None].expand(2, -1, -1)
    keypoints = torch.from_numpy(kp)[None].repeat(2, 1, 1)
    keypoints[1, 8] = 0  # right hip undetected
    with pytest.raises(ValueError, match="sample 1: .*hips"):
        agnostic_person(image, parsing, keypoints)
