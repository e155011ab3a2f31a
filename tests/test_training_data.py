"""The training data layer: every resize rule on a hand-made pair, needs, missing priors, the stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from packed_builder import flat_row, png, synthetic_build, synthetic_values, write_build
from torch.utils.data import default_collate

from vtonpipe.converters.keypoints import gaussian_heatmaps, pose_disks
from vtonpipe.training.data import (
    BATCH_KEYS,
    DataConfig,
    MissingPriorError,
    PackedPairs,
)
from vtonpipe.training.stream import PackedPairDataset, PackedPairStream, make_loader
from vtonpipe.training.transforms import resize_flow, resize_image, resize_iuv, resize_nearest, scale_points

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- the transforms on their own --------------------------------------------------------------
def test_resize_image_bilinear_pixel_centres():
    ramp = torch.tensor([0.0, 60.0, 120.0, 180.0]).expand(1, 4, 4).clone()  # value = 60 x
    up = resize_image(ramp, (8, 8))[0, 0]
    # x' -> x = (x' + 0.5) / 2 - 0.5, clamped to the image: bilinear between the two neighbours
    assert torch.allclose(up, torch.tensor([0.0, 15, 45, 75, 105, 135, 165, 180]), atol=1e-4)
    down = resize_image(ramp, (2, 2))[0, 0]
    # antialiased: triangle filter of half-width 2 input pixels around x = 0.5 and x = 2.5,
    # weights 0.25, 0.75, 0.75, 0.25 (taps outside the image dropped and the rest renormalised)
    assert torch.allclose(down, torch.tensor([(60 * 0.75 + 120 * 0.25) / 1.75, (60 * 0.25 + 120 * 0.75 + 180 * 0.75) / 1.75]), atol=1e-4)
    same = torch.rand(3, 4, 4)
    assert resize_image(same, (4, 4)) is same
    levels = resize_image(ramp.to(torch.uint8), (2, 2))  # 8-bit images: the same filter, rounded
    assert levels.dtype == torch.uint8 and levels[0, 0].tolist() == [43, 137]


def test_large_jpegs_decode_at_a_reduced_scale_in_the_same_frame(tmp_path):
    import io

    from PIL import Image

    from vtonpipe.training.data import decode_rgb

    yy, xx = np.mgrid[0:64, 0:48]
    smooth = np.stack([xx * 5, yy * 4, 128 + 0 * xx], -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(smooth).save(buf, format="JPEG", quality=95)
    pixels, frame = decode_rgb(buf.getvalue(), (16, 12))
    assert frame == (64, 48) and pixels.shape == (16, 12, 3)  # libjpeg's 1/4 scale
    full = resize_image(torch.from_numpy(np.array(Image.open(buf))).permute(2, 0, 1).float(), (16, 12))
    assert (torch.from_numpy(pixels).permute(2, 0, 1).float() - full).abs().mean() < 2.0  # levels of 255
    assert decode_rgb(buf.getvalue(), (40, 30))[0].shape == (64, 48, 3)  # not twice the size: full decode
    kp = np.zeros((18, 3), np.float32)
    kp[0] = (47, 63, 1)
    values = {"source.image": buf.getvalue(), "source.keypoints.keypoints": kp}
    build = write_build(tmp_path, {"train": [flat_row("j", "train", values)]}, ["source.keypoints"])
    s = PackedPairs(build, "train", {"source_image", "source_keypoints"}, DataConfig(16, 12)).sample(0)
    assert s["source_keypoints"][0, :2].tolist() == [(47.5 / 4) - 0.5, (63.5 / 4) - 0.5]  # from the original frame


def test_resize_nearest_takes_the_pixel_under_each_centre():
    labels = torch.arange(16).reshape(4, 4)
    assert resize_nearest(labels, (2, 2)).tolist() == [[5, 7], [13, 15]]
    assert resize_nearest(labels[:2, :2], (4, 4)).tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [4, 4, 5, 5], [4, 4, 5, 5]]
    assert resize_nearest(np.arange(6, dtype=np.uint8).reshape(2, 3), (2, 6)).dtype == torch.uint8


def test_scale_points_in_the_pixel_centre_frame():
    pts = np.array([[0, 0, 0.5], [3, 1, 1.0], [0, 0, 0.0]], np.float32)
    out = scale_points(pts, pts[:, 2] > 0, (4, 4), (8, 2))  # H x2, W x0.5
    # x' = (x + 0.5) * 0.5 - 0.5, y' = (y + 0.5) * 2 - 0.5; the undetected point stays (0, 0, 0)
    assert out.tolist() == [[-0.25, 0.5, 0.5], [1.25, 2.5, 1.0], [0.0, 0.0, 0.0]]


def test_resize_iuv_never_mixes_uv_across_parts():
    iuv = np.zeros((4, 4, 3), np.uint8)
    iuv[:3, :2, 0], iuv[:3, 2:, 0] = 1, 2  # two parts side by side; row 3 background
    iuv[:3, :, 1] = [0, 255, 0, 255]  # U ramps 0 -> 1 within each part
    iuv[:3, :, 2] = 51  # V = 0.2
    parts, uv = resize_iuv(iuv, (8, 8))
    assert parts[0].tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
    assert parts[:, 0].tolist() == [1, 1, 1, 1, 1, 1, 0, 0]
    # x' = 3 samples x = 1.25 (part 1, weight 0.75) and x = 2 (part 2, excluded): U = U(x=1) = 1
    assert torch.allclose(uv[0, 0], torch.tensor([0, 0.25, 0.75, 1, 0, 0.25, 0.75, 1]))
    assert torch.allclose(uv[1, :6], torch.full((6, 8), 0.2))  # y' = 5 leans on the background row: excluded
    assert (uv[:, 6:] == 0).all()


def test_resize_flow_resamples_over_the_body_and_scales_vectors():
    flow = np.zeros((4, 4, 2), np.float32)
    vis = np.array([[0] * 4, [0] * 4, [1] * 4, [2] * 4], np.uint8)
    flow[vis != 2] = (1.0, -0.5)
    out, out_vis = resize_flow(flow, vis, (8, 8), (4, 4))
    assert out_vis[:, 0].tolist() == [0, 0, 0, 0, 1, 1, 2, 2]
    # body pixels: the vectors doubled (y' = 5 would blend in the background row's 0 if not masked)
    assert torch.allclose(out[0, :6], torch.full((6, 8), 2.0)) and torch.allclose(out[1, :6], torch.full((6, 8), -1.0))
    assert (out[:, 6:] == 0).all()
    down, down_vis = resize_flow(flow, vis, (2, 2), (4, 4))
    assert down_vis.tolist() == [[0, 0], [2, 2]]
    assert torch.allclose(down[:, 0], torch.tensor([[0.5, 0.5], [-0.25, -0.25]])) and (down[:, 1] == 0).all()


def test_resize_flow_with_a_source_of_another_size():
    # target 4x4, source 8x8, both resized to 8x8: the target frame doubles, the source frame stays
    flow = np.ones((4, 4, 2), np.float32)
    vis = np.zeros((4, 4), np.uint8)
    out, _ = resize_flow(flow, vis, (8, 8), (8, 8))
    # x_t = (x' + 0.5) / 2 - 0.5, x_s = x_t + 1 (source pixels, unchanged by its resize): x_s - x'
    x = torch.arange(8.0)
    assert torch.allclose(out[0, 0], (x + 0.5) / 2 - 0.5 + 1 - x)


# -- a hand-made packed pair through PackedPairs ----------------------------------------------
def _hand_pair() -> dict:
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0] = [0, 60, 120, 180]  # R = 60 x
    image[..., 1] = np.array([0, 60, 120, 180])[:, None]  # G = 60 y
    image[..., 2] = 90
    iuv = np.zeros((4, 4, 3), np.uint8)
    iuv[:3, :2, 0], iuv[:3, 2:, 0] = 1, 2
    iuv[:3, :, 1] = [0, 255, 0, 255]
    iuv[:3, :, 2] = 51
    kp = np.zeros((18, 3), np.float32)
    kp[0] = (1, 2, 0.9)
    lm = np.zeros((32, 3), np.float32)
    lm[:, 2] = 2
    lm[0], lm[1] = (3, 0, 0), (0, 3, 1)
    flow = np.zeros((4, 4, 2), np.float32)
    vis = np.array([[0] * 4, [0] * 4, [1] * 4, [2] * 4], np.uint8)
    flow[vis != 2] = (1.0, -0.5)
    mask = np.array([[0, 1, 1, 0]] * 4, np.uint8)
    values = {"pair.smpl_flow.flow": flow, "pair.smpl_flow.visibility": vis, "garment.garment_mask.mask": mask}
    for role in ("source", "target", "garment"):
        values[f"{role}.image"] = png(image)
        values[f"{role}.landmarks.landmarks"] = lm
    for role in ("source", "target"):
        values[f"{role}.parsing.parsing"] = np.arange(16, dtype=np.uint8).reshape(4, 4)
        values[f"{role}.densepose.iuv"] = iuv
        values[f"{role}.keypoints.keypoints"] = kp
    return values


@pytest.fixture
def hand_build(tmp_path):
    return write_build(tmp_path, {"train": [flat_row("hand", "train", _hand_pair())]})


def test_every_key_upsampled_by_its_rule(hand_build):
    cfg = DataConfig(height=8, width=8, pose_sigma=1.5, pose_radius=1.0, landmark_sigma=2.0)
    s = PackedPairs(hand_build, "train", BATCH_KEYS, cfg).sample(0)
    assert set(s) == set(BATCH_KEYS) | {"pair_id", "paired"}
    assert s["pair_id"] == "hand" and s["paired"].item() is True
    for role in ("source", "target", "garment"):
        img = s[f"{role}_image"]
        assert img.shape == (3, 8, 8) and img.dtype == torch.float32
        assert torch.allclose(img[0, 3] * 255, torch.tensor([0.0, 15, 45, 75, 105, 135, 165, 180]), atol=1e-4)
        assert torch.allclose(img[1, :, 3] * 255, torch.tensor([0.0, 15, 45, 75, 105, 135, 165, 180]), atol=1e-4)
        assert torch.allclose(img[2], torch.full((8, 8), 90 / 255))
    assert s["garment_mask"].shape == (1, 8, 8) and s["garment_mask"][0, 0].tolist() == [0, 0, 1, 1, 1, 1, 0, 0]
    expected_parsing = np.kron(np.arange(16).reshape(4, 4), np.ones((2, 2), np.int64))
    for role in ("source", "target"):
        assert s[f"{role}_parsing"].dtype == torch.int64 and s[f"{role}_parsing"].tolist() == expected_parsing.tolist()
        assert s[f"{role}_garment_region"].tolist() == [np.isin(expected_parsing, (5, 6, 7)).astype(np.float32).tolist()]
        assert s[f"{role}_iuv_i"][0].tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
        assert torch.allclose(s[f"{role}_iuv_uv"][0, 0], torch.tensor([0, 0.25, 0.75, 1, 0, 0.25, 0.75, 1]))
        # keypoint (1, 2) -> (2.5, 4.5); the undetected ones stay (0, 0, 0)
        assert torch.allclose(s[f"{role}_keypoints"][0], torch.tensor([2.5, 4.5, 0.9]))
        assert (s[f"{role}_keypoints"][1:] == 0).all()
        ref = np.zeros((18, 3), np.float32)
        ref[0] = (2.5, 4.5, 0.9)
        assert torch.allclose(s[f"{role}_pose_heatmaps"], torch.from_numpy(gaussian_heatmaps(ref, (8, 8), 1.5)))
        assert s[f"{role}_pose_heatmaps"][0, 4, 2] == pytest.approx(np.exp(-0.5 / (2 * 1.5**2)))
        disks = s[f"{role}_pose_disks"]
        assert torch.equal(disks, torch.from_numpy(pose_disks(ref, (8, 8), 1.0)))
        assert disks[0].sum() == 4 and disks[1:].sum() == 0  # the 4 pixel centres within 1 px of (2.5, 4.5)
    for role in ("source", "target", "garment"):
        lm = s[f"{role}_landmarks"]
        assert lm[0].tolist() == [6.5, 0.5, 0.0] and lm[1].tolist() == [0.5, 6.5, 1.0]
        assert (lm[2:, :2] == 0).all() and (lm[2:, 2] == 2).all()
        heat = s[f"{role}_landmark_heatmaps"]
        assert heat.shape == (32, 8, 8) and heat[0, 0, 6] == pytest.approx(np.exp(-0.5 / 8)) and heat[1].max() > 0.9
        assert heat[2:].abs().sum() == 0  # absent landmarks have no heatmap
    assert s["visibility"].dtype == torch.int64 and s["visibility"][:, 0].tolist() == [0, 0, 0, 0, 1, 1, 2, 2]
    assert torch.allclose(s["smpl_flow"][:, :6], torch.tensor([2.0, -1.0])[:, None, None].expand(2, 6, 8))
    assert (s["smpl_flow"][:, 6:] == 0).all()


def test_every_key_downsampled_by_its_rule(hand_build):
    s = PackedPairs(hand_build, "train", BATCH_KEYS, DataConfig(height=2, width=2)).sample(0)
    r = s["source_image"][0, 0] * 255  # 8-bit resize: the levels rounded
    assert torch.allclose(r, torch.tensor([(60 * 0.75 + 120 * 0.25) / 1.75, (60 * 0.25 + 120 * 0.75 + 180 * 0.75) / 1.75]), atol=0.5)
    assert s["source_parsing"].tolist() == [[5, 7], [13, 15]]
    assert s["source_garment_region"][0].tolist() == [[1, 1], [0, 0]]
    assert s["garment_mask"][0].tolist() == [[1, 0], [1, 0]]
    assert s["source_iuv_i"].tolist() == [[1, 2], [0, 0]]
    assert torch.allclose(s["source_keypoints"][0], torch.tensor([0.25, 0.75, 0.9]))
    assert s["garment_landmarks"][0].tolist() == [1.25, -0.25, 0.0]
    assert s["visibility"].tolist() == [[0, 0], [2, 2]]
    assert torch.allclose(s["smpl_flow"][:, 0], torch.tensor([[0.5, 0.5], [-0.25, -0.25]])) and (s["smpl_flow"][:, 1] == 0).all()


# -- needs: only what a task asks for is read and decoded -------------------------------------
def test_only_needed_keys_are_read_and_decoded(hand_build):
    warp = PackedPairs(hand_build, "train", {"source_iuv_i", "target_iuv_i", "smpl_flow", "source_garment_region"}, DataConfig(8, 8))
    assert not any(c.endswith(".image") for c in warp.columns)  # the source frame comes from its IUV
    assert {f"{p}.{n}" for p, n in warp.dense} == {
        "source.densepose.iuv",
        "target.densepose.iuv",
        "source.parsing.parsing",
        "pair.smpl_flow.flow",
        "pair.smpl_flow.visibility",
    }
    assert set(warp.sample(0)) == {"pair_id", "paired", "source_iuv_i", "target_iuv_i", "smpl_flow", "source_garment_region"}
    points = PackedPairs(hand_build, "train", {"target_keypoints"}, DataConfig(8, 8))
    assert "target.image" in points.columns and not points.dense  # keypoints alone: the frame from the image header
    assert torch.allclose(points.sample(0)["target_keypoints"][0], torch.tensor([2.5, 4.5, 0.9]))
    with pytest.raises(KeyError, match="unknown batch keys"):
        PackedPairs(hand_build, "train", {"source_imag"})


# -- missing priors ---------------------------------------------------------------------------
def test_a_stage_never_packed_names_the_stage_to_run(tmp_path):
    values = {k: v for k, v in synthetic_values(0).items() if ".landmarks." not in k}
    build = write_build(tmp_path, {"train": [flat_row("p", "train", values)]}, [c for c in __import__("packed_builder").ALL_COMPONENTS if "landmarks" not in c])
    with pytest.raises(MissingPriorError, match=r"garment_landmarks.*`landmarks`.*vtonpipe annotate landmarks"):
        PackedPairs(build, "train", {"garment_landmarks", "garment_image"})
    PackedPairs(build, "train", {"garment_image"})  # what is there still reads


def test_single_pose_pairs_say_the_flow_does_not_apply(tmp_path):
    rows = [flat_row(f"p{i}", "train", synthetic_values(i, with_target=False), has_target=False) for i in range(3)]
    build = write_build(tmp_path, {"train": rows})
    with pytest.raises(MissingPriorError, match=r"smpl_flow is not applicable to this build's pairs \(no target person: single-pose dataset\)"):
        PackedPairs(build, "train", {"smpl_flow", "source_image"})
    with pytest.raises(MissingPriorError, match="target image.*3 of the 3 pairs"):
        PackedPairs(build, "train", {"target_image"})
    assert PackedPairs(build, "train", {"source_image", "source_parsing"}).sample(2)["source_parsing"].shape == (256, 192)


def test_failed_rows_report_the_recorded_reason(tmp_path):
    values = synthetic_values(0)
    broken = {k: v for k, v in values.items() if not k.startswith("source.densepose")}
    rows = [flat_row("ok", "train", values), flat_row("bad", "train", broken)]
    build = write_build(tmp_path, {"train": rows}, absent={"source.densepose": "densepose failed: no person detected"})
    with pytest.raises(MissingPriorError, match=r"source_iuv_uv: densepose of the source image is absent in 1 of the 2 pairs.*no person detected"):
        PackedPairs(build, "train", {"source_iuv_uv"})


def test_images_not_packed(tmp_path):
    build = write_build(tmp_path, {"train": [flat_row("p", "train", synthetic_values(0))]}, include_images=False)
    with pytest.raises(MissingPriorError, match="packed without images"):
        PackedPairs(build, "train", {"garment_image"})


# -- map-style and stream ---------------------------------------------------------------------
@pytest.fixture
def build10(tmp_path):
    return synthetic_build(tmp_path, train=10, test=5, size=(8, 6), rows_per_shard=4)  # shards of 4, 4, 2


def _ids(batches):
    return [list(b["pair_id"]) for b in batches]


def test_map_style_random_access(build10):
    pairs = PackedPairs(build10, "train", {"source_parsing"}, DataConfig(8, 6))
    ds = PackedPairDataset(pairs)
    assert len(ds) == 10 and ds[9]["pair_id"] == "train-009" and ds[4]["pair_id"] == "train-004"
    assert pairs.locate(9) == (2, 1)
    with pytest.raises(IndexError):
        ds[10]


def test_stream_splits_an_epoch_between_ranks_and_workers_without_overlap_or_loss(build10):
    pairs = PackedPairs(build10, "train", {"source_parsing"}, DataConfig(8, 6, shuffle_window=3))
    seen = []
    for rank in range(2):
        stream = PackedPairStream(pairs, 3, seed=5, rank=rank, world_size=2, epochs=1)
        for worker in range(2):
            seen += [int(i) for block in stream.blocks(worker, 2) for i in block]
    assert sorted(seen) == list(range(10))
    one = PackedPairStream(pairs, 3, seed=5, epochs=1)
    assert sorted(one.epoch_order(0).tolist()) == list(range(10)) and one.epoch_order(0).tolist() != list(range(10))
    assert one.epoch_order(1).tolist() != one.epoch_order(0).tolist()  # reshuffled each epoch


def test_rank_batches_together_are_the_doubled_batch(build10):
    pairs = PackedPairs(build10, "train", {"source_parsing"}, DataConfig(8, 6))
    single = PackedPairStream(pairs, 4, seed=1).blocks()
    ranks = [PackedPairStream(pairs, 2, seed=1, rank=r, world_size=2).blocks() for r in range(2)]
    for _ in range(7):  # crosses epoch boundaries: the stream never yields a short batch
        both = np.concatenate([next(ranks[0]), next(ranks[1])])
        assert both.tolist() == next(single).tolist()


def test_loader_batches_do_not_depend_on_workers_and_resume_at_a_position(build10):
    pairs = PackedPairs(
        build10,
        "train",
        {"source_image", "source_parsing", "source_garment_region", "garment_mask", "source_pose_heatmaps", "source_pose_disks"},
        DataConfig(8, 6, pose_radius=2.0),
    )
    stream = PackedPairStream(pairs, 3, seed=2)
    it0 = iter(make_loader(stream, workers=0))
    first = [next(it0) for _ in range(6)]
    it2 = iter(make_loader(stream, workers=2))
    from_workers = [next(it2) for _ in range(6)]
    assert _ids(from_workers) == _ids(first)
    for a, b in zip(first, from_workers):  # the same values, the maps drawn in the workers' shared memory too
        assert all(torch.equal(a[k], b[k]) for k in a if k != "pair_id") and b["source_pose_disks"].sum() > 0
    resumed = PackedPairStream(pairs, 3, seed=2, start=stream.position_after(4))
    again = [next(iter_) for iter_ in [iter(make_loader(resumed))] for _ in range(2)]
    assert _ids(again) == _ids(first[4:])
    assert torch.equal(again[1]["source_parsing"], first[5]["source_parsing"])
    # resuming with another batch size continues the same sample sequence
    other = PackedPairStream(pairs, 2, seed=2, start=stream.position_after(4))
    assert sum(_ids([b for b, _ in zip(make_loader(other), range(3))]), []) == sum(_ids(first[4:6]), [])


def test_a_batch_is_its_samples_collated_with_the_point_maps_drawn_per_sample(build10):
    cfg = DataConfig(8, 6, pose_sigma=1.5, pose_radius=1.5, landmark_sigma=2.0)
    pairs = PackedPairs(build10, "train", set(BATCH_KEYS), cfg)
    batch, samples = pairs.batch([3, 0, 7]), [pairs.sample(i) for i in (3, 0, 7)]
    assert set(batch) == set(BATCH_KEYS) | {"pair_id", "paired"} and batch["pair_id"] == ["train-003", "train-000", "train-007"]
    collated = default_collate(samples)
    for key in sorted(set(BATCH_KEYS) | {"paired"}):
        assert batch[key].dtype == collated[key].dtype and torch.equal(batch[key], collated[key]), key
    for s in samples:  # each sample's maps are its own points' encodings
        kp, lm = s["source_keypoints"].numpy(), s["garment_landmarks"].numpy()
        assert torch.equal(s["source_pose_heatmaps"], torch.from_numpy(gaussian_heatmaps(kp, (8, 6), 1.5)))
        assert torch.equal(s["source_pose_disks"], torch.from_numpy(pose_disks(kp, (8, 6), 1.5)))
        located = np.concatenate([lm[:, :2], (lm[:, 2:] != 2).astype(np.float32)], axis=1)
        assert torch.equal(s["garment_landmark_heatmaps"], torch.from_numpy(gaussian_heatmaps(located, (8, 6), 2.0)))
    assert batch["source_pose_heatmaps"].shape == (3, 18, 8, 6) and batch["source_pose_heatmaps"].sum() > 0


def test_one_pass_covers_the_split_with_a_short_last_batch(build10):
    pairs = PackedPairs(build10, "test", {"source_parsing"}, DataConfig(8, 6))
    batches = list(make_loader(PackedPairStream(pairs, 2, shuffle=False, epochs=1)))
    assert [len(b["pair_id"]) for b in batches] == [2, 2, 1]
    assert sum(_ids(batches), []) == [f"test-{i:03d}" for i in range(5)]
    collated = default_collate([pairs.sample(0), pairs.sample(1)])
    assert torch.equal(collated["source_parsing"], batches[0]["source_parsing"])
