"""Constants of the geometric parser: the LIP ids it writes and the COCO-18 ids it reads (from
their one home, :mod:`vtonpipe.converters`), its body parts and materials, and its tuning
constants (torso coordinates: 0 at the neck, 1 at the mid-hip; lengths in torso lengths)."""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from ....converters.keypoints import COCO18
from ....converters.labels import LIP
from ...render.iuv import PART_NAMES

HAIR, UPPER, DRESS, PANTS, JUMPSUITS, SKIRT, FACE = LIP.HAIR, LIP.UPPER_CLOTHES, LIP.DRESS, LIP.PANTS, LIP.JUMPSUITS, LIP.SKIRT, LIP.FACE
L_ARM, R_ARM, L_LEG, R_LEG, L_SHOE, R_SHOE = LIP.LEFT_ARM, LIP.RIGHT_ARM, LIP.LEFT_LEG, LIP.RIGHT_LEG, LIP.LEFT_SHOE, LIP.RIGHT_SHOE
#: every LIP id this parser writes
LABELS = (0, HAIR, UPPER, DRESS, PANTS, JUMPSUITS, SKIRT, FACE, L_ARM, R_ARM, L_LEG, R_LEG, L_SHOE, R_SHOE)

NOSE, NECK, R_SHOULDER, R_ELBOW, R_WRIST, L_SHOULDER, L_ELBOW, L_WRIST = (COCO18(i) for i in range(8))
R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE, R_EYE, L_EYE, R_EAR, L_EAR = (COCO18(i) for i in range(8, 18))


class Part(IntEnum):
    """Body parts of the part map (0: outside the person)."""

    HEAD = 1
    TORSO = 2
    R_ARM = 3
    L_ARM = 4
    R_LEG = 5
    L_LEG = 6
    R_FOOT = 7
    L_FOOT = 8


#: the zone of head pixels off the face oval and above the eyes (hair, unless clearly skin)
CROWN = 9


class Material(IntEnum):
    """What a pixel shows; a garment is split into top and bottom afterwards."""

    SKIN = 0
    HAIR = 1
    GARMENT = 2
    SHOE = 3


INF = np.inf
#: prior cost (nats) of each material (rows) in each zone (columns: none, head, torso, r/l arm,
#: r/l leg, r/l foot, crown)
PRIOR = np.array(
    [
        [INF, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 3.0, 2.0],  # skin
        [INF, 1.0, 3.0, 3.0, 3.0, INF, INF, INF, INF, 0.0],  # hair
        [INF, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 6.0, 6.0, 6.0],  # garment
        [INF, INF, INF, INF, INF, 4.0, 4.0, 0.0, 0.0, INF],  # shoe
    ]
)
#: nats: the most a colour model's negative log-density counts before the costs are smoothed
#: (version 6: 40 -> 20; one pixel far from every model no longer outweighs a window of fitting
#: ones: mIoU +0.007 to +0.05 on each of eight bench samples, hair IoU up to +0.13)
NLL_CAP = 20.0
HAIR_LOWEST = 0.35  # torso coordinate (0 neck, 1 mid-hip) below which there is no hair
CHEST = (0.15, 0.55)  # torso coordinates of the chest band (the top model's samples)
WAIST_RANGE = (0.4, 1.6)  # torso coordinates where the top may end and the bottom begin
WAIST, WAIST_WEIGHT = 0.95, 1.0  # usual end of a top (torso coordinate), weight of that prior
ANKLE = 0.97  # fraction of the hip -> ankle path from which foot pixels are in the shoe zone
CROTCH = 0.22  # fraction of the hip -> ankle path below which the legs part
OFF_LEG = 1.2  # thigh radii from the legs' axes beyond which a garment pixel stands off the legs
SKIRT_OFF_LEGS = (0.04, 0.1)  # share of a skirt's pixels below the crotch off the legs: least, least without a midline test
LEG_GAP = 0.4  # torso lengths between the legs' axes from which a gap shows between trouser legs
THIGHS = (CROTCH, 0.45)  # fractions of the hip -> ankle path of the thigh band (bottom model)
SAME_COLOURS = 1.0  # nats per pixel within which two garment models explain each other's samples

#: default radii as fractions of the torso length (neck to mid-hip)
RADIUS = {"upper_arm": 0.11, "lower_arm": 0.09, "hand": 0.09, "thigh": 0.17, "calf": 0.12, "foot": 0.11, "head": 0.23}
#: default limb lengths as fractions of the torso length (to complete undetected joints)
LENGTH = {"upper_arm": 0.6, "lower_arm": 0.5, "thigh": 0.85, "calf": 0.85, "hand": 0.3, "foot": 0.25}

#: standard deviation floor of every colour model (:func:`colour_features`): L varies with shading
FLOOR_STD = np.array([6.0, 2.0, 2.0])
#: generic skin prior (mean, std of :func:`colour_features`) when no face pixel is available
SKIN_PRIOR = (np.array([60.0, 10.0, 18.0]), np.array([22.0, 5.0, 9.0]))
CHI2_3_99 = 11.34  # 99% quantile of chi-square with 3 degrees of freedom
CLEAR_SKIN = 2.0  # squared Mahalanobis distance within which a crown pixel is clearly skin
MIN_SAMPLES = 24  # fewest pixels a colour model is fitted on
#: CIE Lab chroma (sqrt(a^2 + b^2)) that the 90th percentile of a person's pixels stays below when
#: the image has no colour (:func:`shows_colour`; colour photos of the sample: 15 or more)
NO_COLOUR_CHROMA = 5.0
NECKLINE, BARE_TORSO = 0.15, 1.0  # torso coordinate below which skin on the torso costs BARE_TORSO nats more
HEM_WEIGHT = 1.0  # nats per pixel per squared difference between the two legs' hems (:func:`leg_hems`)
HEM_EVIDENCE = 6.0  # nats per pixel by which a leg pixel's cost must favour a material for it to keep that material across its hem




class MissingKeypointsError(ValueError):
    """The keypoints do not locate the torso (no neck and a shoulder, nor both shoulders)."""


def _part_of(name: str) -> Part:
    if name.startswith("torso"):
        return Part.TORSO
    if name.endswith("head"):
        return Part.HEAD
    side = "L" if name.startswith("left") else "R"
    limb = "FOOT" if "foot" in name else "LEG" if "leg" in name else "ARM"  # hands belong to the arms
    return Part[f"{side}_{limb}"]


#: DensePose part id (0..24) -> Part
DENSEPOSE_PART = np.array([0] + [_part_of(n) for n in PART_NAMES], np.uint8)

#: LIP label of skin on each part
SKIN_LABEL = np.array([0, FACE, FACE, R_ARM, L_ARM, R_LEG, L_LEG, R_LEG, L_LEG], np.uint8)
#: LIP label of a shoe on each part (shoes are only allowed on legs and feet)
SHOE_LABEL = np.array([0, 0, 0, 0, 0, R_SHOE, L_SHOE, R_SHOE, L_SHOE], np.uint8)
