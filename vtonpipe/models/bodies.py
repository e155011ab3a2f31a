"""Meshes of fitted bodies: from a ``body`` annotation row (or ground truth) to camera-frame
vertices, ready to rasterise (DensePose rendering, pair flow, drawing)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

import numpy as np
import torch

from .camera import PinholeCamera


@dataclass
class PosedMesh:
    """``vertices`` (V, 3) float32 in the camera frame (metres, OpenCV axes), ``faces`` (F, 3)
    int64, the image's ``camera``, and the body ``model`` ("anny" | "smpl")."""

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
    raise ValueError(f"no mesh for body model {model!r}")
