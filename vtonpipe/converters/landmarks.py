"""The 32 garment landmarks (SAL-VTON's count, one unified definition for every garment type).

SAL-VTON annotates 32 landmarks with the same semantics across garment styles, each with an
attribute visible / occluded / absent; its exact definition is in a supplement that is not public,
so vtonpipe fixes its own, listed here. "left"/"right" are the wearer's sides (as for keypoints).
Tops use 0-19, bottoms 20-31; dresses use the top points and the skirt hem corners (28, 30);
skirts use the waistband and the hem corners (28, 30). Points a garment does not have are absent.
Coordinates are (x, y) pixels in the frame of docs/CONVENTIONS.md.
"""

from __future__ import annotations

LANDMARK_NAMES: tuple[str, ...] = (
    "neckline_front",  # 0  centre front of the neckline
    "neckline_left",  # 1  neckline where it meets the left shoulder seam
    "neckline_right",  # 2
    "shoulder_left",  # 3  outer end of the left shoulder seam
    "shoulder_right",  # 4
    "armpit_left",  # 5
    "armpit_right",  # 6
    "elbow_outer_left",  # 7  left sleeve at the elbow, outer edge (long sleeves)
    "elbow_inner_left",  # 8
    "cuff_outer_left",  # 9  left sleeve opening, outer edge
    "cuff_inner_left",  # 10
    "elbow_outer_right",  # 11
    "elbow_inner_right",  # 12
    "cuff_outer_right",  # 13
    "cuff_inner_right",  # 14
    "waist_left",  # 15 side seam at the natural waist
    "waist_right",  # 16
    "hem_left",  # 17 bottom hem of a top, left corner
    "hem_centre",  # 18
    "hem_right",  # 19
    "waistband_left",  # 20 trousers/skirt waistband
    "waistband_centre",  # 21
    "waistband_right",  # 22
    "crotch",  # 23
    "knee_outer_left",  # 24
    "knee_inner_left",  # 25
    "knee_outer_right",  # 26
    "knee_inner_right",  # 27
    "leg_hem_outer_left",  # 28 left trouser-leg opening (outer), or the skirt/dress hem's left corner
    "leg_hem_inner_left",  # 29
    "leg_hem_outer_right",  # 30 ... or the skirt/dress hem's right corner
    "leg_hem_inner_right",  # 31
)
NUM_LANDMARKS = len(LANDMARK_NAMES)
assert NUM_LANDMARKS == 32

# attribute ids, as SAL-VTON's three classes
VISIBLE, OCCLUDED, ABSENT = 0, 1, 2
ATTRIBUTE_NAMES = ("visible", "occluded", "absent")

_SLEEVE_SHORT = (5, 6, 9, 10, 13, 14)
_SLEEVE_LONG = (*_SLEEVE_SHORT, 7, 8, 11, 12)
_TOP_BODY = (0, 1, 2, 3, 4, 15, 16, 17, 18, 19)

#: landmark ids each garment type has (the rest are absent)
PRESENT: dict[str, tuple[int, ...]] = {
    "tee": tuple(sorted((*_TOP_BODY, *_SLEEVE_SHORT))),
    "long_sleeve": tuple(sorted((*_TOP_BODY, *_SLEEVE_LONG))),
    "sleeveless": tuple(sorted((*_TOP_BODY, 5, 6))),
    "trousers": tuple(range(20, 32)),
    "shorts": (20, 21, 22, 23, 28, 29, 30, 31),
    "skirt": (20, 21, 22, 28, 30),
    "dress": tuple(sorted((0, 1, 2, 3, 4, 5, 6, 15, 16, 28, 30))),
}

#: the mirror image of each landmark (for horizontal flips)
FLIP: tuple[int, ...] = tuple(
    LANDMARK_NAMES.index(n.replace("_left", "_TMP").replace("_right", "_left").replace("_TMP", "_right")) for n in LANDMARK_NAMES
)
