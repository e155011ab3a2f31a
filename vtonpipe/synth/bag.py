"""A shoulder bag worn across the body (:class:`~vtonpipe.synth.garments.Bag`): a box in front of
the hip, moving rigidly with the pelvis, and a strap lying on the front of the torso from the
other shoulder down to the box (a :class:`~vtonpipe.synth.geometry.SurfaceStrip`), both built on
the rest body."""

from __future__ import annotations

import numpy as np

from ..models.render.raster import EmbreeMesh
from .fields import BodyFields
from .garments import Bag
from .geometry import SurfaceStrip, front_hits, front_strip

#: m: the bag's top above the pelvis joint, its gap to the body's front, the strap's width and
#: how far it stands off the body, and its grid (rows along it, columns across)
BAG_TOP = 0.06
BAG_GAP = 0.01
STRAP_WIDTH = 0.03
STRAP_OFFSET = 0.012
STRAP_ROWS, STRAP_COLUMNS = 24, 3
#: the box's six faces: the axis of each one's outward normal and its sign
_SIDES = [(0, 1.0), (0, -1.0), (1, 1.0), (1, -1.0), (2, 1.0), (2, -1.0)]


def bag_box(fields: BodyFields, mesh: EmbreeMesh, bag: Bag) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rest-pose box: vertices (24, 3) (four per face, so it shades flat), faces (12, 3) wound
    outwards, and the rest body's vertices that carry it (the pelvis region)."""
    f = fields
    root = f.joints["root"]
    centre_x = root[0] + bag.side * (0.5 * bag.width + 0.02)
    top = root[2] + BAG_TOP
    xs, zs = np.meshgrid(np.linspace(centre_x - bag.width / 2, centre_x + bag.width / 2, 7), np.linspace(top - bag.height, top, 7))
    face, _, points = front_hits(mesh, xs.reshape(-1), zs.reshape(-1))
    body_front = points[face >= 0, 1].min() if (face >= 0).any() else root[1] - 0.12
    lo = np.array([centre_x - bag.width / 2, body_front - BAG_GAP - bag.depth, top - bag.height])
    hi = np.array([centre_x + bag.width / 2, body_front - BAG_GAP, top])
    vertices, faces = [], []
    for axis, sign in _SIDES:
        u, v = [a for a in range(3) if a != axis]
        corners = []
        for cu, cv in ((0, 0), (1, 0), (1, 1), (0, 1)):
            c = np.empty(3)
            c[axis] = hi[axis] if sign > 0 else lo[axis]
            c[u], c[v] = (lo[u], hi[u])[cu], (lo[v], hi[v])[cv]
            corners.append(c)
        base = len(vertices)
        vertices += corners
        quad = [(base, base + 1, base + 2), (base, base + 2, base + 3)]
        normal = np.cross(corners[1] - corners[0], corners[2] - corners[0])
        faces += quad if normal[axis] * sign > 0 else [q[::-1] for q in quad]
    carriers = np.flatnonzero((np.abs(f.z - root[2]) < 0.12) & (f.leg < 0.3) & (f.arm < 0.3))
    return np.array(vertices), np.array(faces), carriers


def bag_strap(fields: BodyFields, mesh: EmbreeMesh, bag: Bag) -> SurfaceStrip:
    """The strap on the rest body's front: from the shoulder opposite the bag, across the chest,
    down to the box's inner top corner."""
    f = fields
    root = f.joints["root"]
    shoulder = f.joints["coco:right_shoulder" if bag.side > 0 else "coco:left_shoulder"]
    start = np.array([0.55 * shoulder[0], shoulder[2] - 0.01])  # over the collarbone, short of the shoulder
    end = np.array([root[0] + bag.side * 0.03, root[2] + BAG_TOP])
    along = end - start
    across = np.array([-along[1], along[0]]) / np.linalg.norm(along)
    t = np.linspace(0.0, 1.0, STRAP_ROWS)[:, None, None]
    w = np.linspace(-0.5, 0.5, STRAP_COLUMNS)[None, :, None] * STRAP_WIDTH
    grid = start + t * along + w * across  # (rows, columns, 2): x, z
    return front_strip(mesh, grid[..., 0], grid[..., 1])
