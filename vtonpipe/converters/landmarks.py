"""SAL-VTON's 32 garment landmarks: the definition, and encoders for trainers.

SAL-VTON annotates 32 landmarks with one labelling rule for every style of *upper* garment, each
with an attribute visible / occluded / absent; its exact rule is in a supplement that is not
public, so vtonpipe fixes its own, after the paper's list (docs/CONVENTIONS.md draws it).
"left" / "right" are the **wearer's** sides (as for keypoints: on a garment or person seen from
the front, the wearer's left is the image's right). Coordinates are (x, y) pixels, x right,
y down, pixel centres at integers (docs/CONVENTIONS.md).

====  =============================  ===========================================================
id    name                           where
====  =============================  ===========================================================
0     collar_back                    centre back of the neckline (seen through the neck opening
                                     of an in-shop garment, behind the neck on a person)
1     neck_left                      front neckline, its leftmost point (where it meets the
                                     left shoulder line)
2     neck_left_inner                front neckline, half way from its centre to point 1
3     neck_bottom_left               front neckline, 15% of the way from its centre to point 1
4     neck_bottom_right              likewise on the right (3 and 4 flank the neckline's bottom)
5     neck_right_inner               half way from the centre to point 6
6     neck_right                     front neckline, its rightmost point
7     shoulder_left                  outer end of the left shoulder line (shoulder seam; on a
                                     sleeveless top the outer top corner of the armhole)
8     armpit_left                    bottom of the left sleeve seam (on a sleeveless top the
                                     outer end of the armhole's bottom, at the side seam)
9     upper_arm_exterior_left        left sleeve half way from the shoulder to the elbow joint,
                                     exterior (lateral) edge
10    upper_arm_interior_left        ... interior (medial, towards the body) edge
11    elbow_exterior_left            left sleeve at the elbow joint, exterior edge
12    elbow_interior_left
13    lower_arm_exterior_left        left sleeve half way from the elbow to the wrist joint
14    lower_arm_interior_left
15    sleeve_end_exterior_left       left sleeve opening (cuff), exterior corner
16    sleeve_end_interior_left       ... interior corner
17    shoulder_right                 17-26: the right side, in the order of 7-16
18    armpit_right
19    upper_arm_exterior_right
20    upper_arm_interior_right
21    elbow_exterior_right
22    elbow_interior_right
23    lower_arm_exterior_right
24    lower_arm_interior_right
25    sleeve_end_exterior_right
26    sleeve_end_interior_right
27    waist_left                     left side edge at the waist line: :data:`WAIST_FRACTION` of
                                     the way up from the hip joints to the shoulder joints
28    waist_right
29    hem_left                       bottom hem, left corner
30    hem_middle                     bottom hem, centre front
31    hem_right                      bottom hem, right corner
====  =============================  ===========================================================

The neckline's "centre" and "half width" are those of points 1 and 6 (their x midpoint and half
their x distance, measured across the body); 2-5 are the front-neckline points at those
fractions of the half width.

Attributes (:data:`ATTRIBUTE_NAMES`): **visible** (0) the point is seen; **occluded** (1) the
garment has the point but it is hidden (by an arm, hair, the body turning away, the neck for the
collar's back on a person seen from the front) or outside the image; **absent** (2) the garment
has no such part, with x = y = 0. Which parts a garment has:

- every upper garment (tops, coats, the top part of dresses) has 0-8, 17, 18 and 29-31; a
  dress's hem (29-31) is the bottom hem of its skirt;
- waist points 27, 28 when the garment reaches below the waist line (absent on cropped tops);
- a sleeve point (9-14, 19-24) when the sleeve reaches past its position along the arm by at
  least :data:`SLEEVE_MARGIN` of the arm length (shoulder to wrist joint): a tee has the upper
  arm's points, a long sleeve all of them; the sleeve end (15, 16, 25, 26) whenever there is a
  sleeve (absent on sleeveless tops, whose 7, 8 are on the armhole).

Garments without an upper part (trousers, shorts, skirts: Dress Code's ``lower_body``) have no
landmarks under this definition; the ``landmarks`` annotator fails their images with the reason
``no_upper_garment`` (likewise a person image without any upper-garment pixels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

#: the per-side points 7-16 (left) and 17-26 (right), in id order
SIDE_PARTS = (
    "shoulder",
    "armpit",
    "upper_arm_exterior",
    "upper_arm_interior",
    "elbow_exterior",
    "elbow_interior",
    "lower_arm_exterior",
    "lower_arm_interior",
    "sleeve_end_exterior",
    "sleeve_end_interior",
)
SIDE_START = {"left": 7, "right": 17}

LANDMARK_NAMES: tuple[str, ...] = (
    "collar_back",
    "neck_left",
    "neck_left_inner",
    "neck_bottom_left",
    "neck_bottom_right",
    "neck_right_inner",
    "neck_right",
    *(f"{part}_{side}" for side in SIDE_START for part in SIDE_PARTS),
    "waist_left",
    "waist_right",
    "hem_left",
    "hem_middle",
    "hem_right",
)
NUM_LANDMARKS = len(LANDMARK_NAMES)
assert NUM_LANDMARKS == 32

# attribute ids, as SAL-VTON's three classes
VISIBLE, OCCLUDED, ABSENT = 0, 1, 2
ATTRIBUTE_NAMES = ("visible", "occluded", "absent")

#: front-neckline points 1..6 as signed fractions of the neckline's half width from its centre,
#: towards the wearer's left
NECK_FRACTIONS: dict[int, float] = {1: 1.0, 2: 0.5, 3: 0.15, 4: -0.15, 5: -0.5, 6: -1.0}

#: the sleeve's sections in order along the arm; each has an (exterior, interior) pair of points
SLEEVE_SECTIONS = ("upper_arm", "elbow", "lower_arm", "sleeve_end")
#: a sleeve point is present when the sleeve reaches this fraction of the arm length past it
SLEEVE_MARGIN = 0.03
#: the waist line's height, as a fraction of the way from the hip joints up to the shoulder joints
#: (about where women's natural waist, the trunk's narrowest height, lies; a fixed proportion
#: keeps it defined on trunks that do not narrow)
WAIST_FRACTION = 0.45

#: garment categories without an upper part (the sample's bottoms, Dress Code's ``lower_body``):
#: their images have no landmarks
NO_LANDMARK_CATEGORIES = ("trousers", "shorts", "skirt", "lower_body")


def side_ids(side: str) -> dict[str, int]:
    """Landmark ids of one side (``"left"`` or ``"right"``, the wearer's) by part name
    (:data:`SIDE_PARTS`: ``shoulder``, ``armpit``, ``<section>_exterior`` / ``_interior``)."""
    if side not in SIDE_START:
        raise ValueError(f"side must be 'left' or 'right', not {side!r}")
    return {part: SIDE_START[side] + i for i, part in enumerate(SIDE_PARTS)}


#: the mirror image of each landmark: after flipping an image horizontally, landmark k is the
#: former landmark FLIP[k] (left and right swap; 0 and 30 are their own mirrors)
FLIP: tuple[int, ...] = tuple(
    LANDMARK_NAMES.index(n.replace("_left", "_TMP").replace("_right", "_left").replace("_TMP", "_right")) for n in LANDMARK_NAMES
)


def flip_landmarks(landmarks: np.ndarray, width: int) -> np.ndarray:
    """The landmarks ``(..., 32, 3)`` (x, y px, attribute) of the image flipped left-right
    (``image[:, ::-1]``, ``width`` px wide): ids swapped by :data:`FLIP`, ``x -> width - 1 - x``
    (pixel-centre frame); absent points stay at (0, 0)."""
    lm = np.asarray(landmarks, np.float32)
    if lm.shape[-2:] != (NUM_LANDMARKS, 3):
        raise ValueError(f"expected landmarks (..., 32, 3), got {lm.shape}")
    out = lm[..., list(FLIP), :].copy()
    present = out[..., 2] != ABSENT
    out[..., 0] = np.where(present, width - 1 - out[..., 0], 0.0)
    return out


# -- dense encodings for trainers ---------------------------------------------------------------
def _as_tensor(landmarks: Any) -> tuple["torch.Tensor", bool]:
    import torch

    is_numpy = not isinstance(landmarks, torch.Tensor)
    lm = torch.as_tensor(np.asarray(landmarks, np.float32)) if is_numpy else landmarks.float()
    if lm.shape[-2:] != (NUM_LANDMARKS, 3):
        raise ValueError(f"expected landmarks (..., 32, 3), got {tuple(lm.shape)}")
    return lm, is_numpy


def _squared_distances(lm: "torch.Tensor", size: tuple[int, int]) -> tuple["torch.Tensor", "torch.Tensor"]:
    """Per-axis squared distances from each pixel centre to each landmark: dy2 ``(..., 32, H, 1)``
    and dx2 ``(..., 32, 1, W)``."""
    import torch

    h, w = size
    xs = torch.arange(w, dtype=lm.dtype, device=lm.device)
    ys = torch.arange(h, dtype=lm.dtype, device=lm.device)
    dx2 = (xs - lm[..., 0:1]) ** 2  # (..., 32, W)
    dy2 = (ys - lm[..., 1:2]) ** 2  # (..., 32, H)
    return dy2[..., :, None], dx2[..., None, :]


def landmark_heatmaps(landmarks: Any, size: tuple[int, int], sigma: float = 4.0) -> Any:
    """32 Gaussian heatmaps ``(..., 32, H, W)`` float32 of landmarks ``(..., 32, 3)``.

    Channel k is ``exp(-d^2 / (2 sigma^2))``, ``d`` the distance in px from each pixel centre
    ``(x = j, y = i)`` to landmark k (peak 1 at the point), for visible and occluded points;
    absent points (attribute 2) give an all-zero channel. ``size`` = (H, W) of the frame the
    coordinates are in; ``sigma`` px. A numpy array in gives a numpy array out; a torch tensor
    (any leading batch dims, any device) gives a tensor on its device.
    """
    import torch

    lm, is_numpy = _as_tensor(landmarks)
    dy2, dx2 = _squared_distances(lm, size)
    maps = torch.exp(-(dy2 + dx2) / (2.0 * sigma**2)) * (lm[..., 2] != ABSENT)[..., None, None]
    return maps.numpy() if is_numpy else maps


def hard_landmark_masks(landmarks: Any, size: tuple[int, int], radius: float = 8.0) -> Any:
    """SAL-VTON's hard landmark masks (Eq. 9): ``(..., 32, H, W)`` float32, 1 on the pixels whose
    centre is within ``radius`` px of landmark k (a heatmap that takes only the values 0 and 1),
    0 elsewhere and on the whole channel of an absent point.

    Eq. 9's mask ``M_l`` is their union (:func:`landmark_mask_union`), centred on the landmarks of
    the ground-truth person. Numpy in, numpy out; a tensor in, a tensor out (leading batch dims
    kept).
    """
    import torch

    lm, is_numpy = _as_tensor(landmarks)
    dy2, dx2 = _squared_distances(lm, size)
    masks = ((dy2 + dx2) <= radius**2) & (lm[..., 2] != ABSENT)[..., None, None]
    masks = masks.to(torch.float32)
    return masks.numpy() if is_numpy else masks


def landmark_mask_union(landmarks: Any, size: tuple[int, int], radius: float = 8.0) -> Any:
    """Eq. 9's one-channel landmark mask ``M_l``: the union of the 32 hard landmark masks,
    ``(..., 1, H, W)`` float32 in {0, 1} (numpy or torch as the input)."""
    masks = hard_landmark_masks(landmarks, size, radius)
    return masks.max(axis=-3, keepdims=True) if isinstance(masks, np.ndarray) else masks.amax(dim=-3, keepdim=True)
