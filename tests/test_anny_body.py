"""The anny body wrapper: topology, body frame, posing recipes, batching, gradients, keypoints."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from vtonpipe.config import cache_dir
from vtonpipe.models.bodies.anny import (
    BONE_COUNT,
    OPENPOSE18_FROM_COCO,
    PHENOTYPE_LABELS,
    AnnyBody,
    anny_cache_dir,
    load_anny,
    rotvec_to_rotmat,
    warp_cache_dir,
)


@pytest.fixture(scope="module")
def body() -> AnnyBody:
    return AnnyBody()


def _keypoints(body: AnnyBody, **kwargs) -> dict[str, np.ndarray]:
    with torch.no_grad():
        k = body.coco_keypoints(body(**kwargs))[0].numpy()
    return dict(zip(body.coco_labels, k))


def test_model_is_built_into_the_project_cache(body):
    import warp

    assert anny_cache_dir() == cache_dir() / "anny" and warp_cache_dir() == cache_dir() / "warp"
    assert list(anny_cache_dir().rglob("build_compact_model_data_*.safetensors"))
    pose = torch.zeros(104, 3, dtype=body.dtype, requires_grad=True)  # with a gradient anny skins with warp (without, vtonpipe's CPU skinning)
    body(pose=pose).sum().backward()  # compiles or loads warp's kernels, on a fresh machine too
    AnnyBody(dtype=torch.float64)()  # a second model must not move warp's cache
    base = Path(os.environ["WARP_CACHE_PATH"]).resolve()  # set to warp_cache_dir() unless the user set it
    kernels = Path(warp.config.kernel_cache_dir)
    assert kernels.parent == base and any(p.name.startswith("wp_anny.skinning") for p in kernels.iterdir())
    assert not any(p.name.startswith("wp_") for p in base.iterdir())
    assert load_anny() is body.model  # one model per process and (device, dtype)


def test_topology_and_skinning(body):
    assert body.faces.shape == (27420, 3) and body.faces.dtype == np.int64
    assert body.num_vertices == 13718 and body.faces.min() == 0 and body.faces.max() == 13717
    assert len(body.bone_labels) == BONE_COUNT and body.bone_labels[0] == "root"
    assert {"upperarm01.L", "lowerarm01.R", "head", "foot.L"} <= set(body.bone_labels)
    assert body.skin_indices.shape == body.skin_weights.shape == (13718, 9)
    np.testing.assert_allclose(body.skin_weights.sum(1), 1.0, atol=1e-5)
    dense = body.dense_skin_weights()
    assert dense.shape == (13718, BONE_COUNT)
    np.testing.assert_allclose(dense.sum(1), 1.0, atol=1e-5)


def test_body_frame(body):
    vertices, joints = body.forward_with_joints()
    v, j = vertices[0].detach().numpy(), joints[0].detach().numpy()
    assert vertices.shape == (1, 13718, 3) and vertices.dtype == torch.float32
    np.testing.assert_allclose(j[body.bone_index["root"]], 0.0, atol=1e-6)  # origin at the pelvis
    k = _keypoints(body)
    assert k["nose"][1] < -0.1 < 0 < k["left_eye"][0]  # facing -Y, +X is the person's left
    assert k["left_shoulder"][0] > 0 > k["right_shoulder"][0] and k["left_ankle"][0] > 0 > k["right_ankle"][0]
    assert 1.5 < v[:, 2].max() - v[:, 2].min() < 1.8  # metres, Z up
    assert v[:, 2].max() > k["nose"][2] > k["left_hip"][2] > k["left_ankle"][2] > v[:, 2].min()
    # reference A-pose: arms 42 degrees out from the vertical
    arm = j[body.bone_index["lowerarm01.L"]] - j[body.bone_index["upperarm01.L"]]
    assert abs(math.degrees(math.atan2(arm[0], -arm[2])) - 42.0) < 1.0


def test_posing_recipes_from_the_module_docstring(body):
    rest = _keypoints(body)
    k = _keypoints(body, pose={"upperarm01.L": (0, -0.84, 0), "upperarm01.R": (0, 0.84, 0)})
    for side in ("left", "right"):  # T-pose: elbows level with the shoulders
        arm = k[f"{side}_elbow"] - k[f"{side}_shoulder"]
        assert abs(arm[2]) < 0.15 * abs(arm[0])
    k = _keypoints(body, pose={"upperarm01.L": (0, 0.5, 0)})
    arm = k["left_elbow"] - k["left_shoulder"]
    assert math.degrees(math.atan2(arm[0], -arm[2])) < 20.0  # hangs along the body
    a = 0.73
    k = _keypoints(body, pose={"lowerarm01.L": -0.5 * np.array([math.cos(a), 0, math.sin(a)]),
                               "lowerarm01.R": 0.5 * np.array([-math.cos(a), 0, math.sin(a)])})  # fmt: skip
    for side in ("left", "right"):  # elbows bend forward: wrists go forward and up
        d = k[f"{side}_wrist"] - rest[f"{side}_wrist"]
        assert d[1] < -0.04 and d[2] > 0.04
    d = _keypoints(body, pose={"lowerleg01.L": (0.5, 0, 0)})["left_ankle"] - rest["left_ankle"]
    assert d[1] > 0.15 and abs(d[0]) < 0.01  # knee bends, foot goes back
    d = _keypoints(body, pose={"upperleg01.R": (-0.5, 0, 0)})["right_knee"] - rest["right_knee"]
    assert d[1] < -0.15  # hip flexion, knee forward
    d = _keypoints(body, pose={"upperleg01.L": (0, -0.3, 0)})["left_ankle"] - rest["left_ankle"]
    assert d[0] > 0.15  # leg spreads outwards
    d = _keypoints(body, pose={"head": (0.4, 0, 0)})["nose"] - rest["nose"]
    assert d[2] < -0.03  # nod down
    d = _keypoints(body, pose={"head": (0, 0, 0.5)})["nose"] - rest["nose"]
    assert d[0] > 0.04  # turn to the person's left
    k = _keypoints(body, global_rot=(0, 0, math.pi / 2), transl=(1.0, 2.0, 3.0))
    np.testing.assert_allclose(k["nose"], [-rest["nose"][1] + 1.0, rest["nose"][0] + 2.0, rest["nose"][2] + 3.0], atol=1e-5)


def test_mirrored_pose_gives_the_mirrored_body(body):
    with torch.no_grad():
        rest = body()[0].numpy()
    # anny's mesh is left/right symmetric to 0.5 mm: pair each vertex with its mirror image
    dist, mirror = cKDTree(rest).query(rest * [-1, 1, 1])
    assert dist.max() < 5e-4
    left = {"upperarm01.L": (0.3, -0.5, 0.2), "lowerarm01.L": (-0.4, 0.1, -0.6), "upperleg01.L": (-0.4, -0.1, 0.3)}
    right = {k.replace(".L", ".R"): (x, -y, -z) for k, (x, y, z) in left.items()}
    with torch.no_grad():
        a = body(pose=left)[0].numpy()
        b = body(pose=right)[0].numpy()
    assert np.abs(a - rest).max() > 0.2
    np.testing.assert_allclose(b[mirror] * [-1, 1, 1], a, atol=1e-3)


def test_batching_broadcasts_and_matches_single_bodies(body):
    g = torch.Generator().manual_seed(0)
    pose = 0.3 * torch.randn(3, BONE_COUNT, 3, generator=g)
    phenotype = torch.rand(3, 6, generator=g)
    with torch.no_grad():
        batch = body(pose=pose, phenotype=phenotype[0], global_rot=(0.0, 0.0, 1.0))
        assert batch.shape == (3, 13718, 3)
        for i in range(3):
            single = body(pose=pose[i], phenotype=phenotype[0], global_rot=(0.0, 0.0, 1.0))
            np.testing.assert_allclose(single[0].numpy(), batch[i].numpy(), atol=1e-5)
        shapes = body(phenotype=phenotype)
        assert shapes.shape == (3, 13718, 3) and (shapes[0] - shapes[1]).abs().max() > 0.01
    with pytest.raises(ValueError, match="batch size"):
        body(pose=pose, phenotype=phenotype[:2])
    with pytest.raises(ValueError, match="pose"):
        body(pose=torch.zeros(BONE_COUNT, 4))
    with pytest.raises(KeyError, match="unknown anny bones"):
        body(pose={"upper_arm.L": (0, 0, 1)})
    with pytest.raises(KeyError, match="unknown phenotypes"):
        body.phenotype(race=0.3)


def test_named_poses_and_phenotypes(body):
    pose = body.pose_from_named({"head": (0.1, 0.2, 0.3), "foot.R": [[0, 0, 1], [0, 1, 0]]})
    assert pose.shape == (2, BONE_COUNT, 3)
    np.testing.assert_allclose(pose[:, body.bone_index["head"]].numpy(), [[0.1, 0.2, 0.3]] * 2, rtol=1e-6)
    assert pose.abs().sum() == pytest.approx(2 * 0.6 + 2, rel=1e-6)
    p = body.phenotype(gender=1.0, age=2 / 3)
    assert PHENOTYPE_LABELS[:2] == ("gender", "age")
    np.testing.assert_allclose(p.numpy(), [1.0, 2 / 3, 0.5, 0.5, 0.5, 0.5], rtol=1e-6)
    with torch.no_grad():
        tall, short = body(phenotype=torch.stack([body.phenotype(height=1.0), body.phenotype(height=0.0)]))
    assert np.ptp(tall[:, 2].numpy()) > np.ptp(short[:, 2].numpy()) + 0.1


def test_gradients_match_finite_differences():
    body64 = AnnyBody(dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    inputs = [0.2 * torch.randn(BONE_COUNT, 3, generator=g, dtype=torch.float64), torch.full((6,), 0.4, dtype=torch.float64),
              torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64), torch.tensor([0.0, 0.1, 0.0], dtype=torch.float64)]  # fmt: skip
    directions = [torch.randn(x.shape, generator=g, dtype=torch.float64) for x in inputs]
    weights = torch.randn(13718, 3, generator=g, dtype=torch.float64)

    def loss(*xs):
        return (body64(*xs)[0] * weights).sum()

    for x in inputs:
        x.requires_grad_(True)
    loss(*inputs).backward()
    analytic = sum((x.grad * d).sum() for x, d in zip(inputs, directions)).item()
    eps = 1e-6
    with torch.no_grad():
        plus = loss(*[x + eps * d for x, d in zip(inputs, directions)])
        minus = loss(*[x - eps * d for x, d in zip(inputs, directions)])
    numeric = ((plus - minus) / (2 * eps)).item()
    assert all(x.grad.abs().sum() > 0 for x in inputs)
    assert numeric == pytest.approx(analytic, rel=1e-5)

    with torch.no_grad():
        v32 = AnnyBody()(*[x.float() for x in inputs])
        v64 = body64(*inputs)
    assert (v32.double() - v64).abs().max() < 1e-5


def test_rotvec_to_rotmat_matches_scipy():
    rotvecs = np.concatenate([np.random.default_rng(2).normal(size=(20, 3)), [[0, 0, 0], [1e-6, 0, 0], [0, 0, math.pi]]])
    got = rotvec_to_rotmat(torch.as_tensor(rotvecs)).numpy()
    np.testing.assert_allclose(got, Rotation.from_rotvec(rotvecs).as_matrix(), atol=1e-12)
    zero = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    rotvec_to_rotmat(zero)[1, 0].backward()  # d R / d rz at 0: the skew matrix entry, 1
    np.testing.assert_allclose(zero.grad.numpy(), [0.0, 0.0, 1.0])


def test_openpose18_order_and_neck(body):
    with torch.no_grad():
        vertices = body(pose={"upperarm01.R": (0, 0.6, 0)}, global_rot=(0, 0, 0.3))
        coco = dict(zip(body.coco_labels, body.coco_keypoints(vertices)[0].numpy()))
        op = body.openpose18(vertices)[0].numpy()
    assert op.shape == (18, 3) and len(OPENPOSE18_FROM_COCO) == 18
    np.testing.assert_allclose(op[1], (coco["left_shoulder"] + coco["right_shoulder"]) / 2, atol=1e-6)
    names = ["nose", None, "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
             "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
             "right_eye", "left_eye", "right_ear", "left_ear"]  # fmt: skip
    for i, name in enumerate(names):
        if name:
            np.testing.assert_allclose(op[i], coco[name], atol=1e-6)
    assert len(body.coco_labels) == 23 and body.coco_labels[17:] == (
        "left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe", "left_heel", "right_heel")


def test_posing_without_gradients_skins_on_the_cpu_threads_like_anny(body):
    """The numba skinning (no-gradient CPU calls) equals anny's warp skinning, the gradient path
    still goes through warp, and a hand-made two-bone vertex blends as LBS says."""
    from anny.skinning import warp_skinning

    from vtonpipe.models.bodies.skinning import skin

    g = torch.Generator().manual_seed(3)
    pose, phenotype = 0.3 * torch.randn(3, BONE_COUNT, 3, generator=g), torch.rand(3, 6, generator=g)
    rest = body.model.template_vertices[None].expand(3, -1, -1).contiguous()
    transforms = torch.eye(4).repeat(3, BONE_COUNT, 1, 1)
    transforms[:, :, :3, :] += 0.1 * torch.randn(3, BONE_COUNT, 3, 4, generator=g)
    W, I = body.model.vertex_bone_weights[None], body.model.vertex_bone_indices[None]
    with torch.no_grad():
        np.testing.assert_allclose(skin(rest, W, I, transforms).numpy(), warp_skinning.linear_blend_skinning(rest, W, I, transforms).numpy(), atol=1e-6)
        fast = body(pose, phenotype)
    x = pose.clone().requires_grad_()
    slow = body(x, phenotype)  # anny's own skinning: differentiable
    slow.sum().backward()
    assert x.grad.abs().sum() > 0
    np.testing.assert_allclose(fast.numpy(), slow.detach().numpy(), atol=1e-5)
    # one vertex 0.25 / 0.75 on a translation by +1 in x and the identity, one body: x moves by 0.25
    vertex = torch.tensor([[[1.0, 2.0, 3.0]]])
    moves = torch.eye(4).repeat(1, 2, 1, 1)
    moves[0, 0, 0, 3] = 1.0
    out = skin(vertex, torch.tensor([[0.25, 0.75]]), torch.tensor([[0, 1]]), moves)
    np.testing.assert_allclose(out.numpy(), [[[1.25, 2.0, 3.0]]], atol=1e-7)
