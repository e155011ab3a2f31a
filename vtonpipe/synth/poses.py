"""Named, natural poses for anny, built from a handful of named bones.

Axes follow :mod:`vtonpipe.models.bodies.anny` (``local-ref`` poses, body frame ``+Z`` up, facing
``-Y``, ``+X`` the person's left). For the left arm, with ``u`` its rest direction (shoulder to
elbow, about 42 degrees out from the vertical): raising it sideways turns it about ``-Y``,
swinging it forward about ``-X``, twisting it about ``u``; the elbow bends forward about
``-(cos a0, 0, sin a0)`` (``a0`` the rest arm's angle from the vertical: the child's axes are
carried along by the parent's pose rotation, so the hinge stays the rest one); the rest elbow
is already bent by about 36 degrees, so straight arms take an elbow angle of about -0.65 rad. Legs: flexion
(forward) about ``-X``, spreading ``upperleg01.L`` about ``-Y``, knee about ``+X``. Right-side
rotations mirror the left ones (``Y`` and ``Z`` components negated). Every pose is a
:class:`PoseRecipe` of plain numbers (JSON in ``sample.json``), turned into bone rotations by
:func:`bone_rotations`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

POSE_NAMES = ("arms_down", "a_pose", "t_pose", "arms_overhead", "hands_on_hips", "wave", "walking")
#: poses a sample gets only when asked for (``vtonpipe sample --arms-in-front``): the forearms
#: folded across the belly, the hands meeting in front of the torso
EXTRA_POSE_NAMES = ("arms_in_front",)
#: every angle a pose recipe may set (rad); per side (_l, _r) for the limbs
PARAMS = tuple(
    f"{k}_{s}" for k in ("raise", "swing", "twist", "elbow", "hip", "spread", "knee", "foot") for s in "lr"
) + ("head_nod", "head_turn", "head_tilt", "lean", "spine_twist")


@dataclass(frozen=True)
class PoseRecipe:
    """``name`` in ``POSE_NAMES`` or ``EXTRA_POSE_NAMES``, ``turn`` rad about the vertical (positive: to the person's left),
    ``params``: the pose's angles (rad), drawn by :func:`sample_pose`."""

    name: str
    turn: float
    params: dict[str, float] = field(default_factory=dict)


def _mirror(rotvec: np.ndarray) -> np.ndarray:
    return rotvec * np.array([1.0, -1.0, -1.0])


def _arm(a0: float, raise_: float = 0.0, swing: float = 0.0, twist: float = 0.0, elbow: float = 0.0) -> dict[str, np.ndarray]:
    """Left-arm rotations (rad): ``raise_`` sideways (0 rest, 0.84 horizontal, negative towards the
    body), ``swing`` forward, ``twist`` about the arm's own axis (applied first; it turns the plane
    the elbow bends in: positive folds the forearm in front of the body, negative up and out),
    ``elbow`` flexion."""
    u = np.array([math.sin(a0), 0.0, -math.cos(a0)])
    upper = Rotation.from_rotvec([0.0, -raise_, 0.0]) * Rotation.from_rotvec([-swing, 0.0, 0.0]) * Rotation.from_rotvec(twist * u)
    hinge = -np.array([math.cos(a0), 0.0, math.sin(a0)])
    return {"upperarm01.L": upper.as_rotvec(), "lowerarm01.L": elbow * hinge}


def _leg(flex: float = 0.0, spread: float = 0.0, knee: float = 0.0, foot: float = 0.0) -> dict[str, np.ndarray]:
    """Left-leg rotations: hip ``flex`` (forward), ``spread`` outwards, ``knee`` bend, ``foot``
    pointing down (rad)."""
    upper = Rotation.from_rotvec([0.0, -spread, 0.0]) * Rotation.from_rotvec([-flex, 0.0, 0.0])
    return {"upperleg01.L": upper.as_rotvec(), "lowerleg01.L": np.array([knee, 0.0, 0.0]), "foot.L": np.array([-foot, 0.0, 0.0])}


def _both(left: dict[str, np.ndarray], right: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = dict(left)
    out.update({k.replace(".L", ".R"): _mirror(v) for k, v in right.items()})
    return out


def sample_pose(name: str, rng: np.random.Generator, turn: float = 0.0) -> PoseRecipe:
    """A natural variant of pose ``name``: its angles drawn around the pose's nominal values."""
    u = rng.uniform
    p = {"head_nod": u(-0.08, 0.12), "head_turn": u(-0.25, 0.25), "head_tilt": u(-0.08, 0.08), "lean": u(-0.05, 0.05)}
    stance = u(0.02, 0.1)
    p |= {"spread_l": stance, "spread_r": stance + u(-0.02, 0.02)}
    for s in "lr":
        if name == "arms_down":
            p |= {f"raise_{s}": u(-0.62, -0.5), f"elbow_{s}": u(-0.55, -0.3), f"swing_{s}": u(-0.05, 0.1)}
        elif name == "a_pose":
            p |= {f"raise_{s}": u(-0.3, 0.05), f"elbow_{s}": u(-0.55, -0.25)}
        elif name == "t_pose":
            p |= {f"raise_{s}": u(0.75, 0.9), f"elbow_{s}": u(-0.65, -0.45)}
        elif name == "arms_overhead":
            p |= {f"raise_{s}": u(2.05, 2.3), f"elbow_{s}": u(-0.4, 0.1), f"twist_{s}": u(-0.6, -0.3)}
        elif name == "hands_on_hips":
            p |= {f"raise_{s}": u(-0.15, -0.05), f"elbow_{s}": u(1.2, 1.35), f"twist_{s}": u(1.35, 1.5), f"swing_{s}": u(0.0, 0.08)}
        elif name == "arms_in_front":  # the elbows forward, the upper arms turned in, the forearms across the belly
            p |= {f"raise_{s}": u(-0.25, -0.15), f"swing_{s}": u(0.55, 0.7), f"twist_{s}": u(1.65, 1.9), f"elbow_{s}": u(1.05, 1.25)}
    if name == "wave":  # one hand waves at head height, the other arm hangs
        up, down = ("l", "r") if rng.random() < 0.5 else ("r", "l")
        p |= {f"raise_{up}": u(0.55, 0.85), f"elbow_{up}": u(1.5, 1.9), f"twist_{up}": u(-1.4, -1.0)}
        p |= {f"raise_{down}": u(-0.62, -0.5), f"elbow_{down}": u(-0.55, -0.3)}
    elif name == "walking":  # one leg forward, the opposite arm swinging forward
        fwd, back = ("l", "r") if rng.random() < 0.5 else ("r", "l")
        stride, swing = u(0.3, 0.45), u(0.25, 0.4)
        p |= {f"hip_{fwd}": stride, f"knee_{fwd}": 0.1, f"foot_{fwd}": -0.1,
              f"hip_{back}": -0.55 * stride, f"knee_{back}": u(0.25, 0.45), f"foot_{back}": 0.25,
              f"swing_{back}": swing, f"swing_{fwd}": -swing, "spine_twist": (0.2 if fwd == "l" else -0.2) * stride,
              "raise_l": -0.55, "raise_r": -0.55, "elbow_l": u(-0.35, -0.05), "elbow_r": u(-0.35, -0.05)}  # fmt: skip
    elif name not in POSE_NAMES + EXTRA_POSE_NAMES:
        raise ValueError(f"unknown pose {name!r}; known: {POSE_NAMES + EXTRA_POSE_NAMES}")
    return PoseRecipe(name, float(turn), {k: round(float(v), 4) for k, v in sorted(p.items())})


def bone_rotations(recipe: PoseRecipe, arm_rest_angle: float) -> dict[str, np.ndarray]:
    """Axis-angle (3,) rotations of named anny bones for ``recipe``; ``arm_rest_angle`` (rad) is
    the person's rest upper-arm angle from the vertical (about 0.73). Missing angles are 0."""
    p = {k: recipe.params.get(k, 0.0) for k in PARAMS}

    def arm(s: str) -> dict[str, np.ndarray]:
        return _arm(arm_rest_angle, p[f"raise_{s}"], p[f"swing_{s}"], p[f"twist_{s}"], p[f"elbow_{s}"])

    def leg(s: str) -> dict[str, np.ndarray]:
        return _leg(p[f"hip_{s}"], p[f"spread_{s}"], p[f"knee_{s}"], p[f"foot_{s}"])

    bones = _both(arm("l"), arm("r")) | _both(leg("l"), leg("r"))
    bones["head"] = np.array([p["head_nod"], p["head_tilt"], p["head_turn"]])
    bones["spine01"] = np.array([p["lean"], 0.0, 0.0])
    bones["spine03"] = np.array([0.0, 0.0, p["spine_twist"]])
    return bones
