"""A dressed person: recipe (phenotype, skin, outfit), and per-pixel materials and LIP labels.

:class:`DressedBody` turns a :class:`PersonRecipe` into per-vertex fields on the person's rest
body (:mod:`vtonpipe.synth.fields`, :mod:`vtonpipe.synth.garments`) and evaluates, at any surface
point given as (face, barycentrics), its material: linear albedo, specular strength and LIP label
(docs/CONVENTIONS.md), deciding region membership from the interpolated fields at that point.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from scipy.spatial import ConvexHull

from ..models.bodies.anny import AnnyBody
from ..models.render.raster import EmbreeMesh
from .anchors import Anchors, top_anchors
from .bag import bag_box, bag_strap
from .fields import body_fields, vertex_normals
from .garments import (
    OUTFITS,
    Bag,
    Bottom,
    Hair,
    Shoes,
    Top,
    bottom_field,
    displacement,
    fabric_albedo,
    hair_field,
    hair_thickness,
    logo_mask,
    ramp,
    shoes_field,
    srgb_to_linear,
    top_field,
)
from .hair import hair_curtain, hair_locks

# LIP ids (docs/CONVENTIONS.md)
HAIR, UPPER, DRESS, PANTS, JUMPSUITS, SKIRT, FACE, L_ARM, R_ARM, L_LEG, R_LEG, L_SHOE, R_SHOE = 2, 5, 6, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19
#: the label of an accessory that is not the person (a bag): LIP's background
ACCESSORY = 0
#: the LIP label of a one-piece outfit's every part (:data:`~vtonpipe.synth.garments.OUTFITS`)
ONE_PIECE_LABELS = {"dress": DRESS, "jumpsuit": JUMPSUITS}

SPECULAR = {"skin": 0.10, "hair": 0.15, "cloth": 0.03, "bag": 0.25}
LOGO_RADIUS = 0.045  # m
SHOE_THICKNESS = 0.01  # m


@dataclass(frozen=True)
class PersonRecipe:
    """Everything that defines one synthetic person (JSON in ``sample.json``).

    ``phenotype``: anny's six values in ``PHENOTYPE_LABELS`` order; ``skin``, ``eyes``: sRGB;
    ``outfit`` in :data:`~vtonpipe.synth.garments.OUTFITS`: a ``dress`` has a skirt as its bottom,
    a ``jumpsuit`` trousers or shorts, both of the top's fabric (the in-shop garment is all of it);
    ``bag``: a shoulder bag across the body, or None.
    """

    phenotype: tuple[float, ...]
    skin: tuple[int, int, int]
    eyes: tuple[int, int, int]
    hair: Hair
    top: Top
    bottom: Bottom
    shoes: Shoes
    outfit: str = "separates"
    bag: Bag | None = None

    def __post_init__(self):
        if self.outfit not in OUTFITS:
            raise ValueError(f"unknown outfit {self.outfit!r}; known: {OUTFITS}")
        if (self.outfit == "dress") != (self.bottom.category == "skirt") and self.outfit != "separates":
            raise ValueError(f"a {self.outfit} cannot have a {self.bottom.category} as its bottom")

    @property
    def garment_category(self) -> str:
        """The in-shop garment's category: the top's, or the one-piece outfit's."""
        return self.top.category if self.outfit == "separates" else self.outfit


@dataclass
class RestBody:
    """A person's rest body: ``vertices`` (V, 3), ``joints`` (104, 3) bone heads, ``coco`` anny's
    COCO keypoints by label (m, body frame)."""

    vertices: np.ndarray
    joints: np.ndarray
    coco: dict[str, np.ndarray]


def rest_body(body: AnnyBody, phenotype) -> RestBody:
    """The zero-pose body of ``phenotype`` (6,) in the body frame."""
    with torch.no_grad():
        v, j = body.forward_with_joints(phenotype=torch.as_tensor(phenotype, dtype=body.dtype))
        k = body.coco_keypoints(v)[0].numpy().astype(np.float64)
    return RestBody(v[0].numpy().astype(np.float64), j[0].numpy().astype(np.float64), dict(zip(body.coco_labels, k)))


class DressedBody:
    """Per-vertex fields of a dressed person and their per-pixel materials.

    ``fields`` (:class:`BodyFields`); ``top``, ``bottom``, ``shoes``, ``hair`` (V,) signed fields
    (m, positive inside); ``offset`` (V,) m: how far the clothed surface stands out along the
    normal; ``curtain``: the rest-pose hair curtain (:func:`~vtonpipe.synth.hair.hair_curtain`)
    or None; ``locks``: the locks over the shoulders (:func:`~vtonpipe.synth.hair.hair_locks`) or
    None; ``bag``, ``strap``: the bag's box and strap (:mod:`vtonpipe.synth.bag`) or None.
    ``attributes`` (V, K) float32 holds every per-vertex quantity materials interpolate.

    Labels (LIP): where several regions overlap the first of hair, top, bottom, shoes wins (a
    one-piece outfit's top and bottom are both its :data:`ONE_PIECE_LABELS` label);
    otherwise skin: arms (hands included) 14 / 15 and legs 16 / 17 by the person's side (most
    skinning weight on the arm / leg bones), and 13 *face* for the head, the neck and any torso
    skin a neckline shows (LIP has no skin class for them; its annotations label the neck as face).
    """

    def __init__(self, body: AnnyBody, recipe: PersonRecipe):
        self.recipe = recipe
        self.faces = body.faces
        self.rest = rest_body(body, recipe.phenotype)
        f = self.fields = body_fields(self.rest.vertices, self.rest.joints, self.rest.coco, body.faces, body.bone_labels, body.dense_skin_weights())
        self.top = top_field(f, recipe.top)
        self.bottom = bottom_field(f, recipe.bottom)
        self.shoes = shoes_field(f, recipe.shoes)
        self.hair = hair_field(f, recipe.hair)
        items = [self.top, self.shoes, self.hair]
        thickness = [recipe.top.thickness, SHOE_THICKNESS, hair_thickness(f, recipe.hair)]
        if recipe.bottom.category != "skirt":
            items.append(self.bottom)
            thickness.append(recipe.bottom.thickness)
        self.offset = displacement(items, thickness)
        self._shoe_weight = ramp(self.shoes, 0.02)
        self.curtain = hair_curtain(f, recipe.hair.length) if recipe.hair.length > 0 else None
        self.locks = self.bag = self.strap = None
        if recipe.hair.over_shoulders > 0 or recipe.bag is not None:
            rest_mesh = EmbreeMesh(self.rest.vertices, body.faces)
            if recipe.hair.over_shoulders > 0:
                self.locks = hair_locks(f, rest_mesh, recipe.hair.length, recipe.hair.over_shoulders)
            if recipe.bag is not None:
                self.bag, self.strap = bag_box(f, rest_mesh, recipe.bag), bag_strap(f, rest_mesh, recipe.bag)
        self.attributes = np.column_stack(
            [self.top, self.bottom, self.shoes, self.hair, self._brows(), self._lips(), f.arm, f.leg, f.side, *f.rest.T,
             *self._top_uv().T, self._iris(), np.cos(f.head_azim), np.sin(f.head_azim)]
        ).astype(np.float32)  # fmt: skip

    def clothed(self, vertices: np.ndarray) -> np.ndarray:
        """The clothed surface (V, 3) over the body ``vertices`` (V, 3) in any pose and frame: each
        foot wrapped in a shoe (its points pushed out onto the foot's convex hull, away from the
        foot's long axis), then everything pushed out by ``offset`` along the normals."""
        shaped = vertices.copy()
        for side in (1.0, -1.0):
            foot = np.flatnonzero((self.shoes > -0.01) & (self.fields.side == side))
            p = vertices[foot]
            hull = ConvexHull(p)
            centre = p.mean(0)
            axis = np.linalg.svd(p - centre, full_matrices=False)[2][0]
            d = p - centre
            d -= np.outer(d @ axis, axis)
            d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
            normal, offset = hull.equations[:, :3], hull.equations[:, 3]
            rate = d @ normal.T  # (n, facets)
            gap = -(p @ normal.T + offset)  # >= 0 inside
            t = np.where(rate > 1e-9, gap / np.where(rate > 1e-9, rate, 1.0), np.inf).min(1)
            shaped[foot] = p + self._shoe_weight[foot, None] * np.clip(t, 0.0, 0.05)[:, None] * d
        return shaped + self.offset[:, None] * vertex_normals(shaped, self.faces)

    # column indices of ``attributes``
    _TOP, _BOTTOM, _SHOES, _HAIR, _BROWS, _LIPS, _ARM, _LEG, _SIDE, _X, _Y, _Z, _TU, _TV, _IRIS, _HCOS, _HSIN = range(17)
    TOP_COLUMNS = slice(_X, _TV + 1)  # what top_albedo reads

    @cached_property
    def anchors(self) -> Anchors:
        """The top's 32 landmarks on the body surface (:mod:`vtonpipe.synth.anchors`)."""
        return top_anchors(self.fields, self.faces, self.top, self.recipe.top.category)

    @cached_property
    def outer_faces(self) -> np.ndarray:
        """(F,) bool: the body's closed outer surface (without the eyeballs and the tongue)."""
        return ~self.fields.faces_of("eye_front.L", "eye_front.R", "eye_back.L", "eye_back.R", "tongue")

    @cached_property
    def eye_faces(self) -> np.ndarray:
        """(F,) bool: the eyeballs' front faces."""
        return self.fields.faces_of("eye_front.L", "eye_front.R")

    @cached_property
    def mouth_faces(self) -> np.ndarray:
        """(F,) bool: inside of the mouth and the eye sockets (dark)."""
        return self.fields.faces_of("mouth_cavity", "tongue", "eye_cavity.L", "eye_cavity.R", "eye_back.L", "eye_back.R")

    def _brows(self) -> np.ndarray:
        """Signed field (m) of the eyebrows: arcs above the eyes on the front of the head."""
        f = self.fields
        out = np.full(len(f.rest), -0.01)
        front = (f.head > 0.5) & (f.normal[:, 1] < -0.2)
        for eye in ("eye.L", "eye.R"):
            e = f.joints[eye]
            s = np.sign(e[0])
            dx = (f.rest[:, 0] - e[0]) * s / 0.022  # -1 (inner end) .. 1 (outer end)
            arc = e[2] + 0.021 + 0.005 * (1.0 - dx**2) - 0.002 * dx
            width = 0.0032 * (1.0 - 0.35 * np.clip(dx, 0, 1))
            inner = np.minimum(1.0 - np.abs(dx + 0.1), 1.0) * 0.022
            field = np.minimum(width - np.abs(f.rest[:, 2] - arc), inner)
            out = np.where(front & (np.abs(f.rest[:, 0] - e[0]) < 0.035), np.maximum(out, field), out)
        return out

    def _lips(self) -> np.ndarray:
        """Signed field (m) of the lips: an ellipse on the front of the mouth."""
        f = self.fields
        mouth = self.rest.vertices[np.unique(self.faces[f.faces_of("mouth_cavity")])]
        z0 = np.median(mouth[mouth[:, 1] < mouth[:, 1].min() + 0.01, 2])
        d = np.hypot(f.rest[:, 0] / 0.022, (f.rest[:, 2] - z0) / 0.0075)
        front = (f.head > 0.5) & (f.normal[:, 1] < -0.2)
        return np.where(front, 0.01 * (1.0 - d), -0.01)

    def _iris(self) -> np.ndarray:
        """(V,) cosine between each eyeball vertex's direction from the eyeball centre and forward."""
        f = self.fields
        out = np.zeros(len(f.rest))
        for name in ("eye_front.L", "eye_front.R"):
            idx = np.unique(self.faces[f.faces_of(name, name.replace("front", "back"))])
            d = f.rest[idx] - f.rest[idx].mean(0)
            out[idx] = -d[:, 1] / np.linalg.norm(d, axis=1)
        return out

    def _top_uv(self) -> np.ndarray:
        """(V, 2) pattern coordinates (m) of the top: (x, z) on the torso, blending to (around,
        along) the arm on the sleeves so that stripes go round the sleeves."""
        f = self.fields
        shoulder = f.joints["upperarm01.L"]
        u = (1 - f.arm) * f.rest[:, 0] + f.arm * (f.side * shoulder[0] + f.rest[:, 1])
        v = (1 - f.arm) * f.rest[:, 2] + f.arm * (shoulder[2] - f.arm_t)
        return np.column_stack([u, v])

    def materials(self, face: np.ndarray, bary: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Linear albedo (N, 3), specular strength (N,) and LIP label (N,) uint8 at surface points
        (``face`` (N,) body-mesh face ids, ``bary`` (N, 3))."""
        r = self.recipe
        a = np.einsum("nk,nkc->nc", bary.astype(np.float32), self.attributes[self.faces[face]]).astype(np.float64)
        side_left = a[:, self._SIDE] > 0
        skin = srgb_to_linear(r.skin)
        albedo = np.broadcast_to(skin, (len(face), 3)).copy()
        spec = np.full(len(face), SPECULAR["skin"])
        label = np.full(len(face), FACE, np.uint8)
        arm, leg = a[:, self._ARM] > 0.5, a[:, self._LEG] > 0.5
        label[arm] = np.where(side_left[arm], L_ARM, R_ARM)
        label[leg & ~arm] = np.where(side_left[leg & ~arm], L_LEG, R_LEG)

        lips = a[:, self._LIPS] > 0
        albedo[lips] = skin * np.array([0.78, 0.52, 0.52])
        brows = a[:, self._BROWS] > 0
        albedo[brows] = 0.6 * srgb_to_linear(r.hair.colour) + 0.4 * skin * 0.25
        eye = self.eye_faces[face]
        cos = a[:, self._IRIS]
        albedo[eye] = np.where((cos[eye] > 0.975)[:, None], 0.01, np.where((cos[eye] > 0.9)[:, None], srgb_to_linear(r.eyes), 0.62))
        albedo[self.mouth_faces[face]] = skin * 0.25

        shoes = a[:, self._SHOES] > 0
        albedo[shoes], spec[shoes] = srgb_to_linear(r.shoes.colour), 0.2
        label[shoes] = np.where(side_left[shoes], L_SHOE, R_SHOE)

        bottom = a[:, self._BOTTOM] > 0
        if r.bottom.category == "skirt":  # only the inside of the skirt is seen on the body, if anything
            albedo[bottom] = 0.5 * srgb_to_linear(r.bottom.fabric.colour)
        else:
            albedo[bottom] = self.garment_albedo(a[bottom])
        spec[bottom] = SPECULAR["cloth"]
        label[bottom] = self.bottom_label

        top = a[:, self._TOP] > 0
        albedo[top] = self.garment_albedo(a[top])
        spec[top] = SPECULAR["cloth"]
        label[top] = ONE_PIECE_LABELS.get(r.outfit, UPPER)

        hair = a[:, self._HAIR] > 0
        albedo[hair] = self.hair_albedo(a[hair][:, [self._HCOS, self._HSIN]])
        spec[hair] = SPECULAR["hair"]
        label[hair] = HAIR
        return albedo, spec, label

    @property
    def bottom_label(self) -> int:
        """LIP label of the bottom (and of a skirt's stand-off mesh)."""
        return ONE_PIECE_LABELS.get(self.recipe.outfit, SKIRT if self.recipe.bottom.category == "skirt" else PANTS)

    def garment_albedo(self, a: np.ndarray) -> np.ndarray:
        """(N, 3) linear albedo of the garments (top where the top's field is positive, else the
        bottom's fabric) from interpolated ``attributes`` rows (N, K)."""
        albedo = fabric_albedo(self.recipe.bottom.fabric, a[:, [self._X, self._Z]])
        top = a[:, self._TOP] > 0
        albedo[top] = self.top_albedo(a[top][:, self.TOP_COLUMNS])
        return albedo

    def hair_albedo(self, azimuth: np.ndarray) -> np.ndarray:
        """(N, 3) linear hair albedo at points whose azimuth about the head's vertical axis is given as
        (cos, sin) (N, 2) (interpolated, so not unit): strands running down from the crown."""
        a = np.arctan2(azimuth[:, 1], azimuth[:, 0])
        strands = 0.86 + 0.14 * np.sin(160 * a + 2.0 * np.sin(23 * a))
        return srgb_to_linear(self.recipe.hair.colour) * strands[:, None]

    def top_albedo(self, a: np.ndarray) -> np.ndarray:
        """(N, 3) linear albedo of the top from interpolated ``attributes[:, TOP_COLUMNS]`` (N, 5):
        rest x, y, z (m) and the top's pattern coordinates."""
        fabric = self.recipe.top.fabric
        albedo = fabric_albedo(fabric, a[:, 3:5])
        if fabric.logo is not None:
            centre = np.array([0.0, self.fields.joints["upperarm01.L"][2] - 0.14])
            front = np.clip((-a[:, 1] + self.fields.joints["neck01"][1] + 0.03) / 0.02, 0, 1)
            cover = logo_mask(a[:, [0, 2]] - centre, LOGO_RADIUS) * front
            albedo = albedo + (srgb_to_linear(fabric.logo) - albedo) * cover[:, None]
        return albedo
