"""SMPL: safe loading of model files, the forward against smplx, fitting SMPL to keypoints, the
``smpl-fit`` backend, and FrankMocap's output converted to a ``body`` row."""

from __future__ import annotations

import pickle
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch
from builders import simple_build, write_keypoints
from scipy.spatial.transform import Rotation

from vtonpipe.annotators import get_backend
from vtonpipe.annotators.body_fit import frankmocap_to_body
from vtonpipe.core import BackendUnavailableError, MissingWeightsError
from vtonpipe.models.bodies.anny import rotvec_to_rotmat
from vtonpipe.models.bodies.fitting import (
    SMPLFitModel,
    camera_of,
    fit_bodies,
)
from vtonpipe.models.bodies.fitting.problems import synthetic_bodies
from vtonpipe.models.bodies.posed import posed_mesh
from vtonpipe.models.bodies.smpl import (
    NUM_FACES,
    NUM_VERTICES,
    SMPLBody,
    SMPLModelError,
    load_smpl_data,
    save_npz,
)
from vtonpipe.pipeline.config import StageConfig
from vtonpipe.pipeline.context import AnnotationContext
from vtonpipe.pipeline.runner import run_stage
from vtonpipe.pipeline.store import ShardReader, read_manifest

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
# rest joints of a T-posed person, SMPL axes: +Y up, facing +Z, +X their left (metres)
_HALF = {
    0: (0.0, 0.0, 0.0), 1: (0.07, -0.09, 0.0), 3: (0.0, 0.11, -0.01), 4: (0.10, -0.47, 0.0), 6: (0.0, 0.24, 0.0),
    7: (0.09, -0.87, -0.04), 9: (0.0, 0.30, 0.02), 10: (0.11, -0.93, 0.08), 12: (0.0, 0.52, -0.01), 13: (0.08, 0.43, 0.0),
    15: (0.0, 0.60, 0.03), 16: (0.18, 0.45, -0.01), 18: (0.44, 0.44, -0.03), 20: (0.70, 0.44, -0.02), 22: (0.78, 0.43, -0.03),
}  # fmt: skip
REST_JOINTS = np.array([_HALF[j] if j in _HALF else (-_HALF[j - 1][0], *_HALF[j - 1][1:]) for j in range(24)])
FACE_VERTICES = {332: (0.0, 0.66, 0.12), 6260: (-0.035, 0.70, 0.09), 2800: (0.035, 0.70, 0.09), 4071: (-0.075, 0.67, 0.0), 583: (0.075, 0.67, 0.0)}
LEAF_TIPS = {10: (0.0, 0.0, 0.1), 11: (0.0, 0.0, 0.1), 15: (0.0, 0.2, 0.0), 22: (0.08, 0.0, 0.0), 23: (-0.08, 0.0, 0.0)}


def fake_smpl_arrays(seed: int = 0, num_betas: int = 10) -> dict[str, np.ndarray]:
    """An SMPL-format model (official keys and shapes) of a capsule figure with a human skeleton.

    Each joint's J_regressor row averages a ring of 8 vertices centred on the joint, so the rest
    joints are exactly ``REST_JOINTS``; nose, eyes and ears sit at their SMPL vertex ids; shape
    directions are linear deformations of the template, pose blend shapes small random offsets.
    """
    rng = np.random.default_rng(seed)
    children = {j: [c for c in range(24) if PARENTS[c] == j] for j in range(24)}
    free = iter([i for i in range(NUM_VERTICES) if i not in FACE_VERTICES])
    v = np.zeros((NUM_VERTICES, 3))
    weights = np.zeros((NUM_VERTICES, 24))
    regressor = np.zeros((24, NUM_VERTICES))
    for j in range(24):  # rings around the joints
        angles = np.arange(8) * np.pi / 4
        ring = REST_JOINTS[j] + 0.03 * np.stack([np.cos(angles), np.sin(angles), np.zeros(8)], 1)
        for p in ring:
            i = next(free)
            v[i], weights[i, j], regressor[j, i] = p, 1.0, 1 / 8
    for i, p in FACE_VERTICES.items():
        v[i], weights[i, 15] = p, 1.0
    rest = list(free)
    per_bone = np.array_split(rest, 24)
    for j, ids in enumerate(per_bone):  # capsules along each bone, skinned to it and its child
        end = REST_JOINTS[children[j][0]] if children[j] else REST_JOINTS[j] + LEAF_TIPS[j]
        u = rng.uniform(0, 1, len(ids))
        direction = rng.normal(size=(len(ids), 3))
        v[ids] = REST_JOINTS[j] + u[:, None] * (end - REST_JOINTS[j]) + 0.05 * direction / np.linalg.norm(direction, axis=1, keepdims=True)
        child = children[j][0] if children[j] else j
        weights[ids, j] += 1 - 0.3 * u**2
        weights[ids, child] += 0.3 * u**2
    shapedirs = np.stack([0.03 * v @ rng.normal(size=(3, 3)) for _ in range(num_betas)], -1)
    return {
        "v_template": v,
        "shapedirs": shapedirs,
        "posedirs": 0.002 * rng.normal(size=(NUM_VERTICES, 3, 207)),
        "J_regressor": scipy.sparse.csc_matrix(regressor),
        "weights": weights,
        "kintree_table": np.array([[2**32 - 1, *PARENTS[1:]], list(range(24))], np.int64),
        "f": rng.integers(0, NUM_VERTICES, (NUM_FACES, 3)).astype(np.uint32),
    }


class _Ch:
    """Pickles like ``chumpy.ch.Ch`` (module ``chumpy.ch``): its state holds the value as ``x``."""

    def __init__(self, x: np.ndarray):
        self.x = x
        self._dirty_vars: set = set()


def write_official_pkl(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` as the official SMPL pickles are: protocol 2, chumpy arrays, scipy sparse."""
    chumpy = types.ModuleType("chumpy")
    chumpy_ch = types.ModuleType("chumpy.ch")
    _Ch.__module__, _Ch.__qualname__ = "chumpy.ch", "Ch"
    chumpy_ch.Ch = _Ch
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules.update({"chumpy": chumpy, "chumpy.ch": chumpy_ch})
    try:
        data = {k: (_Ch(a) if k in ("v_template", "shapedirs", "posedirs") else a) for k, a in arrays.items()}
        data.update(bs_type="lrotmin", bs_style="lbs", J=np.asarray(arrays["J_regressor"] @ arrays["v_template"]))
        path.write_bytes(pickle.dumps(data, protocol=2))
    finally:
        for k, m in saved.items():
            if m is None:
                sys.modules.pop(k)
            else:
                sys.modules[k] = m
    return path


@pytest.fixture(scope="module")
def smpl_file(tmp_path_factory) -> Path:
    return write_official_pkl(tmp_path_factory.mktemp("smpl") / "SMPL_NEUTRAL.pkl", fake_smpl_arrays())


@pytest.fixture(scope="module")
def smpl(smpl_file) -> SMPLBody:
    return SMPLBody.from_file(smpl_file)


def test_official_pickle_loads_without_chumpy(smpl_file, tmp_path):
    assert "chumpy" not in sys.modules
    data = load_smpl_data(smpl_file)
    want = fake_smpl_arrays()
    np.testing.assert_array_equal(data.v_template, want["v_template"])
    np.testing.assert_array_equal(data.J_regressor, want["J_regressor"].toarray())
    assert data.parents.tolist() == PARENTS and data.faces.dtype == np.int64 and data.shapedirs.shape == (NUM_VERTICES, 3, 10)
    npz = save_npz(smpl_file, tmp_path / "SMPL_NEUTRAL.npz")
    again = load_smpl_data(npz)
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "parents", "faces"):
        np.testing.assert_array_equal(getattr(again, key), getattr(data, key), err_msg=key)
    assert "chumpy" not in sys.modules


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_bad_model_files_are_rejected_clearly(tmp_path):
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"v_template": _Exploit()}, protocol=2))
    with pytest.raises(SMPLModelError, match=r"refusing to load (posix|os)\.system"):
        load_smpl_data(evil)
    arrays = fake_smpl_arrays()
    missing = tmp_path / "missing.pkl"
    missing.write_bytes(pickle.dumps({k: a for k, a in arrays.items() if k != "posedirs"}, protocol=2))
    with pytest.raises(SMPLModelError, match=r"missing \['posedirs'\]"):
        load_smpl_data(missing)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, **{**{k: np.asarray(a.toarray() if scipy.sparse.issparse(a) else a) for k, a in arrays.items()}, "weights": np.ones((NUM_VERTICES, 23))})
    with pytest.raises(SMPLModelError, match=r"weights has shape \(6890, 23\), expected \(6890, 24\)"):
        load_smpl_data(wrong)
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(SMPLModelError, match="not a readable SMPL pickle"):
        load_smpl_data(tmp_path / "junk.pkl")
    with pytest.raises(SMPLModelError, match=".pkl or .npz"):
        load_smpl_data(tmp_path / "model.json")


def test_forward_matches_smplx(smpl_file, smpl):
    import smplx

    data = load_smpl_data(smpl_file)
    struct = types.SimpleNamespace(
        v_template=data.v_template, shapedirs=data.shapedirs, posedirs=data.posedirs, J_regressor=data.J_regressor,
        weights=data.weights, kintree_table=np.stack([data.parents, np.arange(24)]), f=data.faces,
    )  # fmt: skip
    reference = smplx.SMPL("unused", data_struct=struct, num_betas=10, batch_size=3)
    g = torch.Generator().manual_seed(1)
    pose, betas = 0.4 * torch.randn(3, 23, 3, generator=g), torch.randn(3, 10, generator=g)
    orient, transl = torch.randn(3, 3, generator=g), torch.randn(3, 3, generator=g)
    with torch.no_grad():
        out = reference(betas=betas, body_pose=pose.reshape(3, 69), global_orient=orient, transl=transl)
        vertices, joints = smpl.forward_with_joints(pose, betas)
        rotation, translation = smpl.rigid_from_global_orient(orient, transl, betas)
        R = rotvec_to_rotmat(rotation)
        ours = vertices @ R.transpose(1, 2) + translation[:, None]
        np.testing.assert_allclose(ours.numpy(), out.vertices.numpy(), atol=2e-5)
        np.testing.assert_allclose((joints @ R.transpose(1, 2) + translation[:, None]).numpy(), out.joints[:, :24].numpy(), atol=2e-5)
        # COCO-18 = smplify-x's SMPL coco19 mapping without its mid-hip (index 8)
        coco19 = [24, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28]
        op18 = smpl.openpose18(pose, betas) @ R.transpose(1, 2) + translation[:, None]
        np.testing.assert_allclose(op18.numpy(), out.joints[:, [i for k, i in enumerate(coco19) if k != 8]].numpy(), atol=2e-5)


# -- fitting SMPL, the smpl-fit and frankmocap backends ---------------------------------------------
W, H = 192, 256


@pytest.fixture(scope="module")
def fit_model(smpl) -> SMPLFitModel:
    return SMPLFitModel(smpl)


def test_fit_recovers_smpl_bodies(fit_model):
    truth = synthetic_bodies(fit_model, 4, seed=11, size=(W, H), noise_px=0.5)
    fit = fit_bodies(fit_model, truth.keypoints, truth.sizes)
    assert fit.failure == [None] * 4 and fit.model == "smpl"
    assert fit.pose.shape == (4, 23, 3) and fit.shape.shape == (4, 10)
    err = np.linalg.norm(fit.joints_2d[:, :, :2] - truth.clean, axis=-1)
    assert err.mean() < 1.5 and err.max() < 6.0, (err.mean(), err.max())
    front = Rotation.from_rotvec(fit.rotation).apply([0.0, 0.0, 1.0])  # SMPL faces +Z
    assert (front[:, 2] < -0.5).all()  # towards the camera


def test_an_inward_arm_twist_turns_a_forward_bent_forearm_down(fit_model, smpl):
    """SMPL's T-pose arms along +-x: an elbow bent 1.3 rad by its hinge puts the forearm in front
    (+z), and an inward twist of 1 rad about ``arm_axes`` turns the wrist about the shoulder by
    1 rad from front towards down (-y, SMPL's up is +y), on either arm."""
    betas = torch.zeros(1, fit_model.num_shape)
    for (arm, axis), hinge, shoulder, elbow, wrist in zip(fit_model.arm_axes, fit_model.hinges[:2], (16, 17), (6, 3), (7, 4)):  # SMPL l / r shoulder; COCO-18 l / r elbow, wrist
        bent = torch.zeros(1, fit_model.num_bones, 3)
        bent[0, hinge.bone] = 1.3 * torch.tensor(hinge.axis)
        twisted = bent.clone()
        twisted[0, arm] = torch.tensor(axis)
        a, b = smpl.openpose18(bent, betas)[0].numpy(), smpl.openpose18(twisted, betas)[0].numpy()
        pivot = smpl.forward_with_joints(bent, betas)[1][0, shoulder].numpy()
        assert a[wrist, 2] - a[elbow, 2] > 0.9 * np.linalg.norm(a[wrist] - a[elbow])  # bent forwards
        c, s = np.cos(1.0), np.sin(1.0)
        y, z = a[wrist, 1:] - pivot[1:]
        np.testing.assert_allclose(b[wrist, 1:] - pivot[1:], (c * y - s * z, s * y + c * z), atol=1e-4)  # R_x(+1): front (+z) goes down
        assert b[wrist, 1] < a[wrist, 1] - 0.5 * s * z


@pytest.fixture
def weights(tmp_path, monkeypatch, smpl_file) -> Path:
    """A weights folder holding the generated model as smpl/SMPL_NEUTRAL.pkl."""
    (tmp_path / "weights" / "smpl").mkdir(parents=True)
    shutil.copy(smpl_file, tmp_path / "weights" / "smpl" / "SMPL_NEUTRAL.pkl")
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(tmp_path / "weights"))
    return tmp_path / "weights"


def test_smpl_fit_backend_rows_pose_through_posed_mesh(tmp_path, weights, smpl, fit_model):
    build = simple_build(tmp_path, n=1)
    ids = sorted(i for i, r in AnnotationContext(build).images.items() if r["kind"] == "person")
    truth = synthetic_bodies(fit_model, 2, seed=12, size=(W, H), noise_px=0.5)
    write_keypoints(tmp_path, build, dict(zip(ids, truth.keypoints)))
    result = run_stage(build, StageConfig("body", "smpl-fit"), show_progress=False)
    assert (result.computed, result.failed) == (2, 0)
    provenance = read_manifest(build / "annotations" / "body")["provenance"][0]
    assert list(provenance["weights_sha256"]) == ["smpl/SMPL_NEUTRAL.pkl"]
    rows = ShardReader(build / "annotations" / "body")
    for b, image_id in enumerate(ids):
        row = rows.get(image_id)
        assert row["model"] == "smpl" and row["pose"].shape == (23, 3) and row["shape"].shape == (10,)
        assert np.abs(row["joints_2d"][:, :2] - truth.clean[b]).mean() < 1.5
        mesh = posed_mesh(rows.record(image_id), W, H)
        assert mesh.model == "smpl" and mesh.vertices.shape == (NUM_VERTICES, 3) and mesh.faces.shape == (NUM_FACES, 3)
        with torch.no_grad():
            body_joints = smpl.openpose18(row["pose"], row["shape"])[0].double().numpy()
        joints = Rotation.from_rotvec(row["rotation"]).apply(body_joints) + row["translation"]
        np.testing.assert_allclose(mesh.camera.project(joints), row["joints_2d"][:, :2], atol=0.02)
        face = mesh.project()[[332, 6260, 2800, 4071, 583]]  # nose, eyes, ears are these vertices
        np.testing.assert_allclose(face, row["joints_2d"][[0, 14, 15, 16, 17], :2], atol=0.02)


def test_smpl_fit_needs_the_users_model_file(tmp_path, monkeypatch, weights):
    backend = get_backend("body", "smpl-fit")
    backend({"gender": "neutral"}).ensure_setup()
    male = backend({"gender": "male"})
    assert [w.relpath for w in male.weight_files()] == ["smpl/SMPL_MALE.pkl"]
    with pytest.raises(MissingWeightsError, match=r"SMPL_MALE\.pkl .*smpl\.is\.tue\.mpg\.de"):
        male.ensure_setup()
    with pytest.raises(ValueError, match="gender must be one of"):
        backend({"gender": "kid"})
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(tmp_path / "empty"))
    with pytest.raises(MissingWeightsError, match=r"missing weight file SMPL_NEUTRAL\.pkl .*put it at .*empty/smpl/SMPL_NEUTRAL\.pkl"):
        backend().check_available()


def frankmocap_image_points(points_smplx: np.ndarray, output: dict) -> np.ndarray:
    """FrankMocap's ``convert_smpl_to_bbox`` then ``convert_bbox_to_oriIm`` (x, y only)."""
    s, tx, ty = output["pred_camera"]
    bbox = 112.0 * (s * points_smplx[:, :2] + [tx, ty])
    return bbox / output["bbox_scale_ratio"] + output["bbox_top_left"] + 112.0 / output["bbox_scale_ratio"]


def test_frankmocap_output_becomes_a_perspective_body(smpl):
    rng = np.random.default_rng(3)
    pose = 0.3 * rng.normal(size=(23, 3))
    betas = rng.normal(size=10)
    orient = (Rotation.from_rotvec([np.pi, 0.0, 0.0]) * Rotation.from_rotvec([0.0, 0.4, 0.0])).as_rotvec()  # upright, turned
    rotmat = Rotation.from_rotvec(np.concatenate([orient[None], pose])).as_matrix()[None]
    output = {  # BodyMocap.regress's key names and shapes
        "pred_rotmat": rotmat.astype(np.float32), "pred_betas": betas[None].astype(np.float32),
        "pred_camera": np.array([0.9, 0.05, 0.1], np.float32), "bbox_top_left": np.array([30.5, 12.0]),
        "bbox_scale_ratio": 224 / 260,
    }  # fmt: skip
    with torch.no_grad():
        vertices = smpl(pose, betas)[0].double().numpy()
        R, t = smpl.rigid_from_global_orient(orient, np.zeros(3), betas)
    smplx_frame = Rotation.from_rotvec(R[0].numpy()).apply(vertices) + t[0].numpy()  # what FrankMocap's smplx outputs
    expected = frankmocap_image_points(smplx_frame, output)
    size = np.ptp(expected, axis=0).max()
    # the same image up to perspective: exact as the field of view narrows (weak perspective), close at 20 degrees
    for fov, mean_err, max_err in ((0.5, 1e-3, 3e-3), (20.0, 0.03, 0.1)):
        record = frankmocap_to_body(output, smpl, W, H, fov_y_deg=fov)
        assert record["model"] == "smpl"
        np.testing.assert_allclose(record["pose"], pose, atol=1e-5)
        np.testing.assert_allclose(record["shape"], betas, atol=1e-6)
        np.testing.assert_allclose(record["rotation"], orient, atol=1e-5)
        np.testing.assert_array_equal(record["camera"], camera_of(W, H, fov))
        camera_frame = Rotation.from_rotvec(record["rotation"]).apply(vertices) + record["translation"]
        fx, fy, cx, cy = record["camera"]
        ours = np.stack([fx * camera_frame[:, 0] / camera_frame[:, 2] + cx, fy * camera_frame[:, 1] / camera_frame[:, 2] + cy], 1)
        err = np.linalg.norm(ours - expected, axis=1) / size
        assert err.mean() < mean_err and err.max() < max_err, (fov, err.mean(), err.max())


def test_frankmocap_backend_is_unavailable_without_frankmocap(tmp_path):
    with pytest.raises(BackendUnavailableError, match="missing Python package 'bodymocap'") as e:
        get_backend("body", "frankmocap")().check_available()
    assert not isinstance(e.value, MissingWeightsError)
    build = simple_build(tmp_path, n=1)
    with pytest.raises(BackendUnavailableError, match="bodymocap"):
        run_stage(build, StageConfig("body", "frankmocap"), show_progress=False)
