"""Smooth per-vertex scalar fields on anny's rest body, from which garment regions are cut.

Every field is computed once per person on their own rest body (zero pose, their phenotype) in
the body frame of :mod:`vtonpipe.models.bodies.anny` (metres, ``+Z`` up, facing ``-Y``, ``+X`` the
person's left). Renders interpolate the fields at each pixel's surface point (barycentrics of the
hit face) and threshold them there, so region boundaries are smooth curves across triangles, not
staircases along triangle edges. The fields follow the person through any pose because they are
attached to vertices.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix, diags

ARM_BONES = ("upperarm", "lowerarm", "wrist", "finger", "metacarpal")
LEG_BONES = ("upperleg", "lowerleg", "foot", "toe")
HEAD_BONES = ("head", "eye")
NECK_BONES = ("neck",)

#: anny's UV segmentation classes (``anny/data/segmentation``) that matter here
UV_CLASSES = ("body", "head", "hand.L", "hand.R", "foot.L", "foot.R", "eye_front.L", "eye_front.R", "eye_back.L",
              "eye_back.R", "eye_cavity.L", "eye_cavity.R", "mouth_cavity", "tongue")  # fmt: skip


def smoothing_operator(faces: np.ndarray, count: int) -> csr_matrix:
    """(V, V) row-stochastic sparse matrix averaging each vertex with its mesh neighbours."""
    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], np.arange(count)])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], np.arange(count)])
    a = coo_matrix((np.ones(len(i)), (i, j)), shape=(count, count)).tocsr()
    a = ((a + a.T) > 0).astype(np.float64)
    return (diags(1.0 / np.asarray(a.sum(1)).ravel()) @ a).tocsr()


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals (outwards for anny's counter-clockwise faces)."""
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    out = np.stack([np.bincount(faces.ravel(), np.repeat(n[:, k], 3), len(vertices)) for k in range(3)], 1)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


@lru_cache(maxsize=1)
def uv_face_classes() -> np.ndarray:
    """(F,) uint8 index into ``UV_CLASSES`` of each anny face, read from anny's UV segmentation
    image at the face's UV centroid."""
    import anny
    import yaml
    from PIL import Image

    from ..models.bodies.anny import load_anny

    model = load_anny()
    root = os.path.join(os.path.dirname(anny.__file__), "data", "segmentation")
    image = np.asarray(Image.open(os.path.join(root, "body_parts_segmentation.png")).convert("RGB")).astype(np.int16)
    with open(os.path.join(root, "body_parts_segmentation.yaml")) as f:
        colours = yaml.safe_load(f)["colors"]
    uv = model.texture_coordinates.cpu().numpy()[model.face_texture_coordinate_indices.cpu().numpy()].mean(1)
    h, w = image.shape[:2]
    px = np.clip((uv[:, 0] * w).astype(int), 0, w - 1)
    py = np.clip(((1.0 - uv[:, 1]) * h).astype(int), 0, h - 1)
    rgb = image[py, px]
    palette = np.array([colours[name] for name in UV_CLASSES], np.int16)
    return np.abs(rgb[:, None] - palette[None]).sum(-1).argmin(1).astype(np.uint8)


@dataclass
class BodyFields:
    """Per-vertex fields of one person's rest body (all (V,) float64 unless noted).

    ``rest`` (V, 3) and ``normal`` (V, 3): rest positions (m) and unit normals. ``arm``, ``leg``,
    ``head``, ``neck``: skinning weight of the arm (both sides), leg, head and neck bones, averaged
    over mesh neighbours (0..1). ``side``: +1 on the person's left (``x > 0``), -1 on the right.
    ``arm_t`` / ``leg_t``: metres along the same-side arm (shoulder -> wrist) / leg (hip -> ankle)
    axis from the shoulder / hip joint. ``head_elev`` / ``head_azim``: radians, direction from the
    ears' midpoint (elevation above its horizontal plane; azimuth 0 in front, positive towards the
    person's left). ``neck_azim``: azimuth about the vertical neck axis. ``joints``: rest positions
    of the named anny bone heads and COCO keypoints used to place garments (m).
    ``face_class`` (F,) uint8: index into ``UV_CLASSES``.
    """

    rest: np.ndarray
    normal: np.ndarray
    arm: np.ndarray
    leg: np.ndarray
    head: np.ndarray
    neck: np.ndarray
    side: np.ndarray
    arm_t: np.ndarray
    leg_t: np.ndarray
    head_elev: np.ndarray
    head_azim: np.ndarray
    neck_azim: np.ndarray
    joints: dict[str, np.ndarray]
    face_class: np.ndarray

    @property
    def z(self) -> np.ndarray:
        """(V,) rest heights (m)."""
        return self.rest[:, 2]

    def arm_length(self) -> float:
        """Shoulder-joint to wrist-joint distance (m)."""
        return float(np.linalg.norm(self.joints["wrist.L"] - self.joints["upperarm01.L"]))

    def arm_rest_angle(self) -> float:
        """The rest upper arm's angle from the vertical (rad, about 0.73)."""
        d = self.joints["lowerarm01.L"] - self.joints["upperarm01.L"]
        return float(np.arctan2(d[0], -d[2]))

    def leg_length(self) -> float:
        """Hip-joint to ankle-joint distance (m)."""
        return float(np.linalg.norm(self.joints["foot.L"] - self.joints["upperleg01.L"]))

    def faces_of(self, *classes: str) -> np.ndarray:
        """(F,) bool: faces of the given ``UV_CLASSES``."""
        return np.isin(self.face_class, [UV_CLASSES.index(c) for c in classes])


def body_fields(
    rest: np.ndarray,
    joints: np.ndarray,
    coco: dict[str, np.ndarray],
    faces: np.ndarray,
    bone_labels: tuple[str, ...],
    skin_weights: np.ndarray,
    smoothing: int = 6,
) -> BodyFields:
    """Fields of a rest body: ``rest`` (V, 3) vertices, ``joints`` (104, 3) bone heads, ``coco``
    anny's COCO keypoints by label, ``skin_weights`` (V, 104) dense (m, body frame)."""
    rest = np.asarray(rest, np.float64)
    joints = np.asarray(joints, np.float64)
    index = {label: i for i, label in enumerate(bone_labels)}
    smooth = smoothing_operator(faces, len(rest))

    def weight(prefixes: tuple[str, ...]) -> np.ndarray:
        w = skin_weights[:, [i for i, label in enumerate(bone_labels) if label.startswith(prefixes)]].sum(1).astype(np.float64)
        for _ in range(smoothing):
            w = smooth @ w
        return np.clip(w, 0.0, 1.0)

    named = {label: joints[i] for label, i in index.items()}
    named |= {f"coco:{k}": np.asarray(v, np.float64) for k, v in coco.items()}
    side = np.where(rest[:, 0] >= 0.0, 1.0, -1.0)

    def along(start: str, end: str) -> np.ndarray:
        t = np.empty(len(rest))
        for s, suffix in ((1.0, "L"), (-1.0, "R")):
            a, b = named[f"{start}.{suffix}"], named[f"{end}.{suffix}"]
            axis = (b - a) / np.linalg.norm(b - a)
            sel = side == s
            t[sel] = (rest[sel] - a) @ axis
        return t

    ear_mid = 0.5 * (named["coco:left_ear"] + named["coco:right_ear"])
    d = rest - ear_mid
    head_elev = np.arctan2(d[:, 2], np.hypot(d[:, 0], d[:, 1]))
    head_azim = np.arctan2(d[:, 0], -d[:, 1])
    neck_azim = np.arctan2(rest[:, 0] - named["neck01"][0], -(rest[:, 1] - named["neck01"][1]))
    return BodyFields(
        rest=rest,
        normal=vertex_normals(rest, faces),
        arm=weight(ARM_BONES),
        leg=weight(LEG_BONES),
        head=weight(HEAD_BONES),
        neck=weight(NECK_BONES),
        side=side,
        arm_t=along("upperarm01", "wrist"),
        leg_t=along("upperleg01", "foot"),
        head_elev=head_elev,
        head_azim=head_azim,
        neck_azim=neck_azim,
        joints=named,
        face_class=uv_face_classes(),
    )
