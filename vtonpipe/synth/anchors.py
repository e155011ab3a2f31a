"""The 32 garment landmarks of a top, anchored to points of the body surface.

Each landmark (:mod:`vtonpipe.converters.landmarks`) is a point of the person's rest body, found
from the top's field (:func:`~vtonpipe.synth.garments.top_field`): on the boundary of the region
(neckline, hem, cuffs, armholes; exact points where the interpolated field crosses zero on mesh
edges) or at a vertex (shoulder seam ends, armpits, the sleeve at the upper arm, elbow and lower arm, the
waist line). An anchor is a blend of two
vertices ``(1 - t) v_i + t v_j``, so it follows the body into any pose and onto the garment shell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..converters.landmarks import (
    NECK_FRACTIONS,
    NUM_LANDMARKS,
    SLEEVE_MARGIN,
    WAIST_FRACTION,
    side_ids,
)
from .fields import BodyFields


@dataclass
class Anchors:
    """``i``, ``j`` (32,) int64 vertex ids, ``t`` (32,) float64: landmark k is at ``(1 - t) v_i + t v_j``;
    ``present`` (32,) bool (absent landmarks have ``i = j = 0``)."""

    i: np.ndarray
    j: np.ndarray
    t: np.ndarray
    present: np.ndarray

    def points(self, vertices: np.ndarray) -> np.ndarray:
        """(32, 3) landmark positions on a mesh of the body's topology (absent ones included)."""
        return (1.0 - self.t)[:, None] * vertices[self.i] + self.t[:, None] * vertices[self.j]


@dataclass
class _Boundary:
    """Zero crossings of a field on mesh edges: edge (a, b), fraction t from a to b, position, and
    the connected curve each belongs to."""

    a: np.ndarray
    b: np.ndarray
    t: np.ndarray
    pos: np.ndarray
    curve: np.ndarray


def _boundary(vertices: np.ndarray, faces: np.ndarray, field: np.ndarray) -> _Boundary:
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges.sort(1)
    keys, inverse = np.unique(edges, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    fa, fb = field[keys[:, 0]], field[keys[:, 1]]
    crossing = (fa > 0) != (fb > 0)
    ids = np.full(len(keys), -1)
    ids[crossing] = np.arange(crossing.sum())
    # a face crossed by the level set has exactly two crossing edges: they form one curve segment
    per_face = ids[inverse.reshape(3, -1).T]  # (F, 3)
    seg = per_face[(per_face >= 0).sum(1) == 2]
    seg = np.sort(seg, 1)[:, 1:]
    n = int(crossing.sum())
    graph = coo_matrix((np.ones(len(seg)), (seg[:, 0], seg[:, 1])), shape=(n, n))
    _, curve = connected_components(graph, directed=False)
    a, b = keys[crossing, 0], keys[crossing, 1]
    t = field[a] / (field[a] - field[b])
    pos = (1 - t)[:, None] * vertices[a] + t[:, None] * vertices[b]
    return _Boundary(a, b, t, pos, curve)


def waist_height(fields: BodyFields) -> float:
    """Height (m) of the waist line: ``WAIST_FRACTION`` of the way from the pelvis (anny's root
    joint) up to the shoulder joints."""
    lo, hi = fields.joints["root"][2], fields.joints["upperarm01.L"][2]
    return float(lo + WAIST_FRACTION * (hi - lo))


def top_anchors(fields: BodyFields, faces: np.ndarray, field: np.ndarray, category: str) -> Anchors:
    """Anchors of the 32 landmarks (:mod:`vtonpipe.converters.landmarks`) of a top of ``category``
    (tee, long_sleeve, sleeveless) with signed per-vertex ``field`` (m) on the rest body of
    ``fields``.

    Which points the top has follows from the field: a sleeve point when the sleeve (the field's
    positive side on that arm) reaches past its position along the arm by ``SLEEVE_MARGIN`` of
    the arm length; the waist points when the hem lies below the waist line.
    """
    rest, j = fields.rest, fields.joints
    bd = _boundary(rest, faces, field)
    curves, sizes = np.unique(bd.curve, return_counts=True)
    curves = curves[sizes >= 6]  # ignore specks
    if len(curves) != 4:
        raise ValueError(f"the {category}'s boundary has {len(curves)} curves, expected 4 (neckline, hem, two arm openings)")
    centroid = np.array([bd.pos[bd.curve == c].mean(0) for c in curves])
    neck_curve = curves[np.argmax(np.where(np.abs(centroid[:, 0]) < 0.06, centroid[:, 2], -np.inf))]
    hem_curve = curves[np.argmin(np.where(np.abs(centroid[:, 0]) < 0.06, centroid[:, 2], np.inf))]
    arm_curve = {s: curves[np.argmax(s * centroid[:, 0])] for s in (1, -1)}  # cuff or armhole per side

    i, jj, t = np.zeros(NUM_LANDMARKS, np.int64), np.zeros(NUM_LANDMARKS, np.int64), np.zeros(NUM_LANDMARKS)
    present = np.zeros(NUM_LANDMARKS, bool)

    def on_curve(k: int, curve: int, score: np.ndarray) -> np.ndarray:
        """Landmark k := the point of ``curve`` maximising ``score`` (evaluated on all crossings);
        returns its rest position."""
        m = np.flatnonzero(bd.curve == curve)
        best = m[np.argmax(score[m])]
        i[k], jj[k], t[k] = bd.a[best], bd.b[best], bd.t[best]
        present[k] = True
        return bd.pos[best]

    def at_vertex(k: int, candidates: np.ndarray, score: np.ndarray) -> None:
        """Landmark k := the vertex among ``candidates`` (V,) bool maximising ``score`` (V,)."""
        v = np.flatnonzero(candidates)
        best = v[np.argmax(score[v])]
        i[k] = jj[k] = best
        present[k] = True

    x, y, z = bd.pos.T
    front = y < j["neck01"][1]  # points on the front half, as a front view shows them
    # neckline: the back's centre, the front's extremes, the front points between them
    on_curve(0, neck_curve, np.where(~front, -np.abs(x), -np.inf))
    left_x = on_curve(1, neck_curve, np.where(front, x, -np.inf))[0]
    right_x = on_curve(6, neck_curve, np.where(front, -x, -np.inf))[0]
    centre, half_width = 0.5 * (left_x + right_x), 0.5 * (left_x - right_x)
    for k, fraction in NECK_FRACTIONS.items():
        if k not in (1, 6):
            on_curve(k, neck_curve, np.where(front, -np.abs(x - (centre + fraction * half_width)), -np.inf))
    hem_front = np.where(y < j["root"][1], -np.abs(x), -np.inf)
    on_curve(29, hem_curve, x)
    on_curve(30, hem_curve, hem_front)
    hem_z = on_curve(31, hem_curve, -x)[2]

    inside = field > 0
    waist_z = waist_height(fields)
    if hem_z < waist_z - 0.01:
        torso = (fields.arm < 0.15) & (fields.leg < 0.15) & (fields.head + fields.neck < 0.15)
        waist_band = torso & inside & (np.abs(rest[:, 2] - waist_z) < 0.01)
        at_vertex(27, waist_band, rest[:, 0])
        at_vertex(28, waist_band, -rest[:, 0])

    a0 = fields.arm_rest_angle()
    arm_length = fields.arm_length()
    for s, side in ((1, "L"), (-1, "R")):
        ids = side_ids("left" if s == 1 else "right")
        outward = np.array([s * np.cos(a0), 0.0, np.sin(a0)])  # perpendicular to the arm, up and out
        if category == "sleeveless":
            # the armhole's top, and its bottom's outer end (where it meets the side seam)
            on_curve(ids["shoulder"], arm_curve[s], z)
            hole_front = front & (bd.curve == arm_curve[s])
            bottom = hole_front & (z < z[hole_front].min() + 0.01)
            on_curve(ids["armpit"], arm_curve[s], np.where(bottom, s * x, -np.inf))
            continue
        seam = inside & (np.abs(fields.arm - 0.5) < 0.15) & (fields.side == s)
        at_vertex(ids["shoulder"], seam, rest[:, 2])
        at_vertex(ids["armpit"], seam & (rest[:, 1] < j["upperarm01.L"][1]), -rest[:, 2])
        cuff = bd.pos @ outward
        on_curve(ids["sleeve_end_exterior"], arm_curve[s], cuff)
        on_curve(ids["sleeve_end_interior"], arm_curve[s], -cuff)
        # sections along the arm (m from the shoulder joint, on the shoulder -> wrist axis)
        shoulder = j[f"upperarm01.{side}"]
        axis = (j[f"wrist.{side}"] - shoulder) / np.linalg.norm(j[f"wrist.{side}"] - shoulder)
        t_elbow = float((j[f"lowerarm01.{side}"] - shoulder) @ axis)
        on_arm = (fields.side == s) & (fields.arm > 0.9)
        reach = fields.arm_t[on_arm & inside].max()
        across = rest @ outward
        for section, t_section in (("upper_arm", 0.5 * t_elbow), ("elbow", t_elbow), ("lower_arm", 0.5 * (t_elbow + arm_length))):
            if reach - t_section >= SLEEVE_MARGIN * arm_length:
                ring = on_arm & inside & (np.abs(fields.arm_t - t_section) < 0.012)
                at_vertex(ids[f"{section}_exterior"], ring, across)
                at_vertex(ids[f"{section}_interior"], ring, -across)

    i[~present] = jj[~present] = 0
    t[~present] = 0.0
    return Anchors(i, jj, t, present)
