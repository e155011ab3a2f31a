"""What a backend needs to run: importable packages and weight files the user brings."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..config import weights_dir
from ..io import sha256_file
from .errors import MissingWeightsError


def check_sha256_prefix(path: Path, prefix: str) -> None:
    """:class:`MissingWeightsError` unless ``path``'s sha256 begins with ``prefix`` (the digits a
    torch.hub-style file name carries)."""
    digest = sha256_file(path)
    if not digest.startswith(prefix):
        raise MissingWeightsError(f"{path} has sha256 {digest}, expected one beginning {prefix}: wrong or corrupt download")


@dataclass(frozen=True)
class WeightFile:
    """A model file the user brings. It is looked up at ``<weights_dir>/<relpath>``."""

    relpath: str
    source: str
    sha256: str | None = None
    description: str = ""

    @property
    def path(self) -> Path:
        return weights_dir() / self.relpath

    def problem(self) -> str | None:
        if self.path.exists():
            return None
        checksum = f"sha256 {self.sha256}" if self.sha256 else "no pinned sha256 (vtonpipe records the one it finds)"
        return (
            f"missing weight file {Path(self.relpath).name} ({self.description or 'model weights'}): "
            f"put it at {self.path} (set VTONPIPE_WEIGHTS to use another folder); "
            f"get it from {self.source}; {checksum}"
        )

    def require(self, *, check_sha256: bool = True) -> Path:
        """The file's path; :class:`MissingWeightsError` if absent or (when pinned) its sha256 differs."""
        problem = self.problem()
        if problem:
            raise MissingWeightsError(problem)
        if check_sha256 and self.sha256:
            got = sha256_file(self.path)
            if got != self.sha256:
                raise MissingWeightsError(f"{self.path} has sha256 {got}, expected {self.sha256}: wrong or corrupt download")
        return self.path


@dataclass(frozen=True)
class CheckpointFile(WeightFile):
    """A weight file at a path the backend's params give (a checkpoint vtonpipe trains), not under
    the weights folder: ``relpath`` is that path as given (absolute, or relative to the working
    directory), ``source`` says what writes it. Recorded in the provenance like any weight file
    (by that path, with its sha256)."""

    @property
    def path(self) -> Path:
        return Path(self.relpath).expanduser()

    def problem(self) -> str | None:
        if self.path.is_file():
            return None
        return f"missing checkpoint {self.path} ({self.description or 'trained weights'}): {self.source}"


@dataclass(frozen=True)
class Requirements:
    """What a backend needs: importable modules and weight files."""

    packages: tuple[str, ...] = ()
    weights: tuple[WeightFile, ...] = ()

    def package_problems(self) -> list[str]:
        return [f"missing Python package {p!r} (pip install {p})" for p in self.packages if importlib.util.find_spec(p) is None]
