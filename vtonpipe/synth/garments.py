"""Garments, hair and shoes as regions of the body surface, and their fabrics.

A region is the positive side of a signed per-vertex field (metres) built from
:class:`~vtonpipe.synth.fields.BodyFields`; see that module for why fields, not face sets. Where the
field is positive the clothed surface is pushed out along the normal by the item's thickness
(:func:`displacement`), ramping in over ``EDGE_RAMP`` so the surface stays continuous. Skirts are
the exception: they stand off the legs and get their own mesh (:mod:`vtonpipe.synth.skirt`); on
the body they only mark the region they cover.

Recipes are frozen dataclasses of plain values (JSON in ``sample.json``): colours are sRGB
``0..255`` triples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .fields import BodyFields

EDGE_RAMP = 0.006  # m: width over which a garment's offset ramps in across its boundary
TOP_CATEGORIES = ("tee", "long_sleeve", "sleeveless")
BOTTOM_CATEGORIES = ("trousers", "shorts", "skirt")
#: what a person wears: a top and a bottom, or one garment of the top's fabric joining them, a
#: ``dress`` (top and skirt) or a ``jumpsuit`` (top and trousers or shorts)
OUTFITS = ("separates", "dress", "jumpsuit")


@dataclass(frozen=True)
class Fabric:
    """A print: ``kind`` solid | stripes | checks, ``colour`` and ``colour2`` sRGB, ``period`` m
    (stripes and checks), ``logo`` sRGB of a round chest print or None (tops only)."""

    kind: str
    colour: tuple[int, int, int]
    colour2: tuple[int, int, int]
    period: float
    logo: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class Top:
    """``category`` in ``TOP_CATEGORIES``; ``neckline`` crew | scoop | v; ``hem`` m above the
    pelvis (negative: below); ``sleeve`` fraction of the arm length (0 for sleeveless)."""

    category: str
    neckline: str
    hem: float
    sleeve: float
    fabric: Fabric
    thickness: float = 0.005


@dataclass(frozen=True)
class Bottom:
    """``category`` in ``BOTTOM_CATEGORIES``; ``waist`` m above the pelvis; ``length`` fraction of
    the leg length (hip to ankle joint) at which the trouser legs or the skirt end; ``flare`` how
    far a skirt's hem stands out beyond the legs (m)."""

    category: str
    waist: float
    length: float
    fabric: Fabric
    flare: float = 0.0
    thickness: float = 0.004


@dataclass(frozen=True)
class Hair:
    """Hairline elevations (degrees, seen from the ears' midpoint) at the front, sides and back,
    ``volume`` m of extra thickness on top, sRGB ``colour``; ``length`` m below the ears that a
    curtain of hair falls to (:mod:`vtonpipe.synth.hair`), 0 for short hair; ``over_shoulders``
    m below the shoulders that two locks falling over the front of the shoulders reach on the
    chest, 0 for none."""

    front: float
    side: float
    back: float
    volume: float
    colour: tuple[int, int, int]
    length: float = 0.0
    over_shoulders: float = 0.0


@dataclass(frozen=True)
class Bag:
    """A shoulder bag worn across the body, an occluder that is not the person (LIP has no bag
    class; it is background in every ground truth): a box ``width`` x ``height`` x ``depth`` m
    in front of the hip on ``side`` (+1 the person's left, -1 the right), on a strap over the
    other shoulder; sRGB ``colour``."""

    side: float
    width: float
    height: float
    depth: float
    colour: tuple[int, int, int]


@dataclass(frozen=True)
class Shoes:
    """``height`` m above the ankle joint, sRGB ``colour``."""

    height: float
    colour: tuple[int, int, int]


def srgb_to_linear(c) -> np.ndarray:
    """sRGB in 0..255 -> linear-light 0..1 (IEC 61966-2-1)."""
    c = np.asarray(c, np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _mix(w: np.ndarray, inside: np.ndarray, outside) -> np.ndarray:
    return (1.0 - w) * inside + w * outside


def top_field(f: BodyFields, top: Top) -> np.ndarray:
    """Signed field (m) of a top: torso between the neckline and the hem, and sleeves down to
    ``sleeve`` of the arm; a sleeveless top has rounded armholes leaving 4 to 5 cm wide straps."""
    j = f.joints
    neck = j["neck01"][2] + 0.005  # the neckline's height at the sides of the neck
    c = np.cos(f.neck_azim)
    if top.neckline == "v":
        drop = 0.125 * np.clip(1.0 - np.abs(f.neck_azim) / 1.1, 0.0, 1.0) + 0.025 * np.clip(-c, 0, 1)
    else:
        drop = (0.05 if top.neckline == "crew" else 0.09) * np.clip(c, 0, 1) ** 2 + 0.025 * np.clip(-c, 0, 1)
    torso = np.minimum(f.z - (j["root"][2] + top.hem), neck - drop - f.z)
    if top.sleeve > 0:
        return _mix(f.arm, torso, top.sleeve * f.arm_length() - f.arm_t)
    # armhole: the region beyond the strap (|x| > x0) and above the armpit (z > z0), corner rounded
    radius = 0.06
    x0 = 0.35 * abs(j["coco:left_ear"][0]) + 0.65 * abs(j["upperarm01.L"][0]) - 0.01
    z0 = j["upperarm01.L"][2] - 0.1
    q = np.stack([radius - (np.abs(f.rest[:, 0]) - x0), radius - (f.z - z0)], 1)
    outside_hole = np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(1), 0) - radius
    return _mix(np.clip((f.arm - 0.5) / 0.3, 0, 1), np.minimum(torso, outside_hole), -0.04)  # the hanging arm


def bottom_field(f: BodyFields, bottom: Bottom) -> np.ndarray:
    """Signed field (m) of trousers / shorts (below the waist, legs to ``length``) or of the body
    region a skirt covers (below the waist, above its hem's height)."""
    waist = f.joints["root"][2] + bottom.waist - f.z
    if bottom.category == "skirt":
        hem = f.joints["upperleg01.L"][2] - bottom.length * f.leg_length()
        region = np.minimum(waist, f.z - hem)
    else:
        region = np.minimum(waist, bottom.length * f.leg_length() - f.leg_t)
    return _mix(f.arm, region, -0.04)


def shoes_field(f: BodyFields, shoes: Shoes) -> np.ndarray:
    """Signed field (m) of the shoes: the feet up to ``height`` above the ankle joints."""
    return _mix(f.arm, f.joints["foot.L"][2] + shoes.height - f.z, -0.04)


def hairline(azim: np.ndarray, hair: Hair) -> np.ndarray:
    """Hairline elevation (rad) at head azimuth ``azim`` (rad, 0 = front): a smooth blend of the
    front, side and back elevations."""
    c = np.cos(azim)
    front, side, back = (math.radians(a) for a in (hair.front, hair.side, hair.back))
    return side + (front - side) * np.clip(c, 0, 1) ** 2 + (back - side) * np.clip(-c, 0, 1) ** 1.5


def hair_field(f: BodyFields, hair: Hair) -> np.ndarray:
    """Signed field (m, about 9 cm head radius) of the scalp hair."""
    return _mix(np.clip(f.head + f.neck, 0, 1), -0.04, 0.09 * (f.head_elev - hairline(f.head_azim, hair)))


def hair_thickness(f: BodyFields, hair: Hair) -> np.ndarray:
    """(V,) m: hair is thicker on the crown and at the back."""
    return 0.006 + hair.volume * np.clip(np.sin(f.head_elev) + 0.3 * np.clip(-np.cos(f.head_azim), 0, 1), 0, 1)


def ramp(field: np.ndarray, width: float = EDGE_RAMP) -> np.ndarray:
    """Smoothstep from 0 (``field <= 0``) to 1 (``field >= width``)."""
    t = np.clip(field / width, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def displacement(fields: list[np.ndarray], thickness: list[np.ndarray | float]) -> np.ndarray:
    """(V,) outward offset (m) of the clothed surface: the thickest item covering each vertex."""
    return np.max([ramp(fl) * np.broadcast_to(t, fl.shape) for fl, t in zip(fields, thickness)], axis=0)


def fabric_albedo(fabric: Fabric, uv: np.ndarray) -> np.ndarray:
    """(N, 3) linear albedo of ``fabric`` at pattern coordinates ``uv`` (N, 2) m (u across, v up)."""
    a, b = srgb_to_linear(fabric.colour), srgb_to_linear(fabric.colour2)
    if fabric.kind == "solid":
        t = np.zeros(len(uv))
    elif fabric.kind == "stripes":  # horizontal bands, half of each period in colour2
        t = _band(uv[:, 1] / fabric.period, 0.5)
    elif fabric.kind == "checks":  # gingham: colour2 where both bands cross, half-way where one does
        t = 0.5 * (_band(uv[:, 0] / fabric.period, 0.35) + _band(uv[:, 1] / fabric.period, 0.35))
    else:
        raise ValueError(f"unknown fabric kind {fabric.kind!r}")
    return a + (b - a) * t[:, None]


def _band(s: np.ndarray, duty: float) -> np.ndarray:
    """1.0 on the first ``duty`` of each unit period of ``s``, 0.0 elsewhere (supersampling
    smooths the edges)."""
    return ((s - np.floor(s)) < duty).astype(np.float64)


def logo_mask(xy: np.ndarray, radius: float) -> np.ndarray:
    """(N,) 1.0 on a round print of ``radius`` m centred at ``xy = 0`` ((N, 2) m, x right, y up),
    0.0 elsewhere and on the five-pointed star cut out of its middle (the shirt shows through)."""
    r = np.linalg.norm(xy, axis=1)
    ang = np.arctan2(xy[:, 0], xy[:, 1])
    # star: radius oscillating between 0.38 and 0.8 of the disc, five points
    k = np.abs(((ang * 5 / (2 * np.pi)) % 1.0) - 0.5) * 2  # 1 at the points, 0 between
    star = r < radius * (0.38 + 0.42 * k**2)
    disc = r < radius
    return np.where(star, 0.0, disc.astype(np.float64))
