"""Training augmentation of images and their 32 landmarks: mirror flips (left/right ids swapped),
a random similarity transform (scale, rotation, shift) and colour jitter.

Frames: images float32 ``(B, 3, H, W)`` in [0, 1]; landmarks ``(B, 32, 3)`` (x, y px in the
images' pixel-centre frame, attribute 0 visible / 1 occluded / 2 absent, absent points at
(0, 0)). Random numbers come from torch's global CPU generator (a trainer checkpoints its state,
so a resumed run draws the same ones), then move to the images' device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...converters.landmarks import ABSENT, FLIP, OCCLUDED, VISIBLE


def flip_where(images: torch.Tensor, landmarks: torch.Tensor, flip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and landmarks with the samples where ``flip`` (B,) bool is set mirrored left-right:
    the image ``image[..., ::-1]``, landmark ids swapped by :data:`FLIP` and ``x -> W - 1 - x``
    (the tensor form of :func:`~vtonpipe.converters.landmarks.flip_landmarks`)."""
    w = images.shape[-1]
    flip = flip.to(images.device)
    mirrored = landmarks[:, list(FLIP)].clone()
    mirrored[..., 0] = torch.where(mirrored[..., 2] != ABSENT, w - 1 - mirrored[..., 0], 0.0)
    return torch.where(flip[:, None, None, None], images.flip(-1), images), torch.where(flip[:, None, None], mirrored, landmarks)


def similarity_warp(
    images: torch.Tensor, landmarks: torch.Tensor, scale: torch.Tensor, angle: torch.Tensor, shift: torch.Tensor, *, outside_occludes: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and landmarks under the similarity ``p' = scale R(angle) (p - c) + c + shift`` about
    the image centre ``c = ((W - 1) / 2, (H - 1) / 2)``: ``scale`` (B,), ``angle`` (B,) radians
    (counter-clockwise on screen is negative: y points down), ``shift`` (B, 2) px.

    Images are resampled bilinearly, edge pixels repeated beyond the border (the plain
    backgrounds of garment and person photos). Absent points stay at (0, 0); with
    ``outside_occludes`` visible points that leave the image become occluded (the definition's
    "outside the image").
    """
    b, _, h, w = images.shape
    dev, dt = images.device, images.dtype
    scale, angle, shift = scale.to(dev, dt), angle.to(dev, dt), shift.to(dev, dt)
    cos, sin = angle.cos(), angle.sin()
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (B, 2, 2)
    centre = torch.tensor([(w - 1) / 2.0, (h - 1) / 2.0], device=dev, dtype=dt)
    ys, xs = torch.meshgrid(torch.arange(h, device=dev, dtype=dt), torch.arange(w, device=dev, dtype=dt), indexing="ij")
    out_px = torch.stack([xs, ys], -1).reshape(1, h * w, 2)
    # the inverse map for sampling: p = R^T (p' - c - shift) / scale + c (row vectors: q @ R is R^T q)
    src = ((out_px - centre - shift[:, None]) @ rot) / scale[:, None, None] + centre
    grid = torch.stack([(2 * src[..., 0] + 1) / w - 1, (2 * src[..., 1] + 1) / h - 1], -1).reshape(b, h, w, 2)
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)

    lm = landmarks.clone()
    xy = scale[:, None, None] * ((landmarks[..., :2] - centre) @ rot.transpose(1, 2)) + centre + shift[:, None]
    absent = landmarks[..., 2] == ABSENT
    lm[..., :2] = torch.where(absent[..., None], 0.0, xy)
    if outside_occludes:
        outside = (xy[..., 0] < -0.5) | (xy[..., 0] > w - 0.5) | (xy[..., 1] < -0.5) | (xy[..., 1] > h - 0.5)
        lm[..., 2] = torch.where(outside & (landmarks[..., 2] == VISIBLE), float(OCCLUDED), landmarks[..., 2])
    return warped, lm


def colour_jitter(images: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor, saturation: torch.Tensor) -> torch.Tensor:
    """Images with each sample's brightness, contrast (about its mean grey) and saturation (about
    each pixel's grey) multiplied by the factors (B,), clipped to [0, 1]."""
    dev, dt = images.device, images.dtype
    brightness, contrast, saturation = (t.to(dev, dt)[:, None, None, None] for t in (brightness, contrast, saturation))
    x = images * brightness
    grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).clamp(0, 1)
    x = grey + (x - grey) * saturation
    mean = grey.mean((-2, -1), keepdim=True)
    return (mean + (x - mean) * contrast).clamp(0, 1)


def random_augment(
    images: torch.Tensor,
    landmarks: torch.Tensor,
    flip: torch.Tensor,
    *,
    max_scale: float,
    max_rotation_deg: float,
    max_shift: float,
    colour: float,
    outside_occludes: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random augmentation per sample: the flip ``flip`` (B,) bool (drawn by the caller, so
    a garment and the person wearing it flip together), then a similarity with scale uniform in
    ``[1 - max_scale, 1 + max_scale]``, rotation in ``+-max_rotation_deg`` and shift in
    ``+-max_shift`` of the image size each way, then colour factors uniform in
    ``[1 - colour, 1 + colour]``."""
    b, _, h, w = images.shape

    def uniform(*shape: int) -> torch.Tensor:
        return 2 * torch.rand(*shape) - 1

    images, landmarks = flip_where(images, landmarks, flip)
    shift = uniform(b, 2) * max_shift * torch.tensor([float(w), float(h)])
    images, landmarks = similarity_warp(
        images, landmarks, 1 + max_scale * uniform(b), math.radians(max_rotation_deg) * uniform(b), shift, outside_occludes=outside_occludes
    )
    jitter = [1 + colour * uniform(b) for _ in range(3)]
    return colour_jitter(images, *jitter), landmarks
