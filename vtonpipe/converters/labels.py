"""Human-parsing label sets, conversions between them, palettes, and VTON agnostic inputs.

Label sets (ids in docs/CONVENTIONS.md): **LIP** (20, the stored set), **CIHP** (20, VITON-HD's
``image-parse``: LIP's ids except 10 = torso-skin/neck), **ATR** (18), and VITON-HD's 13-class
merge. Conversions are id tables; the few classes a target set splits by body side or by garment
(a LIP glove is an ATR left or right arm, an ATR belt sits on the LIP garment it belongs to) take
the label of the nearest pixel of the candidate classes.

Agnostic inputs, all from a parsing map plus OpenPose COCO-18 keypoints ``(18, 3)`` ``(x, y,
conf)`` in pixels of the same grid (``conf == 0``: undetected):

- :func:`parse_agnostic`: VITON-HD / HR-VITON's parse-agnostic map
  (VITON-HD ``datasets.py:get_parse_agnostic``, HR-VITON ``get_parse_agnostic.py``).
- :func:`image_agnostic`: HR-VITON's gray agnostic person image (``cp_dataset.py:get_agnostic``).
- :func:`agnostic_mask`: IDM-VTON's inpainting mask per garment category
  (``gradio_demo/utils_mask.py:get_mask_location``, itself from OOTDiffusion).

Both VITON codebases read OpenPose BODY_25, whose hips are 9 and 12; COCO-18's are 8 and 11
(indices 0..7 are the same in both).
"""

from __future__ import annotations

import io
import os
from enum import IntEnum
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from ..io import write_bytes_atomic

LabelSet = Literal["lip", "cihp", "atr"]
Category = Literal["upper_body", "lower_body", "dresses"]

LIP_LABELS = (
    "background", "hat", "hair", "glove", "sunglasses", "upper-clothes", "dress", "coat", "socks", "pants",
    "jumpsuits", "scarf", "skirt", "face", "left-arm", "right-arm", "left-leg", "right-leg", "left-shoe", "right-shoe",
)
NUM_LIP_CLASSES = len(LIP_LABELS)
#: LIP ids by name: ``LIP.UPPER_CLOTHES == 5``, ``LIP.FACE == 13`` (the one home of these ids)
LIP = IntEnum("LIP", [(name.upper().replace("-", "_"), i) for i, name in enumerate(LIP_LABELS)])
CIHP_LABELS = LIP_LABELS[:10] + ("torso-skin",) + LIP_LABELS[11:]
ATR_LABELS = (
    "background", "hat", "hair", "sunglasses", "upper-clothes", "skirt", "pants", "dress", "belt", "left-shoe",
    "right-shoe", "face", "left-leg", "right-leg", "left-arm", "right-arm", "bag", "scarf",
)
VITON13_LABELS = (
    "background", "hair", "face", "upper", "bottom", "left_arm", "right_arm", "left_leg", "right_leg", "left_shoe",
    "right_shoe", "socks", "noise",
)
LABELS: dict[str, tuple[str, ...]] = {"lip": LIP_LABELS, "cihp": CIHP_LABELS, "atr": ATR_LABELS, "viton13": VITON13_LABELS}

#: (left, right) class pairs that swap under a horizontal flip of the image
LR_PAIRS: dict[str, tuple[tuple[int, int], ...]] = {
    "lip": ((14, 15), (16, 17), (18, 19)),
    "cihp": ((14, 15), (16, 17), (18, 19)),
    "atr": ((9, 10), (12, 13), (14, 15)),
}

# Plain id tables; -1 marks a class resolved spatially (see _SPATIAL).
_ATR_TO_LIP = (0, 1, 2, 4, 5, 12, 9, 6, -1, 18, 19, 13, 16, 17, 14, 15, 0, 11)  # belt -1, bag -> background
_LIP_TO_ATR = (0, 1, 2, -1, 3, 4, 7, 4, -1, 6, 7, 17, 5, 11, 14, 15, 12, 13, 9, 10)  # coat -> upper, jumpsuits -> dress
_LIP_TO_CIHP = tuple(range(10)) + (6,) + tuple(range(11, 20))  # jumpsuits -> dress
_CIHP_TO_LIP = tuple(range(10)) + (13,) + tuple(range(11, 20))  # torso-skin/neck -> face: LIP's only bare-skin class above the arms
# VITON-HD datasets.py / HR-VITON cp_dataset.py `labels`, from CIHP ids.
_CIHP_TO_VITON13 = (0, 1, 1, 12, 2, 3, 3, 3, 11, 4, 0, 12, 4, 2, 5, 6, 7, 8, 9, 10)

# Classes resolved spatially: source id -> (candidate target ids: the nearest one's label is taken,
# fallback when no candidate pixel exists: a target id, or (right, left) target ids by the side of
# the person's centre column, image left being the anatomical right of a person facing the camera).
_SPATIAL: dict[tuple[str, str], dict[int, tuple[tuple[int, ...], int | tuple[int, int]]]] = {
    ("atr", "lip"): {8: ((5, 6, 9, 12), 9)},  # belt -> the garment it is worn on (upper, dress, pants, skirt)
    ("lip", "atr"): {3: ((14, 15), (15, 14)), 8: ((12, 13), (13, 12))},  # glove -> arm, socks -> leg
}


def _check_ids(parsing: np.ndarray, label_set: str) -> np.ndarray:
    parsing = np.asarray(parsing)
    if parsing.dtype != np.uint8 or parsing.ndim != 2:
        raise ValueError(f"parsing must be uint8 (H, W), got {parsing.dtype} {parsing.shape}")
    n = len(LABELS[label_set])
    if parsing.size and int(parsing.max()) >= n:
        raise ValueError(f"parsing has id {int(parsing.max())}, not a {label_set} label (0..{n - 1})")
    return parsing


def _lut(table: tuple[int, ...]) -> np.ndarray:
    lut = np.zeros(256, np.int16)
    lut[: len(table)] = table
    return lut


def _nearest_fill(out: np.ndarray, todo: np.ndarray, candidates: tuple[int, ...]) -> bool:
    """Give ``todo`` pixels of ``out`` the label of their nearest ``candidates`` pixel; False if none."""
    have = np.isin(out, candidates)
    if not have.any():
        return False
    iy, ix = ndimage.distance_transform_edt(~have, return_distances=False, return_indices=True)
    out[todo] = out[iy[todo], ix[todo]]
    return True


def _convert(parsing: np.ndarray, src: LabelSet, dst: LabelSet, table: tuple[int, ...]) -> np.ndarray:
    parsing = _check_ids(parsing, src)
    out = _lut(table)[parsing]
    for sid, (candidates, fallback) in _SPATIAL.get((src, dst), {}).items():
        todo = parsing == sid
        if not todo.any() or _nearest_fill(out, todo, candidates):
            continue
        if isinstance(fallback, int):
            out[todo] = fallback
        else:
            right, left = fallback
            centre = np.nonzero(parsing)[1].mean()
            out[todo] = np.where(np.nonzero(todo)[1] < centre, right, left)
    return out.astype(np.uint8)


def atr_to_lip(parsing: np.ndarray) -> np.ndarray:
    """ATR ids -> LIP ids. Bag -> background; belt -> nearest of upper-clothes/dress/pants/skirt."""
    return _convert(parsing, "atr", "lip", _ATR_TO_LIP)


def lip_to_atr(parsing: np.ndarray) -> np.ndarray:
    """LIP ids -> ATR ids. Coat -> upper-clothes, jumpsuits -> dress; glove -> nearest arm, socks -> nearest leg."""
    return _convert(parsing, "lip", "atr", _LIP_TO_ATR)


def lip_to_cihp(parsing: np.ndarray) -> np.ndarray:
    """LIP ids -> CIHP ids: identical except jumpsuits (10) -> dress (CIHP's 10 is torso-skin)."""
    return _convert(parsing, "lip", "cihp", _LIP_TO_CIHP)


def cihp_to_lip(parsing: np.ndarray) -> np.ndarray:
    """CIHP ids -> LIP ids: identical except torso-skin/neck (10) -> face (13), as the sample's
    ground truth labels the neck (VITON-HD's 13-class merge, :func:`to_viton13`, drops it instead)."""
    return _convert(parsing, "cihp", "lip", _CIHP_TO_LIP)


def convert(parsing: np.ndarray, src: LabelSet, dst: LabelSet) -> np.ndarray:
    """``parsing`` from label set ``src`` to ``dst`` (lip, cihp, atr), through LIP."""
    for name in (src, dst):
        if name not in ("lip", "cihp", "atr"):
            raise ValueError(f"unknown label set {name!r}; known: lip, cihp, atr")
    parsing = _check_ids(parsing, src)
    if src == dst:
        return parsing.copy()
    lip = parsing if src == "lip" else {"cihp": cihp_to_lip, "atr": atr_to_lip}[src](parsing)
    return lip if dst == "lip" else {"cihp": lip_to_cihp, "atr": lip_to_atr}[dst](lip)


def to_viton13(parsing: np.ndarray, label_set: LabelSet = "lip") -> np.ndarray:
    """VITON-HD / HR-VITON's 13-class merge (VITON13_LABELS) of a parsing map.

    The merge is defined on CIHP ids (neck -> background, hat -> hair, sunglasses -> face,
    glove and scarf -> noise); LIP and ATR maps go through :func:`convert` first.
    """
    cihp = _check_ids(parsing, "cihp") if label_set == "cihp" else convert(parsing, label_set, "cihp")
    return _lut(_CIHP_TO_VITON13)[cihp].astype(np.uint8)


def swap_left_right(parsing: np.ndarray, label_set: LabelSet = "lip") -> np.ndarray:
    """Exchange left and right classes (what a horizontal flip of the image does to the ids)."""
    parsing = _check_ids(parsing, label_set)
    lut = np.arange(256, dtype=np.uint8)
    for a, b in LR_PAIRS[label_set]:
        lut[a], lut[b] = b, a
    return lut[parsing]


# -- palettes and palette PNGs ------------------------------------------------------------------
def schp_palette(n: int = 256) -> np.ndarray:
    """The palette SCHP writes its PNGs with (PASCAL VOC's): ``(n, 3)`` uint8 RGB.

    Bit ``3k + c`` of the label sets bit ``7 - k`` of channel ``c`` (R, G, B).
    """
    labels = np.arange(n)
    pal = np.zeros((n, 3), np.uint8)
    for k in range(8):
        for c in range(3):
            pal[:, c] |= (((labels >> (3 * k + c)) & 1) << (7 - k)).astype(np.uint8)
    return pal


#: Colours of the LIP / CIHP dataset annotations (VITON-HD's image-parse), indexed by LIP/CIHP id.
LIP_PALETTE = np.array(
    [
        (0, 0, 0), (128, 0, 0), (255, 0, 0), (0, 85, 0), (170, 0, 51), (255, 85, 0), (0, 0, 85), (0, 119, 221),
        (85, 85, 0), (0, 85, 85), (85, 51, 0), (52, 86, 128), (0, 128, 0), (0, 0, 255), (51, 170, 221),
        (0, 255, 255), (85, 255, 170), (170, 255, 85), (255, 255, 0), (255, 170, 0),
    ],
    np.uint8,
)


def colorize(parsing: np.ndarray, palette: np.ndarray = LIP_PALETTE) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)`` picture of a label map; ids beyond the palette raise."""
    parsing = np.asarray(parsing)
    if parsing.size and int(parsing.max()) >= len(palette):
        raise ValueError(f"id {int(parsing.max())} has no colour in a {len(palette)}-entry palette")
    return np.asarray(palette, np.uint8)[parsing]


def encode_palette_png(parsing: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """P-mode PNG bytes: pixel values are the ids, ``palette`` (default SCHP's) colours them."""
    parsing = np.asarray(parsing)
    if parsing.dtype != np.uint8 or parsing.ndim != 2:
        raise ValueError(f"parsing must be uint8 (H, W), got {parsing.dtype} {parsing.shape}")
    pal = schp_palette() if palette is None else np.asarray(palette, np.uint8)
    im = Image.fromarray(parsing)
    im.putpalette(pal.reshape(-1).tolist())
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def write_palette_png(path: str | os.PathLike, parsing: np.ndarray, palette: np.ndarray | None = None) -> None:
    """Write :func:`encode_palette_png` atomically to ``path``."""
    write_bytes_atomic(path, encode_palette_png(parsing, palette))


def read_palette_png(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Ids ``(H, W)`` uint8 and palette ``(N, 3)`` uint8 of a P-mode (or L-mode: palette None) PNG."""
    with Image.open(Path(path)) as im:
        if im.mode == "P":
            ids = np.asarray(im, np.uint8).copy()
            return ids, np.asarray(im.getpalette(), np.uint8).reshape(-1, 3)
        if im.mode == "L":
            return np.asarray(im, np.uint8).copy(), None
        raise ValueError(f"{path}: a label PNG is P or L mode, not {im.mode}")


# -- agnostic inputs ----------------------------------------------------------------------------
def _keypoints(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    kp = np.asarray(keypoints, np.float64)
    if kp.shape != (18, 3):
        raise ValueError(f"keypoints must be OpenPose COCO-18 (18, 3) x, y, conf; got {kp.shape}")
    return kp[:, :2].copy(), kp[:, 2] > 0


def _disc(draw: ImageDraw.ImageDraw, p: np.ndarray, rx: float, ry: float | None = None, fill: int | tuple = 255) -> None:
    ry = rx if ry is None else ry
    draw.ellipse((p[0] - rx, p[1] - ry, p[0] + rx, p[1] + ry), fill=fill, outline=fill)


def _line(draw: ImageDraw.ImageDraw, points: list[np.ndarray], width: float, fill: int | tuple = 255) -> None:
    draw.line([(float(p[0]), float(p[1])) for p in points], fill=fill, width=int(width))


def parse_agnostic(parsing: np.ndarray, keypoints: np.ndarray, *, radius: float | None = None) -> np.ndarray:
    """VITON-HD's parse-agnostic map: the parsing without upper garments, id 10 and the arms.

    Recipe (VITON-HD ``get_parse_agnostic``, HR-VITON ``get_im_parse_agnostic``): ids 5, 6, 7
    (upper-clothes, dress, coat) and 10 (CIHP neck / LIP jumpsuits) become background; each arm
    label (14 left, 15 right) becomes background inside a pose mask drawn from the other shoulder
    through the shoulder and elbow to the wrist (lines ``10 r`` wide, discs of radius ``15 r`` at
    the shoulder and elbow, ``4 r`` at the wrist), so hands beyond the wrist stay. ``radius`` is
    ``r`` in pixels, by default VITON-HD's 10 at 1024 px height scaled to the map's height.

    ``parsing``: uint8 ``(H, W)`` LIP or CIHP ids. Returns the same id set, same shape.
    """
    parsing = _check_ids(parsing, "lip")
    kp, ok = _keypoints(keypoints)
    h, w = parsing.shape
    r = 10.0 * h / 1024.0 if radius is None else float(radius)
    out = parsing.copy()
    for arm_id, chain in ((14, (2, 5, 6, 7)), (15, (5, 2, 3, 4))):
        canvas = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(canvas)
        prev = chain[0]
        for j in chain[1:]:
            if not (ok[prev] and ok[j]):
                continue
            _line(draw, [kp[prev], kp[j]], round(r * 10))
            _disc(draw, kp[j], r * 4 if j == chain[-1] else r * 15)
            prev = j
        out[(np.asarray(canvas) > 0) & (parsing == arm_id)] = 0
    out[np.isin(parsing, (5, 6, 7, 10))] = 0
    return out


def image_agnostic(
    image: np.ndarray, parsing: np.ndarray, keypoints: np.ndarray, *, fill: tuple[int, int, int] = (128, 128, 128)
) -> np.ndarray:
    """HR-VITON's agnostic person image: torso, neck and arms painted ``fill`` (PIL's "gray").

    Recipe (HR-VITON ``CPDataset.get_agnostic``): the hips are moved symmetrically about their
    midpoint to the shoulder distance ``a``; with ``r = int(a / 16) + 1`` it paints hip ellipses
    (``3r x 6r``), shoulder-hip lines (``6r`` wide), the hip line (``12r``) and the
    shoulder-hip quadrilateral; a neck box ``10r`` wide and ``9r`` tall above the neck point; the
    shoulder line (``12r``), shoulder ellipses (``5r x 6r``) and each detected arm segment
    (``10r`` wide, ``5r`` discs). It then restores from ``image`` the head (sunglasses 4, face
    13), the lower body (pants 9, skirt 12, legs 16/17, shoes 18/19) and the arm pixels (14/15)
    outside that side's arm mask (hands past the wrist).

    ``image``: RGB uint8 ``(H, W, 3)``; ``parsing``: LIP or CIHP ids on the same grid. Needs the
    neck, both shoulders and both hips; returns RGB uint8 ``(H, W, 3)``.
    """
    image = np.asarray(image)
    parsing = _check_ids(parsing, "lip")
    if image.shape != (*parsing.shape, 3) or image.dtype != np.uint8:
        raise ValueError(f"image must be RGB uint8 {(*parsing.shape, 3)}, got {image.dtype} {image.shape}")
    kp, ok = _keypoints(keypoints)
    missing = [j for j in (1, 2, 5, 8, 11) if not ok[j]]
    if missing:
        raise ValueError(f"image_agnostic needs the neck, shoulders and hips; keypoints {missing} are undetected")
    shoulders = np.linalg.norm(kp[5] - kp[2])
    hips = np.linalg.norm(kp[11] - kp[8])
    if hips == 0:
        raise ValueError("image_agnostic: both hips are at the same point")
    mid = (kp[8] + kp[11]) / 2
    kp[8] = mid + (kp[8] - mid) / hips * shoulders
    kp[11] = mid + (kp[11] - mid) / hips * shoulders
    r = int(shoulders / 16) + 1

    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    for j in (8, 11):
        _disc(draw, kp[j], r * 3, r * 6, fill)
    _line(draw, [kp[2], kp[8]], r * 6, fill)
    _line(draw, [kp[5], kp[11]], r * 6, fill)
    _line(draw, [kp[8], kp[11]], r * 12, fill)
    draw.polygon([tuple(kp[j]) for j in (2, 5, 11, 8)], fill=fill, outline=fill)
    nx, ny = kp[1]
    draw.rectangle((nx - r * 5, ny - r * 9, nx + r * 5, ny), fill=fill, outline=fill)
    _line(draw, [kp[2], kp[5]], r * 12, fill)
    for j in (2, 5):
        _disc(draw, kp[j], r * 5, r * 6, fill)
    for j in (3, 4, 6, 7):
        if ok[j - 1] and ok[j]:
            _line(draw, [kp[j - 1], kp[j]], r * 10, fill)
            _disc(draw, kp[j], r * 5, fill=fill)
    out = np.asarray(canvas).copy()

    h, w = parsing.shape
    for arm_id, chain in ((14, (5, 6, 7)), (15, (2, 3, 4))):
        arm = Image.new("L", (w, h), 0)
        arm_draw = ImageDraw.Draw(arm)
        last = kp[chain[0]]
        _disc(arm_draw, last, r * 5, r * 6)
        for j in chain[1:]:
            if not (ok[j - 1] and ok[j]):
                continue
            _line(arm_draw, [kp[j - 1], kp[j]], r * 10)
            last = kp[j]
            if j != chain[-1]:
                _disc(arm_draw, last, r * 5)
        _disc(arm_draw, last, r * 4)
        keep = (np.asarray(arm) == 0) & (parsing == arm_id)
        out[keep] = image[keep]
    keep = np.isin(parsing, (4, 13, 9, 12, 16, 17, 18, 19))
    out[keep] = image[keep]
    return out


def _fill_holes_keep_largest(mask: np.ndarray) -> np.ndarray:
    """IDM-VTON's ``hole_fill`` + ``refine_mask``: clear the 1 px border, fill holes, keep the largest region."""
    m = np.zeros_like(mask, np.uint8)
    m[1:-1, 1:-1] = mask[1:-1, 1:-1]
    m = ndimage.binary_fill_holes(m).astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = np.zeros_like(m)
    if contours:
        biggest = max(contours, key=cv2.contourArea)
        cv2.drawContours(out, [biggest], -1, 1, thickness=cv2.FILLED)
    return out


def agnostic_mask(
    parsing: np.ndarray,
    keypoints: np.ndarray,
    category: Category,
    *,
    label_set: Literal["lip", "cihp"] = "lip",
    arm_width: int = 60,
    work_height: int = 512,
) -> np.ndarray:
    """IDM-VTON's inpainting (agnostic) mask for a garment ``category``: uint8 ``(H, W)`` {0, 1}.

    Recipe (IDM-VTON ``get_mask_location``, run like IDM-VTON at ``work_height`` px and resized
    back with nearest neighbour), with IDM-VTON's ATR-based classes read on LIP ids (upper =
    upper-clothes 5 + coat 7; one-piece = dress 6 + jumpsuits 10 on LIP; lower = pants 9 + skirt
    12; legs = 16, 17 + socks 8):

    - garment region: upper_body -> upper + one-piece; lower_body -> lower + legs; dresses ->
      upper + one-piece + lower; dilated by a 5x5 kernel, 5 iterations.
    - upper_body and dresses also cover the arms: per side, a polyline shoulder-elbow-wrist
      (wrist pushed 1.2x from the elbow) ``arm_width * work_height / 512`` px wide plus a shoulder
      disc, or the parsed arm where the shoulder, elbow or wrist is undetected, dilated 5x5 x 4;
      arm pixels outside it (hands) are protected. On CIHP maps the neck (10), dilated once and
      minus the head, is covered too (LIP has no neck class).
    - protected: hat 1, sunglasses 4, face 13, shoes 18/19; plus lower garments (upper_body) or
      upper garments and arms (lower_body).
    - mask = region minus protected (IDM-VTON's keep/changeable algebra reduces to this), the
      1 px border cleared, holes filled, largest region kept.

    ``arm_width`` is IDM-VTON's 60 for its VITON-HD model, 45 for DressCode.
    """
    parsing = _check_ids(parsing, label_set)
    if category not in ("upper_body", "lower_body", "dresses"):
        raise ValueError(f"category must be upper_body, lower_body or dresses, not {category!r}")
    kp, ok = _keypoints(keypoints)
    h, w = parsing.shape
    ww = max(1, round(w * work_height / h))
    p = cv2.resize(parsing, (ww, work_height), interpolation=cv2.INTER_NEAREST)
    kp = kp * (ww / w, work_height / h)

    upper = np.isin(p, (5, 7))
    one_piece = np.isin(p, (6, 10) if label_set == "lip" else (6,))
    lower = np.isin(p, (9, 12))
    head = np.isin(p, (1, 4, 13))
    protected = np.isin(p, (1, 4, 13, 18, 19))
    kernel = np.ones((5, 5), np.uint8)

    if category == "upper_body":
        region = upper | one_piece
        protected |= lower
    elif category == "lower_body":
        region = lower | np.isin(p, (16, 17, 8))
        protected |= upper | np.isin(p, (14, 15))
    else:
        region = upper | one_piece | lower
    region = cv2.dilate(region.astype(np.uint8), kernel, iterations=5).astype(bool)

    if category != "lower_body":
        width = int(arm_width / 512 * work_height)
        arms = np.zeros_like(region)
        for arm_id, (s, e, wr) in ((15, (2, 3, 4)), (14, (5, 6, 7))):
            if ok[s] and ok[e] and ok[wr]:
                canvas = Image.new("L", (ww, work_height), 0)
                draw = ImageDraw.Draw(canvas)
                wrist = kp[e] + 1.2 * (kp[wr] - kp[e])
                draw.line([tuple(kp[s]), tuple(kp[e]), tuple(wrist)], fill=255, width=width, joint="curve")
                _disc(draw, kp[s], width // 2)
                drawn = np.asarray(canvas) > 0
            else:
                drawn = p == arm_id
            protected |= (p == arm_id) & ~drawn
            arms |= drawn
        if label_set == "cihp":
            neck = cv2.dilate((p == 10).astype(np.uint8), kernel, iterations=1).astype(bool)
            region |= neck & ~head
        region |= cv2.dilate(arms.astype(np.uint8), kernel, iterations=4).astype(bool)

    mask = _fill_holes_keep_largest((region & ~protected).astype(np.uint8))
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
