"""DensePose R-CNN R50-FPN port: safe checkpoint loading, operators, IUV conversion, the
``densepose/rcnn`` backend end to end.

The checkpoint is generated here with the key names and shapes of detectron2's
``model_final_162be9.pkl`` (spelled out below independently of the model code) and detectron2's
own initialisers, then biased so that the detector finds one person in a known box.
"""

from __future__ import annotations

import math
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from builders import simple_build

from vtonpipe.annotators import get_backend
from vtonpipe.core import (
    AnnotationFailure,
    BackendUnavailableError,
    ImageItem,
    MissingWeightsError,
)
from vtonpipe.models.nets.densepose_rcnn import (
    CheckpointMismatchError,
    DensePoseCharts,
    DensePoseRCNN,
    TorchDensePosePredictor,
    charts_to_iuv,
    check_state_dict,
    expected_shapes,
    resized_hw,
)
from vtonpipe.models.nets.densepose_rcnn.detectron2_pkl import (
    CheckpointFormatError,
    UnsafePickleError,
    load_detectron2_pkl,
)
from vtonpipe.models.nets.densepose_rcnn.ops import (
    BoxTransform,
    batched_nms,
    cell_anchors,
    grid_anchors,
    nms,
    roi_align,
)
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.pipeline.store import ShardReader

WEIGHTS_RELPATH = Path("densepose") / "model_final_162be9.pkl"


# -- a checkpoint with detectron2's layout ----------------------------------------------------
def d2_layout() -> dict[str, tuple[int, ...]]:
    """Every entry of model_final_162be9.pkl: detectron2 module names, PyTorch shapes."""
    out: dict[str, tuple[int, ...]] = OrderedDict()

    def conv_bn(p: str, cout: int, cin: int, k: int) -> None:
        out[f"{p}.weight"] = (cout, cin, k, k)
        for s in ("weight", "bias", "running_mean", "running_var"):
            out[f"{p}.norm.{s}"] = (cout,)

    def conv(p: str, cout: int, cin: int, k: int) -> None:
        out[f"{p}.weight"], out[f"{p}.bias"] = (cout, cin, k, k), (cout,)

    bu = "backbone.bottom_up"
    conv_bn(f"{bu}.stem.conv1", 64, 3, 7)
    cin, mid, cout = 64, 64, 256
    for stage, blocks in zip(range(2, 6), (3, 4, 6, 3)):
        for b in range(blocks):
            p = f"{bu}.res{stage}.{b}"
            if b == 0:
                conv_bn(f"{p}.shortcut", cout, cin, 1)
            conv_bn(f"{p}.conv1", mid, cin if b == 0 else cout, 1)
            conv_bn(f"{p}.conv2", mid, mid, 3)
            conv_bn(f"{p}.conv3", cout, mid, 1)
        cin, mid, cout = cout, mid * 2, cout * 2
    for level, c in zip(range(2, 6), (256, 512, 1024, 2048)):
        conv(f"backbone.fpn_lateral{level}", 256, c, 1)
        conv(f"backbone.fpn_output{level}", 256, 256, 3)
    conv("proposal_generator.rpn_head.conv", 256, 256, 3)
    conv("proposal_generator.rpn_head.objectness_logits", 3, 256, 1)
    conv("proposal_generator.rpn_head.anchor_deltas", 12, 256, 1)
    for i in range(5):  # persistent buffers in the detectron2 of early 2020
        out[f"proposal_generator.anchor_generator.cell_anchors.{i}"] = (3, 4)
    out["roi_heads.box_head.fc1.weight"], out["roi_heads.box_head.fc1.bias"] = (1024, 256 * 7 * 7), (1024,)
    out["roi_heads.box_head.fc2.weight"], out["roi_heads.box_head.fc2.bias"] = (1024, 1024), (1024,)
    out["roi_heads.box_predictor.cls_score.weight"], out["roi_heads.box_predictor.cls_score.bias"] = (2, 1024), (2,)
    out["roi_heads.box_predictor.bbox_pred.weight"], out["roi_heads.box_predictor.bbox_pred.bias"] = (4, 1024), (4,)
    for name in ("p2.0", "p3.0", "p4.0", "p4.2", "p5.0", "p5.2", "p5.4"):  # Sequential: conv, upsample, conv...
        conv(f"roi_heads.decoder.{name}", 256, 256, 3)
    conv("roi_heads.decoder.predictor", 256, 256, 1)
    for i in range(1, 9):
        conv(f"roi_heads.densepose_head.body_conv_fcn{i}", 512, 256 if i == 1 else 512, 3)
    for name, c in (("ann_index_lowres", 2), ("index_uv_lowres", 25), ("u_lowres", 25), ("v_lowres", 25)):
        out[f"roi_heads.densepose_predictor.{name}.weight"] = (512, c, 4, 4)  # ConvTranspose2d: (in, out, k, k)
        out[f"roi_heads.densepose_predictor.{name}.bias"] = (c,)
    return out


def _init_std(name: str, shape: tuple[int, ...]) -> float:
    """detectron2's initialisers: normal(0.01) RPN head and classifier, normal(0.001) box deltas,
    c2_xavier_fill FPN and box FCs, kaiming fan_out (c2_msra_fill) for the rest."""
    if "rpn_head" in name or "cls_score" in name:
        return 0.01
    if "bbox_pred" in name:
        return 0.001
    if "fpn_" in name or "box_head" in name:
        return math.sqrt(1.0 / np.prod(shape[1:]))
    if "lowres" in name:  # transposed conv: fan_out = in_channels * k * k
        return math.sqrt(2.0 / (shape[0] * shape[2] * shape[3]))
    return math.sqrt(2.0 / (shape[0] * np.prod(shape[2:])))


def random_state(seed: int = 0) -> dict[str, np.ndarray]:
    """Float32 weights for every entry of :func:`d2_layout` at the scale of a trained model
    (unit-ish activations): FrozenBN identity except the stem (inputs are BGR - mean, std ~64)
    and the last BN of each residual branch (0.2, keeps the 16-block sum bounded)."""
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = OrderedDict()
    for name, shape in d2_layout().items():
        if "cell_anchors" in name:
            size, out = 32.0 * 2 ** int(name[-1]), []
            for r in (0.5, 1.0, 2.0):
                w = math.sqrt(size * size / r)
                out.append([-w / 2, -r * w / 2, w / 2, r * w / 2])
            state[name] = np.array(out, np.float32)
        elif name.endswith("norm.weight"):
            state[name] = np.full(shape, 0.2 if ".conv3." in name else 1.0, np.float32)
        elif name.endswith("norm.running_var"):
            state[name] = np.ones(shape, np.float32)
        elif name.endswith(("norm.bias", "norm.running_mean", ".bias")):
            state[name] = np.zeros(shape, np.float32)
        else:
            state[name] = rng.standard_normal(shape, dtype=np.float32) * np.float32(_init_std(name, shape))
    state["backbone.bottom_up.stem.conv1.norm.weight"][:] = 1.0 / 64
    return state


def with_person(state: dict[str, np.ndarray], person: bool = True) -> dict[str, np.ndarray]:
    """``state`` biased so that (person=True) exactly one person is found, in the box
    ``[W/4, H/4, 3W/4, 3H/4]`` (pixel-edge frame), with body parts 1..24 everywhere in it and U, V
    spread around 0.5; or (person=False) so that nothing scores as a person."""
    s = dict(state)
    # RPN: every anchor grows exp(scale_clamp) = 62.5 times -> every proposal clips to the whole image
    s["proposal_generator.rpn_head.anchor_deltas.weight"] = np.zeros_like(state["proposal_generator.rpn_head.anchor_deltas.weight"])
    s["proposal_generator.rpn_head.anchor_deltas.bias"] = np.tile(np.float32([0, 0, 10, 10]), 3)
    # box head: person logit +8 (or -8); deltas (weights 10, 10, 5, 5) halve the width and height
    s["roi_heads.box_predictor.cls_score.weight"] = np.zeros((2, 1024), np.float32)
    s["roi_heads.box_predictor.cls_score.bias"] = np.float32([8, -8] if person else [-8, 8])
    s["roi_heads.box_predictor.bbox_pred.weight"] = np.zeros((4, 1024), np.float32)
    s["roi_heads.box_predictor.bbox_pred.bias"] = np.float32([0, 0, 5 * math.log(0.5), 5 * math.log(0.5)])
    dp = "roi_heads.densepose_predictor"
    s[f"{dp}.ann_index_lowres.bias"] = np.float32([-5, 5])
    s[f"{dp}.index_uv_lowres.bias"] = np.concatenate([np.float32([-5]), np.zeros(24, np.float32)])
    s[f"{dp}.u_lowres.bias"] = np.full(25, 0.5, np.float32)
    s[f"{dp}.v_lowres.bias"] = np.full(25, 0.5, np.float32)
    return s


def save_d2_pkl(path: Path, state: dict[str, np.ndarray], protocol: int = pickle.DEFAULT_PROTOCOL) -> Path:
    """Pickled as detectron2's model zoo files: ``{"model": {name: ndarray}, "__author__": ...}``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump({"model": state, "__author__": "Detectron2 Model Zoo", "matching_heuristics": True}, f, protocol=protocol)
    return path


@pytest.fixture(scope="module")
def state() -> dict[str, np.ndarray]:
    return random_state()


@pytest.fixture(scope="module")
def person_weights(tmp_path_factory, state) -> Path:
    """A weights folder holding the person-biased checkpoint where the backend looks for it."""
    root = tmp_path_factory.mktemp("weights")
    save_d2_pkl(root / WEIGHTS_RELPATH, with_person(state))
    return root


# -- checkpoint layout and safe loading --------------------------------------------------------
def test_model_has_detectron2s_names_shapes_and_parameter_count():
    layout = {k: v for k, v in d2_layout().items() if "cell_anchors" not in k}
    assert expected_shapes() == layout
    with torch.device("meta"):
        model = DensePoseRCNN()
    # parameters as detectron2 counts them (FrozenBN statistics are buffers, not parameters)
    assert sum(p.numel() for p in model.parameters()) == 63_821_090
    assert sum(int(np.prod(s)) for s in layout.values()) == 63_927_330  # ~255.7 MB of float32


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_loader_reads_detectron2_pickles(tmp_path, protocol):
    model = OrderedDict(a=np.arange(6, dtype=np.float32).reshape(2, 3), b=np.array([1, 2], np.int64))
    got = load_detectron2_pkl(save_d2_pkl(tmp_path / "m.pkl", model, protocol))
    assert got.keys() == model.keys() and all(np.array_equal(got[k], model[k]) and got[k].dtype == model[k].dtype for k in model)


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_restricted_unpickler_refuses_code_execution(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"model": {"w": _Exploit(marker)}, "__author__": "x"}))
    with pytest.raises(UnsafePickleError, match=rf"refusing to load global {os.system.__module__}\.system") as e:
        load_detectron2_pkl(path)
    assert str(path) in str(e.value) and not marker.exists()
    path.write_bytes(pickle.dumps({"model": {"w": print}}))
    with pytest.raises(UnsafePickleError, match=r"builtins\.print"):
        load_detectron2_pkl(path)


def test_loader_refuses_what_is_not_a_detectron2_checkpoint(tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps({"blobs": {"conv1_w": np.zeros(3, np.float32)}}))
    with pytest.raises(CheckpointFormatError, match="expected a dict with a 'model' state dict"):
        load_detectron2_pkl(path)
    path.write_bytes(pickle.dumps({"model": {"w": np.array([1, "a"], dtype=object)}}))
    with pytest.raises(CheckpointFormatError, match="entry 'w' is ndarray object"):
        load_detectron2_pkl(path)


def test_missing_renamed_and_misshaped_entries_are_named(state):
    bad = dict(state)
    del bad["roi_heads.decoder.p5.4.weight"]
    bad["roi_heads.densepose_predictor.u_lowres.weights"] = bad.pop("roi_heads.densepose_predictor.u_lowres.weight")
    bad["roi_heads.box_head.fc1.bias"] = np.zeros(512, np.float32)
    with pytest.raises(CheckpointMismatchError) as e:
        check_state_dict(bad)
    msg = str(e.value)
    assert "missing 2 entries: roi_heads.decoder.p5.4.weight, roi_heads.densepose_predictor.u_lowres.weight" in msg
    assert "unexpected 1 entries: roi_heads.densepose_predictor.u_lowres.weights" in msg
    assert "roi_heads.box_head.fc1.bias (512,) (expected (1024,))" in msg
    legacy = {k: v for k, v in state.items() if "decoder" not in k}  # densepose_rcnn_R_50_FPN_s1x_legacy has no decoder
    with pytest.raises(CheckpointMismatchError, match="missing 16 entries: roi_heads.decoder"):
        check_state_dict(legacy)


def test_saved_cell_anchors_must_match_the_configuration(state):
    check_state_dict(state)
    bad = dict(state, **{"proposal_generator.anchor_generator.cell_anchors.0": state["proposal_generator.anchor_generator.cell_anchors.0"] * 2})
    with pytest.raises(CheckpointMismatchError, match="cell_anchors.0 = .* differs from the configuration"):
        check_state_dict(bad)


def test_missing_weight_file_names_file_location_and_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(tmp_path / "w"))
    cls = get_backend("densepose", "rcnn")
    with pytest.raises(MissingWeightsError) as e:
        cls().setup()
    with pytest.raises(BackendUnavailableError) as e_stage:  # what run_stage's availability check raises first
        run_stage(simple_build(tmp_path, 1), StageConfig("densepose", "rcnn"), show_progress=False)
    for msg in (str(e.value), str(e_stage.value)):
        assert "model_final_162be9.pkl" in msg and str(tmp_path / "w" / WEIGHTS_RELPATH) in msg
        assert "https://dl.fbaipublicfiles.com/densepose/densepose_rcnn_R_50_FPN_s1x/165712039/model_final_162be9.pkl" in msg
        assert "no pinned sha256" in msg


# -- operators ---------------------------------------------------------------------------------
def _bilinear_ref(f: np.ndarray, y: float, x: float) -> float:
    """torchvision's roi_align bilinear_interpolate, scalar."""
    h, w = f.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    y1, x1 = (y0 + 1, x0 + 1)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = float(x0)
    ly, lx = y - y0, x - x0
    return (1 - ly) * (1 - lx) * f[y0, x0] + (1 - ly) * lx * f[y0, x1] + ly * (1 - lx) * f[y1, x0] + ly * lx * f[y1, x1]


def _roi_align_ref(f: np.ndarray, box, p: int, scale: float, g: int, aligned: bool) -> np.ndarray:
    off = 0.5 if aligned else 0.0
    x0, y0, x1, y1 = (v * scale - off for v in box)
    bw, bh = x1 - x0, y1 - y0
    if not aligned:
        bw, bh = max(bw, 1.0), max(bh, 1.0)
    out = np.zeros((p, p))
    for ph in range(p):
        for pw in range(p):
            vals = [
                _bilinear_ref(f, y0 + ph * bh / p + (iy + 0.5) * bh / p / g, x0 + pw * bw / p + (ix + 0.5) * bw / p / g)
                for iy in range(g)
                for ix in range(g)
            ]
            out[ph, pw] = sum(vals) / len(vals)
    return out


def test_roi_align_hand_computed():
    f = torch.arange(20, dtype=torch.float32).reshape(1, 4, 5)  # f[y, x] = 5 y + x
    # aligned: box [1.25, 0.75, 2.25, 1.75] -> continuous [0.75, 0.25, 1.75, 1.25]; one sample at (x, y) = (1.25, 0.75)
    got = roi_align(f, torch.tensor([[1.25, 0.75, 2.25, 1.75]]), 1, 1.0, 1, aligned=True)
    assert got.item() == pytest.approx(0.25 * 0.75 * 1 + 0.25 * 0.25 * 2 + 0.75 * 0.75 * 6 + 0.75 * 0.25 * 7)  # = 5 * 0.75 + 1.25
    # legacy aligned=False: no half-pixel shift, the sample sits at (1.75, 1.25)
    got = roi_align(f, torch.tensor([[1.25, 0.75, 2.25, 1.75]]), 1, 1.0, 1, aligned=False)
    assert got.item() == pytest.approx(5 * 1.25 + 1.75)
    # 2 x 2 samples per bin; a sample with y < -1 counts 0, one with -1 <= y <= 0 takes row 0's value
    f = torch.ones(1, 3, 3)
    got = roi_align(f, torch.tensor([[-0.5, -2.5, 1.5, -0.5]]), 1, 1.0, 2, aligned=True)  # samples y = -2.5, -1.5
    assert got.item() == 0.0
    got = roi_align(f, torch.tensor([[-0.5, -1.5, 1.5, 0.5]]), 1, 1.0, 2, aligned=True)  # samples y = -1.5, -0.5
    assert got.item() == pytest.approx(0.5)


@pytest.mark.parametrize("aligned", [True, False])
def test_roi_align_matches_torchvision_semantics(aligned):
    rng = np.random.default_rng(1)
    f = rng.standard_normal((2, 9, 13)).astype(np.float32)
    boxes = np.array([[3.2, 5.1, 30.7, 20.3], [-10, -6, 12, 9], [40, 25, 60, 44], [8.0, 8.0, 8.5, 8.2], [0, 0, 52, 36]], np.float32)
    for p, g in ((2, 2), (3, 1)):
        got = roi_align(torch.from_numpy(f), torch.from_numpy(boxes), p, 0.25, g, aligned).numpy()
        want = np.stack([[_roi_align_ref(f[c], b, p, 0.25, g, aligned) for c in range(2)] for b in boxes])
        np.testing.assert_allclose(got, want, atol=1e-5)


def _nms_ref(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # Python's sort is stable
    keep: list[int] = []
    for i in order:
        ok = True
        for j in keep:
            ix = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            iy = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            inter = ix * iy
            union = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1]) + (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1]) - inter
            if inter / union > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


def test_nms_matches_brute_force():
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 100, (300, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (300, 2))], axis=1).astype(np.float32)
    boxes[50:60] = boxes[40:50]  # exact duplicates
    scores = rng.choice(np.linspace(0, 1, 40), 300).astype(np.float32)  # many ties
    for thr in (0.3, 0.5, 0.7):
        assert nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr).tolist() == _nms_ref(boxes, scores, thr)
    groups = rng.integers(0, 3, 300)
    got = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(groups), 0.5).tolist()
    want = [int(i) for g in range(3) for i in np.nonzero(groups == g)[0][_nms_ref(boxes[groups == g], scores[groups == g], 0.5)]]
    assert sorted(got) == sorted(want)
    assert np.all(np.diff(scores[got]) <= 0)


def test_box_coding_round_trip_and_clamp():
    rng = np.random.default_rng(3)

    def boxes() -> torch.Tensor:  # sizes 10..300 px: size ratios stay below the 62.5 clamp
        xy = rng.uniform(0, 500, (50, 2))
        return torch.from_numpy(np.concatenate([xy, xy + rng.uniform(10, 300, (50, 2))], 1).astype(np.float32))

    src, dst = boxes(), boxes()
    t = BoxTransform((10.0, 10.0, 5.0, 5.0))
    torch.testing.assert_close(t.apply_deltas(t.get_deltas(src, dst), src), dst, atol=2e-3, rtol=0)
    grown = t.apply_deltas(torch.tensor([[0.0, 0.0, 100.0, 100.0]]), torch.tensor([[10.0, 20.0, 30.0, 60.0]]))
    torch.testing.assert_close(grown, torch.tensor([[20.0 - 625.0, 40.0 - 1250.0, 20.0 + 625.0, 40.0 + 1250.0]]))  # x 62.5


def test_anchor_layout():
    cell = cell_anchors(32.0, (0.5, 1.0, 2.0))
    s = math.sqrt(2)
    torch.testing.assert_close(cell, torch.tensor([[-16 * s, -8 * s, 16 * s, 8 * s], [-16.0, -16, 16, 16], [-8 * s, -16 * s, 8 * s, 16 * s]]))
    anchors = grid_anchors(cell, (2, 3), stride=4)
    assert anchors.shape == (18, 4)
    # index (y * W + x) * A + a, centred on (4 x, 4 y)
    torch.testing.assert_close(anchors[(1 * 3 + 2) * 3 + 1], torch.tensor([8.0 - 16, 4 - 16, 8 + 16, 4 + 16]))


def test_resize_follows_resize_shortest_edge():
    assert resized_hw(1024, 768, 800, 1333) == (1067, 800)
    assert resized_hw(256, 192, 800, 1333) == (1067, 800)
    assert resized_hw(400, 2000, 800, 1333) == (267, 1333)


# -- charts -> IUV on the image grid -----------------------------------------------------------
def _random_charts(seed: int, s: int = 112) -> DensePoseCharts:
    g = torch.Generator().manual_seed(seed)
    return DensePoseCharts(*(torch.randn(1, c, s, s, generator=g) for c in (2, 25, 25, 25)))


def test_iuv_equals_detectron2_to_result_for_an_integer_box():
    charts = _random_charts(0)
    x, y, w, h = 7, 11, 37, 53
    iuv = charts_to_iuv(charts, (x, y, x + w, y + h), (80, 60))
    # detectron2: resample_fine_and_coarse_segm_tensors_to_bbox + resample_uv_tensors_to_bbox, pasted at [y:y+h, x:x+w]
    def up(t):
        return F.interpolate(t, (h, w), mode="bilinear", align_corners=False)[0]

    coarse, fine, u, v = up(charts.coarse_segm), up(charts.fine_segm), up(charts.u), up(charts.v)
    labels = fine.argmax(0) * (coarse.argmax(0) > 0)
    top2 = fine.topk(2, dim=0).values
    clear = ((top2[0] - top2[1]) > 1e-4) & ((coarse[1] - coarse[0]).abs() > 1e-4)
    assert clear.float().mean() > 0.99
    got = torch.from_numpy(iuv[y : y + h, x : x + w].astype(np.int64))
    assert torch.equal(got[..., 0][clear], labels[clear])
    want_u = torch.round(u.gather(0, labels[None])[0].clamp(0, 1) * 255) * (labels > 0)
    want_v = torch.round(v.gather(0, labels[None])[0].clamp(0, 1) * 255) * (labels > 0)
    assert (got[..., 1][clear] - want_u[clear]).abs().max() <= 1 and (got[..., 2][clear] - want_v[clear]).abs().max() <= 1
    outside = np.ones((80, 60), bool)
    outside[y : y + h, x : x + w] = False
    assert not iuv[outside].any()


def _constant_charts(part: int, u: float, v: float, s: int = 112) -> DensePoseCharts:
    coarse = torch.tensor([0.0, 1.0]).reshape(1, 2, 1, 1).expand(1, 2, s, s)
    fine = torch.zeros(1, 25, s, s)
    fine[:, part] = 1
    return DensePoseCharts(coarse, fine, torch.full((1, 25, s, s), u), torch.full((1, 25, s, s), v))


def test_iuv_box_placement_is_exact_for_fractional_and_clipped_boxes():
    iuv = charts_to_iuv(_constant_charts(7, 0.2, 1.7), (10.3, 20.7, 50.2, 60.5), (64, 64))
    ys, xs = np.nonzero(iuv[..., 0])
    # pixel centres (i + 0.5) inside [x0, x1): columns 10..49, rows 21..59
    assert (xs.min(), xs.max(), ys.min(), ys.max(), len(xs)) == (10, 49, 21, 59, 40 * 39)
    assert set(map(tuple, iuv[ys, xs])) == {(7, 51, 255)}  # U = round(255 * 0.2), V clipped to 1
    clipped = charts_to_iuv(_constant_charts(24, -0.3, 0.6), (-20.0, 50.0, 30.0, 90.0), (64, 48))
    ys, xs = np.nonzero(clipped[..., 0])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (0, 29, 50, 63)
    assert set(map(tuple, clipped[ys, xs])) == {(24, 0, 153)}
    background = charts_to_iuv(DensePoseCharts(*(torch.zeros(1, c, 112, 112) for c in (2, 25, 25, 25))), (0, 0, 10, 10), (10, 10))
    assert not background.any()  # coarse argmax 0 (ties go to background): all background, U = V = 0


# -- the model end to end ------------------------------------------------------------------
def _check_iuv_conventions(iuv: np.ndarray, shape: tuple[int, int]) -> None:
    assert iuv.dtype == np.uint8 and iuv.shape == (*shape, 3)
    assert iuv[..., 0].max() <= 24
    assert not iuv[iuv[..., 0] == 0].any()  # background: U = V = 0


def test_detector_finds_the_person_in_the_known_box(person_weights):
    state = load_detectron2_pkl(person_weights / WEIGHTS_RELPATH)
    predictor = TorchDensePosePredictor(state, min_size=192, score_thresh=0.8)
    image = (np.random.default_rng(4).random((256, 192, 3)) * 255).astype(np.uint8)
    pred = predictor(image, densepose_for="main")
    np.testing.assert_allclose(pred.boxes, [[48, 64, 144, 192]], atol=1e-3)
    assert pred.scores[0] == pytest.approx(1.0, abs=1e-6) and list(pred.charts) == [0]
    iuv = charts_to_iuv(pred.charts[0], pred.boxes[0], image.shape[:2])
    _check_iuv_conventions(iuv, (256, 192))
    inside = np.zeros((256, 192), bool)
    inside[64:192, 48:144] = True
    assert (iuv[..., 0] > 0).tolist() == inside.tolist()
    u = iuv[inside][:, 1]
    assert u.min() < 100 and u.max() > 155  # U spreads over the chart, not a constant
    # resizing the input (x2 here) keeps the box in the same place on the input image
    big = TorchDensePosePredictor(state, min_size=384, score_thresh=0.8)(image, densepose_for="main")
    np.testing.assert_allclose(big.boxes, pred.boxes, atol=0.05)


def test_random_weights_detect_several_people_within_the_image(state):
    predictor = TorchDensePosePredictor(state, min_size=160, score_thresh=0.3, max_detections=3)
    image = (np.random.default_rng(5).random((200, 150, 3)) * 255).astype(np.uint8)
    pred = predictor(image)
    assert len(pred.boxes) == 3 and np.all(np.diff(pred.scores) <= 0) and np.all(pred.scores > 0.3)
    assert np.all(pred.boxes[:, :2] >= 0) and np.all(pred.boxes[:, 2] <= 150) and np.all(pred.boxes[:, 3] <= 200)
    assert sorted(pred.charts) == [0, 1, 2] and pred.charts[1].fine_segm.shape == (1, 25, 112, 112)
    for i in range(3):
        _check_iuv_conventions(charts_to_iuv(pred.charts[i], pred.boxes[i], (200, 150)), (200, 150))
    assert not TorchDensePosePredictor(with_person(state, person=False), min_size=160)(image).boxes.size


def test_backend_through_run_stage(tmp_path, monkeypatch, person_weights):
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(person_weights))
    build = simple_build(tmp_path, 1)  # two 256x192 person images and a garment
    res = run_stage(build, StageConfig("densepose", "rcnn", {"min_size": 192, "impl": "torch"}), show_progress=False)
    assert (res.total, res.computed, res.failed) == (2, 2, 0)
    rows = list(ShardReader(build / "annotations" / "densepose"))
    assert len(rows) == 2
    inside = np.zeros((256, 192), bool)
    inside[64:192, 48:144] = True
    for r in rows:
        assert (r["backend"], r["num_people"]) == ("rcnn", 1) and r["score"] == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose(r["bbox"], [47.5, 63.5, 143.5, 191.5], atol=1e-3)  # pixel-centre frame
        _check_iuv_conventions(r["iuv"], (256, 192))
        assert ((r["iuv"][..., 0] > 0) == inside).all()


def test_no_person_is_recorded_as_a_failure(tmp_path, monkeypatch, state):
    save_d2_pkl(tmp_path / "w" / WEIGHTS_RELPATH, with_person(state, person=False))
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(tmp_path / "w"))
    backend = get_backend("densepose", "rcnn")({"min_size": 160, "impl": "torch"})
    backend.ensure_setup()
    image = (np.random.default_rng(6).random((64, 48, 3)) * 255).astype(np.uint8)
    [result] = backend.annotate([ImageItem("a", "0" * 64, "person", image)], ctx=None)
    assert isinstance(result, AnnotationFailure) and result.reason == "no_person"


def test_impl_choice(monkeypatch):
    monkeypatch.setattr("vtonpipe.annotators.densepose_rcnn.detectron2_available", lambda: False)
    cls = get_backend("densepose", "rcnn")
    assert cls().implementation() == "torch"
    with pytest.raises(BackendUnavailableError, match="needs detectron2 and its DensePose project"):
        cls({"impl": "detectron2"}).implementation()
    with pytest.raises(ValueError, match="impl must be"):
        cls({"impl": "caffe2"}).implementation()
    monkeypatch.setattr("vtonpipe.annotators.densepose_rcnn.detectron2_available", lambda: True)
    assert cls().implementation() == "detectron2"
