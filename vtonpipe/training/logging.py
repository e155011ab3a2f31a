"""What a run writes besides checkpoints: ``log.csv``, ``tb/`` (TensorBoard), ``grids/step-XXXXXXX.png``,
``metrics.json``. Only rank 0 writes: other ranks hold a :class:`RunLog` with ``enabled=False``.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from PIL import Image

from ..io import write_bytes_atomic, write_json_atomic
from .transforms import resize_image

LOG_CSV = "log.csv"
METRICS = "metrics.json"


def sample_grid(columns: Mapping[str, torch.Tensor], *, pad: int = 2) -> np.ndarray:
    """RGB uint8 grid: one row per sample, one column per entry of ``columns``
    (``(B, 1 or 3, H, W)`` in [0, 1]; other sizes are resized to the first column's)."""
    if not columns:
        raise ValueError("no visuals to draw")
    first = next(iter(columns.values()))
    b, h, w = first.shape[0], first.shape[-2], first.shape[-1]
    tiles = []
    for name, images in columns.items():
        t = images.detach().float().cpu()
        if t.dim() != 4 or t.shape[1] not in (1, 3) or t.shape[0] != b:
            raise ValueError(f"visual {name!r}: expected ({b}, 1 or 3, H, W), got {tuple(t.shape)}")
        t = resize_image(t.expand(-1, 3, -1, -1), (h, w)).clamp(0, 1)
        tiles.append(t)
    grid = np.full((b * (h + pad) + pad, len(tiles) * (w + pad) + pad, 3), 255, np.uint8)
    for c, t in enumerate(tiles):
        pixels = (t.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
        for r in range(b):
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            grid[y : y + h, x : x + w] = pixels[r]
    return grid


class RunLog:
    """CSV + TensorBoard scalars, PNG sample grids and the metrics file of one run directory.

    ``resume_step``: rows and events after that step (written after the checkpoint a resumed run
    starts from, e.g. before a kill) are dropped, so the logs continue as one curve.
    """

    def __init__(self, run_dir: str | os.PathLike, *, enabled: bool = True, resume_step: int | None = None):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._tb = None
        self._columns: list[str] | None = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / LOG_CSV
        if resume_step is not None and path.exists():
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
            self._rewrite(rows, list(rows[0]) if rows else None)
        elif path.exists():
            path.unlink()
        from torch.utils.tensorboard import SummaryWriter

        self._tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=None if resume_step is None else resume_step + 1)

    def _rewrite(self, rows: list[dict[str, Any]], columns: list[str] | None) -> None:
        self._columns = columns
        buf = io.StringIO()
        if columns:
            writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        write_bytes_atomic(self.run_dir / LOG_CSV, buf.getvalue().encode())

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        """One row of ``log.csv`` (columns: step, then the value names; a new name extends the
        header) and the same scalars in TensorBoard."""
        if not self.enabled:
            return
        row = {"step": step, **{k: f"{float(v):.6g}" for k, v in values.items()}}
        path = self.run_dir / LOG_CSV
        if self._columns is None or not set(row) <= set(self._columns):
            old = []
            if path.exists() and path.stat().st_size:
                with path.open(newline="") as f:
                    old = list(csv.DictReader(f))
            self._rewrite(old, list(dict.fromkeys([*(self._columns or ["step"]), *row])))
        with path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self._columns, lineterminator="\n").writerow(row)
        for k, v in values.items():
            self._tb.add_scalar(k, float(v), step)

    def grid(self, step: int, columns: Mapping[str, torch.Tensor]) -> Path | None:
        """Write ``grids/step-XXXXXXX.png`` (and the grid to TensorBoard); column order = ``columns``'."""
        if not self.enabled:
            return None
        image = sample_grid(columns)
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        path = self.run_dir / "grids" / f"step-{step:07d}.png"
        write_bytes_atomic(path, buf.getvalue())
        self._tb.add_image("samples/" + " | ".join(columns), image, step, dataformats="HWC")
        return path

    def metrics(self, values: Mapping[str, Any]) -> Path | None:
        """Write ``metrics.json`` (flat: ``dvc metrics show`` reads it as is)."""
        if not self.enabled:
            return None
        write_json_atomic(self.run_dir / METRICS, dict(values))
        return self.run_dir / METRICS

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
