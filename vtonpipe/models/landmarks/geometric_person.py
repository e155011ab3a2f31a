"""Model-free estimates of the 32 garment landmarks on **person images** (:func:`person_landmarks`;
garment images: :mod:`vtonpipe.models.landmarks.geometric`), from the COCO-18 keypoints, the LIP
parsing (upper clothes, dress, coat and jumpsuits are the garment; face and neck, arms, hair) and the person
mask, in the torso's frame (shoulders' midpoint, down to the hips' midpoint, the wearer's left):

- neckline (0-6): the garment's highest pixels either side of the neck are its corners, the
  garment's top edge between them its front; the collar's back a fixed distance below;
- shoulders: the garment's top edge above the shoulder keypoint; armpits: a fixed offset from
  the shoulder keypoint (both measured on the sample);
- sleeves: along each arm's axis (shoulder -> elbow -> wrist keypoints) the sleeve ends at the
  first bare-arm pixels; a section (half way to the elbow, the elbow, half way to the wrist) is
  present when the sleeve reaches it, its points where a line across the axis leaves the arm;
  a turned body's far arm takes the near arm's sleeve length;
- the torso is the garment outside capsules round the sleeves: its walls on the waist line
  (:data:`~vtonpipe.converters.landmarks.WAIST_FRACTION` up from the hips) are the waist, its
  lower boundary the hem, seen through an arm or hair lying in front of it; a dress's or
  jumpsuit's (mostly dress or jumpsuits pixels) the hem of its top part, :data:`ONE_PIECE_HEM`
  torso lengths down.

Attributes: absent beyond the sleeve; occluded outside the image, for the collar's back when the
face is seen (the front neckline when not: a back view), the far side's neck corner, shoulder,
armpit, waist and hem corner (and the near sleeve's interior points) when the nose lies more
than :data:`TURN_HIDDEN` shoulder widths off the shoulders' midpoint (a turned body), the
armpit under a hanging arm, the shoulder and sleeve end's exterior of a raised arm, a hem corner
whose edge is an arm or hair, and a body or sleeve point whose pixels are mostly hair or another
arm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...converters.landmarks import (
    ABSENT,
    NECK_FRACTIONS,
    NUM_LANDMARKS,
    OCCLUDED,
    VISIBLE,
    WAIST_FRACTION,
    side_ids,
)
from .geometric import NoGarmentError

#: LIP labels (vtonpipe.converters.labels): the upper garment (upper clothes, dress, coat,
#: jumpsuits), the one-piece garments among them, the face (and neck), arms, hair
GARMENT_LABELS = (5, 6, 7, 10)
ONE_PIECE_LABELS = (6, 10)
FACE, HAIR, LEFT_ARM, RIGHT_ARM = 13, 2, 14, 15
#: COCO-18 ids (vtonpipe.converters.keypoints)
NOSE, NECK = 0, 1
ARM_KEYPOINTS = {"left": (5, 6, 7), "right": (2, 3, 4)}  # shoulder, elbow, wrist
HIP_KEYPOINTS = {"left": 11, "right": 8}
#: person proportions in torso lengths (shoulder midpoint to hip midpoint), in the torso's frame
#: (lateral towards the point's own side, down along the torso), measured on the sample's front
#: views with MediaPipe keypoints: where the shoulder seam's end and the armpit lie from the
#: shoulder keypoint, the collar's back below the neck corners, an arm's radius
SHOULDER_FROM_KEYPOINT = (-0.05, -0.06)
ARMPIT_FROM_KEYPOINT = (0.0, 0.2)
COLLAR_BACK_BELOW_NECK = 0.07
ARM_RADIUS = 0.11
#: the neck corners are searched within this many shoulder widths (between the shoulder
#: keypoints) of the torso's midline
NECK_BAND = 0.35
#: a dress's or jumpsuit's top part ends this many torso lengths below the shoulders (its
#: landmarks' hem: the sample's median, 0.99, 10-90% 0.98-1.01, on the hip line)
ONE_PIECE_HEM = 1.0
#: the nose's offset from the shoulders' midpoint, in shoulder widths, beyond which the body is
#: turned enough to hide the far side
TURN_HIDDEN = 0.12


class MissingKeypointsError(ValueError):
    """The keypoints lack what the person estimate needs (both shoulders and a hip)."""


@dataclass
class _Frame:
    """The torso's frame on a person image: ``origin`` the shoulders' midpoint, ``down`` unit
    vector to the hips' midpoint, ``left`` unit vector towards the wearer's left, ``length`` px
    shoulders to hips."""

    origin: np.ndarray
    down: np.ndarray
    left: np.ndarray
    length: float

    def lateral(self, side: str) -> np.ndarray:
        return self.left if side == "left" else -self.left


def _torso_frame(k: np.ndarray) -> _Frame:
    if k[5, 2] <= 0 or k[2, 2] <= 0 or (k[8, 2] <= 0 and k[11, 2] <= 0):
        raise MissingKeypointsError("the person estimate needs both shoulders and a hip")
    shoulders = 0.5 * (k[5, :2] + k[2, :2])
    hips = [k[i, :2] for i in (8, 11) if k[i, 2] > 0]
    hip = np.mean(hips, 0) if len(hips) == 2 else hips[0] + 0.5 * (k[5, :2] - k[2, :2]) * (1 if k[8, 2] > 0 else -1)
    down = hip - shoulders
    length = float(np.linalg.norm(down))
    if length < 4:
        raise MissingKeypointsError(f"shoulders and hips {length:.1f} px apart")
    down = down / length
    left = np.array([-down[1], down[0]])
    if np.dot(left, k[5, :2] - k[2, :2]) < 0:
        left = -left
    return _Frame(shoulders, down, left, length)


def _inside(region: np.ndarray, p: np.ndarray) -> bool:
    x, y = int(round(p[0])), int(round(p[1]))
    return 0 <= y < region.shape[0] and 0 <= x < region.shape[1] and bool(region[y, x])


def _exit(region: np.ndarray, start: np.ndarray, direction: np.ndarray, limit: float, step: float = 0.5) -> np.ndarray | None:
    """Where a walk from ``start`` along ``direction`` first leaves ``region`` (the midpoint of the
    last step inside and the first outside), within ``limit`` px; None if it does not."""
    direction = direction / max(np.linalg.norm(direction), 1e-9)
    was = _inside(region, start)
    for s in np.arange(step, limit + step, step):
        p = start + s * direction
        now = _inside(region, p)
        if was and not now:
            return p - 0.5 * step * direction
        was = was or now
    return None


def _capsule(shape: tuple[int, int], a: np.ndarray, b: np.ndarray, radius: float) -> np.ndarray:
    """(H, W) bool: pixels within ``radius`` px of the segment a-b."""
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    p = np.stack([xs, ys], -1).astype(np.float64)
    ab = b - a
    t = np.clip(((p - a) @ ab) / max(ab @ ab, 1e-9), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1) <= radius


def person_landmarks(keypoints: np.ndarray, parsing: np.ndarray, person_mask: np.ndarray) -> np.ndarray:
    """The 32 landmarks (32, 3) of the upper garment a person wears, from their COCO-18
    ``keypoints`` (18, 3) x, y, confidence, LIP ``parsing`` (H, W) and ``person_mask`` (H, W)
    {0, 1}; module docstring for the rules. Raises :class:`NoGarmentError` without upper-garment
    pixels, :class:`MissingKeypointsError` without both shoulders and a hip."""
    k = np.asarray(keypoints, np.float64)
    garment = np.isin(parsing, GARMENT_LABELS) & person_mask.astype(bool)
    if garment.sum() < 30:
        raise NoGarmentError(f"{int(garment.sum())} upper-garment pixels")
    f = _torso_frame(k)
    h, w = parsing.shape
    if np.isin(parsing[garment], ONE_PIECE_LABELS).mean() > 0.5:  # a dress or jumpsuit: its top part
        ys, xs = np.mgrid[:h, :w]
        garment &= (np.stack([xs, ys], -1) - f.origin) @ f.down <= ONE_PIECE_HEM * f.length
    out = np.zeros((NUM_LANDMARKS, 3), np.float32)
    out[:, 2] = ABSENT

    def put(i: int, p: np.ndarray, attribute: int = VISIBLE) -> None:
        out[i] = (p[0], p[1], attribute)

    shoulder_width = float(np.linalg.norm(k[5, :2] - k[2, :2]))
    nose_offset = float(np.dot(k[NOSE, :2] - f.origin, f.left)) / max(shoulder_width, 1e-9) if k[NOSE, 2] > 0 else 0.0
    seen_from_front = k[NOSE, 2] > 0
    far = ("left" if nose_offset > 0 else "right") if abs(nose_offset) > TURN_HIDDEN else None

    arms = {}
    for side, (s, e, wr) in ARM_KEYPOINTS.items():
        chain = [k[i, :2] for i in (s, e, wr) if k[i, 2] > 0]
        if len(chain) >= 2 and k[s, 2] > 0:
            arms[side] = np.array(chain)
    radius = ARM_RADIUS * f.length
    # the sleeves' reach; a turned body hides its far arm: the near one tells the sleeve's length
    reach = {side: _sleeve_reach(parsing, chain, side) for side, chain in arms.items()}
    if far is not None and far in reach and (near := "right" if far == "left" else "left") in reach:
        reach[far] = reach[near]
    # the torso: the garment outside the sleeves (capsules round each arm's axis as far as the sleeve goes)
    sleeves = np.zeros((h, w), bool)
    for side, chain in arms.items():
        if reach[side] >= SLEEVELESS_REACH:
            total = float(np.linalg.norm(np.diff(chain, axis=0), axis=1).sum())
            points = [chain[0], *[_along(chain, s)[0] for s in np.linspace(0.0, reach[side] * total, 8)[1:]]]
            for a, b in zip(points, points[1:]):
                sleeves |= _capsule((h, w), a, b, radius)
    torso = garment & ~sleeves
    blocked = np.zeros(NUM_LANDMARKS, bool)  # hem corners whose edge is an arm or hair, not the garment's own
    in_front = np.isin(parsing, (HAIR, LEFT_ARM, RIGHT_ARM))

    def edge(start: np.ndarray, direction: np.ndarray, i: int | None = None) -> np.ndarray | None:
        """Where a walk through the torso leaves it, seeing through an arm or hair that lies in
        front of it (the torso resumes beyond within an arm's width); an edge on an arm or hair
        marks point ``i`` blocked."""
        p = _exit(torso, start, direction, f.length)
        u = direction / np.linalg.norm(direction)
        while p is not None and _inside(in_front, p + u):
            ahead = [p + d * u for d in np.arange(1.0, 2.5 * radius, 0.5)]
            resume = next((q for q in ahead if _inside(torso, q)), None)
            if resume is None:
                if i is not None:
                    blocked[i] = True
                break
            p = _exit(torso, resume, u, f.length)
        return p

    _person_neck(out, garment, f, shoulder_width)
    for side in ("left", "right"):
        ids = side_ids(side)
        lat = f.lateral(side)
        shoulder_kp = k[ARM_KEYPOINTS[side][0], :2]
        start = shoulder_kp + f.length * (SHOULDER_FROM_KEYPOINT[0] * lat)
        top = _exit(garment, start + 0.3 * f.length * f.down, -f.down, 0.8 * f.length)
        put(ids["shoulder"], top if top is not None else start + f.length * SHOULDER_FROM_KEYPOINT[1] * f.down)
        put(ids["armpit"], shoulder_kp + f.length * (ARMPIT_FROM_KEYPOINT[0] * lat + ARMPIT_FROM_KEYPOINT[1] * f.down))
    for side, chain in arms.items():
        _person_sleeve(out, parsing, garment, chain, side, f, radius, reach[side])
    # waist line and hem: the torso's side walls and lower boundary
    waist_centre = f.origin + (1 - WAIST_FRACTION) * f.length * f.down
    for side, i in (("left", 27), ("right", 28)):
        if (p := edge(waist_centre, f.lateral(side))) is not None:
            put(i, p)
    bottom = edge(waist_centre, f.down)
    if bottom is not None:
        put(30, bottom)
        for side, i in (("left", 29), ("right", 31)):
            side_wall = edge(bottom - 0.1 * f.length * f.down, f.lateral(side), i)
            if side_wall is not None:  # down the side wall to the hem
                corner = _exit(torso, side_wall - f.lateral(side), f.down, 0.3 * f.length)
                put(i, corner + 0.5 * f.lateral(side) if corner is not None else side_wall + 0.1 * f.length * f.down)
    _person_attributes(out, parsing, f, far, seen_from_front, arms, blocked)
    return out


def _person_neck(out: np.ndarray, garment: np.ndarray, f: _Frame, shoulder_width: float) -> None:
    """Neck points 0-6. The neck corners: the garment's highest pixels (along the torso) either
    side of the neck within ``NECK_BAND`` shoulder widths of the midline; the front neckline
    between them: the garment's top in each column; the collar's back ``COLLAR_BACK_BELOW_NECK``
    torso lengths below the corners' midpoint."""
    ys, xs = np.nonzero(garment)
    rel = np.stack([xs, ys], 1) - f.origin
    lat, down = rel @ f.left, rel @ f.down
    band = (np.abs(lat) <= NECK_BAND * shoulder_width) & (down < 0.25 * f.length)
    corners = {}
    for kk, sign in ((1, 1.0), (6, -1.0)):
        side = band & (sign * lat > 0.03 * shoulder_width)
        if not side.any():
            corners[kk] = f.origin + sign * 0.12 * f.length * f.left - 0.1 * f.length * f.down
            continue
        idx = np.flatnonzero(side)
        top = idx[down[idx] <= down[idx].min() + 0.5]
        i = top[np.argmin(sign * lat[top])]  # the most medial of the highest
        corners[kk] = np.array([xs[i], ys[i] - 0.5], np.float64)
    centre = 0.5 * (corners[1] + corners[6])
    tops = {}  # column -> the garment's top edge, between the corners
    lo, hi = sorted((corners[1][0], corners[6][0]))
    for x, y, inb in zip(xs, ys, band):
        if inb and lo <= x <= hi:
            tops[x] = min(tops.get(x, np.inf), y - 0.5)
    cols = np.array(sorted(tops), np.float64)
    for kk, fraction in NECK_FRACTIONS.items():
        if kk in (1, 6):
            p = corners[kk]
        else:
            x = centre[0] + fraction * 0.5 * (corners[1][0] - corners[6][0])
            p = np.array([x, np.interp(x, cols, [tops[c] for c in cols]) if len(cols) else centre[1]])
        out[kk] = (p[0], p[1], VISIBLE)
    back = centre + COLLAR_BACK_BELOW_NECK * f.length * f.down
    out[0] = (back[0], back[1], VISIBLE)


def _sleeve_reach(parsing: np.ndarray, chain: np.ndarray, side: str) -> float:
    """How far (a fraction of the keypoint chain shoulder -> elbow -> wrist) the sleeve reaches
    along the arm's axis before the first run of two bare-arm pixels of that side."""
    skin = parsing == (LEFT_ARM if side == "left" else RIGHT_ARM)
    seg_len = np.linalg.norm(np.diff(chain, axis=0), axis=1)
    total = float(seg_len.sum())
    samples = np.arange(0.0, total, 0.5)
    bare = np.array([_inside(skin, _along(chain, s)[0]) for s in samples])
    runs = np.flatnonzero(bare[:-1] & bare[1:])
    return float(samples[runs[0]]) / total if len(runs) else 1.0


def _along(chain: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Point and unit direction of the polyline ``chain`` ``s`` px from its start."""
    seg_len = np.linalg.norm(np.diff(chain, axis=0), axis=1)
    ends = np.cumsum(seg_len)
    j = int(np.clip(np.searchsorted(ends, s), 0, len(seg_len) - 1))
    d = (chain[j + 1] - chain[j]) / max(seg_len[j], 1e-9)
    return chain[j] + (s - (ends[j] - seg_len[j])) * d, d


def _person_sleeve(out: np.ndarray, parsing: np.ndarray, garment: np.ndarray, chain: np.ndarray, side: str, f: _Frame, radius: float, reach: float) -> None:
    """Sleeve points of one arm from its keypoint chain (shoulder, elbow[, wrist]) and the
    sleeve's ``reach`` (:func:`_sleeve_reach`): none below ``SLEEVELESS_REACH``; a section when
    the sleeve reaches it; each at the edges of the arm (garment or the arm's skin) across the
    axis."""
    ids = side_ids(side)
    skin = parsing == (LEFT_ARM if side == "left" else RIGHT_ARM)
    seg_len = np.linalg.norm(np.diff(chain, axis=0), axis=1)
    total = float(seg_len.sum())
    if total < 2 or reach < SLEEVELESS_REACH:
        return  # sleeveless: no sleeve points
    end = reach * total
    # sections: half way to the elbow, the elbow, half way to the wrist
    positions = {"upper_arm": 0.5 * seg_len[0], "elbow": seg_len[0]}
    if len(seg_len) > 1:
        positions["lower_arm"] = seg_len[0] + 0.5 * seg_len[1]
    arm_here = garment | skin
    for section, s in [*positions.items(), ("sleeve_end", end - 0.5)]:
        if section != "sleeve_end" and end < s:
            continue
        p, d = _along(chain, min(s, total))
        a, b = d @ f.left, d @ f.down  # the axis in the torso's frame (left, down)
        # exterior: the arm's axis turned a quarter towards its own side when it hangs down
        ext_frame = (b, -a) if side == "left" else (-b, a)
        exterior = ext_frame[0] * f.left + ext_frame[1] * f.down
        for name, direction in (("exterior", exterior), ("interior", -exterior)):
            edge = _exit(arm_here, p, direction, 1.6 * radius)
            q = edge if edge is not None else p + radius * direction
            out[ids[f"{section}_{name}"]] = (q[0], q[1], VISIBLE)


#: a sleeve reaching less than this fraction of the shoulder-to-wrist axis is taken for none
SLEEVELESS_REACH = 0.12


def _arm_pose(chain: np.ndarray, f: _Frame) -> str:
    """``hanging`` (upper arm within 25 degrees of the torso's down direction), ``raised`` (more
    than 115 degrees from it) or ``out``."""
    upper = chain[1] - chain[0]
    angle = np.degrees(np.arccos(np.clip(upper @ f.down / max(np.linalg.norm(upper), 1e-9), -1.0, 1.0)))
    return "hanging" if angle < 25 else "raised" if angle > 115 else "out"


def _person_attributes(out: np.ndarray, parsing: np.ndarray, f: _Frame, far: str | None, seen_from_front: bool, arms: dict, blocked: np.ndarray) -> None:
    """Occluded: outside the image; the collar's back seen from the front, the front neckline
    from the back; the far side's outline points of a turned body (and the near sleeve's
    interior); the armpit under a hanging arm; the shoulder and sleeve end's exterior of a raised
    arm; hem corners whose edge is an arm or hair (``blocked``); a body or sleeve point (not
    the neckline's) whose pixel is mostly hair or the skin of an arm other than its own."""
    h, w = parsing.shape
    present = out[:, 2] != ABSENT
    occluded = blocked.copy()
    occluded[0] = seen_from_front
    if not seen_from_front:
        occluded[1:7] = True
    if far is not None:
        fid, nid = side_ids(far), side_ids("right" if far == "left" else "left")
        occluded[[1 if far == "left" else 6, fid["shoulder"], fid["armpit"], 27 if far == "left" else 28, 29 if far == "left" else 31]] = True
        occluded[[nid["upper_arm_interior"], nid["sleeve_end_interior"]]] = True
    for side, chain in arms.items():
        ids, pose = side_ids(side), _arm_pose(chain, f)
        if pose == "hanging":
            occluded[ids["armpit"]] = True
        elif pose == "raised":
            occluded[[ids["shoulder"], ids["sleeve_end_exterior"]]] = True
    for i in np.flatnonzero(present):
        x, y = int(round(out[i, 0])), int(round(out[i, 1]))
        if not (0 <= x < w and 0 <= y < h):
            occluded[i] = True
            continue
        if i <= 6:
            continue
        own = LEFT_ARM if 7 <= i <= 16 else RIGHT_ARM if 17 <= i <= 26 else None
        patch = parsing[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2]
        covering = (patch == HAIR) | np.isin(patch, [a for a in (LEFT_ARM, RIGHT_ARM) if a != own])
        if covering.mean() > 0.5:
            occluded[i] = True
    out[present & occluded, 2] = OCCLUDED
