"""Heatmap targets, sub-pixel decoding, the flip test and whole-image prediction for
:class:`~vtonpipe.models.landmarks.hrnet.SALLandmarkNet`.

Frames (docs/CONVENTIONS.md, pixel centres at integers): the network reads images resized to its
``input_size`` (the resolution it was trained at); its heatmaps are that frame resized by 1/``STRIDE``. A point moves between
frames as any resized point does: ``x' = (x + 0.5) * W' / W - 0.5``.
"""

from __future__ import annotations

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


def decode_heatmaps(heatmaps: torch.Tensor) -> torch.Tensor:
    """``(B, K, h, w)`` -> ``(B, K, 3)``: x, y in heatmap cells (pixel-centre frame) and the peak value.

    The argmax cell, moved a quarter cell towards its higher neighbour on each axis (where it has
    both neighbours and they differ), as HRNet's pose decoder: it halves the mean quantisation
    error of the argmax.
    """
    b, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(b, k, h * w)
    peak, index = flat.max(-1)
    y, x = (index // w), (index % w)
    xf, yf = x.to(heatmaps.dtype), y.to(heatmaps.dtype)

    def at(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return flat.gather(-1, (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).unsqueeze(-1)).squeeze(-1)

    inner_x = (x > 0) & (x < w - 1)
    inner_y = (y > 0) & (y < h - 1)
    xf = xf + torch.where(inner_x, 0.25 * torch.sign(at(y, x + 1) - at(y, x - 1)), 0.0)
    yf = yf + torch.where(inner_y, 0.25 * torch.sign(at(y + 1, x) - at(y - 1, x)), 0.0)
    return torch.stack([xf, yf, peak], -1)


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
    (H, W) px (the resolution it was trained at), heatmaps decoded (:func:`decode_heatmaps`) and
    mapped back to each image's own frame, optionally with the flip test.

    Garment images: present points visible (a garment image is a front view), the others absent.
    Person images: the attribute of highest probability. The person branch reads the Gaussian
    heatmaps (``garment_heatmap_sigma``) of the garment branch's decoded landmarks.
    :meth:`predict_garments` / :meth:`predict_people` take batches already at ``input_size``
    (what a trainer evaluates on); :meth:`garments` / :meth:`people` take whole images.
    """

    def __init__(self, net: SALLandmarkNet, input_size: tuple[int, int], flip: bool = True, device: str | torch.device = "cpu"):
        self.net = net.eval().to(device)
        self.flip = flip
        self.device = torch.device(device)
        self.size = (int(input_size[0]), int(input_size[1]))

    def _heatmap_size(self) -> tuple[int, int]:
        return (self.size[0] // STRIDE, self.size[1] // STRIDE)

    def _landmarks(self, maps: torch.Tensor, attributes: torch.Tensor, frame: tuple[int, int]) -> torch.Tensor:
        """Landmarks (B, 32, 3) in a ``frame`` (H, W) px image of decoded heatmaps and attributes."""
        xy = rescale_points(decode_heatmaps(maps)[..., :2], self._heatmap_size(), frame)
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
