"""The label assignment: per-pixel material costs from the colour models and body parts, the
waist cut and leg hems, skirt versus pants, the filters, and :func:`parse_person`."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from scipy import ndimage

from .colour import (
    COLOUR,
    LUMINANCE,
    colour_features,
    colour_models,
    shows_colour,
    skin_model,
)
from .constants import (
    ANKLE,
    BARE_TORSO,
    CROTCH,
    CROWN,
    DRESS,
    FACE,
    HAIR,
    HAIR_LOWEST,
    HEM_EVIDENCE,
    HEM_WEIGHT,
    JUMPSUITS,
    L_ANKLE,
    L_HIP,
    L_KNEE,
    LEG_GAP,
    MIN_SAMPLES,
    NECKLINE,
    NOSE,
    OFF_LEG,
    PANTS,
    PRIOR,
    R_ANKLE,
    R_HIP,
    R_KNEE,
    RADIUS,
    SHOE_LABEL,
    SKIN_LABEL,
    SKIRT,
    SKIRT_OFF_LEGS,
    UPPER,
    WAIST,
    WAIST_RANGE,
    WAIST_WEIGHT,
    Material,
    Part,
)
from .skeleton import (
    Skeleton,
    _body_parts,
    _capsule_cost,
    _leg_fraction,
    _limb_end,
    complete_skeleton,
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


def _one_piece(category: str | None, garment_kind: str | None, one_colour: bool, skirt: bool) -> int | None:
    """The LIP label of every garment pixel when the person wears one garment, else None: dress
    for the category ``dresses``; without a category, what the in-shop garment is
    (``garment_kind``: dress, jumpsuits, or a top); without one (or an unreadable one), a dress
    when the top's colours go on below the waist (``one_colour``) over a skirt (a top over
    trousers of its colour stays a top)."""
    if category == "dresses":
        return DRESS
    if category is not None:
        return None
    if garment_kind is not None:
        return {"dress": DRESS, "jumpsuit": JUMPSUITS}.get(garment_kind)
    return DRESS if one_colour and skirt else None


def parse_person(
    image: np.ndarray,
    mask: np.ndarray,
    keypoints: np.ndarray,
    *,
    face_mask: np.ndarray | None = None,
    densepose_i: np.ndarray | None = None,
    garments: Sequence[np.ndarray] = (),
    garment_kind: str | None = None,
    category: str | None = None,
) -> np.ndarray:
    """LIP label map uint8 (H, W) of one person (module docstring).

    ``image`` RGB uint8 (H, W, 3); ``mask`` (H, W) person {0, 1}; ``keypoints`` COCO-18 (18, 3);
    ``face_mask`` (H, W) {0, 1} face oval or None; ``densepose_i`` (H, W) DensePose part ids
    (body parts from it instead of the keypoints) or None; ``garments`` (M, 3) colours of each
    paired in-shop garment (:func:`garment_colours`); ``garment_kind`` what they are (top | dress |
    jumpsuit: ``models.landmarks.geometric.garment_kind``; None without one); ``category`` of the
    garment (upper_body | lower_body | dresses | None). An image whose person shows no colour (:func:`shows_colour`) is
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
    away = sk.facing_away()
    if away:  # seen from behind: the face oval (from face landmarks) lies on the back of the head
        face = None
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
        # from behind the hair covers the head down to about the ears (the eyes' row from the front)
        zone[head & (points[:, 1] < eyes_y + (0.3 if away else -0.6) * sk.head_radius)] = CROWN
        centre = np.array([sk.xy[NOSE, 0] if sk.detected[NOSE] else sk.head[0], eyes_y + 0.3 * sk.head_radius])
        face_centre = head & (np.square((points - centre) / (np.array([0.5, 0.55]) * sk.head_radius)).sum(1) < 1)
        hands = np.isin(part, (Part.R_ARM, Part.L_ARM)) & (_limb_end(points, part, sk) > 0.8)
        plausible = evidence.skin_prior.near(lab)
        # where skin shows, in order: the face centre (not from behind), the hands, the head
        places = (hands,) if away else (face_centre, hands)
        skin_pixels = next((s for s in places if (s & plausible).sum() >= MIN_SAMPLES), head)
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
    one_piece = _one_piece(category, garment_kind if garment is not None else None, models.one_colour, skirt)

    lip = SKIN_LABEL[np.where((part == Part.TORSO) & (arm > 0), arm, part)]  # a hand over the torso is the arm's
    lip[material == Material.HAIR] = HAIR
    lip[garment_px & ~is_bottom] = one_piece or UPPER
    lip[is_bottom] = one_piece or (SKIRT if skirt else PANTS)
    shoe = material == Material.SHOE
    lip[shoe] = SHOE_LABEL[part[shoe]]
    if face is not None:
        fringe = (material == Material.HAIR) & (points[:, 1] < face_box[1] + 0.3 * (face_box[3] - face_box[1]))
        lip[face[ys, xs] & ~fringe] = FACE
    labels[ys, xs] = lip

    labels = majority_filter(labels, mask, 2 * max(1, round(h / 200)) + 1)
    return remove_specks(labels, mask, max(4, int(0.002 * len(ys))))
