"""Meshes of fitted bodies: from a ``body`` annotation row (or ground truth) to camera-frame
vertices, ready to rasterise (DensePose rendering, pair flow, drawing).

``model`` ``anny`` poses :class:`~vtonpipe.models.anny_body.AnnyBody`; ``smpl``, ``smpl-male``
and ``smpl-female`` pose :class:`~vtonpipe.models.smpl_body.SMPLBody` from the user's SMPL model
file of that gender (``<weights>/smpl/SMPL_{NEUTRAL,MALE,FEMALE}.pkl``, see the ``smpl-fit``
backend; ``MissingWeightsError`` when it is absent). Either way the body-frame vertices are
mapped by ``x -> R(rotation) x + translation``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

import numpy as np
import torch

from .anny_body import rotvec_to_rotmat
from .camera import PinholeCamera
from .smpl_body import SMPLBody

#: SMPL body row ``model`` -> gender of the model file
SMPL_GENDERS = {"smpl": "neutral", "smpl-male": "male", "smpl-female": "female"}


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
    from .anny_body import AnnyBody

    return AnnyBody()


@lru_cache(maxsize=4)
def _smpl(path: str, num_betas: int) -> SMPLBody:
    return SMPLBody.from_file(path, num_betas)


def smpl_body_of(model: str, num_betas: int) -> SMPLBody:
    """The :class:`~vtonpipe.models.smpl_body.SMPLBody` of an SMPL body row's ``model``."""
    from ..annotators.body_fit import SMPL_MODEL_FILES  # annotators import models: resolved at call time

    return _smpl(str(SMPL_MODEL_FILES[SMPL_GENDERS[model]].require()), num_betas)


def posed_mesh(record: Mapping[str, Any], width: int, height: int) -> PosedMesh:
    """The mesh of a ``body`` row (fields ``model``, ``pose``, ``shape``, ``rotation``,
    ``translation``, ``camera``; see :mod:`vtonpipe.schemas.body`) in a ``width x height`` image."""
    fx, fy, cx, cy = (float(v) for v in record["camera"])
    camera = PinholeCamera(fx, fy, cx, cy, int(width), int(height))
    model = record["model"]
    if model == "anny":
        body = _anny()
        with torch.no_grad():
            vertices = body(record["pose"], record["shape"], record["rotation"], record["translation"])[0]
        return PosedMesh(vertices.cpu().numpy().astype(np.float32), body.faces, camera, model)
    if model in SMPL_GENDERS:
        body = smpl_body_of(model, len(record["shape"]))
        with torch.no_grad():
            vertices = body(record["pose"], record["shape"])[0].double()
        R = rotvec_to_rotmat(torch.as_tensor(record["rotation"], dtype=torch.float64))
        vertices = vertices @ R.T + torch.as_tensor(record["translation"], dtype=torch.float64)
        return PosedMesh(vertices.numpy().astype(np.float32), body.faces, camera, "smpl")
    raise ValueError(f"no mesh for body model {model!r}")
