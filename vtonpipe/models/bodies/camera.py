"""Pinhole cameras in OpenCV axes, rigid camera poses, and framing a body as a fashion photo.

Conventions (docs/CONVENTIONS.md): camera axes ``x`` right, ``y`` down, ``z`` forward, metres;
a camera-frame point ``(X, Y, Z)`` projects to ``(fx X / Z + cx, fy Y / Z + cy)`` pixels, pixel
centres at integer coordinates, so an image of ``W x H`` pixels spans ``[-0.5, W - 0.5] x
[-0.5, H - 0.5]``.

Every function here takes numpy arrays or torch tensors and returns the same kind; the torch
path is differentiable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def _stack(parts: list, like: Array) -> Array:
    return torch.stack(parts, dim=-1) if isinstance(like, torch.Tensor) else np.stack(parts, axis=-1)


@dataclass(frozen=True)
class PinholeCamera:
    """Intrinsics of a ``width x height`` pixel image: focal lengths and principal point in pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def K(self) -> np.ndarray:
        """(3, 3) float64 intrinsic matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def project(self, points: Array) -> Array:
        """Pixel coordinates ``(..., 2)`` (x, y) of camera-frame points ``(..., 3)`` (Z > 0)."""
        z = points[..., 2]
        return _stack([self.fx * points[..., 0] / z + self.cx, self.fy * points[..., 1] / z + self.cy], points)

    def pixel_rays(self) -> np.ndarray:
        """(H, W, 3) float32 camera-frame directions through every pixel centre, scaled to ``Z = 1``."""
        x = (np.arange(self.width, dtype=np.float64) - self.cx) / self.fx
        y = (np.arange(self.height, dtype=np.float64) - self.cy) / self.fy
        rays = np.empty((self.height, self.width, 3), np.float32)
        rays[..., 0] = x[None, :]
        rays[..., 1] = y[:, None]
        rays[..., 2] = 1.0
        return rays

    def scaled(self, k: float) -> "PinholeCamera":
        """The same view on a ``k`` times finer (or coarser) pixel grid, e.g. for supersampling.

        A point at ``x`` here lands at ``k * (x + 0.5) - 0.5`` there (pixel edges are preserved).
        """
        width, height = round(self.width * k), round(self.height * k)
        if not (math.isclose(width, self.width * k) and math.isclose(height, self.height * k)):
            raise ValueError(f"{self.width}x{self.height} scaled by {k} is not a whole number of pixels")
        return PinholeCamera(self.fx * k, self.fy * k, k * (self.cx + 0.5) - 0.5, k * (self.cy + 0.5) - 0.5, width, height)


@dataclass(frozen=True)
class RigidTransform:
    """``x -> R x + t``; ``R`` (3, 3) and ``t`` (3,) float64. As a camera pose: world to camera."""

    R: np.ndarray
    t: np.ndarray

    def apply(self, points: Array) -> Array:
        """Transform points ``(..., 3)``."""
        if isinstance(points, torch.Tensor):
            R = torch.as_tensor(self.R, dtype=points.dtype, device=points.device)
            t = torch.as_tensor(self.t, dtype=points.dtype, device=points.device)
            return points @ R.T + t
        return points @ self.R.T + self.t

    def inverse(self) -> "RigidTransform":
        return RigidTransform(self.R.T, -self.R.T @ self.t)

    @property
    def matrix(self) -> np.ndarray:
        """(4, 4) float64 homogeneous matrix."""
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = self.R, self.t
        return m


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> RigidTransform:
    """World-to-camera transform of an OpenCV camera at ``eye`` looking at ``target``.

    ``up`` is the world direction that appears upwards in the image (camera ``-y``).
    """
    z = np.asarray(target, np.float64) - np.asarray(eye, np.float64)
    z /= np.linalg.norm(z)
    x = np.cross(-np.asarray(up, np.float64), z)
    norm = np.linalg.norm(x)
    if norm < 1e-9:
        raise ValueError("viewing direction is parallel to the up direction")
    x /= norm
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return RigidTransform(R, -R @ np.asarray(eye, np.float64))


def frame_body(
    vertices: np.ndarray,
    *,
    width: int,
    height: int,
    azimuth_deg: float = 0.0,
    elevation_deg: float = 0.0,
    fov_y_deg: float = 20.0,
    margin: float = 0.05,
) -> tuple[PinholeCamera, RigidTransform]:
    """A camera that photographs a body whole, centred, with a margin, as a fashion photo.

    ``vertices``: (V, 3) points in the body frame of :mod:`vtonpipe.models.bodies.anny` (metres,
    ``+Z`` up, the person facing ``-Y``, ``+X`` their left). ``azimuth_deg`` turns the camera about
    the vertical axis through the body (right-handed about ``+Z``): 0 photographs the front, 90
    the person's left side, 180 their back. ``elevation_deg`` raises the camera, which then looks
    down. The principal point is the image centre and ``fx = fy`` follows from ``fov_y_deg``; the
    camera is aimed so that the body's projected bounding box is centred, at the smallest distance
    that keeps every vertex at least ``margin * width`` (resp. height) pixels inside the image
    edges. Returns the intrinsics and the body-to-camera transform.
    """
    vertices = np.asarray(vertices, np.float64)
    if not 0.0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin}")
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    up = np.array([0.0, 0.0, 1.0])
    # the direction from the body to the camera: the person's front (-Y) turned by the azimuth, then raised
    to_camera = np.array([math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])
    R = look_at(to_camera, np.zeros(3), up).R
    focal = 0.5 * height / math.tan(math.radians(fov_y_deg) / 2)
    half = np.array([(0.5 - margin) * width, (0.5 - margin) * height])
    aim = 0.5 * (vertices.min(0) + vertices.max(0))
    for _ in range(4):
        local = (vertices - aim) @ R.T  # camera axes, origin at the aim point
        # a vertex stays inside when focal * |x| / (z + d) <= half_w, i.e. d >= focal * |x| / half_w - z
        distance = float(np.max(focal * np.abs(local[:, :2]) / half - local[:, 2:]))
        # re-aim so that the projected box is centred (perspective makes it lopsided), then refit
        xy = focal * local[:, :2] / (local[:, 2:] + distance)
        aim = aim + R[:2].T @ (0.5 * (xy.min(0) + xy.max(0)) * distance / focal)
    local = (vertices - aim) @ R.T
    distance = float(np.max(focal * np.abs(local[:, :2]) / half - local[:, 2:]))
    camera = PinholeCamera(focal, focal, (width - 1) / 2, (height - 1) / 2, width, height)
    return camera, look_at(aim + distance * to_camera, aim, up)
