"""The ``imported`` backend of every annotator a format imports: rows read from a folder in one
of the formats of this package (a team's annotations, or a vtonpipe export) instead of computed.

Params: ``format`` (a name in :data:`vtonpipe.exporters.FORMATS`), ``source`` (the folder) and
``settings`` (the format's). An item's input sha256 is that of its image and of every source
file its row is read from, so an edited file is imported again and an unchanged folder never
is; the stage's manifest provenance lists the source folder and each file's sha256. An image
whose file is not in the folder fails with ``not_in_source``. ``vtonpipe import`` runs these
stages; with the same params in ``params.yaml`` (``annotators.<name>.backend: imported``)
``vtonpipe annotate`` finds the rows done and recomputes nothing.

The backends register themselves when this module is imported (the CLI imports it before it
resolves a stage; worker processes import it as the backend's module).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..annotators import get_annotator, register_backend
from ..core import AnnotationFailure, Backend, Context, ImageItem
from ..io import sha256_file
from . import FORMATS, get_format
from .base import Format, export_state


class ImportedBackend(Backend):
    """Rows of one annotator read from a folder in a registered format."""

    name = "imported"
    version = "1"
    default_params = {"format": "", "source": "", "settings": {}}
    doc = "Read from a folder in an export/import format (vtonpipe import): no computation."

    def __init__(self, params: Any = None, *, device: str = "cpu"):
        super().__init__(params, device=device)
        self._fmt: Format | None = None
        self._state: dict[str, Any] | None = None
        self._file_sha: dict[str, str] = {}

    @property
    def source(self) -> Path:
        return Path(self.params["source"]).expanduser()

    def problems(self) -> list[str]:
        out = []
        if self.params["format"] not in FORMATS:
            out.append(f"params.format {self.params['format']!r} is not one of {', '.join(FORMATS.keys())}")
        elif self.spec.name not in FORMATS.get(self.params["format"]).imports:
            out.append(
                f"format {self.params['format']} has no {self.spec.name} annotations (it imports {', '.join(FORMATS.get(self.params['format']).imports)})"
            )
        if not self.params["source"] or not self.source.is_dir():
            out.append(f"params.source {str(self.source)!r} is not a folder")
        return out

    def _format(self) -> Format:
        if self._fmt is None:
            self.check_available()
            self._fmt = get_format(self.params["format"], self.params["settings"])
            self._state = export_state(self.source)
        return self._fmt

    def _files(self, image_id: str, ctx: Context) -> tuple[str, list[str]]:
        """The image's path in the layout and its source files (relative to the source folder)."""
        fmt = self._format()
        row = ctx.images[image_id]
        path = (self._state or {}).get("names", {}).get(image_id) if self._state else row["path"]
        return path or "", fmt.import_files(self.spec.name, path, row["kind"]) if path else []

    def input_sha256(self, item_id: str, ctx: Context) -> str:
        _, files = self._files(item_id, ctx)
        parts = [ctx.image_sha256(item_id)]
        for rel in files:
            if rel not in self._file_sha:
                path = self.source / rel
                self._file_sha[rel] = sha256_file(path) if path.is_file() else "missing"
            parts.append(f"{rel}={self._file_sha[rel]}")
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def annotate_one(self, item: ImageItem, ctx: Context) -> Any:
        path, files = self._files(item.image_id, ctx)
        if not files:
            raise AnnotationFailure(
                "not_in_source", f"{self.params['format']} holds no {self.spec.name} annotation of a {item.kind} image (or the export left this image out)"
            )
        absent = [f for f in files if not (self.source / f).is_file()]
        if absent:
            raise AnnotationFailure("not_in_source", f"{self.source / absent[0]} does not exist")
        size = (self._state or {}).get("size")
        return self._format().read(self.spec.name, self.source, files, path, item.image, tuple(size) if size else None)

    def provenance(self) -> dict[str, Any]:
        state = self._state or {}
        return {
            "source": str(self.source.resolve()),
            "format": self.params["format"],
            "exported_from": state.get("build"),
            "files_sha256": dict(sorted((k, v) for k, v in self._file_sha.items() if v != "missing")),
        }


def _register(annotator: str) -> type[Backend]:
    cls = type(f"Imported{annotator.title().replace('_', '')}", (ImportedBackend,), {"spec": get_annotator(annotator), "__module__": __name__})
    return register_backend(cls)


#: annotator -> its imported backend, for every annotator some format imports
IMPORTED: dict[str, type[Backend]] = {a: _register(a) for a in sorted({a for _, f in FORMATS.items() for a in f.imports})}
