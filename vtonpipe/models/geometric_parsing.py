"""Geometric human parsing: LIP labels from a person mask, body parts and per-person colour models.

No learnt parser. Every pixel of the person mask gets a **body part** (head, torso, left/right
arm, leg, foot) and a **material** (skin, hair, garment, shoe); garments are then split into a
top and a bottom and classed, and the part and material decide the LIP label
(docs/CONVENTIONS.md). Pure functions on arrays, in the pixel frame of docs/CONVENTIONS.md;
lengths scale with the torso length (neck to mid-hip), so any resolution works.

Body parts (:func:`keypoint_parts`, :func:`densepose_parts`)
    ``keypoints``: each pixel goes to the tapered capsule (segment + radius at each end) it is
    nearest to in units of that capsule's radius: torso (neck to mid-hip, as wide as the
    shoulders at the top and the pelvis at the bottom), head (neck to head centre), upper and
    lower arms and legs, hands and feet (continuations past the wrists and ankles). Limb radii
    are the mask's width across each segment, clamped to 0.7..1.5 of anthropometric defaults.
    Undetected keypoints are completed first (:func:`complete_skeleton`): the neck from the
    shoulders, a shoulder or hip from the other, elbows, knees, wrists and ankles continued along
    the limb or straight down the torso axis (so legs without keypoints are the mask below the
    hips, split between the two hip columns). A skin pixel of the torso inside an arm's capsule
    is that arm's (a hand in front of the body).
    ``densepose``: the DensePose part map ``I`` (parts named in :data:`vtonpipe.models.iuv.PART_NAMES`)
    on the body; mask pixels off the body (hair, loose clothes) take the nearest body part.

Colours (:func:`colour_features`: CIE Lab with a, b divided by L + 16, which keeps a surface's
chromaticity under shading; :class:`ColourModel`: Gaussian mixtures with a covariance floor)
    - skin: the heaviest plausible component of a mixture fitted to the face oval, or, without
      one, to the face centre located from the keypoints, the hands or the head (:func:`skin_model`);
    - top: the chest's pixels that match the paired in-shop garment (its ``garment_mask``
      pixels) better than skin (category ``dresses``: the torso's and thighs'); without an
      in-shop garment, the chest's non-skin pixels;
    - bottom: the thighs' non-skin pixels (with an in-shop garment of category ``lower_body``,
      the thighs' and lower torso's pixels that match it; the top then comes from the chest's
      other colours); without a category the in-shop garment is taken for a top (MPV, VITON);
    - hair: the crown's pixels that are not clearly skin (the crown: head pixels off the face
      oval above the eyes, or without an oval above the forehead);
    - shoes: the feet's (below the ankles) pixels that are neither skin nor bottom.

    An image without colour (grayscale, 16-bit grayscale, a grayscale image saved in colour:
    :func:`shows_colour`) is parsed from lightness alone (:class:`Evidence`, :data:`LUMINANCE`):
    a and b are set to 0, a zone's pixels sample a garment, hair or shoe from one standard
    deviation off the skin model, and the in-shop garment's lightness is matched as it is. Local
    texture (the lightness' standard deviation in a window) as a second feature was measured and
    lowered the sample's grayscale mIoU, so it is not used; the leg hems and the bare-torso cost
    below carry what per-pixel lightness cannot.

Labels
    Each pixel takes the material of least cost: its colour's negative log-density, averaged
    over a window ~1.5% of the image height, plus :data:`PRIOR` (hair only on the head and
    upper torso, shoes only on the legs and feet and cheapest below the ankles, the bottom never
    on the head or on an arm; skin on the torso below the neckline, torso coordinate NECKLINE,
    costs BARE_TORSO more). On each leg the garment then ends at one hem (:func:`leg_hems`: the
    garment covers the leg from the hip down, the hems of both legs alike, clear evidence
    otherwise kept). Garment pixels of the torso and legs split at the torso
    coordinate (:func:`waist_cut`) that best separates the top's colours above from the bottom's
    below (with a weak prior for the hips, which decides between garments of one colour); arms
    and head keep the top. Then:

    - skin: face (13) on the head and the torso (LIP has no torso-skin class; like the sample's
      ground truth, the neck and any bare torso count as face), left/right arm (14/15), left/right
      leg (16/17) on legs and feet; hair 2; shoe 18/19 by the foot's side; the face oval is face
      except hair-coloured pixels in its top 30% (a fringe);
    - bottom: a skirt (12) if part of it below the crotch stands off the legs and it covers the
      midline between the legs where they are apart (where they never are, e.g. seen from the
      side, if more of it stands off the legs), pants (9) otherwise (trousers, shorts);
    - dress (6), every garment pixel: when the category is ``dresses``, or, with neither a
      category nor an in-shop garment, when top and bottom have the same colours and the bottom
      is a skirt; otherwise the top is upper-clothes (5).

    Finally a majority filter (odd window ~1% of the image height) and the removal of connected
    pieces smaller than 0.2% of the person (they take their nearest neighbour's label); the
    background (0) is exactly the pixels outside the person mask. Labels written: 0, 2, 5, 6, 9,
    12, 13, 14..19.

Accuracy on the embedded sample: see :mod:`vtonpipe.annotators.parsing_geometric`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property

import cv2
import numpy as np
from scipy import ndimage

from .iuv import PART_NAMES

# LIP ids (docs/CONVENTIONS.md)
HAIR, UPPER, DRESS, PANTS, SKIRT, FACE = 2, 5, 6, 9, 12, 13
L_ARM, R_ARM, L_LEG, R_LEG, L_SHOE, R_SHOE = 14, 15, 16, 17, 18, 19
#: every LIP id this parser writes
LABELS = (0, HAIR, UPPER, DRESS, PANTS, SKIRT, FACE, L_ARM, R_ARM, L_LEG, R_LEG, L_SHOE, R_SHOE)

# OpenPose COCO-18 indices
NOSE, NECK, R_SHOULDER, R_ELBOW, R_WRIST, L_SHOULDER, L_ELBOW, L_WRIST = range(8)
R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE, R_EYE, L_EYE, R_EAR, L_EAR = range(8, 18)


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


@dataclass(frozen=True)
class Evidence:
    """What a pixel's features tell apart, and the sampling thresholds that follow from it.

    ``colour``: CIE Lab, where skin, garments and hair differ in chromaticity whatever the
    shading. ``luminance`` (an image without colour: :func:`shows_colour`): lightness alone (a and
    b set to 0), where one surface's shading spans about as much lightness as the difference
    between skin and most garments, so a zone's pixels sample a garment, hair or shoe model from
    one standard deviation off the skin model, no mixture component is dropped for being near the
    skin's lightness, and the in-shop garment's lightness is matched as it is.
    """

    colour: bool
    not_skin: float  # squared Mahalanobis distance from skin beyond which a chest or thigh pixel samples a garment
    clear_skin: float  # ... within which a crown or foot pixel is skin (left out of the hair and shoe samples)
    drop_skin_components: bool  # garment mixture components of the skin's colour are dropped (:meth:`ColourModel.without`)
    shop_lightness_tolerance: float  # :meth:`ColourModel.lightness_tolerant` factor of the in-shop garment's model

    def features(self, lab: np.ndarray) -> np.ndarray:
        """(N, 3) :func:`colour_features` as this evidence sees them: unchanged, or with a and b
        set to 0 (without colour they are noise)."""
        return lab if self.colour else lab * np.array([1.0, 0.0, 0.0])

    @property
    def skin_prior(self) -> ColourModel:
        """The generic skin model :data:`SKIN_PRIOR`, its chromaticity 0 without colour."""
        mean, std = SKIN_PRIOR
        return ColourModel.gaussian(self.features(mean[None])[0], std)


COLOUR = Evidence(colour=True, not_skin=CHI2_3_99, clear_skin=CLEAR_SKIN, drop_skin_components=True, shop_lightness_tolerance=3.0)
LUMINANCE = Evidence(colour=False, not_skin=1.0, clear_skin=1.0, drop_skin_components=False, shop_lightness_tolerance=1.0)


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


def _logsumexp(a: np.ndarray) -> np.ndarray:
    """log(sum(exp(a), axis=1)) of (N, K) finite values."""
    top = a.max(1)
    return top + np.log(np.exp(a - top[:, None]).sum(1))


def colour_features(image: np.ndarray) -> np.ndarray:
    """float32 (H, W, 3) shading-normalised CIE Lab of an RGB uint8 image (sRGB, D65):
    ``(L, 50 a / (L + 16), 50 b / (L + 16))``. Scaling a surface's linear-light colour by k scales
    ``L + 16``, ``a`` and ``b`` alike (by k^(1/3), above Lab's linear toe), so the last two
    channels keep a fabric's chromaticity across shading while L keeps its lightness."""
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab[..., 1:] *= 50.0 / (lab[..., :1] + 16.0)
    return lab


def shows_colour(image: np.ndarray, mask: np.ndarray) -> bool:
    """Whether the person's pixels (``mask`` (H, W) bool of the RGB uint8 ``image``) show colour:
    the 90th percentile of their CIE Lab chroma reaches NO_COLOUR_CHROMA. False for grayscale
    images (equal channels: 8-bit or 16-bit grayscale decoded to RGB) and near-equal channels
    (a grayscale image re-encoded in colour, a faint tint)."""
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[np.asarray(mask).astype(bool)]
    return bool(len(lab)) and float(np.percentile(np.hypot(lab[:, 1], lab[:, 2]), 90)) >= NO_COLOUR_CHROMA


@dataclass(frozen=True)
class ColourModel:
    """A Gaussian mixture over Lab colours: ``means`` (K, 3), ``covs`` (K, 3, 3), ``weights`` (K,)."""

    means: np.ndarray
    covs: np.ndarray
    weights: np.ndarray

    @classmethod
    def fit(cls, samples: np.ndarray, components: int = 2, iterations: int = 8, max_samples: int = 2000) -> ColourModel | None:
        """EM fit on (N, 3) Lab samples, deterministic (components start as quantile slices along
        the principal axis); ``FLOOR_STD`` is added to every covariance. None below MIN_SAMPLES."""
        x = np.asarray(samples, np.float64)
        if len(x) < MIN_SAMPLES:
            return None
        if len(x) > max_samples:
            x = x[np.linspace(0, len(x) - 1, max_samples).astype(np.int64)]
        k = max(1, min(components, len(x) // MIN_SAMPLES))
        centred = x - x.mean(0)
        axis = np.linalg.svd(centred, full_matrices=False)[2][0]
        resp = np.zeros((len(x), k))
        resp[np.argsort(centred @ axis), np.arange(len(x)) * k // len(x)] = 1.0
        floor = np.diag(FLOOR_STD**2)
        for i in range(iterations):
            nk = resp.sum(0) + 1e-9
            means = resp.T @ x / nk[:, None]
            covs = np.stack([((x - m) * r[:, None]).T @ (x - m) / n for m, r, n in zip(means, resp.T, nk)]) + floor
            model = cls(means, covs, nk / nk.sum())
            if i + 1 < iterations:
                resp = model._log_joint(x)
                resp = np.exp(resp - _logsumexp(resp)[:, None])
        return model

    @classmethod
    def gaussian(cls, mean: np.ndarray, std: np.ndarray) -> ColourModel:
        """A single axis-aligned Gaussian."""
        return cls(np.asarray(mean, np.float64)[None], np.diag(np.asarray(std, np.float64) ** 2)[None], np.ones(1))

    @cached_property
    def _whiten(self) -> np.ndarray:
        """(K, 3, 3) per-component W with ``W W^T = cov^-1``: ``|d W|^2`` is the squared Mahalanobis distance."""
        return np.linalg.cholesky(np.linalg.inv(self.covs))

    @cached_property
    def _log_norm(self) -> np.ndarray:
        """(K,) log weight - log normaliser of each component."""
        return np.log(self.weights) - 0.5 * (np.linalg.slogdet(self.covs)[1] + 3 * np.log(2 * np.pi))

    def _mahalanobis2(self, x: np.ndarray) -> np.ndarray:
        """(N, K) squared Mahalanobis distance of (N, 3) colours to each component."""
        return np.stack([np.square((x - m) @ w).sum(1) for m, w in zip(self.means, self._whiten)], axis=1)

    def _log_joint(self, x: np.ndarray) -> np.ndarray:
        return self._log_norm - 0.5 * self._mahalanobis2(x)

    def nll(self, x: np.ndarray) -> np.ndarray:
        """(N,) negative log-density (nats) of (N, 3) Lab colours."""
        return -_logsumexp(self._log_joint(np.asarray(x, np.float64)))

    def near(self, x: np.ndarray, chi2: float = CHI2_3_99) -> np.ndarray:
        """(N,) bool: within ``chi2`` squared Mahalanobis distance of some component."""
        return self._mahalanobis2(np.asarray(x, np.float64)).min(1) < chi2

    def without(self, other: ColourModel, chi2: float = 7.81) -> ColourModel:
        """This model without its components of the same colour as a component of ``other``
        (squared Mahalanobis distance between the means under the sum of both covariances below
        ``chi2``); itself when every component would go."""
        d = self.means[:, None, :] - other.means[None]
        m2 = np.einsum("kji,kjil,kjl->kj", d, np.linalg.inv(self.covs[:, None] + other.covs[None]), d)
        keep = (m2 >= chi2).all(1)
        if keep.all() or not keep.any():
            return self
        return ColourModel(self.means[keep], self.covs[keep], self.weights[keep] / self.weights[keep].sum())

    def lightness_tolerant(self, factor: float) -> ColourModel:
        """The same model with the L standard deviation multiplied by ``factor`` (to match an
        in-shop photo's colours under the person image's different lighting)."""
        scale = np.array([factor, 1.0, 1.0])
        return ColourModel(self.means, self.covs * np.outer(scale, scale)[None], self.weights)


def garment_colours(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, 3) Lab colours of an in-shop garment image's garment pixels (mask eroded by 1 px so
    that the edges' blend with the background is left out)."""
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return colour_features(image)[inner if inner.any() else mask.astype(bool)]


# -- skeleton and body parts -------------------------------------------------------------------


@dataclass(frozen=True)
class Skeleton:
    """COCO-18 joints ``xy`` (18, 2) px, completed where undetected (``detected`` (18,) bool);
    ``scale`` the torso length (neck to mid-hip) px, ``down`` the unit torso axis (neck to
    mid-hip), ``head`` centre (2,) and ``head_radius`` px."""

    xy: np.ndarray
    detected: np.ndarray
    scale: float
    down: np.ndarray
    head: np.ndarray
    head_radius: float

    def torso_coordinate(self, points: np.ndarray) -> np.ndarray:
        """(N,) position of (N, 2) points along the torso axis: 0 at the neck, 1 at the mid-hip."""
        return (points - self.xy[NECK]) @ self.down / self.scale

    def eyes_y(self) -> float:
        """Row (px) of the eyes: the detected eyes, else a quarter head radius above the nose,
        else the head centre's."""
        eyes = [i for i in (R_EYE, L_EYE) if self.detected[i]]
        if eyes:
            return float(self.xy[eyes, 1].mean())
        return float(self.xy[NOSE, 1] - 0.25 * self.head_radius) if self.detected[NOSE] else float(self.head[1])

    def leg_point(self, side: str, f: np.ndarray) -> np.ndarray:
        """(N, 2) points at fractions ``f`` (N,) of the hip -> knee -> ankle path of leg ``side`` (R | L)."""
        hip, knee, ankle = (self.xy[i] for i in ((R_HIP, R_KNEE, R_ANKLE) if side == "R" else (L_HIP, L_KNEE, L_ANKLE)))
        lengths = np.array([np.linalg.norm(knee - hip), np.linalg.norm(ankle - knee)])
        s = np.asarray(f)[:, None] * lengths.sum()
        first = hip + (knee - hip) * np.clip(s / max(lengths[0], 1e-6), 0, 1)
        return np.where(s <= lengths[0], first, knee + (ankle - knee) * np.clip((s - lengths[0]) / max(lengths[1], 1e-6), 0, 1))


def complete_skeleton(keypoints: np.ndarray, face_box: np.ndarray | None = None) -> Skeleton:
    """Complete COCO-18 ``keypoints`` (18, 3) (x, y px, confidence; 0 undetected).

    Needs the neck and a shoulder, or both shoulders (:class:`MissingKeypointsError` otherwise). A missing shoulder is the other one
    mirrored through the neck; a missing hip the other one moved by 0.8 of the shoulder vector;
    missing hips 1.5 shoulder widths down the perpendicular of the shoulder line. Missing elbows,
    knees, wrists, ankles continue the limb (or go down the torso axis) by the ``LENGTH``
    fractions of the torso length. The head is the face box (x0, y0, x1, y1) when given, else the
    detected face points, else above the neck.
    """
    kp = np.asarray(keypoints, np.float64)
    xy, det = kp[:, :2].copy(), kp[:, 2] > 0
    if not det[NECK] and det[R_SHOULDER] and det[L_SHOULDER]:
        xy[NECK] = xy[[R_SHOULDER, L_SHOULDER]].mean(0)
    elif not det[NECK] or not (det[R_SHOULDER] or det[L_SHOULDER]):
        raise MissingKeypointsError("keypoints lack the neck and a shoulder, and both shoulders")
    for a, b in ((R_SHOULDER, L_SHOULDER), (L_SHOULDER, R_SHOULDER)):
        if not det[a] and det[b]:
            xy[a] = 2 * xy[NECK] - xy[b]
    shoulders = xy[L_SHOULDER] - xy[R_SHOULDER]
    if det[R_HIP] != det[L_HIP]:
        have, miss, sign = (R_HIP, L_HIP, 1.0) if det[R_HIP] else (L_HIP, R_HIP, -1.0)
        xy[miss] = xy[have] + sign * 0.8 * shoulders
    elif not det[R_HIP]:
        perp = np.array([-shoulders[1], shoulders[0]])
        perp *= np.sign(perp[1]) if perp[1] else 1.0  # pointing down the image
        mid = xy[NECK] + 1.5 * perp
        xy[R_HIP], xy[L_HIP] = mid - 0.4 * shoulders, mid + 0.4 * shoulders
    mid_hip = xy[[R_HIP, L_HIP]].mean(0)
    scale = max(float(np.linalg.norm(mid_hip - xy[NECK])), 1.0)
    down = (mid_hip - xy[NECK]) / scale
    for root, mid, end, first, second in (
        (R_SHOULDER, R_ELBOW, R_WRIST, "upper_arm", "lower_arm"),
        (L_SHOULDER, L_ELBOW, L_WRIST, "upper_arm", "lower_arm"),
        (R_HIP, R_KNEE, R_ANKLE, "thigh", "calf"),
        (L_HIP, L_KNEE, L_ANKLE, "thigh", "calf"),
    ):
        if not det[mid]:
            xy[mid] = xy[root] + down * LENGTH[first] * scale if not det[end] else (xy[root] + xy[end]) / 2
        if not det[end]:
            direction = xy[mid] - xy[root]
            direction = direction / np.linalg.norm(direction) if det[mid] and np.linalg.norm(direction) > 0 else down
            xy[end] = xy[mid] + direction * LENGTH[second] * scale
    face_points = [i for i in (NOSE, R_EYE, L_EYE, R_EAR, L_EAR) if det[i]]
    if face_box is not None:
        x0, y0, x1, y1 = np.asarray(face_box, np.float64)
        head, radius = np.array([(x0 + x1) / 2, (y0 + y1) / 2 - 0.1 * (y1 - y0)]), 0.65 * max(x1 - x0, y1 - y0)
    elif face_points:
        head, radius = xy[face_points].mean(0), RADIUS["head"] * scale
    else:
        head, radius = xy[NECK] - down * 0.45 * scale, RADIUS["head"] * scale
    return Skeleton(xy, det, scale, down, head, max(float(radius), 1.0))


def _capsule_cost(points: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float) -> np.ndarray:
    """(N,) distance of (N, 2) points to segment a-b divided by the radius, interpolated from
    ``ra`` at a to ``rb`` at b, at the nearest point of the segment."""
    ab = b - a
    t = np.clip((points - a) @ ab / max(float(ab @ ab), 1e-9), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1) / (ra + t * (rb - ra))


def _half_width(mask: np.ndarray, a: np.ndarray, b: np.ndarray, default: float) -> float:
    """Half the mask's width across segment a-b px (median over cuts at 30/50/70% of it whose
    centre is on the mask), clamped to 0.7..1.5 ``default``; ``default`` without such a cut."""
    h, w = mask.shape
    ab = b - a
    length = float(np.linalg.norm(ab))
    if length < 1.0:
        return default
    normal = np.array([-ab[1], ab[0]]) / length
    steps = np.arange(0.0, 2.0 * default + 1.0)
    cut = np.concatenate([steps, -steps])[:, None] * normal  # (2S, 2): both ways from the centre
    widths = []
    for t in (0.3, 0.5, 0.7):
        p = np.rint(a + t * ab + cut).astype(np.int64)
        on = np.zeros(len(p), bool)
        inside = (p[:, 0] >= 0) & (p[:, 0] < w) & (p[:, 1] >= 0) & (p[:, 1] < h)
        on[inside] = mask[p[inside, 1], p[inside, 0]]
        if not on[0]:
            continue
        # steps to the first pixel off the mask on each side (the whole cut if none)
        ends = [int(np.argmin(half)) if not half.all() else len(half) for half in (on[: len(steps)], on[len(steps) :])]
        widths.append(sum(ends) - 1)  # the centre is in both halves
    if not widths:
        return default
    return float(np.clip(np.median(widths) / 2, 0.7 * default, 1.5 * default))


def body_capsules(skeleton: Skeleton, mask: np.ndarray) -> list[tuple[Part, np.ndarray, np.ndarray, float, float]]:
    """The tapered capsules (part, a, b, radius at a, radius at b) of :func:`keypoint_parts`."""
    sk, xy, L = skeleton, skeleton.xy, skeleton.scale
    mid_hip = xy[[R_HIP, L_HIP]].mean(0)
    out = [
        (Part.TORSO, xy[NECK], mid_hip, 0.525 * np.linalg.norm(xy[L_SHOULDER] - xy[R_SHOULDER]), 0.85 * np.linalg.norm(xy[L_HIP] - xy[R_HIP])),
        (Part.HEAD, xy[NECK], sk.head, 0.5 * sk.head_radius, sk.head_radius),
    ]
    limbs = (
        (Part.R_ARM, R_SHOULDER, R_ELBOW, R_WRIST, "upper_arm", "lower_arm", "hand", Part.R_ARM),
        (Part.L_ARM, L_SHOULDER, L_ELBOW, L_WRIST, "upper_arm", "lower_arm", "hand", Part.L_ARM),
        (Part.R_LEG, R_HIP, R_KNEE, R_ANKLE, "thigh", "calf", "foot", Part.R_FOOT),
        (Part.L_LEG, L_HIP, L_KNEE, L_ANKLE, "thigh", "calf", "foot", Part.L_FOOT),
    )
    for part, root, mid, end, first, second, tip, tip_part in limbs:
        r1 = _half_width(mask, xy[root], xy[mid], RADIUS[first] * L)
        r2 = _half_width(mask, xy[mid], xy[end], RADIUS[second] * L)
        direction = xy[end] - xy[mid]
        direction = direction / max(float(np.linalg.norm(direction)), 1e-6)
        out += [
            (part, xy[root], xy[mid], r1, 0.5 * (r1 + r2)),
            (part, xy[mid], xy[end], 0.5 * (r1 + r2), r2),
            (tip_part, xy[end], xy[end] + direction * LENGTH[tip] * L, RADIUS[tip] * L, RADIUS[tip] * L),
        ]
    return out


def keypoint_parts(mask: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """uint8 (H, W) :class:`Part` map of the (H, W) person mask: each pixel's nearest capsule of
    :func:`body_capsules` (distance in units of the capsule's radius); 0 outside the mask."""
    mask = mask.astype(bool)
    ys, xs = np.nonzero(mask)
    out = np.zeros(mask.shape, np.uint8)
    out[ys, xs] = nearest_capsule(np.column_stack([xs, ys]).astype(np.float64), body_capsules(skeleton, mask))[0]
    return out


def nearest_capsule(points: np.ndarray, capsules: list[tuple[Part, np.ndarray, np.ndarray, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(N,) uint8 part of the nearest capsule (distance in units of its radius) to each of (N, 2)
    points, and (N,) uint8 arm part of the nearest arm capsule when the point is inside it, else 0."""
    best, best_arm = np.full(len(points), np.inf), np.full(len(points), 1.0)
    part, arm = np.zeros(len(points), np.uint8), np.zeros(len(points), np.uint8)
    for p, a, b, ra, rb in capsules:
        cost = _capsule_cost(points, a, b, ra, rb)
        better = cost < best
        best[better], part[better] = cost[better], p
        if p in (Part.R_ARM, Part.L_ARM):
            inside = cost < best_arm
            best_arm[inside], arm[inside] = cost[inside], p
    return part, arm


def densepose_parts(mask: np.ndarray, densepose_i: np.ndarray) -> np.ndarray:
    """uint8 (H, W) :class:`Part` map of the person mask from a DensePose part map ``I`` (H, W)
    0..24: body pixels take their part, mask pixels off the body the nearest body pixel's part;
    0 outside the mask (all 0 when ``I`` has no body pixel)."""
    mask = mask.astype(bool)
    parts = DENSEPOSE_PART[np.asarray(densepose_i)]
    body = parts > 0
    if not body.any():
        return np.zeros(mask.shape, np.uint8)
    iy, ix = ndimage.distance_transform_edt(~body, return_distances=False, return_indices=True)
    return np.where(mask, parts[iy, ix], 0).astype(np.uint8)


# -- colour models and labels ------------------------------------------------------------------


def skin_model(lab: np.ndarray, pixels: np.ndarray, trusted: bool, prior: ColourModel) -> ColourModel:
    """Skin colours from the (N, 3) ``lab`` colours of the ``pixels`` (N,) bool: the face oval
    (``trusted``) or places skin usually shows (face centre, hands: only the colours that the
    generic skin model ``prior``, :attr:`Evidence.skin_prior`, accepts). A 3-component mixture is
    fitted to those with L between their 10th and 95th percentiles (no eyes, brows, nostrils,
    shadows or highlights) and its heaviest component whose mean the prior accepts (the heaviest
    if none) is the skin (lips, hair, sleeves fall in the others); the prior itself without
    enough pixels."""
    x = lab[pixels]
    if not trusted:
        x = x[prior.near(x)]
    if len(x):
        lo, hi = np.percentile(x[:, 0], [10, 95])
        x = x[(x[:, 0] >= lo) & (x[:, 0] <= hi)]
    mixture = ColourModel.fit(x, components=3)
    if mixture is None:
        return prior
    plausible = prior.near(mixture.means)
    k = int(np.argmax(np.where(plausible, mixture.weights, -1.0) if plausible.any() else mixture.weights))
    return ColourModel(mixture.means[k : k + 1], mixture.covs[k : k + 1], np.ones(1))


@dataclass(frozen=True)
class Models:
    """The person's colour models (None: not seen on this person)."""

    skin: ColourModel
    hair: ColourModel | None
    top: ColourModel | None
    bottom: ColourModel | None
    shoe: ColourModel | None
    one_colour: bool  # top and bottom of the same colours (:func:`_same_garment`)

    def costs(self, x: np.ndarray, lower: np.ndarray, cap: float = 40.0) -> tuple[np.ndarray, np.ndarray]:
        """(4, N) negative log-density (nats, at most ``cap``) of (N, 3) colours for each
        :class:`Material`, and (4, N) bool where the material has no model. A garment is the
        likelier of the top and the bottom on the ``lower`` (N,) bool pixels (where a bottom may
        be), the top elsewhere."""
        nll = {k: np.minimum(m.nll(x), cap) if m is not None else np.full(len(x), cap) for k, m in
               (("skin", self.skin), ("hair", self.hair), ("top", self.top), ("bottom", self.bottom), ("shoe", self.shoe))}  # fmt: skip
        garment = np.where(lower, np.minimum(nll["top"], nll["bottom"]), nll["top"])
        missing = [self.hair is None, self.top is None and self.bottom is None, self.shoe is None]
        absent = np.stack([np.zeros(len(x), bool)] + [np.full(len(x), m) for m in missing])
        if self.top is None and self.bottom is not None:
            absent[Material.GARMENT] = ~lower
        return np.stack([nll["skin"], nll["hair"], garment, nll["shoe"]]), absent


def _not(model: ColourModel | None, x: np.ndarray) -> np.ndarray:
    """(N,) bool: colours ``model`` does not claim (all when there is no model)."""
    return ~model.near(x) if model is not None else np.ones(len(x), bool)


def colour_models(
    lab: np.ndarray,
    zone: np.ndarray,
    torso_t: np.ndarray,
    leg_f: np.ndarray,
    skin: ColourModel,
    garment: np.ndarray | None,
    category: str | None,
    evidence: Evidence = COLOUR,
) -> Models:
    """Fit the person's models from its pixels: ``lab`` (N, 3), their ``zone`` (N,) (a
    :class:`Part` or CROWN), torso coordinate ``torso_t`` (N,), hip-to-ankle fraction ``leg_f``
    (N,) (nan off the legs); ``garment`` (M, 3) in-shop Lab colours or None; ``category``
    upper_body | lower_body | dresses | None; the sampling thresholds of ``evidence``.

    ``one_colour`` tells whether the top and bottom have the same colours (:func:`_same_garment`).
    """
    torso = zone == Part.TORSO
    chest = torso & (torso_t >= CHEST[0]) & (torso_t <= CHEST[1])
    thighs = np.isin(zone, (Part.R_LEG, Part.L_LEG)) & (leg_f >= THIGHS[0]) & (leg_f <= THIGHS[1])
    not_skin = ~skin.near(lab, evidence.not_skin)
    ref = ColourModel.fit(garment, components=3) if garment is not None else None
    role = None
    if ref is not None:
        ref = ref.lightness_tolerant(evidence.shop_lightness_tolerance)
        matches = ref.near(lab) & (ref.nll(lab) < skin.nll(lab))
        role = {"lower_body": "bottom", "dresses": "dress"}.get(category or "", "top")
    if role == "bottom":
        bottom_samples = lab[matches & (thighs | (torso & (torso_t > CHEST[1])))]
        bottom = ColourModel.fit(bottom_samples, components=3)
        top_samples = lab[chest & not_skin & _not(bottom, lab)]
    else:
        if role is None:
            top_samples = lab[chest & not_skin]
        else:
            top_samples = lab[matches & ((torso | thighs) if role == "dress" else chest)]
        bottom_samples = lab[thighs & not_skin]
        bottom = ColourModel.fit(bottom_samples, components=3)
    top = ColourModel.fit(top_samples, components=3)
    if evidence.drop_skin_components:  # skin slipped into the samples
        top, bottom = (m.without(skin) if m is not None else None for m in (top, bottom))
    one_colour = top is not None and bottom is not None and _same_garment(top, top_samples, bottom, bottom_samples)
    crown = lab[zone == CROWN]
    hair = ColourModel.fit(crown[~skin.near(crown, evidence.clear_skin)], components=2)
    feet = np.isin(zone, (Part.R_FOOT, Part.L_FOOT)) & ~skin.near(lab, evidence.clear_skin)
    shoe = ColourModel.fit(lab[feet & _not(bottom, lab)], components=2) or ColourModel.fit(lab[feet], components=2)
    return Models(skin, hair, top, bottom, shoe, one_colour)


def _same_garment(top: ColourModel, top_samples: np.ndarray, bottom: ColourModel, bottom_samples: np.ndarray) -> bool:
    """Whether each model explains the other's samples within SAME_COLOURS nats per pixel of
    their own (one colour scheme on the chest and on the thighs: a dress, a long top, a matching
    set)."""
    return bool(
        np.mean(top.nll(bottom_samples) - bottom.nll(bottom_samples)) < SAME_COLOURS
        and np.mean(bottom.nll(top_samples) - top.nll(top_samples)) < SAME_COLOURS
    )


def waist_cut(torso_t: np.ndarray, top_cost: np.ndarray, bottom_cost: np.ndarray, cap: float = 30.0, step: float = 0.01) -> float:
    """Torso coordinate in WAIST_RANGE (on a ``step`` grid) splitting garment pixels (their
    ``torso_t`` (N,)) into a top above and a bottom below at the least total cost: ``top_cost``,
    ``bottom_cost`` (N,) nats, each capped at ``cap`` so that a few outliers cannot move it, plus
    ``WAIST_WEIGHT`` nats per pixel times the squared distance to WAIST (which decides between
    garments of the same colours)."""
    order = np.argsort(torso_t)
    t = torso_t[order]
    top = np.concatenate([[0.0], np.cumsum(np.minimum(top_cost[order], cap))])
    bottom = np.concatenate([[0.0], np.cumsum(np.minimum(bottom_cost[order], cap))])
    cuts = np.arange(WAIST_RANGE[0], WAIST_RANGE[1] + step / 2, step)
    above = np.searchsorted(t, cuts)  # pixels [0, above) are above the cut
    prior = WAIST_WEIGHT * len(t) * np.square(cuts - WAIST)
    return float(cuts[np.argmin(top[above] + bottom[-1] - bottom[above] + prior)])


def leg_hems(material: np.ndarray, cost: np.ndarray, part: np.ndarray, leg_f: np.ndarray, cap: float = 30.0, step: float = 0.01) -> np.ndarray:
    """(N,) materials with the legs' garment ending at one hem per leg: each leg's skin and
    garment pixels (``part`` (N,) the leg's, ``material`` (N,) SKIN or GARMENT) become garment
    above the leg's hem and skin below it, unless their ``cost`` (4, N) nats favours the other
    material by more than HEM_EVIDENCE (clear evidence: shoes where no ankle locates the feet).
    The hems (fractions of the hip -> ankle path, ``leg_f`` (N,), on a ``step`` grid in [0, 1]: 0
    bare legs, 1 trousers to the ankle) are those of least total cost: GARMENT's above and SKIN's
    below, each pixel's capped at ``cap``, plus HEM_WEIGHT nats per pixel times the squared
    difference between the two hems (one garment covers both legs alike, which decides where the
    costs cannot). Where lightness alone cannot tell skin from cloth, the evidence of the whole
    leg decides each pixel. Unchanged when a leg has fewer than MIN_SAMPLES such pixels or either
    material is not allowed on some of them."""
    hems = np.arange(0.0, 1.0 + step / 2, step)
    legs = []
    for side in (Part.R_LEG, Part.L_LEG):
        on = np.flatnonzero((part == side) & np.isin(material, (Material.SKIN, Material.GARMENT)))
        garment, skin = cost[Material.GARMENT, on], cost[Material.SKIN, on]
        if len(on) < MIN_SAMPLES or not (np.isfinite(garment).all() and np.isfinite(skin).all()):
            return material
        order = np.argsort(leg_f[on])
        above = np.searchsorted(leg_f[on][order], hems)  # pixels [0, above) are above the hem
        garment_sum = np.concatenate([[0.0], np.cumsum(np.minimum(garment[order], cap))])
        skin_sum = np.concatenate([[0.0], np.cumsum(np.minimum(skin[order], cap))])
        legs.append((on, garment_sum[above] + skin_sum[-1] - skin_sum[above]))
    (right, right_cost), (left, left_cost) = legs
    total = right_cost[:, None] + left_cost[None, :] + HEM_WEIGHT * (len(right) + len(left)) * np.square(hems[:, None] - hems[None, :])
    i, j = np.unravel_index(np.argmin(total), total.shape)
    out = material.copy()
    for on, hem in ((right, hems[i]), (left, hems[j])):
        skin_over_garment = cost[Material.SKIN, on] - cost[Material.GARMENT, on]
        garment = np.where(leg_f[on] < hem, skin_over_garment > -HEM_EVIDENCE, skin_over_garment > HEM_EVIDENCE)
        out[on] = np.where(garment, Material.GARMENT, Material.SKIN)
    return out


def _midline_cover(garment: np.ndarray, skeleton: Skeleton) -> float | None:
    """Fraction of the midline points between the legs that ``garment`` (H, W) bool covers,
    sampled along the hip -> ankle paths from CROTCH down where the garment covers at least one
    leg's axis (it reaches that low) and the legs' axes are LEG_GAP torso lengths apart or more
    (bare or trouser legs would show a gap there); None without such a point."""
    h, w = garment.shape
    f = np.linspace(CROTCH, 1.0, 32)
    right, left = skeleton.leg_point("R", f), skeleton.leg_point("L", f)

    def covered(points: np.ndarray) -> np.ndarray:
        ij = np.rint(points).astype(np.int64)
        inside = (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
        out = np.zeros(len(points), bool)
        out[inside] = garment[ij[inside, 1], ij[inside, 0]]
        return out

    usable = (covered(right) | covered(left)) & (np.linalg.norm(right - left, axis=1) >= LEG_GAP * skeleton.scale)
    if not usable.any():
        return None
    return float(covered((right + left) / 2)[usable].mean())


def _off_legs(points: np.ndarray, skeleton: Skeleton) -> float:
    """Fraction of (N, 2) garment points below the crotch (torso coordinate > 1 + CROTCH) farther
    than OFF_LEG default thigh radii from both legs' axes (hip -> knee -> ankle); 0 without such points."""
    below = points[skeleton.torso_coordinate(points) > 1.0 + CROTCH]
    if not len(below):
        return 0.0
    r = RADIUS["thigh"] * skeleton.scale
    xy = skeleton.xy
    d = np.min([_capsule_cost(below, xy[a], xy[b], r, r) for a, b in ((R_HIP, R_KNEE), (R_KNEE, R_ANKLE), (L_HIP, L_KNEE), (L_KNEE, L_ANKLE))], axis=0)
    return float((d > OFF_LEG).mean())


def is_skirt(bottom: np.ndarray, points: np.ndarray, skeleton: Skeleton, shape: tuple[int, int]) -> bool:
    """Whether the bottom garment (``bottom`` (N,) bool over the (N, 2) person ``points`` of an
    image of ``shape`` (H, W)) is a skirt: part of it below the crotch stands off the legs
    (:func:`_off_legs` >= SKIRT_OFF_LEGS[0]) and it covers the midline between the legs where they
    are apart (:func:`_midline_cover` >= 0.5) or, where they never are (legs together, side
    views), more of it stands off the legs (>= SKIRT_OFF_LEGS[1])."""
    if not bottom.any():
        return False
    off = _off_legs(points[bottom], skeleton)
    if off < SKIRT_OFF_LEGS[0]:
        return False
    grid = np.zeros(shape, bool)
    grid[points[bottom, 1].astype(np.int64), points[bottom, 0].astype(np.int64)] = True
    cover = _midline_cover(grid, skeleton)
    return cover >= 0.5 if cover is not None else off >= SKIRT_OFF_LEGS[1]


def smooth(values: np.ndarray, ys: np.ndarray, xs: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    """(M, N) mean of each row of ``values`` (M, N), given at the mask pixels ``(ys, xs)`` (N,),
    over the mask pixels of the ``size`` x ``size`` window around each."""
    weight = cv2.boxFilter(mask.astype(np.float32), -1, (size, size), normalize=False, borderType=cv2.BORDER_CONSTANT)[ys, xs]
    out = np.empty_like(values, dtype=np.float64)
    grid = np.zeros(mask.shape, np.float32)
    for i, row in enumerate(values):
        grid[ys, xs] = row
        out[i] = cv2.boxFilter(grid, -1, (size, size), normalize=False, borderType=cv2.BORDER_CONSTANT)[ys, xs] / weight
    return out


def majority_filter(labels: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    """Each mask pixel takes the most frequent label of its ``size`` x ``size`` window (mask
    pixels only; ties keep the pixel's own label); 0 outside the mask."""
    out = labels.copy()
    if size > 1:
        best = np.full(labels.shape, -1.0, np.float32)
        for c in np.unique(labels[mask]):
            own = (labels == c).astype(np.float32)
            votes = cv2.boxFilter(own, -1, (size, size), normalize=False, borderType=cv2.BORDER_CONSTANT) + 0.5 * own
            better = votes > best
            out[better], best[better] = c, votes[better]
    out[~mask] = 0
    return out


def remove_specks(labels: np.ndarray, mask: np.ndarray, min_area: int) -> np.ndarray:
    """Relabel connected pieces (8-connected) of any label smaller than ``min_area`` px with the
    label of the nearest pixel outside such pieces; 0 outside the mask."""
    specks = np.zeros(labels.shape, bool)
    for c in np.unique(labels[mask]):
        _, comp, stats, _ = cv2.connectedComponentsWithStats((labels == c).astype(np.uint8), connectivity=8)
        small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < min_area)
        specks |= np.isin(comp, small[small > 0])
    keep = mask & ~specks
    out = labels.copy()
    if specks.any() and keep.any():
        iy, ix = ndimage.distance_transform_edt(~keep, return_distances=False, return_indices=True)
        out[specks] = labels[iy[specks], ix[specks]]
    out[~mask] = 0
    return out


def parse_person(
    image: np.ndarray,
    mask: np.ndarray,
    keypoints: np.ndarray,
    *,
    face_mask: np.ndarray | None = None,
    densepose_i: np.ndarray | None = None,
    garments: Sequence[np.ndarray] = (),
    category: str | None = None,
) -> np.ndarray:
    """LIP label map uint8 (H, W) of one person (module docstring).

    ``image`` RGB uint8 (H, W, 3); ``mask`` (H, W) person {0, 1}; ``keypoints`` COCO-18 (18, 3);
    ``face_mask`` (H, W) {0, 1} face oval or None; ``densepose_i`` (H, W) DensePose part ids
    (body parts from it instead of the keypoints) or None; ``garments`` (M, 3) colours of each
    paired in-shop garment (:func:`garment_colours`); ``category`` of the garment (upper_body |
    lower_body | dresses | None). An image whose person shows no colour (:func:`shows_colour`) is
    parsed from lightness alone (:data:`LUMINANCE`). :class:`MissingKeypointsError` when the
    keypoints do not locate the torso.
    """
    mask = np.asarray(mask).astype(bool)
    h, w = mask.shape
    labels = np.zeros((h, w), np.uint8)
    if not mask.any():
        return labels
    face = None if face_mask is None else (np.asarray(face_mask).astype(bool) & mask)
    face_box = None
    if face is not None and face.any():
        rows, cols = np.flatnonzero(face.any(1)), np.flatnonzero(face.any(0))
        face_box = np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], np.float64) - 0.5  # pixel edges
    else:
        face = None
    sk = complete_skeleton(keypoints, face_box)
    ys, xs = np.nonzero(mask)
    points = np.column_stack([xs, ys]).astype(np.float64)
    part, arm, on_arm = _body_parts(mask, points, sk, densepose_i)
    evidence = COLOUR if shows_colour(image, mask) else LUMINANCE
    lab = evidence.features(colour_features(image)[ys, xs].astype(np.float64))
    torso_t = sk.torso_coordinate(points)
    leg_f = _leg_fraction(points, part, sk)

    # zones (the parts, the crown above the face; feet only below the ankles) and skin
    zone = part.copy()
    zone[(part == Part.R_FOOT) & (leg_f < ANKLE)] = Part.R_LEG
    zone[(part == Part.L_FOOT) & (leg_f < ANKLE)] = Part.L_LEG
    head = part == Part.HEAD
    if face is not None:
        # the band just around the oval (temples, ears: face in LIP) is not crown: ~12% of the face height
        band = 2 * max(1, round(0.12 * (face_box[3] - face_box[1]))) + 1
        off_face = ~cv2.dilate(face.astype(np.uint8), np.ones((band, band), np.uint8))[ys, xs].astype(bool)
        zone[head & off_face & (points[:, 1] < face_box[1] + 0.45 * (face_box[3] - face_box[1]))] = CROWN
        skin = skin_model(lab, face[ys, xs], trusted=True, prior=evidence.skin_prior)
    else:
        eyes_y = sk.eyes_y()
        zone[head & (points[:, 1] < eyes_y - 0.6 * sk.head_radius)] = CROWN
        centre = np.array([sk.xy[NOSE, 0] if sk.detected[NOSE] else sk.head[0], eyes_y + 0.3 * sk.head_radius])
        face_centre = head & (np.square((points - centre) / (np.array([0.5, 0.55]) * sk.head_radius)).sum(1) < 1)
        hands = np.isin(part, (Part.R_ARM, Part.L_ARM)) & (_limb_end(points, part, sk) > 0.8)
        plausible = evidence.skin_prior.near(lab)
        # where skin shows, in order: the face centre, the hands, the head
        skin_pixels = next((s for s in (face_centre, hands) if (s & plausible).sum() >= MIN_SAMPLES), head)
        skin = skin_model(lab, skin_pixels, trusted=False, prior=evidence.skin_prior)
    garment = evidence.features(np.concatenate(garments)) if len(garments) else None
    models = colour_models(lab, zone, torso_t, leg_f, skin, garment, category, evidence)

    # materials: least colour cost (smoothed over a window ~1.5% of the image height) + prior
    lower = (part != Part.HEAD) & ~on_arm  # where the bottom may be
    nll, absent = models.costs(lab, lower)
    cost = smooth(nll, ys, xs, mask, 2 * max(1, round(h / 128)) + 1) + PRIOR[:, zone]
    cost[absent] = np.inf
    cost[Material.HAIR] += np.where((part != Part.HEAD) & (torso_t > HAIR_LOWEST), np.inf, 0.0)
    cost[Material.SKIN] += np.where((zone == Part.TORSO) & (torso_t > NECKLINE), BARE_TORSO, 0.0)
    material = np.argmin(cost, axis=0)
    material[~np.isfinite(cost.min(0))] = Material.SKIN  # nothing allowed fits: bare skin
    material = leg_hems(material, cost, part, leg_f)

    # garments: the top above the waist cut (and on the arms and head), the bottom below it
    garment_px = material == Material.GARMENT
    is_bottom = np.zeros(len(points), bool)
    if models.bottom is not None and models.top is not None:
        body = garment_px & lower
        x = lab[body]
        is_bottom = body & (torso_t >= waist_cut(torso_t[body], models.top.nll(x), models.bottom.nll(x)))
    elif models.bottom is not None:
        is_bottom = garment_px
    skirt = is_skirt(is_bottom, points, sk, mask.shape)
    dress = category == "dresses" or (category is None and garment is None and models.one_colour and skirt)

    lip = SKIN_LABEL[np.where((part == Part.TORSO) & (arm > 0), arm, part)]  # a hand over the torso is the arm's
    lip[material == Material.HAIR] = HAIR
    lip[garment_px & ~is_bottom] = DRESS if dress else UPPER
    lip[is_bottom] = DRESS if dress else SKIRT if skirt else PANTS
    shoe = material == Material.SHOE
    lip[shoe] = SHOE_LABEL[part[shoe]]
    if face is not None:
        fringe = (material == Material.HAIR) & (points[:, 1] < face_box[1] + 0.3 * (face_box[3] - face_box[1]))
        lip[face[ys, xs] & ~fringe] = FACE
    labels[ys, xs] = lip

    labels = majority_filter(labels, mask, 2 * max(1, round(h / 200)) + 1)
    return remove_specks(labels, mask, max(4, int(0.002 * len(ys))))


def _body_parts(mask: np.ndarray, points: np.ndarray, sk: Skeleton, densepose_i: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the (N, 2) mask ``points``: (N,) uint8 :class:`Part`; (N,) uint8 arm part of the arm
    capsule a torso pixel lies in (a hand over the torso; 0 else, and always 0 from DensePose,
    whose parts already say so); (N,) bool on the arm itself rather than beside it (on the
    body's arm for DensePose, within the arm capsule's radius otherwise). From ``densepose_i``
    when given and it covers the body, else from the keypoint capsules."""
    if densepose_i is not None:
        ys, xs = points[:, 1].astype(np.int64), points[:, 0].astype(np.int64)
        dense = densepose_parts(mask, densepose_i)[ys, xs]
        if dense.all():
            on_arm = np.isin(dense, (Part.R_ARM, Part.L_ARM)) & (np.asarray(densepose_i)[ys, xs] > 0)
            return dense, np.zeros(len(points), np.uint8), on_arm
    part, arm = nearest_capsule(points, body_capsules(sk, mask))
    return part, arm, np.isin(part, (Part.R_ARM, Part.L_ARM)) & (arm > 0)


def _leg_fraction(points: np.ndarray, part: np.ndarray, sk: Skeleton) -> np.ndarray:
    """(N,) fraction of the hip -> ankle path (0 hip, 1 ankle) at the projection of each leg or
    foot pixel on its leg's polyline (>1 below the ankle); nan elsewhere."""
    out = np.full(len(points), np.nan)
    for parts, joints in (((Part.R_LEG, Part.R_FOOT), (R_HIP, R_KNEE, R_ANKLE)), ((Part.L_LEG, Part.L_FOOT), (L_HIP, L_KNEE, L_ANKLE))):
        on = np.isin(part, parts)
        if not on.any():
            continue
        hip, knee, ankle = (sk.xy[j] for j in joints)
        l1, l2 = np.linalg.norm(knee - hip), np.linalg.norm(ankle - knee)
        p = points[on]
        t1 = np.clip((p - hip) @ (knee - hip) / max(l1**2, 1e-9), 0.0, 1.0)
        t2 = np.clip((p - knee) @ (ankle - knee) / max(l2**2, 1e-9), 0.0, None)
        d1 = np.linalg.norm(p - (hip + t1[:, None] * (knee - hip)), axis=1)
        d2 = np.linalg.norm(p - (knee + np.minimum(t2, 1.0)[:, None] * (ankle - knee)), axis=1)
        out[on] = np.where(d1 <= d2, t1 * l1, l1 + t2 * l2) / max(l1 + l2, 1e-9)
    return out


def _limb_end(points: np.ndarray, part: np.ndarray, sk: Skeleton) -> np.ndarray:
    """(N,) position of arm pixels along shoulder -> wrist (1 at the wrist, >1 on the hand); 0 elsewhere."""
    out = np.zeros(len(points))
    for p, (root, end) in ((Part.R_ARM, (R_SHOULDER, R_WRIST)), (Part.L_ARM, (L_SHOULDER, L_WRIST))):
        on = part == p
        axis = sk.xy[end] - sk.xy[root]
        out[on] = (points[on] - sk.xy[root]) @ axis / max(float(axis @ axis), 1e-9)
    return out
