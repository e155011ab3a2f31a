"""The person's skeleton completed from COCO-18 keypoints, its body capsules, and body parts
from the keypoints or from DensePose's part map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .constants import (
    DENSEPOSE_PART,
    L_ANKLE,
    L_EAR,
    L_ELBOW,
    L_EYE,
    L_HIP,
    L_KNEE,
    L_SHOULDER,
    L_WRIST,
    LENGTH,
    NECK,
    NOSE,
    R_ANKLE,
    R_EAR,
    R_ELBOW,
    R_EYE,
    R_HIP,
    R_KNEE,
    R_SHOULDER,
    R_WRIST,
    RADIUS,
    MissingKeypointsError,
    Part,
)

#: :meth:`Skeleton.facing_away`'s margin, in torso lengths (MediaPipe keypoints on 186 sample
#: photos: the two pairs' summed offset is -1.15..-0.46 on front views, -1.0..-0.5 on all but one
#: side view, 0.86..1.12 on 17 of 18 back views; the others had the sides swapped)
FACING_MARGIN = 0.3


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

    def facing_away(self) -> bool:
        """Whether the keypoints show the person from behind: with both shoulders detected, their
        right shoulder and hip lie to the image's right of their left ones (seen from the front
        they lie to its left), by more than ``FACING_MARGIN`` of the torso length summed over the
        two pairs (a side view's pairs nearly coincide and count as not away)."""
        if not (self.detected[R_SHOULDER] and self.detected[L_SHOULDER]):
            return False
        across = self.xy[R_SHOULDER, 0] - self.xy[L_SHOULDER, 0]
        if self.detected[R_HIP] and self.detected[L_HIP]:
            across += self.xy[R_HIP, 0] - self.xy[L_HIP, 0]
        return bool(across > FACING_MARGIN * self.scale)

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
