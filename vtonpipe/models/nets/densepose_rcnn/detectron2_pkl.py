"""Safe reading of detectron2 ``.pkl`` checkpoints.

detectron2's model-zoo files are Python pickles of
``{"model": {name: numpy array}, "__author__": str, "matching_heuristics": bool, ...}``
(``DetectionCheckpointer._load_file`` reads them with ``pickle.load(f, encoding="latin1")``).
A pickle can name any importable callable and run it while loading, so this module unpickles
with a :class:`RestrictedUnpickler` that resolves only the handful of globals needed to rebuild
numpy arrays and plain containers, and refuses everything else before it is imported.
"""

from __future__ import annotations

import _codecs
import collections
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.core.multiarray
import numpy.core.numeric


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle that asks for a global outside the allowed set (possibly malicious)."""


class CheckpointFormatError(ValueError):
    """A pickle that loads safely but is not a detectron2 checkpoint of numeric arrays."""


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """Array-rebuilding globals under both the numpy 1.x and the numpy 2.x module names."""
    out: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for core in ("numpy.core", "numpy._core"):
        out[(f"{core}.multiarray", "_reconstruct")] = numpy.core.multiarray._reconstruct
        out[(f"{core}.multiarray", "scalar")] = numpy.core.multiarray.scalar
        out[(f"{core}.numeric", "_frombuffer")] = numpy.core.numeric._frombuffer  # protocol 5
    return out


#: Every global a detectron2 checkpoint needs: numpy array/dtype/scalar reconstruction,
#: ``OrderedDict`` (state dicts) and ``_codecs.encode`` (how protocol-2 pickles store bytes).
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **_numpy_globals(),
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _codecs.encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` resolving only :data:`ALLOWED_GLOBALS`; any other global raises."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load global {module}.{name}: a detectron2 checkpoint holds only numpy "
                f"arrays and plain containers (allowed: {sorted(f'{m}.{n}' for m, n in ALLOWED_GLOBALS)})"
            ) from None


def restricted_load(f: BinaryIO) -> Any:
    """Unpickle ``f`` with :class:`RestrictedUnpickler` (latin1 for Python 2 byte strings)."""
    return RestrictedUnpickler(f, encoding="latin1").load()


def load_detectron2_pkl(path: str | Path) -> dict[str, np.ndarray]:
    """The ``"model"`` state dict of a detectron2 ``.pkl`` checkpoint: ``{name: numeric ndarray}``.

    Raises :class:`UnsafePickleError` for a pickle that names a disallowed global and
    :class:`CheckpointFormatError` for anything that is not ``{"model": {str: numeric array}}``.
    """
    path = Path(path)
    with path.open("rb") as f:
        try:
            data = restricted_load(f)
        except UnsafePickleError as e:
            raise UnsafePickleError(f"{path}: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        keys = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise CheckpointFormatError(
            f"{path}: not a detectron2 checkpoint (expected a dict with a 'model' state dict, got {keys}); "
            "Caffe2/Detectron1 blob files are not supported"
        )
    state: dict[str, np.ndarray] = {}
    for name, value in data["model"].items():
        if not isinstance(name, str) or not isinstance(value, np.ndarray) or value.dtype.kind not in "fiub":
            what = f"{type(value).__name__} {getattr(value, 'dtype', '')}".strip()
            raise CheckpointFormatError(f"{path}: entry {name!r} is {what}, expected a numeric numpy array")
        state[name] = value
    return state
