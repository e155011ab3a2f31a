"""Pair flow drawings: the flow on the colour wheel, the source warped onto the target, visibility.

Flow colours are the Middlebury colour wheel (Baker et al., "A Database and Evaluation Methodology
for Optical Flow", IJCV 2011, and its ``flowToColor``): hue gives the direction (red = pointing to
+x, i.e. the source point lies to the right), saturation the magnitude relative to the largest
one drawn, white = no motion.
"""

from __future__ import annotations

from typing import Mapping

import cv2
import numpy as np

from ..models.render.flow import BACKGROUND, HIDDEN, VISIBLE
from ..schemas.smpl_flow import SmplFlowRecord
from . import register_drawer

#: colours of the visibility states (RGB): visible green, hidden red, background black
VISIBILITY_COLOURS = {VISIBLE: (40, 180, 60), HIDDEN: (220, 40, 40), BACKGROUND: (0, 0, 0)}


def colour_wheel() -> np.ndarray:
    """(55, 3) float64 RGB 0..255: Middlebury's wheel, red -> yellow -> green -> cyan -> blue -> magenta."""
    segments = ((15, (255, 0, 0), (255, 255, 0)), (6, (255, 255, 0), (0, 255, 0)), (4, (0, 255, 0), (0, 255, 255)),
                (11, (0, 255, 255), (0, 0, 255)), (13, (0, 0, 255), (255, 0, 255)), (6, (255, 0, 255), (255, 0, 0)))  # fmt: skip
    rows = []
    for n, start, end in segments:
        t = np.arange(n)[:, None] / n
        rows.append((1 - t) * np.array(start) + t * np.array(end))
    return np.concatenate(rows)


def flow_to_colour(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a flow (H, W, 2) px; magnitudes are divided by ``max_magnitude``
    (the largest finite one by default) and clipped to 1."""
    u, v = flow[..., 0].astype(np.float64), flow[..., 1].astype(np.float64)
    magnitude = np.hypot(u, v)
    if max_magnitude is None:
        max_magnitude = float(magnitude.max()) if magnitude.size else 0.0
    radius = np.clip(magnitude / max(max_magnitude, 1e-9), 0.0, 1.0)
    wheel = colour_wheel()
    n = len(wheel)
    position = (np.arctan2(-v, -u) / np.pi + 1) / 2 * (n - 1)  # 0 .. n - 1, +x at the wheel's end
    k0 = np.floor(position).astype(int)
    k1 = (k0 + 1) % n
    f = (position - k0)[..., None]
    colour = ((1 - f) * wheel[k0] + f * wheel[k1]) / 255.0
    colour = 1 - radius[..., None] * (1 - colour)  # white at rest, full colour at max_magnitude
    return np.rint(255 * colour).astype(np.uint8)


def warp_source(source: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """The source image (H_s, W_s, C) sampled bilinearly at ``(x + flow_x, y + flow_y)`` of every
    target pixel: the source warped onto the target grid (H, W, C); 0 outside the source."""
    h, w = flow.shape[:2]
    grid_x = np.arange(w, dtype=np.float32)[None, :] + flow[..., 0]
    grid_y = np.arange(h, dtype=np.float32)[:, None] + flow[..., 1]
    return cv2.remap(source, grid_x, grid_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def visibility_image(visibility: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) of the visibility states (``VISIBILITY_COLOURS``)."""
    out = np.zeros(visibility.shape + (3,), np.uint8)
    for state, colour in VISIBILITY_COLOURS.items():
        out[visibility == state] = colour
    return out


@register_drawer("smpl_flow")
def draw_smpl_flow(image: np.ndarray, record: SmplFlowRecord, images: Mapping[str, np.ndarray]) -> np.ndarray:
    """Three pictures of the target's size side by side: the flow's colours on the body (white
    elsewhere); the source warped onto the target where visible, red-tinted where hidden, over the
    faded target image; the visibility states. ``image`` is the target image, ``images["source"]``
    the source."""
    flow, visibility = record.flow, record.visibility
    if image.shape[:2] != visibility.shape:
        raise ValueError(f"image {image.shape[:2]} is not the flow's target grid {visibility.shape}")
    source = images["source"]
    colours = flow_to_colour(flow)  # white off the body, where the flow is 0
    warped = (0.35 * image + 0.65 * 255).astype(np.uint8)
    moved = warp_source(source, flow)
    warped[visibility == VISIBLE] = moved[visibility == VISIBLE]
    hidden = visibility == HIDDEN
    warped[hidden] = (0.5 * moved[hidden] + 0.5 * np.array(VISIBILITY_COLOURS[HIDDEN])).astype(np.uint8)
    return np.concatenate([colours, warped, visibility_image(visibility)], axis=1)
