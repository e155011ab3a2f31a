"""OpenPose: the PyTorch port's network, CMU's Caffe model through OpenCV DNN, the PAF decoder, both backends.

No real weights are available offline, so the tests generate them with the real layer names and
shapes (``body_pose_model.pth`` keys; a Caffe prototxt + hand-encoded caffemodel of the same
layers). Two further nets exercise the decoding for real: a one-layer Caffe "network" that reads
57 hand-drawn maps back out of the pixels of an image that encodes them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from builders import garment_image, write_mpv_tree
from PIL import Image

from vtonpipe.annotators.keypoints import (
    OPENPOSE_CAFFEMODEL,
    OPENPOSE_PROTOTXT,
    OPENPOSE_TORCH,
    OpenPoseCaffe,
    OpenPoseTorch,
)
from vtonpipe.core import BackendUnavailableError, MissingWeightsError, Requirements
from vtonpipe.models.nets.openpose import (
    BodyPoseNet,
    CaffePoseNet,
    Person,
    TorchPoseNet,
    decode_people,
    find_peaks,
    load_body_pose_model,
    main_person_score,
    pose_maps,
    rank_people,
)
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.ingest import ingest
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.pipeline.store import ShardReader

# -- the real network, written independently of vtonpipe's definition ---------------------------
# (name, in, out, kernel) of each convolution of pose_deploy_linevec.prototxt / body_pose_model.pth
VGG = [
    ("conv1_1", 3, 64), ("conv1_2", 64, 64), ("conv2_1", 64, 128), ("conv2_2", 128, 128),
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256),
    ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3_CPM", 512, 256), ("conv4_4_CPM", 256, 128),
]  # fmt: skip
POOL_AFTER = {"conv1_2": "pool1_stage1", "conv2_2": "pool2_stage1", "conv3_4": "pool3_stage1"}


def branch_convs(stage: int, branch: str) -> list[tuple[str, int, int, int]]:
    out = 38 if branch == "L1" else 19
    if stage == 1:
        return [
            (f"conv5_1_CPM_{branch}", 128, 128, 3), (f"conv5_2_CPM_{branch}", 128, 128, 3),
            (f"conv5_3_CPM_{branch}", 128, 128, 3), (f"conv5_4_CPM_{branch}", 128, 512, 1),
            (f"conv5_5_CPM_{branch}", 512, out, 1),
        ]  # fmt: skip
    return [
        *[(f"Mconv{i}_stage{stage}_{branch}", 185 if i == 1 else 128, 128, 7) for i in range(1, 6)],
        (f"Mconv6_stage{stage}_{branch}", 128, 128, 1),
        (f"Mconv7_stage{stage}_{branch}", 128, out, 1),
    ]


def all_convs() -> list[tuple[str, int, int, int]]:
    convs = [(n, i, o, 3) for n, i, o in VGG]
    for stage in range(1, 7):
        for branch in ("L1", "L2"):
            convs += branch_convs(stage, branch)
    return convs


def real_shapes() -> dict[str, tuple[int, ...]]:
    """The key names and tensor shapes of body_pose_model.pth."""
    shapes = {}
    for name, cin, cout, k in all_convs():
        shapes[f"{name}.weight"] = (cout, cin, k, k)
        shapes[f"{name}.bias"] = (cout,)
    return shapes


def real_state_dict(seed: int = 0) -> dict[str, np.ndarray]:
    """Random He-initialised weights (small random biases) under the real keys and shapes."""
    rng = np.random.default_rng(seed)
    return {
        key: rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / np.prod(shape[1:])) if len(shape) == 4 else 0.01)
        for key, shape in real_shapes().items()
    }


def openpose_prototxt() -> str:
    """pose_deploy_linevec.prototxt's layer graph (convolutions, ReLUs, pools, concats, net_output)."""
    layers = ['input: "image"', "input_dim: 1", "input_dim: 3", "input_dim: 64", "input_dim: 64"]

    def conv(name: str, bottom: str, cout: int, k: int, relu: bool) -> None:
        layers.append(
            f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
            f"convolution_param {{ num_output: {cout} pad: {k // 2} kernel_size: {k} }} }}"
        )
        if relu:
            layers.append(f'layer {{ name: "relu_{name}" type: "ReLU" bottom: "{name}" top: "{name}" }}')

    bottom = "image"
    for name, _, cout in VGG:
        conv(name, bottom, cout, 3, relu=True)
        bottom = name
        if name in POOL_AFTER:
            pool = POOL_AFTER[name]
            layers.append(
                f'layer {{ name: "{pool}" type: "Pooling" bottom: "{bottom}" top: "{pool}" '
                "pooling_param { pool: MAX kernel_size: 2 stride: 2 } }"
            )
            bottom = pool
    stage_in = "conv4_4_CPM"
    for stage in range(1, 7):
        tops = []
        for branch in ("L1", "L2"):
            b = stage_in
            convs = branch_convs(stage, branch)
            for n, (name, _, cout, k) in enumerate(convs):
                conv(name, b, cout, k, relu=n < len(convs) - 1)
                b = name
            tops.append(b)
        if stage < 6:
            stage_in = f"concat_stage{stage + 1}"
            bottoms = " ".join(f'bottom: "{t}"' for t in (*tops, "conv4_4_CPM"))
            layers.append(f'layer {{ name: "{stage_in}" type: "Concat" {bottoms} top: "{stage_in}" concat_param {{ axis: 1 }} }}')
    layers.append(
        'layer { name: "concat_stage7" type: "Concat" bottom: "Mconv7_stage6_L2" bottom: "Mconv7_stage6_L1" '
        'top: "net_output" concat_param { axis: 1 } }'
    )
    return "\n".join(layers) + "\n"


# -- caffemodel: a caffe.NetParameter, hand-encoded in protobuf's wire format ---------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _blob(array: np.ndarray) -> bytes:
    """BlobProto: shape (7) = BlobShape{dim (1, packed int64)}, data (5, packed float)."""
    shape = _bytes_field(1, b"".join(_varint(d) for d in array.shape))
    return _bytes_field(7, shape) + _bytes_field(5, np.ascontiguousarray(array, "<f4").tobytes())


def caffemodel_bytes(layers: list[tuple[str, str, list[np.ndarray]]]) -> bytes:
    """NetParameter{name (1), layer (100): LayerParameter{name (1), type (2), blobs (7)}}."""
    body = _bytes_field(1, b"vtonpipe-test")
    for name, kind, blobs in layers:
        layer = _bytes_field(1, name.encode()) + _bytes_field(2, kind.encode())
        layer += b"".join(_bytes_field(7, _blob(b)) for b in blobs)
        body += _bytes_field(100, layer)
    return body


@pytest.fixture(scope="module")
def openpose_files(tmp_path_factory) -> dict[str, Path]:
    """Random weights of the real network as body_pose_model.pth and as prototxt + caffemodel."""
    root = tmp_path_factory.mktemp("weights")
    state = real_state_dict()
    (root / "openpose").mkdir()
    pth = root / "openpose" / "body_pose_model.pth"
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, pth)
    prototxt = root / "openpose" / "pose_deploy_linevec.prototxt"
    prototxt.write_text(openpose_prototxt())
    caffemodel = root / "openpose" / "pose_iter_440000.caffemodel"
    names = [c[0] for c in all_convs()]
    caffemodel.write_bytes(caffemodel_bytes([(n, "Convolution", [state[f"{n}.weight"], state[f"{n}.bias"]]) for n in names]))
    return {"root": root, "pth": pth, "prototxt": prototxt, "caffemodel": caffemodel}


# -- synthetic people ----------------------------------------------------------------------------
# A standing figure, COCO-18, in units of its box (x right, y down; its right side is image left).
FIGURE = np.array(
    [
        (0.50, 0.10), (0.50, 0.22), (0.28, 0.22), (0.22, 0.38), (0.18, 0.52), (0.72, 0.22), (0.78, 0.38),
        (0.82, 0.52), (0.38, 0.52), (0.38, 0.72), (0.38, 0.92), (0.62, 0.52), (0.62, 0.72), (0.62, 0.92),
        (0.42, 0.07), (0.58, 0.07), (0.34, 0.09), (0.66, 0.09),
    ],
    np.float32,
)  # fmt: skip
LIMBS = [
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
    (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
]  # fmt: skip
PAF_XY = [
    (12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3), (4, 5), (6, 7),
    (8, 9), (10, 11), (28, 29), (30, 31), (34, 35), (32, 33), (36, 37), (18, 19), (26, 27),
]  # fmt: skip


def figure_at(x0: float, y0: float, w: float, h: float) -> np.ndarray:
    """(18, 2) keypoints px of FIGURE in the box at (x0, y0) of size w x h."""
    return FIGURE * np.array([w, h], np.float32) + np.array([x0, y0], np.float32)


def draw_pose_maps(people: list[np.ndarray], size: tuple[int, int], sigma: float = 5.0, width: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """Ideal OpenPose maps of ``people`` ((18, 2) px each): heatmaps (H, W, 19), PAFs (H, W, 38).

    Heatmaps are Gaussians of ``sigma`` px; a limb's PAF is its unit vector within ``width`` px of
    the segment (extended by ``width`` past its ends, as a trained network's field spreads).
    """
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    heat = np.zeros((h, w, 19), np.float32)
    paf = np.zeros((h, w, 38), np.float32)
    for kp in people:
        for k, (x, y) in enumerate(kp):
            heat[..., k] = np.maximum(heat[..., k], np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)))
        for (a, b), (cx, cy) in zip(LIMBS, PAF_XY):
            d = kp[b] - kp[a]
            length = float(np.hypot(*d))
            u = d / length
            rx, ry = xx - kp[a][0], yy - kp[a][1]
            along = rx * u[0] + ry * u[1]
            across = np.abs(rx * u[1] - ry * u[0])
            on = (along >= -width) & (along <= length + width) & (across <= width)  # a band past both ends
            paf[..., cx][on] = u[0]
            paf[..., cy][on] = u[1]
    heat[..., 18] = 1 - heat[..., :18].max(-1)
    return heat, paf


def match(found: list[Person], truth: list[np.ndarray], tol: float) -> None:
    """Each true figure has exactly one decoded person with every point within ``tol`` px."""
    assert len(found) == len(truth)
    for kp in truth:
        dists = [np.abs(p.keypoints[:, :2] - kp).max() for p in found]
        best = found[int(np.argmin(dists))]
        assert (best.keypoints[:, 2] > 0).all()
        np.testing.assert_allclose(best.keypoints[:, :2], kp, atol=tol)


# -- network -----------------------------------------------------------------------------------
def test_body_pose_net_has_the_ports_keys_and_shapes():
    got = {k: tuple(v.shape) for k, v in BodyPoseNet().state_dict().items()}
    assert got == real_shapes()
    assert len(got) == 2 * 92  # 92 convolutions: 12 trunk + 10 stage-1 + 70 in stages 2-6


def test_load_body_pose_model_rejects_another_file(tmp_path):
    state = {k: torch.zeros(shape) for k, shape in real_shapes().items()}
    del state["Mconv7_stage6_L2.bias"]
    state["conv1_1.weight"] = torch.zeros(64, 3, 5, 5)
    path = tmp_path / "other.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"missing Mconv7_stage6_L2\.bias.*conv1_1\.weight: shape \(64, 3, 5, 5\)"):
        load_body_pose_model(path)


def test_torch_port_and_caffe_model_compute_the_same_maps(openpose_files):
    torch_net = TorchPoseNet(openpose_files["pth"])
    caffe_net = CaffePoseNet(openpose_files["prototxt"], openpose_files["caffemodel"])
    blob = np.random.default_rng(1).uniform(-0.5, 0.5, (1, 3, 64, 48)).astype(np.float32)
    a, b = torch_net(blob), caffe_net(blob)
    assert a.shape == b.shape == (57, 8, 6)
    assert np.abs(a).max() > 1e-3  # the random net does not collapse to zero
    np.testing.assert_allclose(a, b, atol=1e-4 * np.abs(a).max())


def test_pose_maps_and_decoder_run_on_the_full_network(openpose_files):
    net = TorchPoseNet(openpose_files["pth"])
    image = np.random.default_rng(2).integers(0, 256, (50, 37, 3), dtype=np.uint8)
    heat, paf = pose_maps(image, net, input_height=64, scales=(1.0, 0.5))
    assert heat.shape == (50, 37, 19) and paf.shape == (50, 37, 38)
    for person in decode_people(heat, paf, peak_threshold=0.0, min_parts=2, min_mean_score=-np.inf):
        kp = person.keypoints
        assert kp.shape == (18, 3) and person.num_parts >= 2
        assert (kp[kp[:, 2] == 0] == 0).all()


# -- decoder -----------------------------------------------------------------------------------
def test_decoder_recovers_two_people_side_by_side():
    truth = [figure_at(20, 20, 120, 200), figure_at(180, 30, 110, 190)]
    heat, paf = draw_pose_maps(truth, (240, 320))
    people = decode_people(heat, paf)
    match(people, truth, tol=0.5)
    for p in people:  # confidence = heatmap value at the peak (1 at a drawn centre)
        np.testing.assert_allclose(p.keypoints[:, 2], 1.0, atol=0.02)


def test_decoder_recovers_three_people_of_different_sizes():
    truth = [figure_at(10, 10, 90, 150), figure_at(120, 40, 60, 100), figure_at(200, 5, 110, 230)]
    heat, paf = draw_pose_maps(truth, (240, 320))
    match(decode_people(heat, paf), truth, tol=0.5)


def test_decoder_drops_fragments_with_too_few_parts():
    """Without PAFs on the neck-hip limbs a figure falls apart into its upper body and two 3-part legs."""
    truth = [figure_at(20, 20, 120, 200)]
    heat, paf = draw_pose_maps(truth, (240, 320))
    for limb in (6, 9):  # neck-r_hip, neck-l_hip
        paf[..., list(PAF_XY[limb])] = 0

    def parts(min_parts: int) -> list[tuple[int, ...]]:
        return sorted(tuple(np.flatnonzero(p.keypoints[:, 2] > 0)) for p in decode_people(heat, paf, min_parts=min_parts))

    assert parts(4) == [(0, 1, 2, 3, 4, 5, 6, 7, 14, 15, 16, 17)]
    assert parts(3) == [(0, 1, 2, 3, 4, 5, 6, 7, 14, 15, 16, 17), (8, 9, 10), (11, 12, 13)]


def test_decoder_finds_nobody_in_flat_maps():
    assert decode_people(np.zeros((40, 30, 19), np.float32), np.zeros((40, 30, 38), np.float32)) == []


def test_find_peaks_one_peak_per_plateau_and_unsmoothed_value():
    hm = np.zeros((20, 20), np.float32)
    hm[5, 5] = hm[5, 6] = 1.0  # two equal maxima side by side
    hm[14, 12] = 0.8
    peaks = find_peaks(hm, threshold=0.001, sigma=1.0)
    assert len(peaks) == 2
    assert peaks[0, 0] in (5, 6) and peaks[0, 1:].tolist() == [5, 1.0]
    assert peaks[1].tolist() == [12, 14, pytest.approx(0.8)]


def test_main_person_is_large_and_central():
    size = (200, 300)
    big_centre = figure_at(100, 20, 100, 170)
    small_centre = figure_at(135, 60, 30, 50)
    big_corner = figure_at(-20, -20, 100, 170)
    people = [Person(np.c_[kp, np.ones(18)].astype(np.float32), 1.0) for kp in (small_centre, big_corner, big_centre)]
    ranked = rank_people(people, size)
    assert ranked[0] is people[2] and ranked[1] is people[1] and ranked[2] is people[0]
    # a centred box scores its size; the same box in a corner loses up to half of it
    s = main_person_score(people[2].keypoints, size)
    assert s == pytest.approx((100 * (0.82 - 0.18) + 170 * (0.92 - 0.07)) / 500, rel=0.05)
    assert main_person_score(np.zeros((18, 3), np.float32), size) == 0.0


def test_densepose_rcnn_picks_the_person_the_keypoint_stage_picks():
    """One rule, :func:`subject_score`, for keypoint poses and detector boxes: a slightly larger
    person in the corner loses to a centred one."""
    from vtonpipe.converters.keypoints import keypoint_bbox, subject_score
    from vtonpipe.models.nets.densepose_rcnn import main_person

    size = (256, 192)  # H, W
    centred = np.array([56.0, 40.0, 136.0, 216.0])  # 80 x 176, centre (96, 128) = the image centre (95.5, 127.5) + 0.5
    corner = np.array([0.0, 0.0, 90.0, 190.0])  # 90 x 190: larger
    assert subject_score(centred, size) == pytest.approx(256 / 448 * (1 - 0.5 * np.hypot(0.5, 0.5) / (0.5 * np.hypot(192, 256))))
    assert subject_score(corner, size) == pytest.approx(280 / 448 * (1 - 0.5 * np.hypot(50.5, 32.5) / 160.0))
    assert main_person(np.stack([corner, centred]), size) == 1
    assert main_person(np.stack([corner, centred * [1, 1, 0.5, 0.5]]), size) == 0  # a small centred one loses
    for box in (centred, corner):  # a pose whose keypoints span the box scores the same
        kp = np.zeros((18, 3), np.float32)
        kp[0], kp[1], kp[2:] = (box[0], box[1], 1), (box[2], box[3], 1), ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, 1)
        np.testing.assert_allclose(keypoint_bbox(kp), box)
        assert main_person_score(kp, size) == pytest.approx(subject_score(box, size))


# -- backends ----------------------------------------------------------------------------------
def encoder_caffe_files(directory: Path) -> None:
    """A one-convolution Caffe "OpenPose": an 8x8/stride-8 conv whose output channel c reads one
    pixel of the tile, so an image made by :func:`encode_maps` gives back its 57 maps."""
    weight = np.zeros((57, 3, 8, 8), np.float32)
    for c in range(57):
        blob_channel, pixel = c % 3, c // 3
        weight[c, blob_channel, pixel // 8, pixel % 8] = 256 / 127  # blob = (p - 128) / 256
    (directory / "openpose").mkdir(parents=True, exist_ok=True)
    (directory / "openpose" / "pose_deploy_linevec.prototxt").write_text(
        'input: "image"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 8\ninput_dim: 8\n'
        'layer { name: "net_output" type: "Convolution" bottom: "image" top: "net_output" '
        "convolution_param { num_output: 57 kernel_size: 8 stride: 8 } }\n"
    )
    (directory / "openpose" / "pose_iter_440000.caffemodel").write_bytes(
        caffemodel_bytes([("net_output", "Convolution", [weight, np.zeros(57, np.float32)])])
    )


def encode_maps(heat: np.ndarray, paf: np.ndarray) -> np.ndarray:
    """RGB image (H, W, 3) whose 8x8 tiles hold the maps at stride 8: value v -> 128 + 127 v."""
    h, w = heat.shape[:2]
    cells = cv2.resize(np.concatenate([heat, paf], -1), (w // 8, h // 8), interpolation=cv2.INTER_AREA)
    pixels = np.clip(np.rint(128 + 127 * cells), 1, 255).astype(np.uint8)
    image = np.full((h // 8, 8, w // 8, 8, 3), 128, np.uint8)
    for c in range(57):
        blob_channel, pixel = c % 3, c // 3
        image[:, pixel // 8, :, pixel % 8, 2 - blob_channel] = pixels[..., c]  # RGB -> the net's BGR
    return image.reshape(h, w, 3)


def png_build(tmp_path: Path, persons: dict[str, np.ndarray]) -> Path:
    """MPV build whose person images are lossless PNGs (two per pair line)."""
    root = tmp_path / "raw"
    (root / "all").mkdir(parents=True)
    Image.fromarray(garment_image(0)).save(root / "all" / "cloth.jpg")
    names = sorted(persons)
    for name in names:
        Image.fromarray(persons[name]).save(root / "all" / name)
    lines = [f"{a}\t{b}\tcloth.jpg\ttest" for a, b in zip(names[::2], names[1::2])]
    write_mpv_tree(root, [], extra_lines=lines)
    build = tmp_path / "build"
    ingest("t", root, build, layout_name="mpv", show_progress=False)
    return build


def unpinned(monkeypatch, backend, *weights) -> None:
    """Let ``backend`` load test-generated weight files (their sha256 cannot be the official one)."""
    packages = backend.requirements.packages
    monkeypatch.setattr(backend, "requirements", Requirements(packages, tuple(dataclasses.replace(w, sha256=None) for w in weights)))


def test_caffe_backend_decodes_two_and_three_people_through_run_stage(tmp_path, monkeypatch):
    encoder_caffe_files(tmp_path / "weights")
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(tmp_path / "weights"))
    unpinned(monkeypatch, OpenPoseCaffe, OPENPOSE_PROTOTXT, OPENPOSE_CAFFEMODEL)
    size = (256, 320)
    two = [figure_at(16, 16, 120, 224), figure_at(176, 24, 120, 216)]  # two copies side by side
    three = [figure_at(8, 8, 100, 200), figure_at(120, 64, 60, 120), figure_at(200, 4, 110, 240)]
    build = png_build(
        tmp_path,
        {"a_two.png": encode_maps(*draw_pose_maps(two, size, 6, 6)), "b_three.png": encode_maps(*draw_pose_maps(three, size, 6, 6)),
         "c_blank.png": encode_maps(*draw_pose_maps([], size)), "d_two.png": encode_maps(*draw_pose_maps(two, size, 6, 6))},
    )  # fmt: skip
    res = run_stage(build, StageConfig("keypoints", "openpose-caffe", {"input_height": 256}), show_progress=False)
    assert (res.total, res.computed, res.reused, res.failures_by_reason) == (4, 2, 1, {"no_person": 1})
    reader = ShardReader(build / "annotations" / "keypoints")
    for name, truth in (("a_two.png", two), ("b_three.png", three)):
        row = reader.get(f"all/{name}")
        assert row["backend"] == "openpose-caffe" and row["num_people"] == len(truth)
        match([Person(p, 1.0) for p in row["people"]], truth, tol=1.5)
        # the main person is the biggest, most central one
        main = max(truth, key=lambda kp: main_person_score(np.c_[kp, np.ones(18)], size))
        np.testing.assert_allclose(row["keypoints"][:, :2], main, atol=1.5)
        np.testing.assert_array_equal(row["keypoints"], row["people"][0])
        assert row["keypoints"][:, 2].min() > 0.5 and row["landmarks_mp33"] is None
        x0, y0 = row["keypoints"][:, :2].min(0)
        x1, y1 = row["keypoints"][:, :2].max(0)
        np.testing.assert_allclose(row["bbox"], [x0, y0, x1, y1])
    np.testing.assert_array_equal(reader.get("all/d_two.png")["people"], reader.get("all/a_two.png")["people"])


def test_torch_and_caffe_backends_agree_through_run_stage(tmp_path, monkeypatch, openpose_files):
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(openpose_files["root"]))
    unpinned(monkeypatch, OpenPoseCaffe, OPENPOSE_PROTOTXT, OPENPOSE_CAFFEMODEL)
    unpinned(monkeypatch, OpenPoseTorch, OPENPOSE_TORCH)
    rng = np.random.default_rng(3)
    images = {f"p{i}.png": cv2.GaussianBlur(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8), (0, 0), 2) for i in range(5)}
    images["gray.png"] = cv2.GaussianBlur(rng.integers(0, 256, (64, 48), dtype=np.uint8), (0, 0), 2)  # PIL mode L
    images["rgba.png"] = np.dstack([images["p0.png"], np.full((64, 48), 128, np.uint8)])  # composited over white
    images["tiny.png"] = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    build = png_build(tmp_path, images)
    params = {"input_height": 64, "peak_threshold": 0.0, "min_parts": 2, "min_mean_score": -1e9}
    rows, failed = {}, {}
    for backend in ("openpose-torch", "openpose-caffe"):
        res = run_stage(build, StageConfig("keypoints", backend, params), show_progress=False)
        assert res.total == 8 and set(res.failures_by_reason) <= {"no_person"}
        with ShardReader(build / "annotations" / "keypoints") as reader:
            rows[backend] = {r["image_id"]: r for r in reader}
        failed[backend] = {r["item_id"] for r in ShardReader(build / "annotations" / "keypoints" / "failures") if r["backend"] == backend}
    assert rows["openpose-torch"].keys() == rows["openpose-caffe"].keys() and len(rows["openpose-torch"]) >= 6
    assert failed["openpose-torch"] == failed["openpose-caffe"]
    for image_id, t in rows["openpose-torch"].items():
        c = rows["openpose-caffe"][image_id]
        assert (t["backend"], c["backend"]) == ("openpose-torch", "openpose-caffe")
        assert t["num_people"] == c["num_people"] == len(t["people"]) >= 1
        np.testing.assert_allclose(t["people"], c["people"], atol=1e-3)


def test_openpose_backends_name_the_missing_weight_files(tmp_path, monkeypatch):
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(tmp_path))
    with pytest.raises(BackendUnavailableError) as err:
        OpenPoseTorch().ensure_setup()
    msg = str(err.value)
    assert "body_pose_model.pth" in msg and str(tmp_path / "openpose") in msg and OPENPOSE_TORCH.sha256 in msg
    with pytest.raises(BackendUnavailableError, match="pose_deploy_linevec.prototxt.*\n.*pose_iter_440000.caffemodel"):
        OpenPoseCaffe().ensure_setup()


def test_pinned_checksum_refuses_other_weights(monkeypatch, openpose_files):
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(openpose_files["root"]))
    with pytest.raises(MissingWeightsError, match=f"expected {OPENPOSE_TORCH.sha256}: wrong or corrupt download"):
        OpenPoseTorch().ensure_setup()
