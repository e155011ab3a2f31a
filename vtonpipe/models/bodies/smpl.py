"""SMPL (Loper et al. 2015) read safely from the user's model file, as a batched differentiable function.

**Model files.** The official ``.pkl`` files (https://smpl.is.tue.mpg.de, registration required)
are Python 2 pickles holding chumpy arrays and a scipy sparse ``J_regressor``. They are read by
:func:`load_smpl_data`, a restricted unpickler that rebuilds only numpy arrays, scipy CSC/CSR
matrices, plain containers and chumpy ``Ch`` arrays (turned into their numpy value), and refuses
any other global: chumpy is never imported and no code in the file runs. A ``.npz`` with the same
keys (``np.load(..., allow_pickle=False)``, a dense ``J_regressor``) is read as well;
:func:`save_npz` writes one from a ``.pkl``. Keys and shapes (checked): ``v_template`` (6890, 3),
``shapedirs`` (6890, 3, >= 10), ``posedirs`` (6890, 3, 207), ``J_regressor`` (24, 6890),
``weights`` (6890, 24), ``kintree_table`` (2, 24) (row 0: parents), ``f`` (13776, 3).

vtonpipe computes SMPL itself rather than through smplx: smplx unpickles model files with plain
``pickle.load`` (arbitrary code; chumpy needed), and the fitter needs a joints-only forward (24
joints by forward kinematics plus five skinned face vertices) that smplx does not offer. The
forward is smplx's ``lbs`` (shape blend shapes, joints regressed from the shaped rest mesh, pose
blend shapes on ``(R_j - I)`` of joints 1..23 flattened row-major, linear blend skinning);
tests/test_smpl_body.py checks it against ``smplx.SMPL`` on a generated model file.

**Body frame** (every output here): SMPL's own axes, metres, ``+Y`` up, the person facing ``+Z``,
``+X`` their left, SMPL's origin (not the pelvis joint). ``pose`` is the 23 body joints'
axis-angle (SMPL joints 1..23, radians) with the root unrotated; a ``body`` row maps this frame
to the camera by ``x -> R(rotation) x + translation`` (about the origin, whereas smplx's
``global_orient`` turns about the pelvis joint ``J_0``: :meth:`SMPLBody.rigid_from_global_orient`).

**OpenPose COCO-18 joints** (:meth:`SMPLBody.openpose18`): nose, eyes and ears are the SMPL
vertices 332, 6260, 2800, 4071, 583 (smplx ``vertex_ids['smplh']``), the others the posed SMPL
joints neck 12, shoulders 17/16, elbows 19/18, wrists 21/20, hips 2/1, knees 5/4, ankles 8/7
(smplify-x ``smpl_to_openpose('smpl', openpose_format='coco19')`` without its mid-hip).
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import torch

from ...core.weights import WeightFile
from .anny import rotvec_to_rotmat

SMPL_SOURCE = (
    "https://smpl.is.tue.mpg.de (registration required): SMPL 1.1's basicmodel_{neutral,m,f}_lbs_10_207_0_v1.1.0.pkl "
    "renamed to SMPL_{NEUTRAL,MALE,FEMALE}.pkl (smplx's naming)"
)
#: the SMPL model file of each gender, which users bring
SMPL_MODEL_FILES = {
    gender: WeightFile(f"smpl/SMPL_{gender.upper()}.pkl", SMPL_SOURCE, None, f"SMPL {gender} body model")
    for gender in ("neutral", "male", "female")
}
#: body row ``model`` of each SMPL gender, and back
SMPL_MODEL_NAMES = {"neutral": "smpl", "male": "smpl-male", "female": "smpl-female"}
SMPL_GENDERS = {name: gender for gender, name in SMPL_MODEL_NAMES.items()}

NUM_VERTICES = 6890
NUM_JOINTS = 24
NUM_FACES = 13776
NUM_POSE_BASIS = 9 * (NUM_JOINTS - 1)
JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hand", "right_hand",
)  # fmt: skip
#: OpenPose COCO-18 (docs/CONVENTIONS.md order) as ("joint", SMPL joint) or ("vertex", SMPL vertex)
OPENPOSE18_SOURCES = (
    ("vertex", 332), ("joint", 12), ("joint", 17), ("joint", 19), ("joint", 21), ("joint", 16),
    ("joint", 18), ("joint", 20), ("joint", 2), ("joint", 5), ("joint", 8), ("joint", 1), ("joint", 4),
    ("joint", 7), ("vertex", 6260), ("vertex", 2800), ("vertex", 4071), ("vertex", 583),
)  # fmt: skip
SHAPES = {
    "v_template": (NUM_VERTICES, 3),
    "shapedirs": (NUM_VERTICES, 3, None),
    "posedirs": (NUM_VERTICES, 3, NUM_POSE_BASIS),
    "J_regressor": (NUM_JOINTS, NUM_VERTICES),
    "weights": (NUM_VERTICES, NUM_JOINTS),
    "kintree_table": (2, NUM_JOINTS),
    "f": (NUM_FACES, 3),
}


class SMPLModelError(ValueError):
    """An SMPL model file that cannot be read safely or does not hold an SMPL model."""


# -- safe loading ----------------------------------------------------------------------------------
class _ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle global outside the SMPL allow-list."""


class _ChumpyArray:
    """Stand-in for ``chumpy.ch.Ch`` while unpickling: keeps the pickled state (its value is ``x``)."""

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _SparseMatrix:
    """Stand-in for a pickled scipy CSC/CSR matrix: keeps its state, rebuilt by :func:`_plain`."""

    format = ""

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _CSC(_SparseMatrix):
    format = "csc"


class _CSR(_SparseMatrix):
    format = "csr"


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    """``copyreg._reconstructor`` restricted to the stand-ins (protocol 0/1 pickles of new-style objects)."""
    if cls not in (_ChumpyArray, _CSC, _CSR) or base is not object or state is not None:
        raise _ForbiddenGlobal(f"refusing to reconstruct {cls!r} from {base!r}")
    return object.__new__(cls)


def _latin1_bytes(text: str, encoding: str) -> bytes:
    """``_codecs.encode`` as Python 3 protocol-2 pickles use it for bytes (latin-1 text only)."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise _ForbiddenGlobal(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


_NDARRAY_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_NUMPY_SCALAR = np.float64(0).__reduce__()[0]
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **{(m, "_reconstruct"): _NDARRAY_RECONSTRUCT for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "scalar"): _NUMPY_SCALAR for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("chumpy.ch", "Ch"): _ChumpyArray,
    **{(m, "csc_matrix"): _CSC for m in ("scipy.sparse.csc", "scipy.sparse._csc")},
    **{(m, "csr_matrix"): _CSR for m in ("scipy.sparse.csr", "scipy.sparse._csr")},
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("_codecs", "encode"): _latin1_bytes,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
    ("__builtin__", "set"): set,
    ("builtins", "set"): set,
}


class _SMPLUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(
                f"refusing to load {module}.{name}: an SMPL model pickle holds only numpy arrays, chumpy arrays and scipy sparse matrices"
            ) from None


def _plain(value: Any, key: str) -> Any:
    """A stand-in turned into numpy / scipy; anything else unchanged."""
    if isinstance(value, _ChumpyArray):
        x = value.state.get("x") if isinstance(value.state, dict) else None
        if not isinstance(x, np.ndarray):
            raise SMPLModelError(f"{key}: a chumpy object without an array value 'x' (a chumpy expression?)")
        return x
    if isinstance(value, _SparseMatrix):
        state = value.state if isinstance(value.state, dict) else {}
        shape = state.get("_shape", state.get("shape"))
        parts = [state.get(k) for k in ("data", "indices", "indptr")]
        if shape is None or not all(isinstance(p, np.ndarray) for p in parts):
            raise SMPLModelError(f"{key}: a sparse matrix without data/indices/indptr/shape")
        cls = scipy.sparse.csc_matrix if value.format == "csc" else scipy.sparse.csr_matrix
        return cls(tuple(parts), shape=tuple(shape))
    return value


def _read_pickle(path: Path) -> dict[str, Any]:
    try:
        data = _SMPLUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except _ForbiddenGlobal as e:
        raise SMPLModelError(f"{path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - truncated or foreign files fail in many ways
        raise SMPLModelError(f"{path}: not a readable SMPL pickle ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict):
        raise SMPLModelError(f"{path}: expected a dict of SMPL arrays, got {type(data).__name__}")
    return {str(k): _plain(v, str(k)) for k, v in data.items()}


@dataclass(frozen=True)
class SMPLData:
    """SMPL model arrays (float64 unless said): ``v_template`` (6890, 3), ``shapedirs`` (6890, 3, S),
    ``posedirs`` (6890, 3, 207), ``J_regressor`` (24, 6890) dense, ``weights`` (6890, 24),
    ``parents`` (24,) int64 (root -1), ``faces`` (13776, 3) int64."""

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    faces: np.ndarray


def load_smpl_data(path: str | Path) -> SMPLData:
    """Read and check an SMPL model file (``.pkl`` official/SMPLify format, or ``.npz``).

    Raises :class:`SMPLModelError` naming the problem: a pickle global other than numpy/chumpy/
    scipy-sparse ones, a missing key, a wrong shape, a non-numeric or non-finite array, a
    kinematic tree whose parents do not precede their children.
    """
    path = Path(path)
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files}
        except ValueError as e:  # object arrays need pickle: refused
            raise SMPLModelError(f"{path}: {e}") from None
    elif path.suffix == ".pkl":
        raw = _read_pickle(path)
    else:
        raise SMPLModelError(f"{path}: SMPL model files are .pkl or .npz")
    missing = [k for k in SHAPES if k not in raw]
    if missing:
        raise SMPLModelError(f"{path}: not an SMPL model, missing {missing} (has {sorted(raw)})")
    arrays = {}
    for key, shape in SHAPES.items():
        value = raw[key]
        a = value.toarray() if scipy.sparse.issparse(value) else np.asarray(value)
        if a.dtype.kind not in "fiu":
            raise SMPLModelError(f"{path}: {key} has dtype {a.dtype}, expected numbers")
        if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
            want = "(" + ", ".join("S" if s is None else str(s) for s in shape) + ")"
            raise SMPLModelError(f"{path}: {key} has shape {a.shape}, expected {want}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise SMPLModelError(f"{path}: {key} has non-finite values")
        arrays[key] = a
    if arrays["shapedirs"].shape[2] < 10:
        raise SMPLModelError(f"{path}: shapedirs has {arrays['shapedirs'].shape[2]} shape components, expected >= 10")
    parents = arrays["kintree_table"][0].astype(np.int64)
    parents[0] = -1  # the root's entry is 2**32 - 1 in the official files
    if not all(0 <= parents[j] < j for j in range(1, NUM_JOINTS)):
        raise SMPLModelError(f"{path}: kintree_table parents {parents.tolist()} do not precede their joints")
    faces = arrays["f"].astype(np.int64)
    if faces.min() < 0 or faces.max() >= NUM_VERTICES:
        raise SMPLModelError(f"{path}: face indices outside [0, {NUM_VERTICES})")
    f64 = {k: arrays[k].astype(np.float64) for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights")}
    return SMPLData(**f64, parents=parents, faces=faces)


def save_npz(pkl_path: str | Path, npz_path: str | Path) -> Path:
    """Convert an official SMPL ``.pkl`` into an ``.npz`` readable with ``allow_pickle=False``."""
    data = load_smpl_data(pkl_path)
    kintree = np.stack([data.parents, np.arange(NUM_JOINTS)])
    np.savez(
        npz_path, v_template=data.v_template, shapedirs=data.shapedirs, posedirs=data.posedirs,
        J_regressor=data.J_regressor, weights=data.weights, kintree_table=kintree, f=data.faces,
    )  # fmt: skip
    return Path(npz_path)


# -- the model -------------------------------------------------------------------------------------
class SMPLBody:
    """SMPL: ``(pose (B, 23, 3), betas (B, num_betas)) -> vertices (B, 6890, 3)`` in the body frame.

    ``faces`` (13776, 3) int64; ``parents`` (24,) the kinematic tree (root -1). Differentiable
    w.r.t. pose and betas; inputs with batch size 1 broadcast.
    """

    def __init__(self, data: SMPLData, num_betas: int = 10, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        if not 1 <= num_betas <= data.shapedirs.shape[2]:
            raise ValueError(f"num_betas must be in [1, {data.shapedirs.shape[2]}], got {num_betas}")
        self.num_betas = num_betas
        self.device, self.dtype = torch.device(device), dtype
        self.faces = data.faces
        self.parents = tuple(int(p) for p in data.parents)

        def t(a: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(a, dtype=dtype, device=self.device)

        shapedirs = data.shapedirs[:, :, :num_betas]
        self._v_template = t(data.v_template)
        self._shapedirs = t(shapedirs)
        self._posedirs = t(data.posedirs)
        self._weights = t(data.weights)
        # joints are linear in the shaped rest vertices: regress the template and each shape direction once
        self._j_template = t(data.J_regressor @ data.v_template)
        self._j_shapedirs = t(np.einsum("jv,vdk->jdk", data.J_regressor, shapedirs))
        kinds = [kind for kind, _ in OPENPOSE18_SOURCES]
        self._op_joints = torch.tensor([i for kind, i in OPENPOSE18_SOURCES if kind == "joint"], device=self.device)
        self._op_vertices = torch.tensor([i for kind, i in OPENPOSE18_SOURCES if kind == "vertex"], device=self.device)
        # OpenPose order from [joints..., vertices...]
        n_joints = kinds.count("joint")
        joint_pos, vertex_pos = iter(range(n_joints)), iter(range(n_joints, len(kinds)))
        self._op_order = torch.tensor([next(joint_pos) if kind == "joint" else next(vertex_pos) for kind in kinds], device=self.device)

    @classmethod
    def from_file(cls, path: str | Path, num_betas: int = 10, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> SMPLBody:
        return cls(load_smpl_data(path), num_betas, device, dtype)

    def _inputs(self, pose, betas) -> tuple[torch.Tensor, torch.Tensor]:
        pose = torch.as_tensor(pose, dtype=self.dtype, device=self.device)
        betas = torch.as_tensor(betas, dtype=self.dtype, device=self.device)
        pose = pose[None] if pose.ndim == 2 else pose
        betas = betas[None] if betas.ndim == 1 else betas
        if pose.shape[1:] != (NUM_JOINTS - 1, 3) or betas.shape[1:] != (self.num_betas,):
            raise ValueError(f"expected pose (B, 23, 3) and betas (B, {self.num_betas}), got {tuple(pose.shape)} and {tuple(betas.shape)}")
        batch = max(len(pose), len(betas))
        return pose.expand(batch, -1, -1), betas.expand(batch, -1)

    def _kinematics(self, pose: torch.Tensor, betas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Local rotations (B, 24, 3, 3) (root identity), posed joints (B, 24, 3) and skinning
        transforms (B, 24, 3, 4) mapping the posed-blend-shaped rest mesh to the posed one."""
        rest_joints = self._j_template + torch.einsum("jdk,bk->bjd", self._j_shapedirs, betas)
        eye = torch.eye(3, dtype=self.dtype, device=self.device).expand(len(pose), 1, 3, 3)
        local = torch.cat([eye, rotvec_to_rotmat(pose)], 1)
        rotations, positions = [local[:, 0]], [rest_joints[:, 0]]
        for j in range(1, NUM_JOINTS):
            p = self.parents[j]
            rotations.append(rotations[p] @ local[:, j])
            positions.append(positions[p] + (rotations[p] @ (rest_joints[:, j] - rest_joints[:, p])[..., None])[..., 0])
        world = torch.stack(rotations, 1)
        joints = torch.stack(positions, 1)
        offset = joints - (world @ rest_joints[..., None])[..., 0]
        return local, joints, torch.cat([world, offset[..., None]], -1)

    def _skin(self, index: torch.Tensor | slice, betas: torch.Tensor, local: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
        """Skinned vertices ``index`` (B, n, 3): shape and pose blend shapes, then LBS."""
        shaped = self._v_template[index] + torch.einsum("ndk,bk->bnd", self._shapedirs[index], betas)
        eye = torch.eye(3, dtype=self.dtype, device=self.device)
        feature = (local[:, 1:] - eye).flatten(1)  # (B, 207), row-major (R_j - I) of joints 1..23
        posed = shaped + torch.einsum("ndp,bp->bnd", self._posedirs[index], feature)
        blend = torch.einsum("nj,bjrc->bnrc", self._weights[index], transforms)
        return (blend[..., :3] @ posed[..., None])[..., 0] + blend[..., 3]

    def forward_with_joints(self, pose, betas) -> tuple[torch.Tensor, torch.Tensor]:
        """Vertices (B, 6890, 3) and posed joints (B, 24, 3) in the body frame."""
        pose, betas = self._inputs(pose, betas)
        local, joints, transforms = self._kinematics(pose, betas)
        return self._skin(slice(None), betas, local, transforms), joints

    def forward(self, pose, betas) -> torch.Tensor:
        """Vertices (B, 6890, 3); ``pose`` (B, 23, 3) or (23, 3) axis-angle, ``betas`` (B, S) or (S,)."""
        return self.forward_with_joints(pose, betas)[0]

    __call__ = forward

    def openpose18(self, pose, betas) -> torch.Tensor:
        """OpenPose COCO-18 keypoints (B, 18, 3), body frame: 13 posed joints and 5 skinned face
        vertices only (the full mesh is not computed)."""
        pose, betas = self._inputs(pose, betas)
        local, joints, transforms = self._kinematics(pose, betas)
        face = self._skin(self._op_vertices, betas, local, transforms)
        return torch.cat([joints[:, self._op_joints], face], 1)[:, self._op_order]

    def root_joint(self, betas) -> torch.Tensor:
        """The pelvis joint ``J_0`` (B, 3) of the shaped rest body (SMPL's ``global_orient`` pivot)."""
        betas = torch.as_tensor(betas, dtype=self.dtype, device=self.device)
        betas = betas[None] if betas.ndim == 1 else betas
        return self._j_template[0] + torch.einsum("dk,bk->bd", self._j_shapedirs[0], betas)

    def rigid_from_global_orient(self, global_orient, transl, betas) -> tuple[torch.Tensor, torch.Tensor]:
        """smplx's ``global_orient`` (B, 3) and ``transl`` (B, 3) as the body -> camera rotation
        (axis-angle, the same) and translation about the origin: ``t = J_0 - R J_0 + transl``."""
        global_orient = torch.as_tensor(global_orient, dtype=self.dtype, device=self.device).reshape(-1, 3)
        transl = torch.as_tensor(transl, dtype=self.dtype, device=self.device).reshape(-1, 3)
        root = self.root_joint(betas)
        rotated = (rotvec_to_rotmat(global_orient) @ root[..., None])[..., 0]
        return global_orient, root - rotated + transl
