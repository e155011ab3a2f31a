"""Resizing each kind of prior to the training resolution, each with its own rule.

Every function maps a map or point set from an original image grid ``(H, W)`` to the training grid
``(H', W')`` in the pixel-centre frame of docs/CONVENTIONS.md: pixel ``(i, j)`` has its centre at
``(x=j, y=i)``, so an original coordinate ``x`` lands at ``x' = (x + 0.5) * W' / W - 0.5``
(likewise ``y``). Sizes are ``(height, width)`` tuples. The rules:

- images: bilinear, antialiased when shrinking (:func:`resize_image`);
- label maps, masks, DensePose part index I, visibility: nearest pixel centre (:func:`resize_nearest`);
- DensePose U/V: bilinear over the neighbouring pixels of the same part as the nearest one (:func:`resize_iuv`);
- points (keypoints, landmarks): the coordinate map above, undetected/absent points untouched (:func:`scale_points`);
- pair flow: bilinear over body pixels, then the vectors re-expressed in the resized frames (:func:`resize_flow`).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

Size = tuple[int, int]


def _as_tensor(a: np.ndarray | torch.Tensor) -> torch.Tensor:
    return a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))


def _nearest_index(n_in: int, n_out: int) -> torch.Tensor:
    """Source index of each output pixel: the input pixel whose cell holds the output pixel's centre."""
    centre = (torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out)
    return centre.floor().long().clamp(max=n_in - 1)


def _bilinear_taps(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The two input pixels ``(i0, i1)`` around each output pixel centre and the weight of ``i1``
    (``align_corners=False`` sampling, clamped at the borders)."""
    src = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5).clamp(0, n_in - 1)
    i0 = src.floor().long()
    return i0, (i0 + 1).clamp(max=n_in - 1), (src - i0).float()


def resize_image(image: torch.Tensor, size: Size) -> torch.Tensor:
    """Bilinear resize of images ``(C, H, W)`` or ``(B, C, H, W)`` to ``size`` = (H', W'), same dtype.

    ``align_corners=False`` sampling (pixel centres as above), antialiased when shrinking (the
    triangle filter widened by the scale, as PIL's bilinear resize), so a 1024x768 photo shrinks to
    256x192 without aliasing. The weights are non-negative: values stay in the input's range.
    uint8 images are resized in 8 bits (results rounded to the nearest level; several times
    faster than float32 on the CPU), float images in float32.
    """
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    batched = image if image.dim() == 4 else image[None]
    if batched.dtype == torch.uint8:
        batched = batched.contiguous(memory_format=torch.channels_last)  # torch's fast uint8 path
    out = F.interpolate(batched, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return out if image.dim() == 4 else out[0]


def _flat_index(rows: torch.Tensor, cols: torch.Tensor, width: int) -> torch.Tensor:
    """int64 ``(len(rows) * len(cols),)``: the row-major positions of the pixels ``(rows[i], cols[j])``
    in a grid ``width`` pixels wide (one gather then reads an output grid from the input)."""
    return (rows[:, None] * width + cols[None, :]).reshape(-1)


def resize_nearest(labels: np.ndarray | torch.Tensor, size: Size) -> torch.Tensor:
    """Nearest-pixel-centre resize of a map ``(..., H, W)`` of any dtype (labels, masks, visibility).

    Output pixel ``(i', j')`` takes input pixel ``(floor((i' + 0.5) H / H'), floor((j' + 0.5) W / W'))``:
    no label is ever mixed or invented.
    """
    t = _as_tensor(labels)
    h, w = t.shape[-2:]
    if (h, w) == tuple(size):
        return t
    return t.reshape(*t.shape[:-2], h * w).index_select(-1, _nearest_gather((h, w), tuple(size))).reshape(*t.shape[:-2], *size)


@functools.lru_cache(maxsize=32)
def _nearest_gather(in_size: Size, out_size: Size) -> torch.Tensor:
    """int64 ``(H' * W',)``: the row-major position in the input grid of each output pixel's
    nearest pixel (cached per pair of sizes: never modify it)."""
    return _flat_index(_nearest_index(in_size[0], out_size[0]), _nearest_index(in_size[1], out_size[1]), in_size[1])


def scale_points(points: np.ndarray | torch.Tensor, valid: np.ndarray | torch.Tensor, from_size: Size, to_size: Size) -> torch.Tensor:
    """Points ``(K, D)`` whose first two columns are ``(x, y)`` px, mapped from ``from_size`` to ``to_size``.

    ``x' = (x + 0.5) W' / W - 0.5`` and ``y' = (y + 0.5) H' / H - 0.5``; rows where ``valid`` (K,) is
    false (undetected keypoints, absent landmarks) keep their values (``(0, 0)`` by convention).
    The other columns (confidence, attribute) are unchanged. Returns float32.
    """
    p = _as_tensor(points).float().clone()
    keep = _as_tensor(valid).bool()
    sx, sy = to_size[1] / from_size[1], to_size[0] / from_size[0]
    p[keep, 0] = (p[keep, 0] + 0.5) * sx - 0.5
    p[keep, 1] = (p[keep, 1] + 0.5) * sy - 0.5
    return p


@functools.lru_cache(maxsize=32)
def _bilinear_gather(in_size: Size, out_size: Size) -> tuple[np.ndarray, np.ndarray]:
    """The four bilinear taps of every output pixel as row-major positions in the input grid and
    their weights: int64 and float32 ``(H' * W', 4)`` (cached per pair of sizes, read-only)."""
    y0, y1, wy = _bilinear_taps(in_size[0], out_size[0])
    x0, x1, wx = _bilinear_taps(in_size[1], out_size[1])
    taps = [(ys, wys, xs, wxs) for ys, wys in ((y0, 1 - wy), (y1, wy)) for xs, wxs in ((x0, 1 - wx), (x1, wx))]
    index = torch.stack([_flat_index(ys, xs, in_size[1]) for ys, _, xs, _ in taps], dim=1).numpy()
    weight = torch.stack([(wys[:, None] * wxs[None, :]).reshape(-1) for _, wys, _, wxs in taps], dim=1).numpy()
    index.flags.writeable = weight.flags.writeable = False
    return index, weight


def _masked_bilinear(values: torch.Tensor, key: torch.Tensor | None, out_key: torch.Tensor, size: Size, background: int | bool) -> torch.Tensor:
    """Bilinear resize of ``values`` (H, W, C) to float32 ``(C, H', W')`` using only the taps whose
    ``key`` (H, W) equals ``out_key`` (H', W') at the output pixel, the kept taps' weights
    renormalised; 0 where ``out_key`` is ``background``. ``key`` None: channel 0 of ``values`` is
    the key, and the result holds channels 1.. only. ``out_key`` must be the key's
    nearest-pixel-centre resize: the nearest tap is then always kept (its weight is at least 1/4).
    The four taps of each output pixel off the background are gathered before any conversion, so a
    large input is never copied or widened whole."""
    h, w, channels = values.shape
    index, weight = _bilinear_gather((h, w), tuple(size))
    out_key = out_key.numpy().reshape(-1)
    found = np.flatnonzero(out_key != background)
    index, weight = index[found], weight[found]
    taps = np.take(values.numpy().reshape(h * w, channels), index, axis=0)  # (found, 4, C)
    tap_key = taps[..., 0] if key is None else np.take(key.numpy().reshape(h * w), index)
    weight *= tap_key == out_key[found, None]
    total = np.einsum("nt->n", weight)
    first = int(key is None)
    out = np.zeros((channels - first, size[0] * size[1]), np.float32)
    for c in range(first, channels):
        out[c - first, found] = np.einsum("nt,nt->n", taps[..., c], weight) / total
    return torch.from_numpy(out.reshape(-1, *size))


def resize_iuv(iuv: np.ndarray | torch.Tensor, size: Size) -> tuple[torch.Tensor, torch.Tensor]:
    """DensePose IUV ``(H, W, 3)`` uint8 (I 0..24, U/V 0..255) -> ``(I, UV)`` at ``size``.

    I: int64 ``(H', W')`` by nearest pixel centre. UV: float32 ``(2, H', W')`` in [0, 1], bilinear
    over the (up to four) neighbouring input pixels that belong to the same part as the nearest one,
    so a chart coordinate is never averaged across a part seam; 0 on the background (I = 0).
    """
    t = _as_tensor(iuv)
    if tuple(t.shape[:2]) == tuple(size):
        parts, uv = t[..., 0].long(), t[..., 1:].permute(2, 0, 1).float() * (t[..., 0] > 0)
    else:
        parts = resize_nearest(t[..., 0], size)
        uv = _masked_bilinear(t, None, parts, size, background=0)  # the part index I (channel 0) is the key
        parts = parts.long()
    return parts, uv.div_(255.0)


def resize_flow(
    flow: np.ndarray | torch.Tensor,
    visibility: np.ndarray | torch.Tensor,
    size: Size,
    source_size: Size,
    *,
    background: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair flow ``(H, W, 2)`` on the target grid -> ``(flow (2, H', W'), visibility (H', W') int64)``.

    ``flow[y, x] = (x_s - x, y_s - y)`` points from target pixel ``(x, y)`` to source pixel
    ``(x_s, y_s)`` (docs/CONVENTIONS.md); the target image is ``(H, W)``, the source image
    ``source_size``, and both are resized to ``size``. Visibility (0 visible, 1 hidden,
    ``background`` off the body) is resized by nearest pixel centre. The flow field is sampled
    bilinearly over body pixels only (background taps carry no correspondence), giving the source
    point ``x_s`` of each resized target pixel in original pixels, which is mapped to the resized
    source frame; the result is ``x_s' - x'`` (for equal source and target sizes: the vectors
    scaled by ``W'/W``, ``H'/H``). Background pixels get 0.
    """
    f = _as_tensor(flow).float()
    vis = _as_tensor(visibility)
    h, w = vis.shape
    out_vis = resize_nearest(vis, size)
    body = vis != background
    out_body = out_vis != background
    field = f.permute(2, 0, 1) if (h, w) == tuple(size) else _masked_bilinear(f, body, out_body, size, background=False)
    # target pixel centres of the resized grid, in original target pixels
    ys = (torch.arange(size[0], dtype=torch.float32) + 0.5) * (h / size[0]) - 0.5
    xs = (torch.arange(size[1], dtype=torch.float32) + 0.5) * (w / size[1]) - 0.5
    src_x = xs[None, :] + field[0]
    src_y = ys[:, None] + field[1]
    out_x = (src_x + 0.5) * (size[1] / source_size[1]) - 0.5
    out_y = (src_y + 0.5) * (size[0] / source_size[0]) - 0.5
    grid_x = torch.arange(size[1], dtype=torch.float32)[None, :]
    grid_y = torch.arange(size[0], dtype=torch.float32)[:, None]
    out = torch.stack([out_x - grid_x, out_y - grid_y]) * out_body
    return out, out_vis.long()
