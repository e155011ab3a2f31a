"""Garment-agnostic person inputs for the try-on generators, from batched LIP parsings.

Batched torch front ends of :mod:`vtonpipe.converters.labels` (its label names and agnostic
recipes; nothing is redefined here) plus the masks the papers name:

- :func:`agnostic_person`: HR-VITON's gray agnostic person image (``labels.image_agnostic``):
  torso, neck and arms painted gray; needs the neck, shoulders and hips keypoints.
- :func:`agnostic_parsing`: VITON-HD's parse-agnostic map (``labels.parse_agnostic``).
- :func:`remove_garment`: the image with the garment region painted a fill value, keypoint-free
  (SPG-VTON's ``I_s^{w/o.C}``, Down to the Last Detail's ``I_ps^{w/o.c}``).
- :func:`label_mask`, :func:`drop_labels`, :func:`one_hot`: masks of named LIP classes
  (e.g. SPG-VTON's head part ``A_s`` = face and hair masks), a parsing with classes set to
  background (SPG-VTON's reference map ``S'_s``), one-hot maps for the networks.

Inputs follow the training contract: images (B, 3, H, W) float in [0, 1]; parsings (B, H, W)
int64 LIP ids 0..19; keypoints (B, 18, 3) COCO-18 ``(x, y, conf)`` in pixels of the same grid.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ...converters import labels

#: LIP classes of the upper garment region (the contract's ``*_garment_region``, as 3D-GCL's code).
UPPER_GARMENT = ("upper-clothes", "dress", "coat")
FACE = ("face",)
HAIR = ("hair",)
NUM_LIP = len(labels.LIP_LABELS)


def lip_ids(names: Sequence[str]) -> tuple[int, ...]:
    """LIP ids of class ``names`` (``labels.LIP_LABELS``); an unknown name raises ``ValueError``."""
    unknown = [n for n in names if n not in labels.LIP_LABELS]
    if unknown:
        raise ValueError(f"unknown LIP classes {unknown}; known: {', '.join(labels.LIP_LABELS)}")
    return tuple(labels.LIP_LABELS.index(n) for n in names)


def _check_parsing(parsing: torch.Tensor) -> None:
    if parsing.ndim != 3 or parsing.dtype not in (torch.int64, torch.int32, torch.uint8):
        raise ValueError(f"parsing must be integer (B, H, W) LIP ids, got {parsing.dtype} {tuple(parsing.shape)}")


def label_mask(parsing: torch.Tensor, names: Sequence[str]) -> torch.Tensor:
    """(B, 1, H, W) float {0, 1}: pixels whose LIP class is one of ``names``."""
    _check_parsing(parsing)
    ids = torch.tensor(lip_ids(names), device=parsing.device)
    return torch.isin(parsing, ids)[:, None].float()


def drop_labels(parsing: torch.Tensor, names: Sequence[str]) -> torch.Tensor:
    """``parsing`` (B, H, W) with the classes ``names`` set to background (0)."""
    _check_parsing(parsing)
    ids = torch.tensor(lip_ids(names), device=parsing.device)
    return torch.where(torch.isin(parsing, ids), torch.zeros_like(parsing), parsing)


def one_hot(parsing: torch.Tensor, num_classes: int = NUM_LIP) -> torch.Tensor:
    """(B, H, W) ids -> (B, num_classes, H, W) float one-hot."""
    _check_parsing(parsing)
    return torch.nn.functional.one_hot(parsing.long(), num_classes).permute(0, 3, 1, 2).float()


def remove_garment(image: torch.Tensor, region: torch.Tensor, fill: float = 0.5) -> torch.Tensor:
    """``image * (1 - region) + fill * region``: the person with the garment region (B, 1, H, W)
    painted ``fill`` (default mid-gray, 0 in the [-1, 1] range)."""
    return image * (1 - region) + fill * region


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    return (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def agnostic_person(image: torch.Tensor, parsing: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
    """HR-VITON's agnostic person image, per sample with ``labels.image_agnostic``: (B, 3, H, W)
    in [0, 1] (quantised to 8 bits; gray is 128 / 255). Raises ``ValueError`` naming the sample
    whose neck, shoulders or hips are undetected."""
    _check_parsing(parsing)
    out = []
    for b in range(image.shape[0]):
        try:
            rgb = labels.image_agnostic(_to_uint8(image[b]), parsing[b].cpu().numpy().astype(np.uint8), keypoints[b].detach().cpu().numpy())
        except ValueError as e:
            raise ValueError(f"sample {b}: {e}") from e
        out.append(torch.from_numpy(rgb).permute(2, 0, 1))
    return torch.stack(out).to(image.device, image.dtype) / 255.0


def agnostic_parsing(parsing: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
    """VITON-HD's parse-agnostic map per sample (``labels.parse_agnostic``): (B, H, W) int64."""
    _check_parsing(parsing)
    out = [
        torch.from_numpy(labels.parse_agnostic(parsing[b].cpu().numpy().astype(np.uint8), keypoints[b].detach().cpu().numpy()).astype(np.int64))
        for b in range(parsing.shape[0])
    ]
    return torch.stack(out).to(parsing.device)
