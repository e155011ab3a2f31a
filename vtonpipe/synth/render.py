"""Shading, backdrops and sRGB output of the synthetic renders.

Lighting (linear light, camera frame; :data:`LIGHTINGS`): by default ``AMBIENT`` + a key light
from the upper left, in front of the person (``KEY_DIRECTION``) + a light at the camera, Lambert diffuse and Blinn-Phong specular
(exponent ``SHININESS``, strength per material); images are supersampled (``SUPERSAMPLE`` x
``SUPERSAMPLE`` rays per pixel, averaged in linear light), encoded to sRGB, and given Gaussian
noise of ``NOISE``. With a near-neutral backdrop this is what MediaPipe Pose reliably detects
people in, dark skin included (benchmarks/bench_sample.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models.bodies.camera import PinholeCamera

AMBIENT, KEY, HEADLIGHT = 0.25, 0.75, 0.35
KEY_DIRECTION = np.array([-0.55, -0.65, -0.52]) / np.linalg.norm([-0.55, -0.65, -0.52])  # towards the light
SHININESS = 24.0


@dataclass(frozen=True)
class Lighting:
    """A light set-up: ``ambient``, ``key`` and ``headlight`` strengths, the unit direction towards
    the key light (camera frame) and the key light's linear RGB ``tint``."""

    ambient: float
    key: float
    headlight: float
    key_direction: tuple[float, float, float]
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)


def _unit(v: tuple[float, float, float]) -> tuple[float, float, float]:
    n = float(np.linalg.norm(v))
    return (v[0] / n, v[1] / n, v[2] / n)


#: ``studio``: the default (above); ``side``: a warm key light from the image's right, a little
#: above and in front, with little ambient and camera fill: the image's left side in shade
LIGHTINGS = {
    "studio": Lighting(AMBIENT, KEY, HEADLIGHT, tuple(KEY_DIRECTION)),
    "side": Lighting(0.12, 1.0, 0.12, _unit((0.9, -0.25, -0.35)), (1.0, 0.85, 0.65)),
}
SUPERSAMPLE = 2
NOISE = 3.0 / 255.0


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Linear light 0..1 -> sRGB 0..1 (IEC 61966-2-1), clipped."""
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)


def shade(albedo: np.ndarray, specular: np.ndarray, normal: np.ndarray, view: np.ndarray, lighting: Lighting = LIGHTINGS["studio"]) -> np.ndarray:
    """Linear RGB (N, 3) of surface points: ``albedo`` (N, 3) linear, ``specular`` (N,) strength,
    ``normal`` (N, 3) unit (flipped here to face the viewer), ``view`` (N, 3) unit towards the
    camera, under ``lighting``."""
    light = np.asarray(lighting.key_direction)
    tint = np.asarray(lighting.tint)
    normal = np.where((np.einsum("nc,nc->n", normal, view) < 0)[:, None], -normal, normal)
    n_key = np.clip(normal @ light, 0.0, None)
    n_view = np.clip(np.einsum("nc,nc->n", normal, view), 0.0, None)
    half = light + view
    half /= np.linalg.norm(half, axis=1, keepdims=True)
    n_half = np.clip(np.einsum("nc,nc->n", normal, half), 0.0, None)
    # the default set-up's sums in their original order (tint 1): the default sample's bytes stay
    diffuse = lighting.ambient + lighting.key * n_key[:, None] * tint + lighting.headlight * n_view[:, None]
    highlight = specular[:, None] * (lighting.key * (n_half**SHININESS)[:, None] * tint + lighting.headlight * (n_view**SHININESS)[:, None])
    return albedo * diffuse + highlight


def view_directions(camera: PinholeCamera, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """(N, 3) unit camera-frame directions from the pixels ``(xs, ys)`` towards the camera."""
    d = np.stack([-(xs - camera.cx) / camera.fx, -(ys - camera.cy) / camera.fy, -np.ones(len(xs))], 1)
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def studio_background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) linear near-neutral backdrop: a random tint, a slight vertical gradient and a faint
    low-frequency texture."""
    import cv2

    base = rng.uniform(0.55, 0.82) * (1.0 + rng.uniform(-0.04, 0.04, 3))
    y = np.linspace(-1.0, 1.0, height)[:, None, None]
    gradient = 1.0 + rng.uniform(0.03, 0.08) * y - 0.04 * y**2
    small = rng.normal(0.0, 1.0, (max(4, height // 24), max(3, width // 24))).astype(np.float32)
    texture = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)[..., None]
    return (base * gradient * (1.0 + 0.012 * texture)).astype(np.float32)


def textured_background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) linear busy backdrop (a street or shop wall rather than a studio): a wall and a
    floor of two random colours, stripes of a third at a random angle and period, a few soft
    blobs of saturated colours and fine texture."""
    import cv2

    def colour(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi) * rng.dirichlet(np.ones(3)) * 3.0 ** 0.5

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    floor_at = rng.uniform(0.7, 0.9) * height
    image = np.where((y >= floor_at)[..., None], colour(0.2, 0.6), colour(0.25, 0.8)).astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(0.04, 0.15) * height
    stripes = (np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period) > rng.uniform(-0.3, 0.5))[..., None]
    image = np.where(stripes & (y < floor_at)[..., None], 0.5 * image + 0.5 * colour(0.2, 0.8), image)
    for _ in range(int(rng.integers(2, 6))):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, floor_at), rng.uniform(0.05, 0.2) * height
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r**2))[..., None]
        image = image * (1 - 0.8 * blob) + 0.8 * blob * colour(0.3, 0.9)
    small = rng.normal(0.0, 1.0, (max(4, height // 6), max(3, width // 6))).astype(np.float32)
    texture = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)[..., None]
    return np.clip(image * (1.0 + 0.06 * texture), 0.0, 1.0).astype(np.float32)


def soft_shadow(height: int, width: int, centre: tuple[float, float], radii: tuple[float, float], strength: float = 0.3) -> np.ndarray:
    """(H, W) multiplicative darkening (<= 1) of a soft elliptic contact shadow at ``centre`` (x, y)
    px with ``radii`` (rx, ry) px."""
    gx = np.exp(-2.0 * ((np.arange(width) - centre[0]) / radii[0]) ** 2)
    gy = np.exp(-2.0 * ((np.arange(height) - centre[1]) / radii[1]) ** 2)
    return (1.0 - strength * np.outer(gy, gx)).astype(np.float32)


def downsample(image: np.ndarray, k: int) -> np.ndarray:
    """Average ``k x k`` blocks of an (H k, W k, C) image."""
    h, w = image.shape[0] // k, image.shape[1] // k
    return image.reshape(h, k, w, k, -1).mean((1, 3))


def to_uint8(linear: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Linear RGB -> sRGB uint8 with Gaussian sensor noise of ``NOISE``."""
    srgb = linear_to_srgb(linear) + rng.normal(0.0, NOISE, linear.shape)
    return np.clip(np.rint(srgb * 255.0), 0, 255).astype(np.uint8)
