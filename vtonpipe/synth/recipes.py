"""Random but reproducible recipes: who each sample person is, what they wear, how they stand.

Person ``i`` of seed ``s`` is drawn from ``np.random.default_rng([s, i])`` alone, so a person
does not change when ``--people`` does.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .garments import TOP_CATEGORIES, Bag, Bottom, Fabric, Hair, Shoes, Top
from .person import PersonRecipe
from .poses import POSE_NAMES, PoseRecipe, sample_pose
from .scene import Shot

#: sRGB skin tones, lightest to darkest
SKIN_TONES = ((243, 205, 180), (228, 180, 150), (200, 146, 112), (160, 108, 78), (112, 72, 50), (72, 45, 32))
HAIR_COLOURS = ((24, 20, 18), (58, 38, 26), (96, 64, 40), (176, 136, 86), (118, 56, 30), (150, 146, 140))
EYE_COLOURS = ((60, 38, 24), (32, 22, 16), (70, 100, 130), (80, 105, 70))
CLOTH_COLOURS = (
    (200, 40, 40), (30, 60, 140), (40, 110, 60), (240, 200, 60), (245, 245, 240), (30, 30, 34), (120, 120, 125),
    (230, 120, 40), (130, 50, 120), (60, 160, 190), (245, 170, 180), (110, 30, 40), (20, 40, 70),
)  # fmt: skip
DENIM = ((40, 50, 80), (70, 90, 130), (30, 32, 40), (150, 130, 100), (90, 90, 95), (205, 200, 190))
SHOE_COLOURS = ((25, 25, 28), (235, 235, 230), (100, 60, 35), (140, 30, 35), (30, 40, 80))
BAG_COLOURS = ((120, 70, 40), (30, 28, 28), (160, 120, 80), (150, 40, 50), (200, 190, 170), (40, 60, 90))


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _distinct(a, b, threshold: int = 180) -> bool:
    """Do sRGB colours ``a`` and ``b`` differ by more than ``threshold`` (sum over channels)?"""
    return int(np.abs(np.subtract(a, b)).sum()) > threshold


def _fabric(rng: np.random.Generator, colours, logo: bool, skin) -> Fabric:
    """A fabric whose main colour stands out from the ``skin`` colour."""
    a = _pick(rng, [c for c in colours if _distinct(c, skin)])
    b = _pick(rng, [c for c in CLOTH_COLOURS if _distinct(c, a, 200)])
    kind = _pick(rng, ("solid", "solid", "stripes", "checks"))
    period = round(float(rng.uniform(0.03, 0.06) if kind == "stripes" else rng.uniform(0.04, 0.08)), 4)
    mark = _pick(rng, [c for c in CLOTH_COLOURS if _distinct(c, a, 200)]) if logo else None
    return Fabric(kind, a, b, period, mark)


#: the hair curtain's length (m below the ears) of long hair falling over the shoulders: down to
#: them (it runs into the shoulders' tops, where the locks over their fronts begin)
LONG_HAIR_LENGTH = 0.16
#: where a dress's or jumpsuit's top part ends (m above the pelvis): no seam shows there, so its
#: landmarks' hem is put on one line of the body, the hips, for every one-piece garment
ONE_PIECE_TOP_HEM = -0.03


def sample_person(rng: np.random.Generator, one_piece_share: float = 0.0, hair_over_shoulders_share: float = 0.0, bag_share: float = 0.0) -> PersonRecipe:
    """A person: phenotype (male or female, teenager to young adult, varied build), skin, hair,
    a top (the in-shop garment), a bottom and shoes; with ``one_piece_share`` > 0, that share of
    the people wears a one-piece outfit instead of top and bottom (women a dress or a jumpsuit
    evenly, men a jumpsuit) in the top's fabric; with ``hair_over_shoulders_share`` > 0, that
    share of the women has long hair, a curtain down to the shoulders and two locks over their
    front (:func:`~vtonpipe.synth.hair.hair_locks`) reaching 6 to 15 cm below them; with
    ``bag_share`` > 0, that share of the people wears a shoulder bag across the body
    (:class:`~vtonpipe.synth.garments.Bag`). A share of 0 draws nothing more from ``rng``."""
    u = rng.uniform
    female = rng.random() < 0.5
    phenotype = (u(0.9, 1.0) if female else u(0.0, 0.1), u(0.5, 0.75), u(0.3, 0.8), u(0.2, 0.75), u(0.3, 0.8), u(0.3, 0.7))
    skin = _pick(rng, SKIN_TONES)
    # hair as dark as the skin merges with the face in these renders (no strands, no rim light),
    # and MediaPipe then misreads the pose: keep some contrast
    hair_colour = _pick(rng, [c for c in HAIR_COLOURS if _distinct(c, skin, 80)])
    if female:
        length = u(0.05, 0.13) if rng.random() < 0.7 else 0.0  # chin to shoulder length, or cropped
        hair = Hair(u(42, 52), u(-12, 0), u(-42, -34), u(0.012, 0.02), hair_colour, length)
    else:
        hair = Hair(u(45, 58), u(4, 16), u(-32, -22), u(0.003, 0.01), hair_colour)
    category = _pick(rng, TOP_CATEGORIES)
    sleeve = {"tee": u(0.3, 0.45), "long_sleeve": u(0.92, 0.97), "sleeveless": 0.0}[category]
    waist = u(0.06, 0.12)
    neckline = _pick(rng, ("crew", "crew", "scoop", "v"))
    top = Top(category, neckline, u(-0.09, waist - 0.05), sleeve, _fabric(rng, CLOTH_COLOURS, rng.random() < 0.4, skin))
    kind = _pick(rng, ("trousers", "trousers", "shorts", "skirt", "skirt") if female else ("trousers", "trousers", "shorts"))
    length = {"trousers": u(0.93, 0.97), "shorts": u(0.25, 0.4), "skirt": u(0.3, 0.65)}[kind]
    if kind == "skirt":
        bottom = Bottom(kind, waist, length, _fabric(rng, CLOTH_COLOURS, False, skin), flare=u(0.02, 0.08))
    else:
        denim = _pick(rng, [c for c in DENIM if _distinct(c, skin, 120)])
        bottom = Bottom(kind, waist, length, Fabric("solid", denim, denim, 0.05))
    shoes = Shoes(u(0.02, 0.05), _pick(rng, SHOE_COLOURS))
    eyes = _pick(rng, EYE_COLOURS)
    outfit = "separates"
    if one_piece_share > 0 and rng.random() < one_piece_share:
        outfit = "dress" if female and rng.random() < 0.5 else "jumpsuit"
        fabric = dataclasses.replace(top.fabric, logo=None)
        top = dataclasses.replace(top, hem=ONE_PIECE_TOP_HEM)
        if outfit == "dress":
            bottom = Bottom("skirt", waist, u(0.3, 0.65), fabric, flare=u(0.02, 0.08))
        else:
            kind = _pick(rng, ("trousers", "trousers", "shorts"))
            bottom = Bottom(kind, waist, u(0.93, 0.97) if kind == "trousers" else u(0.25, 0.4), fabric)
    if hair_over_shoulders_share > 0 and female and rng.random() < hair_over_shoulders_share:
        hair = dataclasses.replace(hair, length=LONG_HAIR_LENGTH, over_shoulders=u(0.06, 0.15))
    bag = None
    if bag_share > 0 and rng.random() < bag_share:
        bag = Bag(_pick(rng, (-1.0, 1.0)), u(0.2, 0.28), u(0.15, 0.22), u(0.05, 0.08), _pick(rng, BAG_COLOURS))
    return _rounded(PersonRecipe(phenotype, skin, eyes, hair, top, bottom, shoes, outfit, bag))


def _rounded(recipe):
    """The recipe with its floats rounded to 4 decimals (what ``sample.json`` stores)."""

    def r(v):
        if dataclasses.is_dataclass(v):
            return type(v)(**{f.name: r(getattr(v, f.name)) for f in dataclasses.fields(v)})
        if isinstance(v, float):
            return round(v, 4)
        if isinstance(v, tuple):
            return tuple(r(x) for x in v)
        return v

    return r(recipe)


@dataclass(frozen=True)
class Photo:
    """One person photo: the pose and the camera."""

    pose: PoseRecipe
    shot: Shot

    @property
    def view(self) -> str:
        """MPV's view word: ``front`` up to 25 degrees of turn, ``side`` up to 120, ``back`` beyond."""
        turn = abs(math.remainder(self.pose.turn, 2 * math.pi))
        return "front" if turn < math.radians(25) else "side" if turn <= math.radians(120) else "back"


def sample_photos(
    rng: np.random.Generator, back_share: float = 0.0, arms_in_front_share: float = 0.0, textured_share: float = 0.0, side_light_share: float = 0.0
) -> tuple[Photo, Photo]:
    """Two photos of one person in two different poses, each turned by 30 to 60 degrees either way
    half of the time; with ``back_share`` > 0, that share of the photos shows the person's back
    (turned 160 to 200 degrees); with ``arms_in_front_share`` > 0, that share of the photos has
    the ``arms_in_front`` pose (forearms across the belly) instead of its drawn one; with
    ``textured_share`` > 0, that share is shot against a busy ``textured`` backdrop; with
    ``side_light_share`` > 0, that share is lit by the ``side`` set-up (a warm low key light, little
    fill). Shares of 0
    draw nothing more from ``rng``: the same photos as without them."""
    names = rng.choice(len(POSE_NAMES), 2, replace=False)
    photos = []
    for n in names:
        turn = float(rng.choice([-1, 1]) * rng.uniform(math.radians(30), math.radians(60))) if rng.random() < 0.5 else float(rng.uniform(-0.12, 0.12))
        if back_share > 0 and rng.random() < back_share:
            turn = float(math.pi + rng.uniform(-math.radians(20), math.radians(20)))
        name = POSE_NAMES[int(n)]
        if arms_in_front_share > 0 and rng.random() < arms_in_front_share:
            name = "arms_in_front"
        pose = sample_pose(name, rng, round(turn, 4))
        shot = Shot(round(float(rng.uniform(-2, 6)), 3), round(float(rng.uniform(15, 30)), 3), round(float(rng.uniform(0.03, 0.07)), 4), int(rng.integers(2**31)))
        if textured_share > 0 and rng.random() < textured_share:
            shot = dataclasses.replace(shot, backdrop="textured")
        if side_light_share > 0 and rng.random() < side_light_share:
            shot = dataclasses.replace(shot, lighting="side")
        photos.append(Photo(pose, shot))
    return photos[0], photos[1]
