"""OpenPose COCO-18 body pose (Cao et al., CVPR 2017): the network and its part-affinity-field decoder.

The network (VGG-19 conv1_1..conv4_4_CPM, then 6 two-branch stages) outputs, at stride 8, 57
channels: 19 part heatmaps (COCO-18 order, then background) followed by 38 PAF channels (an (x, y)
unit-vector field per limb, channels :data:`PAF_XY`). It runs either from CMU's Caffe files
through OpenCV's DNN module (:class:`CaffePoseNet`) or from the PyTorch port's
``body_pose_model.pth`` (:class:`BodyPoseNet`, :class:`TorchPoseNet`). Both are callables
``blob (1, 3, h, w) float32 -> (57, h / 8, w / 8) float32`` that :func:`pose_maps` and
:func:`decode_people` share.

Preprocessing is OpenPose's: BGR, ``pixel / 256 - 0.5``, the image scaled to ``input_height`` px
tall (times each of ``scales``; maps are averaged over scales), padded right/bottom with grey
(128) to a multiple of 8. Maps are upsampled back to the image's pixel grid with bicubic
interpolation, so peaks are integer pixel centres of the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...converters.keypoints import main_person_score

STRIDE = 8
NUM_PARTS = 18
NUM_HEATMAPS = 19  # 18 parts + background
NUM_PAFS = 38
PAD_VALUE = 128

#: the 19 limbs OpenPose's COCO model has a PAF for, as (part a, part b) COCO-18 indices; the
#: last two (shoulder-ear) only complete people, they never start one
PAF_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
    (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
)  # fmt: skip
#: PAF channels (x, y) of each limb of PAF_LIMBS, indices into the 38 PAF channels
PAF_XY = (
    (12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3), (4, 5), (6, 7),
    (8, 9), (10, 11), (28, 29), (30, 31), (34, 35), (32, 33), (36, 37), (18, 19), (26, 27),
)  # fmt: skip

PoseNet = Callable[[np.ndarray], np.ndarray]


# -- networks ----------------------------------------------------------------------------------
# VGG-19 trunk: (name, in, out) of each 3x3 convolution, None for a 2x2 max pool
_TRUNK = (
    ("conv1_1", 3, 64), ("conv1_2", 64, 64), None,
    ("conv2_1", 64, 128), ("conv2_2", 128, 128), None,
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256), None,
    ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3_CPM", 512, 256), ("conv4_4_CPM", 256, 128),
)  # fmt: skip
_BRANCH_OUT = {"L1": NUM_PAFS, "L2": NUM_HEATMAPS}


def _stage_layers(stage: int, branch: str) -> list[tuple[str, int, int, int]]:
    """(name, in channels, out channels, kernel) of one branch of one stage, in order."""
    out = _BRANCH_OUT[branch]
    if stage == 1:
        return [
            *((f"conv5_{i}_CPM_{branch}", 128, 128, 3) for i in (1, 2, 3)),
            (f"conv5_4_CPM_{branch}", 128, 512, 1),
            (f"conv5_5_CPM_{branch}", 512, out, 1),
        ]
    cat = 128 + NUM_PAFS + NUM_HEATMAPS
    return [
        *((f"Mconv{i}_stage{stage}_{branch}", cat if i == 1 else 128, 128, 7) for i in range(1, 6)),
        (f"Mconv6_stage{stage}_{branch}", 128, 128, 1),
        (f"Mconv7_stage{stage}_{branch}", 128, out, 1),
    ]


class BodyPoseNet(nn.Module):
    """OpenPose's COCO body network with the PyTorch port's parameter names.

    ``state_dict()`` keys are the flat Caffe layer names of ``body_pose_model.pth``
    (``conv1_1.weight``, ..., ``Mconv7_stage6_L2.bias``). ``forward``: ``(N, 3, h, w)`` with h, w
    multiples of 8 -> ``(N, 57, h / 8, w / 8)``, heatmaps then PAFs (Caffe's ``net_output``).
    Every convolution but the last of each branch is followed by a ReLU, as in the prototxt.
    """

    def __init__(self) -> None:
        super().__init__()
        self._trunk: list[nn.Conv2d | None] = []
        for spec in _TRUNK:
            self._trunk.append(None if spec is None else self._conv(spec[0], spec[1], spec[2], 3))
        self._stages: list[tuple[list[nn.Conv2d], list[nn.Conv2d]]] = [
            tuple([self._conv(*layer) for layer in _stage_layers(stage, branch)] for branch in ("L1", "L2"))
            for stage in range(1, 7)
        ]

    def _conv(self, name: str, cin: int, cout: int, k: int) -> nn.Conv2d:
        conv = nn.Conv2d(cin, cout, k, padding=k // 2)
        self.add_module(name, conv)
        return conv

    @staticmethod
    def _branch(convs: Sequence[nn.Conv2d], x: torch.Tensor) -> torch.Tensor:
        for conv in convs[:-1]:
            x = F.relu(conv(x), inplace=True)
        return convs[-1](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self._trunk:
            x = F.max_pool2d(x, 2, 2, ceil_mode=True) if layer is None else F.relu(layer(x), inplace=True)
        features, stage_in = x, x
        for paf_convs, heat_convs in self._stages:
            pafs, heat = self._branch(paf_convs, stage_in), self._branch(heat_convs, stage_in)
            stage_in = torch.cat([pafs, heat, features], 1)
        return torch.cat([heat, pafs], 1)


def load_body_pose_model(path: str | Path, device: str = "cpu") -> BodyPoseNet:
    """:class:`BodyPoseNet` in eval mode with the weights of ``body_pose_model.pth``.

    Raises ValueError naming the missing/unexpected keys or wrong shapes if the file is not that model.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = BodyPoseNet()
    expected = net.state_dict()
    problems = [f"missing {k}" for k in expected if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in expected]
    problems += [
        f"{k}: shape {tuple(state[k].shape)}, expected {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if problems:
        shown = "; ".join(problems[:8]) + (f"; ... ({len(problems)} problems)" if len(problems) > 8 else "")
        raise ValueError(f"{path} is not OpenPose's COCO body model (body_pose_model.pth): {shown}")
    net.load_state_dict(state)
    return net.eval().to(device)


class TorchPoseNet:
    """PoseNet callable over :class:`BodyPoseNet` (``body_pose_model.pth``) on ``device``."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        self.device = device
        self.net = load_body_pose_model(path, device)

    @torch.inference_mode()
    def __call__(self, blob: np.ndarray) -> np.ndarray:
        out = self.net(torch.from_numpy(blob).to(self.device))
        return out[0].float().cpu().numpy()


class CaffePoseNet:
    """PoseNet callable over CMU's Caffe model (``pose_deploy_linevec.prototxt`` + ``pose_iter_440000.caffemodel``)
    run by OpenCV's DNN module; the network's last layer must be the 57-channel ``net_output``."""

    def __init__(self, prototxt: str | Path, caffemodel: str | Path):
        self.net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))

    def __call__(self, blob: np.ndarray) -> np.ndarray:
        self.net.setInput(blob)
        out = self.net.forward()
        if out.ndim != 4 or out.shape[1] != NUM_HEATMAPS + NUM_PAFS:
            raise ValueError(f"the Caffe network outputs {out.shape}, not (1, 57, h, w): is it OpenPose's COCO model?")
        return out[0]


# -- maps --------------------------------------------------------------------------------------
def pose_maps(image: np.ndarray, net: PoseNet, *, input_height: int = 368, scales: Sequence[float] = (1.0,)) -> tuple[np.ndarray, np.ndarray]:
    """Run ``net`` on an RGB uint8 (H, W, 3) image; heatmaps (H, W, 19) and PAFs (H, W, 38) float32.

    The image is scaled to ``scale * input_height`` px tall for each of ``scales``; the maps of
    every scale are brought back to the image's pixel grid and averaged.
    """
    h0, w0 = image.shape[:2]
    bgr = np.ascontiguousarray(image[..., ::-1])
    total = np.zeros((h0, w0, NUM_HEATMAPS + NUM_PAFS), np.float32)
    for scale in scales:
        f = scale * input_height / h0
        size = (max(1, round(w0 * f)), max(1, round(h0 * f)))
        resized = cv2.resize(bgr, size, interpolation=cv2.INTER_CUBIC)
        h, w = resized.shape[:2]
        padded = cv2.copyMakeBorder(resized, 0, -h % STRIDE, 0, -w % STRIDE, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
        blob = np.ascontiguousarray((padded.astype(np.float32) / 256 - 0.5).transpose(2, 0, 1)[None])
        out = np.ascontiguousarray(net(blob).transpose(1, 2, 0))
        up = cv2.resize(out, None, fx=STRIDE, fy=STRIDE, interpolation=cv2.INTER_CUBIC)[:h, :w]
        total += cv2.resize(up, (w0, h0), interpolation=cv2.INTER_CUBIC).reshape(h0, w0, -1)
    total /= len(scales)
    return total[..., :NUM_HEATMAPS], total[..., NUM_HEATMAPS:]


# -- decoding ----------------------------------------------------------------------------------
@dataclass
class Person:
    """One decoded person: ``keypoints`` (18, 3) x, y px and heatmap peak value ((0, 0, 0) if
    not found); ``score``: OpenPose's person score (sum of its part and limb scores) / parts."""

    keypoints: np.ndarray
    score: float

    @property
    def num_parts(self) -> int:
        return int((self.keypoints[:, 2] > 0).sum())


def find_peaks(heatmap: np.ndarray, threshold: float = 0.1, sigma: float = 3.0) -> np.ndarray:
    """Local maxima of one (H, W) heatmap smoothed with a Gaussian of ``sigma`` px.

    Returns (n, 3) float32 rows ``(x, y, value)`` with the unsmoothed value at the peak, for
    peaks whose smoothed value exceeds ``threshold``. A peak is >= its 8 neighbours and > those
    before it in raster order, so a plateau of two equal pixels gives one peak.
    """
    sm = cv2.GaussianBlur(heatmap.astype(np.float32), (0, 0), sigma)
    h, w = sm.shape
    p = np.pad(sm, 1, constant_values=-np.inf)
    centre = p[1:-1, 1:-1]
    peak = centre > threshold
    for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1)):  # before in raster order: strictly greater
        peak &= centre > p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):  # after: greater or equal
        peak &= centre >= p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
    ys, xs = np.nonzero(peak)
    return np.stack([xs, ys, heatmap[ys, xs]], axis=1).astype(np.float32)


def _limb_connections(
    a: np.ndarray,
    b: np.ndarray,
    paf_x: np.ndarray,
    paf_y: np.ndarray,
    *,
    samples: int,
    paf_threshold: float,
    min_inliers: float,
    image_height: int,
) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching of candidates ``a`` (na, 3) to ``b`` (nb, 3) by PAF line integral.

    A pair is scored by the mean over ``samples`` points on the segment of the PAF projected on
    the segment's direction, minus a penalty for limbs longer than half the image height; it is a
    candidate if more than ``min_inliers`` of the samples exceed ``paf_threshold`` and the score
    is positive. Returns (index in a, index in b, score), best first.
    """
    d = b[None, :, :2] - a[:, None, :2]  # (na, nb, 2)
    norm = np.linalg.norm(d, axis=-1)
    safe = np.maximum(norm, 1e-6)
    t = np.linspace(0.0, 1.0, samples, dtype=np.float32)
    pts = a[:, None, None, :2] + t[None, None, :, None] * d[:, :, None, :]  # (na, nb, S, 2)
    h, w = paf_x.shape
    xi = np.clip(np.rint(pts[..., 0]).astype(np.intp), 0, w - 1)
    yi = np.clip(np.rint(pts[..., 1]).astype(np.intp), 0, h - 1)
    proj = (paf_x[yi, xi] * d[..., None, 0] + paf_y[yi, xi] * d[..., None, 1]) / safe[..., None]
    score = proj.mean(-1) + np.minimum(0.5 * image_height / safe - 1, 0)
    ok = ((proj > paf_threshold).sum(-1) > min_inliers * samples) & (score > 0) & (norm > 0)
    ia, ib = np.nonzero(ok)
    order = np.argsort(-score[ia, ib], kind="stable")
    used_a, used_b, out = set(), set(), []
    for i, j in zip(ia[order], ib[order]):
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            out.append((int(i), int(j), float(score[i, j])))
            if len(out) == min(len(a), len(b)):
                break
    return out


def decode_people(
    heatmaps: np.ndarray,
    pafs: np.ndarray,
    *,
    peak_threshold: float = 0.1,
    peak_sigma: float = 3.0,
    paf_threshold: float = 0.05,
    paf_samples: int = 10,
    min_inliers: float = 0.8,
    min_parts: int = 4,
    min_mean_score: float = 0.4,
) -> list[Person]:
    """People from heatmaps (H, W, >= 18) and PAFs (H, W, 38) on the image grid (OpenPose's grouping).

    Part candidates are heatmap peaks (:func:`find_peaks`); each limb's candidates are matched
    greedily by PAF score (:func:`_limb_connections`); matched limbs are then merged into people
    along the limb tree (a person's part is never reassigned; two partial people joined by a limb
    merge if they share no part). People with fewer than ``min_parts`` parts or a mean score
    (part + limb scores / parts) below ``min_mean_score`` are dropped. Order: as found.
    """
    h = heatmaps.shape[0]
    peaks = [find_peaks(heatmaps[..., k], peak_threshold, peak_sigma) for k in range(NUM_PARTS)]
    offsets = np.cumsum([0] + [len(p) for p in peaks])
    candidates = np.concatenate(peaks) if offsets[-1] else np.zeros((0, 3), np.float32)

    members: list[np.ndarray] = []  # per person: (18,) global candidate index or -1
    scores: list[float] = []
    for k, ((pa, pb), (cx, cy)) in enumerate(zip(PAF_LIMBS, PAF_XY)):
        if not len(peaks[pa]) or not len(peaks[pb]):
            continue
        conns = _limb_connections(
            peaks[pa],
            peaks[pb],
            pafs[..., cx],
            pafs[..., cy],
            samples=paf_samples,
            paf_threshold=paf_threshold,
            min_inliers=min_inliers,
            image_height=h,
        )
        for i, j, s in conns:
            ga, gb = offsets[pa] + i, offsets[pb] + j
            owners = [n for n, m in enumerate(members) if m[pa] == ga or m[pb] == gb]
            overlap = len(owners) == 2 and ((members[owners[0]] >= 0) & (members[owners[1]] >= 0)).any()
            if len(owners) == 1 or overlap:  # extend the (first) person that has one end
                m = members[owners[0]]
                if m[pb] < 0:
                    m[pb] = gb
                    scores[owners[0]] += candidates[gb, 2] + s
            elif len(owners) == 2:  # two disjoint partial people joined by this limb
                keep, drop = owners
                members[keep] = np.maximum(members[keep], members[drop])
                scores[keep] += scores[drop] + s
                del members[drop], scores[drop]
            elif not owners and k < len(PAF_LIMBS) - 2:
                m = np.full(NUM_PARTS, -1, np.intp)
                m[pa], m[pb] = ga, gb
                members.append(m)
                scores.append(float(candidates[ga, 2] + candidates[gb, 2] + s))

    people = []
    for m, s in zip(members, scores):
        n = int((m >= 0).sum())
        if n < min_parts or s / n < min_mean_score:
            continue
        kp = np.zeros((NUM_PARTS, 3), np.float32)
        kp[m >= 0] = candidates[m[m >= 0]]
        people.append(Person(kp, float(s / n)))
    return people


def rank_people(people: Sequence[Person], size: tuple[int, int]) -> list[Person]:
    """``people`` sorted by :func:`main_person_score`, the main person first (stable on ties)."""
    return sorted(people, key=lambda p: -main_person_score(p.keypoints, size))
