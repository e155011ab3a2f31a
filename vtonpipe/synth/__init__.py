"""The embedded sample dataset (MPV layout), written by ``vtonpipe sample``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..io import write_image


@dataclass
class SampleSummary:
    root: Path
    people: int
    images: int
    pairs: int


def parse_size(size: str) -> tuple[int, int]:
    """``"256x192"`` -> (height 256, width 192)."""
    try:
        h, w = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must be HEIGHTxWIDTH like 256x192, got {size!r}") from None
    if h < 32 or w < 24:
        raise ValueError(f"size {size} is too small")
    return h, w


def write_sample(out: str | Path, people: int = 8, seed: int = 0, size: tuple[int, int] = (256, 192), test_fraction: float = 0.25) -> SampleSummary:
    """Write ``people`` (pose A, pose B, garment) triplets in MPV layout under ``out``, deterministically."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    h, w = size
    lines = []
    for i in range(people):
        colour = tuple(int(c) for c in rng.integers(30, 220, 3))
        stem = f"S{seed:02d}{i:04d}@0"
        names = [f"{stem}=person_half_front.jpg", f"{stem}=person_whole_back.jpg", f"{stem}=cloth_front.jpg"]
        for j, name in enumerate(names[:2]):
            img = np.full((h, w, 3), 228, np.uint8)
            cx = w // 2 + int(rng.integers(-w // 10, w // 10 + 1))
            cv2.ellipse(img, (cx, h // 2), (w // 6, h // 3), 0, 0, 360, colour, -1)
            cv2.circle(img, (cx, h // 8 + j * 4), h // 14, (170, 130, 110), -1)
            write_image(out / "all" / name, img)
        g = np.full((h, w, 3), 250, np.uint8)
        cv2.rectangle(g, (w // 4, h // 5), (3 * w // 4, 4 * h // 5), colour, -1)
        write_image(out / "all" / names[2], g)
        split = "test" if i < round(people * test_fraction) else "train"
        lines.append("\t".join([*names, split]))
    (out / "all_poseA_poseB_clothes.txt").write_text("\n".join(lines) + "\n")
    return SampleSummary(out, people, 3 * people, people)
