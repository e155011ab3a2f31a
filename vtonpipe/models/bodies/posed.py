"""Meshes of fitted bodies: from a ``body`` annotation row (or ground truth) to camera-frame
vertices, ready to rasterise (DensePose rendering, pair flow, drawing).

``model`` ``anny`` poses :class:`~vtonpipe.models.bodies.anny.AnnyBody`; ``smpl``, ``smpl-male``
and ``smpl-female`` pose :class:`~vtonpipe.models.bodies.smpl.SMPLBody` from the user's SMPL model
file of that gender (``<weights>/smpl/SMPL_{NEUTRAL,MALE,FEMALE}.pkl``, see the ``smpl-fit``
backend; ``MissingWeightsError`` when it is absent). Either way the body-frame vertices are
mapped by ``x -> R(rotation) x + translation``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from .anny import rotvec_to_rotmat
from .camera import PinholeCamera
from .smpl import SMPL_GENDERS, SMPL_MODEL_FILES, SMPLBody


@dataclass
class PosedMesh:
    """``vertices`` (V, 3) float32 in the camera frame (metres, OpenCV axes), ``faces`` (F, 3)
    int64, the image's ``camera``, and the body ``model`` family ("anny" | "smpl")."""

    vertices: np.ndarray
    faces: np.ndarray
    camera: PinholeCamera
    model: str

    def project(self) -> np.ndarray:
        """(V, 2) float32 pixel coordinates of the vertices (3D-GCL's ``pred_vertices_img``)."""
        return self.camera.project(self.vertices.astype(np.float64)).astype(np.float32)


@lru_cache(maxsize=1)
def _anny():
    from .anny import AnnyBody

    return AnnyBody()


@lru_cache(maxsize=4)
def _smpl(path: str, num_betas: int) -> SMPLBody:
    return SMPLBody.from_file(path, num_betas)


def smpl_body_of(model: str, num_betas: int) -> SMPLBody:
    """The :class:`~vtonpipe.models.bodies.smpl.SMPLBody` of an SMPL body row's ``model``."""
    return _smpl(str(SMPL_MODEL_FILES[SMPL_GENDERS[model]].require()), num_betas)


def _camera(body: Any, width: int, height: int) -> PinholeCamera:
    fx, fy, cx, cy = (float(v) for v in body.camera)
    return PinholeCamera(fx, fy, cx, cy, int(width), int(height))


def posed_meshes(bodies: Sequence[Any], sizes: Sequence[tuple[int, int]]) -> list[PosedMesh]:
    """:func:`posed_mesh` of each body row in its ``(width, height)`` image, the anny rows posed
    in one batched forward (equal to posing them one by one up to float rounding)."""
    if len(bodies) != len(sizes):
        raise ValueError(f"{len(bodies)} bodies for {len(sizes)} image sizes")
    out: list[PosedMesh | None] = [None] * len(bodies)
    anny_rows = [i for i, b in enumerate(bodies) if b.model == "anny"]
    if anny_rows:
        anny = _anny()
        fields = [torch.as_tensor(np.stack([np.asarray(getattr(bodies[i], f)) for i in anny_rows])) for f in ("pose", "shape", "rotation", "translation")]
        with torch.no_grad():
            vertices = anny(*fields).cpu().numpy()
        for k, i in enumerate(anny_rows):
            out[i] = PosedMesh(vertices[k].astype(np.float32), anny.faces, _camera(bodies[i], *sizes[i]), "anny")
    for i, body in enumerate(bodies):
        if out[i] is None:
            out[i] = posed_mesh(body, *sizes[i])
    return out


def posed_mesh(body: Any, width: int, height: int) -> PosedMesh:
    """The mesh of a body record (a :class:`~vtonpipe.schemas.body.BodyRecord`, or anything with
    its ``model``, ``pose``, ``shape``, ``rotation``, ``translation``, ``camera``) in a
    ``width x height`` image."""
    camera = _camera(body, width, height)
    if body.model == "anny":
        anny = _anny()
        with torch.no_grad():
            vertices = anny(body.pose, body.shape, body.rotation, body.translation)[0]
        return PosedMesh(vertices.cpu().numpy().astype(np.float32), anny.faces, camera, body.model)
    if body.model in SMPL_GENDERS:
        smpl = smpl_body_of(body.model, len(body.shape))
        with torch.no_grad():
            vertices = smpl(body.pose, body.shape)[0].double()
        R = rotvec_to_rotmat(torch.as_tensor(body.rotation, dtype=torch.float64))
        vertices = vertices @ R.T + torch.as_tensor(body.translation, dtype=torch.float64)
        return PosedMesh(vertices.numpy().astype(np.float32), smpl.faces, camera, "smpl")
    raise ValueError(f"no mesh for body model {body.model!r}")
