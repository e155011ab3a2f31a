"""Model-free estimates of the 32 garment landmarks (:mod:`vtonpipe.converters.landmarks`).

Pure functions, arrays in, ``(32, 3)`` float32 out (x, y px in the pixel-centre frame, attribute
0 visible / 1 occluded / 2 absent with x = y = 0), for a bootstrap labeller (the ``geometric``
backend of the ``landmarks`` annotator) where no trained network is available.

**Garment images** (:func:`garment_landmarks`, an upper garment seen from the front on a plain
background, from its mask and pixels). The mask's outer contour (smoothed, on the pixel edges)
is walked from each neck corner down to the hem's middle:

- neck corners (1, 6): the contour's highest points either side of the middle; the collar's
  back (0): the contour's dip between them, at their midpoint; the front neckline (2-5, inside
  the mask): the edge below the neck opening where the darker inside of the garment's back
  meets its lit front, a dynamic-programming path between the corners maximising that vertical
  contrast;
- armpits (8, 18): each side's sharpest concave corner at the garment's scale (refined at a
  finer one); on a sleeveless side, where the side stands out most below the armhole's curve;
- hem (29-31): the sharpest convex corner after the armpit, and the mask's bottom under the
  collar;
- a sleeve when the contour reaches out beyond the armpit by a tenth of the garment's size: the
  sleeve end's corners (15, 16 / 25, 26) are the sharpest convex corners near its outermost
  point, the shoulder (7, 17) the first contour point from the neck reaching the armpit's x
  (moved in by ``SHOULDER_INSET``), and the upper arm, elbow and lower arm (9-14 / 19-24) where
  lines across the sleeve's axis meet its edges, present when the sleeve reaches them (the
  sample bodies' proportions, ``ARM_SECTIONS`` and ``ARM_AXIS``); without a sleeve the shoulder
  is the strap's outer top corner;
- waist (27, 28): the torso's row ``WAIST_BELOW_ARMPIT`` torso widths below the armpits.

A dress or jumpsuit gets the landmarks of its top part: the mask is cut on the hip line,
``ONE_PIECE_HEM`` torso widths (armpit to armpit) below the neck corners, and the rules run on
the rest (the neck and armpits found first on the garment's upper part).

Every present point of a garment image is visible (a front view).

**Person images**: :mod:`vtonpipe.models.landmarks.geometric_person`.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np
from scipy import ndimage

from ...converters.landmarks import (
    ABSENT,
    NECK_FRACTIONS,
    NUM_LANDMARKS,
    VISIBLE,
    side_ids,
)

#: positions along the arm, as fractions of the shoulder-to-wrist joint distance, of the sleeve
#: sections (anny's rest body: elbow at 0.55)
ARM_SECTIONS = {"upper_arm": 0.28, "elbow": 0.55, "lower_arm": 0.78}
#: proportions of the sample's anny bodies on in-shop garments, in torso widths (armpit to
#: armpit): a point at fraction t of the arm lies ``ARM_AXIS[0] * t + ARM_AXIS[1]`` along the
#: sleeve's axis from its root (the shoulder-armpit midpoint); how far inwards of the armpit the
#: shoulder seam's end lies on a sleeved garment; the waist line's height below the armpits
ARM_AXIS = (1.40, 0.03)
SHOULDER_INSET = 0.03
WAIST_BELOW_ARMPIT = 0.47
#: one-piece garments (a dress, a jumpsuit) on in-shop images, in torso widths below the neck
#: corners: the top part's hem (the landmarks' hem, on the hip line; sample: 1.64-1.99, median
#: 1.85) and the length beyond which a garment is one piece (sample tops <= 2.05, one-piece
#: garments >= 2.18, from the rules' neck and armpits on exact masks); the armpits are found above
#: ``UPPER_PART`` shoulder widths (the widest row of the garment's top tenth) below its top
#: (sample armpits: <= 0.8; 1.1-1.5 score the same), and trusted when their heights differ by
#: less than ``FRAME_TOLERANCE[0]`` torso widths and their midpoint lies less than
#: ``FRAME_TOLERANCE[1]`` from the neck's (exact masks: <= 0.01; the estimated masks that broke
#: them, white garments lost on white: >= 0.16 or >= 0.19)
ONE_PIECE_HEM = 1.85
ONE_PIECE_LENGTH = 2.12
UPPER_PART = 1.3
FRAME_TOLERANCE = (0.12, 0.15)
#: a one-piece garment with legs (a jumpsuit): the column under its neck ends this many torso
#: widths above its bottom (sample: dresses 0, jumpsuits with shorts >= 0.19, trousers >= 1.7)
LEG_GAP = 0.1
#: the front neckline's path: most rows it moves per column, and the cost of each row moved
NECK_SLOPE = 3
NECK_TURN_COST = 0.02


class NoGarmentError(ValueError):
    """The mask or parsing holds no upper garment to put landmarks on."""


# -- contours ----------------------------------------------------------------------------------
def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask.astype(bool)
    sizes = ndimage.sum(np.ones_like(labels), labels, range(1, n + 1))
    return labels == 1 + int(np.argmax(sizes))


def outer_contour(mask: np.ndarray) -> np.ndarray:
    """(N, 2) float64 points on the outer boundary of the mask's largest component, clockwise on
    the image (x right, y down), on the pixel edges: each boundary pixel centre moved half a
    pixel outwards along the contour's normal."""
    m = _largest_component(mask).astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        raise NoGarmentError("empty mask")
    c = max(contours, key=len)[:, 0, :].astype(np.float64)
    # OpenCV's outer contours run counter-clockwise in the image; make them clockwise
    if _signed_area(c) < 0:
        c = c[::-1]
    tangent = np.roll(c, -1, 0) - np.roll(c, 1, 0)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], 1)  # outward for a clockwise (y-down) contour
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    return c + 0.5 * normal


def _signed_area(c: np.ndarray) -> float:
    """Shoelace area, positive for a clockwise contour in image coordinates (y down)."""
    x, y = c[:, 0], c[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _smooth_closed(c: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter1d(c, sigma, axis=0, mode="wrap") if sigma > 0 else c


def turning(c: np.ndarray, step: int) -> np.ndarray:
    """(N,) signed turning angle (rad) at each point of a closed clockwise contour between the
    chords to the points ``step`` before and after: positive at convex corners, negative at
    concave ones."""
    a = c - np.roll(c, step, 0)
    b = np.roll(c, -step, 0) - c
    cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    dot = np.einsum("nd,nd->n", a, b)
    return np.arctan2(cross, dot)


def _path(n: int, start: int, end: int) -> np.ndarray:
    """Indices from ``start`` to ``end`` (inclusive) going forwards round a closed contour of ``n``."""
    return (start + np.arange((end - start) % n + 1)) % n


# -- garment images ----------------------------------------------------------------------------
def _neckline_path(image: np.ndarray, mask: np.ndarray, left: np.ndarray, right: np.ndarray, top: np.ndarray) -> np.ndarray | None:
    """The front neckline between the neck corners ``left`` (image left) and ``right`` (x, y):
    for each column from one to the other, the y (px, on the pixel edge) where the darker inside
    of the back above meets the lit front below. A dynamic-programming path maximising that
    relative contrast, ends pinned near the corners, moving at most ``NECK_SLOPE`` rows per
    column; None when the opening is under 3 columns wide."""
    x0, x1 = int(np.ceil(left[0])), int(np.floor(right[0]))
    if x1 - x0 < 3:
        return None
    h = mask.shape[0]
    grey = ndimage.gaussian_filter(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64), 0.7)
    cols = np.arange(x0, x1 + 1)
    y_start = int(np.floor(min(left[1], right[1])))
    rows = np.arange(y_start, min(h - 3, y_start + int(max(6, 1.6 * len(cols)))))
    if len(rows) < 3:
        return None
    # contrast of a dark-above / bright-below edge between rows r and r + 1: the best over
    # windows of 1 to 4 rows each side (soft edges, as at the tip of a V, need the wide ones)
    gain = np.full((len(rows), len(cols)), -np.inf)
    for k in range(1, 5):
        below = np.mean([grey[np.minimum(rows + d, h - 1)][:, cols] for d in range(1, k + 1)], 0)
        above = np.mean([grey[np.maximum(rows - d + 1, 0)][:, cols] for d in range(1, k + 1)], 0)
        gain = np.maximum(gain, (below - above) / np.maximum(below, 20.0))
    inside = mask[rows][:, cols] & mask[rows + 1][:, cols] & (rows[:, None] >= top[cols][None] + 1)
    gain = np.where(inside, gain, -1.0)
    n_rows, width = len(rows), len(cols)
    moves = np.arange(-NECK_SLOPE, NECK_SLOPE + 1)
    score = np.full((width, n_rows), -np.inf)
    back = np.zeros((width, n_rows), np.int64)
    start_row = int(np.clip(round(left[1]) - y_start, 0, n_rows - 1))
    score[0, : start_row + 3] = gain[: start_row + 3, 0]
    for j in range(1, width):
        shifted = np.full((len(moves), n_rows), -np.inf)
        for k, dm in enumerate(moves):  # arriving at row r from row r - dm
            src = np.arange(n_rows) - dm
            ok = (src >= 0) & (src < n_rows)
            shifted[k, ok] = score[j - 1, src[ok]] - NECK_TURN_COST * abs(dm)
        best = shifted.argmax(0)
        score[j] = shifted[best, np.arange(n_rows)] + gain[:, j]
        back[j] = np.arange(n_rows) - moves[best]
    end_row = int(np.clip(round(right[1]) - y_start, 0, n_rows - 1))
    last = score[-1].copy()
    last[end_row + 3 :] = -np.inf
    r = int(np.argmax(last))
    path = np.empty(width, np.int64)
    for j in range(width - 1, -1, -1):
        path[j] = r
        r = back[j, r]
    return np.stack([cols.astype(np.float64), rows[path] + 0.5], 1)


def garment_landmarks(mask: np.ndarray, image: np.ndarray, one_piece: bool | None = None) -> np.ndarray:
    """The 32 landmarks (32, 3) of the upper garment in ``mask`` (H, W) {0, 1} (its in-shop image
    ``image`` RGB uint8 (H, W, 3), front view, plain background); module docstring for the rules.
    ``one_piece``: True for a dress or jumpsuit (the landmarks of its top part), False for a top,
    None to tell from its :func:`garment_length`. Raises :class:`NoGarmentError` for an empty mask."""
    mask = _clean(mask)
    if one_piece is False:
        return _garment_landmarks(mask, image)
    frame = _upper_frame(mask, image)
    if one_piece is None:
        one_piece = frame.consistent and frame.length(mask) > ONE_PIECE_LENGTH
    if not one_piece:
        return _garment_landmarks(mask, image)
    return _garment_landmarks(_rows_above(mask, frame.neck_y + ONE_PIECE_HEM * frame.torso), image)


def garment_length(mask: np.ndarray, image: np.ndarray) -> float | None:
    """How far the garment of an in-shop image (as :func:`garment_landmarks` takes it) reaches
    below its neck corners, in torso widths (armpit to armpit): a top up to about 2.05, a dress
    or jumpsuit from about 2.2 (longer than :data:`ONE_PIECE_LENGTH`: one piece). None when the
    armpits are not level and centred under the neck (``FRAME_TOLERANCE``): a broken mask, e.g.
    a white garment partly lost on a white background."""
    mask = _clean(mask)
    frame = _upper_frame(mask, image)
    return frame.length(mask) if frame.consistent else None


def garment_kind(mask: np.ndarray, image: np.ndarray) -> str | None:
    """``top``, ``dress`` or ``jumpsuit``: what the garment of an in-shop image is, from its
    :func:`garment_length` and, for a one-piece garment, whether it has two legs (the column
    under the neck leaves the mask more than ``LEG_GAP`` torso widths above its bottom); None
    when its shape is unreadable (:func:`garment_length` None)."""
    mask = _clean(mask)
    frame = _upper_frame(mask, image)
    if not frame.consistent:
        return None
    if frame.length(mask) <= ONE_PIECE_LENGTH:
        return "top"
    column = np.flatnonzero(mask[:, int(np.clip(round(frame.centre_x), 0, mask.shape[1] - 1))])
    return "jumpsuit" if _bottom(mask) - (column[-1] + 0.5) > LEG_GAP * frame.torso else "dress"


def _clean(mask: np.ndarray) -> np.ndarray:
    """The mask's largest component, holes filled; :class:`NoGarmentError` when under 50 px."""
    mask = ndimage.binary_fill_holes(_largest_component(np.asarray(mask).astype(bool)))
    if mask.sum() < 50:
        raise NoGarmentError(f"garment mask of {int(mask.sum())} px")
    return mask


def _bottom(mask: np.ndarray) -> float:
    """The bottom edge of the mask's lowest row (px)."""
    return float(np.flatnonzero(mask.any(1))[-1]) + 0.5


class _UpperFrame(NamedTuple):
    """From a garment's upper part (a jumpsuit's crotch is a sharper concave corner than a
    sleeveless armhole): the neck corners' mean row and column and the armpits' distance (px, at
    least 1), and whether the armpits are level and centred under the neck."""

    neck_y: float
    centre_x: float
    torso: float
    consistent: bool

    def length(self, mask: np.ndarray) -> float:
        """The mask's bottom below the neck, in torso widths."""
        return float((_bottom(mask) - self.neck_y) / self.torso)


def _upper_frame(mask: np.ndarray, image: np.ndarray) -> _UpperFrame:
    rows = np.flatnonzero(mask.any(1))
    shoulders = max(np.ptp(np.flatnonzero(r)) + 1 for r in mask[rows[0] : rows[0] + max(1, len(rows) // 10)] if r.any())
    upper = _garment_landmarks(_rows_above(mask, rows[0] + UPPER_PART * shoulders), image)
    torso = max(1.0, float(abs(upper[8, 0] - upper[18, 0])))
    level = abs(upper[8, 1] - upper[18, 1]) / torso
    centre_x = 0.5 * float(upper[1, 0] + upper[6, 0])
    centred = abs(0.5 * (upper[8, 0] + upper[18, 0]) - centre_x) / torso
    consistent = bool(level < FRAME_TOLERANCE[0] and centred < FRAME_TOLERANCE[1])
    return _UpperFrame(0.5 * float(upper[1, 1] + upper[6, 1]), centre_x, torso, consistent)


def _rows_above(mask: np.ndarray, y: float) -> np.ndarray:
    """``mask`` without its rows below image row ``y`` (px)."""
    out = mask.copy()
    out[int(np.floor(y)) + 1 :] = False
    return out


def _garment_landmarks(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    """:func:`garment_landmarks` of a cleaned mask (filled, one component), the whole of it a top."""
    h, w = mask.shape
    cols = np.flatnonzero(mask.any(0))
    width = cols[-1] - cols[0] + 1
    scale = float(np.sqrt(mask.sum()))  # px: the garment's size
    c = _smooth_closed(outer_contour(mask), max(1.0, scale / 120))
    n = len(c)
    out = np.zeros((NUM_LANDMARKS, 3), np.float32)
    out[:, 2] = ABSENT

    def put(k: int, p: np.ndarray) -> None:
        out[k] = (p[0], p[1], VISIBLE)

    # top profile: highest mask pixel per column (on its upper edge)
    top = np.where(mask.any(0), mask.argmax(0), h).astype(np.float64)
    mid_x = 0.5 * (cols[0] + cols[-1])
    # the neck corners: the highest contour points either side of the middle
    upper = c[:, 1] < np.percentile(c[:, 1], 50)
    in_band = np.abs(c[:, 0] - mid_x) < 0.3 * width
    if not (upper & in_band & (c[:, 0] >= mid_x)).any() or not (upper & in_band & (c[:, 0] < mid_x)).any():
        raise NoGarmentError("no neck opening found")
    neck_r = int(np.argmin(np.where(upper & in_band & (c[:, 0] >= mid_x), c[:, 1], np.inf)))  # the wearer's left
    neck_l = int(np.argmin(np.where(upper & in_band & (c[:, 0] < mid_x), c[:, 1], np.inf)))
    put(1, c[neck_r])
    put(6, c[neck_l])
    centre_x = 0.5 * (c[neck_r, 0] + c[neck_l, 0])
    half_width = 0.5 * (c[neck_r, 0] - c[neck_l, 0])
    # the collar's back: the dip of the contour between the neck corners, at the centre
    between = _path(n, neck_l, neck_r)
    dip = between[np.argmin(np.abs(c[between, 0] - centre_x))]
    put(0, c[dip])
    # the hem's middle: the bottom of the mask under the collar
    xc = int(np.clip(round(centre_x), 0, w - 1))
    bottom_rows = np.flatnonzero(mask[:, xc])
    hem_mid = int(np.argmin(np.abs(c[:, 0] - centre_x) + np.where(c[:, 1] > bottom_rows[-1] - 0.25 * scale, 0.0, np.inf)))
    put(30, c[hem_mid])
    # the front neckline
    neckline = _neckline_path(image, mask, c[neck_l], c[neck_r], top)
    for k, fraction in NECK_FRACTIONS.items():
        if k in (1, 6):
            continue
        if neckline is None:
            put(k, np.array([centre_x + fraction * half_width, c[dip, 1]]))
        else:
            x = centre_x + fraction * half_width
            put(k, np.array([x, np.interp(x, neckline[:, 0], neckline[:, 1])]))

    step = max(2, int(round(scale / 40)))
    angle = turning(c, step)
    coarse_step = max(3, int(round(scale / 12)))
    coarse_angle = turning(c, coarse_step)
    # the wearer's left is the image's right: walk clockwise from the right neck corner to the
    # hem's middle, and counter-clockwise (a reversed contour) from the left one
    sides = []
    for side, start, forward in (("left", neck_r, True), ("right", neck_l, False)):
        path = _path(n, start, hem_mid) if forward else _path(n, hem_mid, start)[::-1]
        outward = 1.0 if forward else -1.0
        armpit, hem_corner = _armpit_and_hem_corner(angle[path], coarse_angle[path], coarse_step)
        upper = c[path[: armpit + 1]]
        if not _has_sleeve(upper, outward, scale):
            # an armhole curves smoothly into the side: its bottom is where the side stands out most
            below = np.flatnonzero(c[path, 1] <= c[path[armpit], 1] + 0.25 * scale)
            below = below[(below >= armpit) & (below < hem_corner)]
            if len(below):
                armpit = int(below[np.argmax(outward * c[path[below], 0])])
        ids = side_ids(side)
        put(ids["armpit"], c[path[armpit]])
        put(29 if forward else 31, c[path[hem_corner]])
        sides.append((ids, c[path[: armpit + 1]], angle[path[: armpit + 1]], outward))
    torso = abs(out[8, 0] - out[18, 0])
    for ids, upper, turn, outward in sides:
        _garment_sleeve(upper, turn, step, ids, put, torso, scale, outward)
    _garment_waist(mask, out)
    return out


def _armpit_and_hem_corner(turn: np.ndarray, coarse_turn: np.ndarray, window: int) -> tuple[int, int]:
    """Indices along one side's contour path (neck corner -> hem middle) of the armpit and the
    hem corner. The armpit: the sharpest concave corner at the garment's scale (``coarse_turn``)
    away from the path's ends, refined to the sharpest concave point at the fine scale (``turn``)
    within ``window`` points of it (an armhole's rounded curve ends in a corner at the side
    seam); the hem corner: the sharpest convex corner after it."""
    m = len(turn)
    lo, hi = int(0.1 * m), int(0.85 * m)
    coarse = lo + int(np.argmin(coarse_turn[lo:hi]))
    near = np.arange(max(lo, coarse - window), min(hi, coarse + window + 1))
    armpit = int(near[np.argmin(turn[near])])
    after = np.arange(armpit + 1, m - max(1, int(0.03 * m)))
    return armpit, int(after[np.argmax(turn[after])]) if len(after) else m - 1


def _has_sleeve(upper: np.ndarray, outward: float, scale: float) -> bool:
    """Does the contour from the neck corner to the armpit (``upper``) reach out beyond the
    armpit by a tenth of the garment's size (a sleeve; a sleeveless top's armhole does not)?"""
    return bool(outward * (upper[:, 0].max() if outward > 0 else upper[:, 0].min()) - outward * upper[-1, 0] >= 0.1 * scale)


def _garment_sleeve(upper: np.ndarray, turn: np.ndarray, step: int, ids: dict[str, int], put, torso: float, scale: float, outward: float) -> None:
    """Shoulder and sleeve points of one side from its contour ``upper`` (neck corner -> armpit)
    and the turning angle along it (over chords of ``step`` points);
    ``outward`` +1 when the side is the image's right, -1 when left; ``torso`` px armpit to
    armpit, ``scale`` px the garment's size."""
    pit = upper[-1]

    def shoulder_above(end: int, inset: float) -> int:
        """The first point from the neck corner to ``end`` reaching the armpit's x moved ``inset`` torso widths in."""
        target = pit[0] - outward * inset * torso
        reached = np.flatnonzero(outward * (upper[: end + 1, 0] - target) >= 0)
        return int(reached[0]) if len(reached) else int(np.argmax(outward * upper[: end + 1, 0]))

    if not _has_sleeve(upper, outward, scale):
        # the armhole's outer top corner: the extreme up and out (45 degrees) of the strap
        strap = upper[: max(1, len(upper) // 2)]
        put(ids["shoulder"], strap[int(np.argmax(outward * strap[:, 0] - strap[:, 1]))])
        return
    tip = int(np.argmax(outward * upper[:, 0]))
    shoulder = shoulder_above(tip, SHOULDER_INSET)
    put(ids["shoulder"], upper[shoulder])
    # the sleeve end's corners: the two sharpest convex corners near the sleeve's tip (its
    # outermost point), the exterior one on the way out, the interior one on the way back
    near_tip = np.linalg.norm(upper - upper[tip], axis=1) < 0.6 * np.linalg.norm(upper[tip] - pit)
    sharp = np.where(near_tip, turn, -np.inf)
    sharp[: shoulder + 1] = -np.inf
    index = np.arange(len(upper))
    exterior = int(np.argmax(np.where(index <= tip, sharp, -np.inf)))
    apart = np.linalg.norm(upper - upper[exterior], axis=1) > 2.5 * step  # not the same corner again
    interior = int(np.argmax(np.where((index > exterior) & apart, sharp, -np.inf)))
    put(ids["sleeve_end_exterior"], upper[exterior])
    put(ids["sleeve_end_interior"], upper[interior])
    _sleeve_sections(upper[shoulder], pit, upper[exterior], upper[interior], upper[shoulder : exterior + 1], upper[interior:], ids, put, torso)


def _sleeve_sections(shoulder, pit, exterior, interior, outer_edge, inner_edge, ids, put, torso: float) -> None:
    """Upper arm, elbow and lower arm points of one sleeve from its root (shoulder, armpit), end
    corners and edges (polylines), for a torso ``torso`` px wide. A section is present when the
    sleeve's end lies past it along the arm (the estimate of the reach runs about
    ``SLEEVE_MARGIN`` short of the definition's, so no margin is added)."""
    root = 0.5 * (shoulder + pit)
    end = 0.5 * (exterior + interior)
    axis = end - root
    length = np.linalg.norm(axis)
    u = axis / max(length, 1e-9)
    reach = (length / max(torso, 1e-9) - ARM_AXIS[1]) / ARM_AXIS[0]  # fraction of the arm
    across = np.array([-u[1], u[0]])
    if np.dot(across, exterior - interior) < 0:
        across = -across  # towards the exterior edge
    for section, t in ARM_SECTIONS.items():
        if reach < t:
            continue
        centre = root + u * torso * (ARM_AXIS[0] * t + ARM_AXIS[1])
        put(ids[f"{section}_exterior"], _cross(outer_edge, centre, across))
        put(ids[f"{section}_interior"], _cross(inner_edge, centre, -across))


def _cross(edge: np.ndarray, centre: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The point of the polyline ``edge`` nearest to the ray from ``centre`` along ``direction``
    (on its positive side)."""
    rel = edge - centre
    along = rel @ direction
    off = np.abs(rel @ np.array([-direction[1], direction[0]]))
    k = int(np.argmin(np.where(along > 0, off, np.inf)))
    return edge[k]


def _garment_waist(mask: np.ndarray, out: np.ndarray) -> None:
    """Waist points 27, 28: the ends of the torso's row (the mask's run under the collar)
    ``WAIST_BELOW_ARMPIT`` torso widths below the armpits (above the hem)."""
    pit_y = 0.5 * (out[8, 1] + out[18, 1])
    torso = abs(out[8, 0] - out[18, 0])
    row = int(np.clip(round(min(pit_y + WAIST_BELOW_ARMPIT * torso, min(out[29, 1], out[31, 1]) - 1)), 0, mask.shape[0] - 1))
    start, stop = _run_ends(mask[row], int(round(out[30, 0])))
    out[27] = (stop + 0.5, row, VISIBLE)
    out[28] = (start - 0.5, row, VISIBLE)


def _run_ends(row: np.ndarray, x: int) -> tuple[int, int]:
    """First and last column of the run of True in ``row`` holding column ``x`` (or nearest to it)."""
    on = np.flatnonzero(row)
    if not len(on):
        return x, x
    x = int(on[np.argmin(np.abs(on - x))])
    breaks = np.flatnonzero(np.diff(on) > 1)
    starts, stops = np.r_[on[0], on[breaks + 1]], np.r_[on[breaks], on[-1]]
    k = int(np.searchsorted(stops, x))
    return int(starts[k]), int(stops[k])
