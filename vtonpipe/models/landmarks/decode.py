"""Heatmap targets, sub-pixel decoding, the flip test and whole-image prediction for
:class:`~vtonpipe.models.landmarks.hrnet.SALLandmarkNet`.

Frames (docs/CONVENTIONS.md, pixel centres at integers): the network reads images resized to its
``input_size`` (the resolution it was trained at); its heatmaps are that frame resized by 1/``STRIDE``. A point moves between
frames as any resized point does: ``x' = (x + 0.5) * W' / W - 0.5``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ...converters.landmarks import ABSENT, FLIP, VISIBLE, landmark_heatmaps
from .hrnet import PRESENT, STRIDE, SALLandmarkNet


def rescale_points(xy: torch.Tensor, source_size: tuple[int, int], target_size: tuple[int, int]) -> torch.Tensor:
    """Points ``(..., 2)`` (x, y) px of a ``source_size`` (H, W) frame in the ``target_size`` frame."""
    (sh, sw), (th, tw) = source_size, target_size
    scale = torch.tensor([tw / sw, th / sh], dtype=xy.dtype, device=xy.device)
    return (xy + 0.5) * scale - 0.5


def heatmap_targets(landmarks: torch.Tensor, input_size: tuple[int, int], sigma: float) -> torch.Tensor:
    """Training targets ``(B, 32, H/4, W/4)`` for landmarks ``(B, 32, 3)`` given in the
    ``input_size`` (H, W) frame: Gaussians of ``sigma`` input px (``sigma / 4`` cells) at the
    points moved to the heatmap frame, absent points all zero."""
    h, w = input_size
    size = (h // STRIDE, w // STRIDE)
    lm = landmarks.clone().float()
    lm[..., :2] = rescale_points(lm[..., :2], input_size, size)
    return landmark_heatmaps(lm, size, sigma / STRIDE)


#: the log of heatmap values at or below this (DARK's floor before the logarithm)
LOG_FLOOR = 1e-10


def modulate_heatmaps(heatmaps: torch.Tensor, sigma: float) -> torch.Tensor:
    """DARK's distribution modulation: each heatmap ``(B, K, h, w)`` convolved with a Gaussian
    of ``sigma`` cells (the targets' width; kernel radius ``ceil(3 sigma)``, zero padding, as
    DARK's code pads), which smooths a network's multi-peaked output towards the Gaussian the
    Taylor step assumes. DARK then rescales each map to its former maximum; that only adds a
    constant to the log-heatmap, which the Taylor step does not see, so it is left out."""
    radius = max(1, math.ceil(3.0 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=heatmaps.dtype, device=heatmaps.device)
    kernel = torch.exp(-(offsets**2) / (2.0 * sigma**2))
    kernel = kernel / kernel.sum()
    b, k, h, w = heatmaps.shape
    x = heatmaps.reshape(b * k, 1, h, w)
    x = F.conv2d(x, kernel.view(1, 1, 1, -1), padding=(0, radius))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1), padding=(radius, 0))
    return x.reshape(b, k, h, w)


def taylor_maximum(log_heatmaps: torch.Tensor, cells: torch.Tensor | None = None) -> torch.Tensor:
    """DARK's sub-pixel maximum (Zhang et al. 2020, Eq. 7): ``mu = m - H(m)^-1 D(m)`` of log-heatmaps
    ``(B, K, h, w)`` -> ``(B, K, 2)`` x, y in cells (pixel-centre frame).

    ``m`` is the cell ``cells`` (B, K) (flat index ``y * w + x``; default the argmax of
    ``log_heatmaps``); the gradient ``D`` and the Hessian ``H`` of the log-heatmap are
    central differences over its 8 neighbours (``dx = (P[x+1] - P[x-1]) / 2``, ``dxx = P[x+1] -
    2 P[x] + P[x-1]``, ``dxy = (P[x+1,y+1] - P[x+1,y-1] - P[x-1,y+1] + P[x-1,y-1]) / 4``), exact
    for the log of a sampled Gaussian, whose maximum is then recovered exactly. The step is
    taken where ``m`` has all 8 neighbours and ``H`` is negative definite (a maximum), each
    coordinate's offset clipped to one cell; elsewhere (a border cell, a flat or saddle
    neighbourhood) the result is the argmax cell.
    """
    b, k, h, w = log_heatmaps.shape
    flat = log_heatmaps.reshape(b, k, h * w)
    index = flat.argmax(-1) if cells is None else cells
    y, x = index // w, index % w

    def at(dy: int, dx: int) -> torch.Tensor:
        yy, xx = (y + dy).clamp(0, h - 1), (x + dx).clamp(0, w - 1)
        return flat.gather(-1, (yy * w + xx).unsqueeze(-1)).squeeze(-1)

    centre = at(0, 0)
    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = at(0, 1) - 2.0 * centre + at(0, -1)
    dyy = at(1, 0) - 2.0 * centre + at(-1, 0)
    dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    det = dxx * dyy - dxy**2
    inner = (x > 0) & (x < w - 1) & (y > 0) & (y < h - 1)
    maximum = inner & (dxx < 0) & (det > 0)
    safe = torch.where(maximum, det, torch.ones_like(det))
    # -H^-1 D with H^-1 = [[dyy, -dxy], [-dxy, dxx]] / det
    off_x = -(dyy * dx - dxy * dy) / safe
    off_y = -(dxx * dy - dxy * dx) / safe
    off_x = torch.where(maximum, off_x.clamp(-1.0, 1.0), 0.0)
    off_y = torch.where(maximum, off_y.clamp(-1.0, 1.0), 0.0)
    return torch.stack([x.to(log_heatmaps.dtype) + off_x, y.to(log_heatmaps.dtype) + off_y], -1)


def decode_heatmaps(heatmaps: torch.Tensor, sigma: float) -> torch.Tensor:
    """``(B, K, h, w)`` -> ``(B, K, 3)``: x, y in heatmap cells (pixel-centre frame) and the peak value
    of the raw heatmap.

    DARK (Zhang et al. 2020, "Distribution-Aware Coordinate Representation for Human Pose
    Estimation"): the heatmaps modulated (:func:`modulate_heatmaps`, ``sigma`` cells, the
    training targets' width), their logarithm taken (floored at :data:`LOG_FLOOR`), and the
    maximum found to sub-cell precision by a second-order Taylor expansion around the argmax of
    the modulated heatmap (:func:`taylor_maximum`; the argmax is taken before the floor, which
    would tie the cells of a map that is everywhere below it).
    """
    modulated = modulate_heatmaps(heatmaps.float(), sigma)
    cells = modulated.flatten(-2).argmax(-1)
    xy = taylor_maximum(modulated.clamp_min(LOG_FLOOR).log(), cells).to(heatmaps.dtype)
    peak = heatmaps.flatten(-2).amax(-1)
    return torch.cat([xy, peak[..., None]], -1)


def flip_heatmaps(heatmaps: torch.Tensor) -> torch.Tensor:
    """The heatmaps ``(B, 32, h, w)`` of the mirror image: flipped left-right, channels swapped
    by :data:`~vtonpipe.converters.landmarks.FLIP` (its own inverse)."""
    return heatmaps.flip(-1)[:, list(FLIP)]


def flip_test(run: Callable[[bool], tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Average of a branch's output on its inputs and on their mirror images, mirrored back:
    heatmaps ``(B, 32, h, w)`` and attribute probabilities ``(B, 32, C)`` (softmax, points
    swapped by FLIP). ``run(flipped)`` returns (heatmaps, logits) of the inputs, mirrored when
    ``flipped``. The result is exactly mirror-symmetric: a mirrored input gives the mirrored
    output."""
    maps, logits = run(False)
    maps_f, logits_f = run(True)
    probs = 0.5 * (logits.softmax(-1) + logits_f.softmax(-1)[:, list(FLIP)])
    return 0.5 * (maps + flip_heatmaps(maps_f)), probs


def _batch(images: Sequence[np.ndarray], size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """RGB uint8 images (H, W, 3) -> float (B, 3, h, w) in [0, 1], each resized to ``size``
    (bilinear, antialiased when shrinking)."""
    out = []
    for image in images:
        t = torch.from_numpy(np.array(image, np.uint8)).to(device).permute(2, 0, 1)[None].float() / 255.0
        if tuple(t.shape[-2:]) != tuple(size):
            t = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
        out.append(t)
    return torch.cat(out)


class LandmarkPredictor:
    """Whole-image landmarks from a :class:`SALLandmarkNet`: images resized to ``input_size``
    (H, W) px (the resolution it was trained at), heatmaps decoded (:func:`decode_heatmaps`,
    modulated at the ``heatmap_sigma`` px, at ``input_size``, of the training targets) and mapped
    back to each image's own frame, optionally with the flip test.

    Garment images: present points visible (a garment image is a front view), the others absent.
    Person images: the attribute of highest probability. The person branch reads the Gaussian
    heatmaps (``garment_heatmap_sigma``) of the garment branch's decoded landmarks.
    :meth:`predict_garments` / :meth:`predict_people` take batches already at ``input_size``
    (what a trainer evaluates on); :meth:`garments` / :meth:`people` take whole images.
    """

    def __init__(self, net: SALLandmarkNet, input_size: tuple[int, int], heatmap_sigma: float, flip: bool = True, device: str | torch.device = "cpu"):
        self.net = net.eval().to(device)
        self.heatmap_sigma = float(heatmap_sigma)
        self.flip = flip
        self.device = torch.device(device)
        self.size = (int(input_size[0]), int(input_size[1]))

    def _heatmap_size(self) -> tuple[int, int]:
        return (self.size[0] // STRIDE, self.size[1] // STRIDE)

    def _landmarks(self, maps: torch.Tensor, attributes: torch.Tensor, frame: tuple[int, int]) -> torch.Tensor:
        """Landmarks (B, 32, 3) in a ``frame`` (H, W) px image of decoded heatmaps and attributes."""
        xy = rescale_points(decode_heatmaps(maps, self.heatmap_sigma / STRIDE)[..., :2], self._heatmap_size(), frame)
        xy = torch.where((attributes == ABSENT)[..., None], 0.0, xy)
        return torch.cat([xy, attributes[..., None].to(xy.dtype)], -1)

    def _garments(self, garments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Garment heatmaps (B, 32, h, w) and attributes (B, 32) (visible or absent)."""

        def run(flipped: bool) -> tuple[torch.Tensor, torch.Tensor]:
            return self.net.forward_garment(garments.flip(-1) if flipped else garments)

        if self.flip:
            maps, probs = flip_test(run)
        else:
            maps, logits = run(False)
            probs = logits.softmax(-1)
        attributes = torch.where(probs[..., PRESENT] >= 0.5, VISIBLE, ABSENT)
        return maps, attributes

    def _people(self, people: torch.Tensor, garments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Person heatmaps (B, 32, h, w) and attributes (B, 32) of the garments on the people."""
        g_maps, g_attributes = self._garments(garments)
        garment_maps = landmark_heatmaps(self._landmarks(g_maps, g_attributes, self.size), self.size, self.net.config.garment_heatmap_sigma)

        def run(flipped: bool) -> tuple[torch.Tensor, torch.Tensor]:
            if flipped:
                return self.net.forward_person(people.flip(-1), garments.flip(-1), flip_heatmaps(garment_maps))
            return self.net.forward_person(people, garments, garment_maps)

        if self.flip:
            maps, probs = flip_test(run)
        else:
            maps, logits = run(False)
            probs = logits.softmax(-1)
        return maps, probs.argmax(-1)

    @torch.no_grad()
    def predict_garments(self, garments: torch.Tensor) -> torch.Tensor:
        """Landmarks (B, 32, 3) of garment images (B, 3, H, W) in [0, 1] at ``input_size``, in that frame."""
        return self._landmarks(*self._garments(garments), self.size)

    @torch.no_grad()
    def predict_people(self, people: torch.Tensor, garments: torch.Tensor) -> torch.Tensor:
        """Landmarks (B, 32, 3) of the garments ``garments`` on the people ``people`` (both
        (B, 3, H, W) in [0, 1] at ``input_size``), in the person images' frame."""
        return self._landmarks(*self._people(people, garments), self.size)

    @torch.no_grad()
    def garments(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Landmarks (32, 3) of each in-shop garment image (RGB uint8), in its own pixel frame."""
        maps, attributes = self._garments(_batch(images, self.size, self.device))
        return [self._numpy(maps[i : i + 1], attributes[i : i + 1], image.shape[:2]) for i, image in enumerate(images)]

    @torch.no_grad()
    def people(self, person_images: Sequence[np.ndarray], garment_images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Landmarks (32, 3) of the garment ``garment_images[i]`` on the person of
        ``person_images[i]`` (RGB uint8), in the person image's pixel frame."""
        maps, attributes = self._people(_batch(person_images, self.size, self.device), _batch(garment_images, self.size, self.device))
        return [self._numpy(maps[i : i + 1], attributes[i : i + 1], image.shape[:2]) for i, image in enumerate(person_images)]

    def _numpy(self, maps: torch.Tensor, attributes: torch.Tensor, frame: tuple[int, int]) -> np.ndarray:
        return self._landmarks(maps, attributes, frame)[0].cpu().numpy().astype(np.float32)
