"""``3dgcl``: the folders 3D-GCL's pose-transfer / try-on loader reads.

Matches huangzy225/3D-GCL ``dataset/pix2pix512psw_dataset.py`` (``Pix2pixDataset.initialize``,
``__getitem__``, ``get_densepose``, ``get_smpl_semantic_region``) and
``dataset/smpl512psw_dataset.py`` (``get_paths``), which read under ``<out>/``:

- ``train_psw512.csv`` / ``test_psw512.csv``: columns ``from`` (the reference image) and ``to``
  (the target image), file names in ``image/``; one row per pair with a target person
- ``image/<stem>.png``: the person photos (every other path is the image path with ``image``
  and ``.png`` replaced, so stems contain neither)
- ``keypoints/<stem>_keypoints.json``: OpenPose COCO-18, ``people[0]['pose_keypoints_2d']``
- ``parsing/<stem>_label.png``: L-mode PNG of LIP ids (read with ``cv2.imread(...)[..., 0]``;
  14 and 15 are the arms it masks palms with)
- ``densepose/<stem>.pkl``: ``{"pred_boxes_XYXY": (4,) float32 x0, y0, x1, y1,
  "pred_densepose_label": (h, w) uint8 part 0..24, "pred_densepose_uv": (2, h, w) float32 U, V
  in [0, 1]}`` over the whole-pixel box starting at ``int(x0), int(y0)`` (the loader pads it
  back to the image size)
- ``smpl/<stem>.pkl``: ``{"pred_vertices_img": (V, 2) float32 x, y px of the posed body's
  vertices, "visibility": (H, W) uint32 index of the face seen at each pixel centre, 4294967295
  on the background}`` of the build's ``body`` row (:func:`vtonpipe.models.bodies.posed_mesh`,
  rasterised with :func:`vtonpipe.models.render.raster.rasterize`)
- ``smpl/smpl_faces.npy`` (F, 3) uint32, ``smpl/vertices_semantic_idxs.npy`` (V,) int32,
  ``smpl/vertices_symm_idxs.npy`` (V,) int32: the topology files the loader loads from
  ``./smpl/`` of its working directory (run it from ``<out>``, or copy them), for the body
  model of the build's rows. Semantic id: the DensePose part (1..24) of the first face holding
  the vertex (:mod:`vtonpipe.models.render.iuv` charts). Symmetric vertex: the vertex nearest
  to the vertex's mirror image through the rest-pose body's plane of symmetry (the axis whose
  mirroring moves the rest vertices least).

All pickles hold plain dicts and numpy arrays only. 3D-GCL's loader is written for SMPL (6890
vertices, 13776 faces): it sizes a vertex table ``np.zeros(6891)`` and takes face indices
``>= 13777`` for background. A build fitted with SMPL matches it; one fitted with anny (13718
vertices, 27420 faces) gives anny's topology files, and those two constants must become
``V + 1`` and ``F + 1``. Import reads keypoints,
parsing and densepose back (a ``smpl`` pickle holds no body parameters, so no ``body`` row).
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from ..core import AnnotationFailure
from ..io import sha256_bytes
from ..models.bodies.posed import PosedMesh, posed_mesh
from ..models.render.raster import rasterize
from . import register_format
from .base import (
    BuildView,
    ExportError,
    ExportItem,
    Format,
    Size,
    densepose_record,
    has_rows,
    item_inputs,
    parsing_from_lip,
    pickle_bytes,
    png_bytes,
    read_label_png,
    read_plain_pickle,
    rescale_points,
    resize_iuv_u8,
    resize_labels,
    resize_rgb,
    text_item,
    unique_stems,
)
from .densepose_dump import dump_entry, paste_densepose
from .openpose_json import openpose_file, read_keypoints_record

PERSON_STAGES = ("keypoints", "parsing", "densepose", "body")
#: the face index 3D-GCL's loader takes for background pixels (``uint32(-1)``)
NO_FACE = np.uint32(4294967295)
TOPOLOGY_FILES = ("smpl/smpl_faces.npy", "smpl/vertices_semantic_idxs.npy", "smpl/vertices_symm_idxs.npy")


def _loader_safe(stem: str) -> bool:
    return "image" not in stem and ".png" not in stem and "," not in stem and not any(c.isspace() for c in stem)


def scaled_body(body: Any, from_size: Size, to_size: Size | None) -> Any:
    """``body`` with its camera intrinsics mapped to an image resized from ``from_size`` to
    ``to_size`` (pixel centres at integers: ``c' = (c + 0.5) s - 0.5``, ``f' = f s``)."""
    if to_size is None or tuple(from_size) == tuple(to_size):
        return body
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    fx, fy, cx, cy = (float(v) for v in body.camera)
    return dataclasses.replace(body, camera=np.array([fx * sx, fy * sy, (cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5], np.float32))


def smpl_pickle(mesh: PosedMesh) -> dict[str, np.ndarray]:
    """3D-GCL's ``smpl/<stem>.pkl`` of a posed body on its camera's pixel grid."""
    raster = rasterize(mesh.vertices, mesh.faces, mesh.camera)
    visibility = np.where(raster.face_id >= 0, raster.face_id, 0).astype(np.uint32)
    visibility[raster.face_id < 0] = NO_FACE
    return {"pred_vertices_img": mesh.project(), "visibility": visibility}


def symmetric_vertices(rest: np.ndarray) -> np.ndarray:
    """(V,) int32: for each rest-pose vertex (V, 3) the vertex nearest to its mirror image, the
    mirror being the plane through the centroid normal to the axis that maps the vertex set
    onto itself best (the smallest mean nearest-vertex distance after mirroring)."""
    centred = rest - rest.mean(0)
    tree = cKDTree(centred)
    best: tuple[float, np.ndarray] | None = None
    for axis in range(3):
        mirrored = centred.copy()
        mirrored[:, axis] *= -1
        dist, index = tree.query(mirrored)
        if best is None or dist.mean() < best[0]:
            best = (float(dist.mean()), index.astype(np.int32))
    return best[1]


def body_topology(body: Any, size: Size) -> dict[str, np.ndarray]:
    """The three topology arrays of the body model of ``body`` (a ``body`` record)."""
    from ..models.render.iuv import anny_charts, smpl_charts, vertex_parts

    rest = posed_mesh(
        dataclasses.replace(body, pose=np.zeros_like(body.pose), rotation=np.zeros(3, np.float32), translation=np.zeros(3, np.float32)), size[1], size[0]
    )
    if rest.model == "anny":
        parts = vertex_parts(rest.faces, anny_charts().face_part, len(rest.vertices))
    elif rest.model == "smpl":
        charts = smpl_charts()
        parts = vertex_parts(charts.smpl_faces, charts.face_part, len(rest.vertices))
    else:
        raise ExportError(f"3dgcl: no topology files for body model {rest.model!r}")
    return {"faces": rest.faces.astype(np.uint32), "semantic": parts, "symmetric": symmetric_vertices(rest.vertices.astype(np.float64))}


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


@register_format
class Gcl3D(Format):
    name = "3dgcl"
    doc = "3D-GCL folders: image, keypoints, parsing, densepose/*.pkl, smpl/*.pkl, topology .npy files, pair CSVs"
    loader = "huangzy225/3D-GCL dataset/pix2pix512psw_dataset.py, dataset/smpl512psw_dataset.py"
    needs = PERSON_STAGES
    imports = ("keypoints", "parsing", "densepose")

    def image_paths(self, view: BuildView) -> dict[str, str]:
        return {i: f"image/{stem}.png" for i, stem in unique_stems(view, view.of_kind("person"), _loader_safe).items()}

    def export_items(self, view: BuildView, size: Size | None, names: Mapping[str, str], missing: dict[str, int]) -> Iterator[ExportItem]:
        written = []
        for image_id, path in names.items():
            if not has_rows(view, image_id, PERSON_STAGES, missing):
                continue
            written.append(image_id)
            yield ExportItem(image_id, item_inputs(self, size, view, image_id, PERSON_STAGES), lambda i=image_id, p=path: self._person_files(view, i, p, size))
        if not written:
            return
        first = written[0]
        models = {view.record("body", i).model for i in written}
        if len({"smpl" if m.startswith("smpl") else m for m in models}) > 1:
            raise ExportError(f"3dgcl: the build's bodies use several models ({sorted(models)}); 3D-GCL reads one topology")
        body = view.record("body", first)
        yield ExportItem(
            "topology",
            sha256_bytes(f"{body.model}:{len(body.pose)}:{body.shape.tobytes().hex()}".encode()),
            lambda: self._topology(body, size or view.size(first)),
        )
        rows: dict[str, list[str]] = {}
        kept = set(written)
        for pair in view.pairs:  # names are loader-safe: no comma, no space
            src, tgt = pair["source_image_id"], pair["target_image_id"]
            if src in kept and tgt in kept:
                rows.setdefault(f"{'train' if pair['split'] == 'train' else 'test'}_psw512.csv", []).append(
                    f"{PurePosixPath(names[src]).name},{PurePosixPath(names[tgt]).name}"
                )
        for rel, lines in sorted(rows.items()):
            yield text_item(rel, lines, header="from,to")

    @staticmethod
    def _topology(body: Any, size: Size) -> dict[str, bytes]:
        topo = body_topology(body, size)
        return dict(zip(TOPOLOGY_FILES, (_npy(topo["faces"]), _npy(topo["semantic"]), _npy(topo["symmetric"].astype(np.int32)))))

    def _person_files(self, view: BuildView, image_id: str, path: str, size: Size | None) -> dict[str, bytes]:
        native = view.size(image_id)
        out_size = tuple(size) if size else native
        stem = PurePosixPath(path).stem
        kp = view.record("keypoints", image_id)
        lip = resize_labels(view.record("parsing", image_id).parsing, out_size)
        dp = view.record("densepose", image_id)
        box = rescale_points(dp.bbox.reshape(2, 2), np.ones(2, bool), native, out_size).reshape(4)
        entry = dump_entry(path, resize_iuv_u8(dp.iuv, out_size), box, dp.score)
        densepose = {
            "pred_boxes_XYXY": entry["pred_boxes_XYXY"][0],
            "pred_densepose_label": entry["pred_densepose"][0]["labels"],
            "pred_densepose_uv": entry["pred_densepose"][0]["uv"],
        }
        mesh = posed_mesh(scaled_body(view.record("body", image_id), native, out_size), out_size[1], out_size[0])
        return {
            path: png_bytes(resize_rgb(view.image(image_id), size)),
            f"keypoints/{stem}_keypoints.json": openpose_file(kp.people, "coco18", native, out_size),
            f"parsing/{stem}_label.png": png_bytes(lip),
            f"densepose/{stem}.pkl": pickle_bytes(densepose),
            f"smpl/{stem}.pkl": pickle_bytes(smpl_pickle(mesh)),
        }

    def import_files(self, annotator: str, image_path: str, kind: str) -> list[str]:
        p = PurePosixPath(image_path)
        if kind != "person" or p.parent.name != "image":
            return []
        root = p.parent.parent
        return {
            "keypoints": [str(root / "keypoints" / f"{p.stem}_keypoints.json")],
            "parsing": [str(root / "parsing" / f"{p.stem}_label.png")],
            "densepose": [str(root / "densepose" / f"{p.stem}.pkl")],
        }.get(annotator, [])

    def read(self, annotator: str, source: Path, files: list[str], image_path: str, image: np.ndarray, source_size: Size | None) -> Any:
        size = image.shape[:2]
        path = source / files[0]
        if annotator == "keypoints":
            return read_keypoints_record(path, source_size, size)
        if annotator == "parsing":
            ids = read_label_png(path)
            if ids.size and int(ids.max()) > 19:
                raise AnnotationFailure("bad_source_file", f"{path}: id {int(ids.max())} is not a LIP label")
            return parsing_from_lip(resize_labels(ids, size), "lip")
        dp = read_plain_pickle(path)
        x0, y0 = (int(v) for v in np.asarray(dp["pred_boxes_XYXY"])[:2])
        written = tuple(source_size) if source_size else size
        iuv = paste_densepose(dp["pred_densepose_label"], dp["pred_densepose_uv"], x0, y0, written)
        box = np.asarray(dp["pred_boxes_XYXY"], np.float32) - np.float32(0.5)
        if written != size:
            box = rescale_points(box.reshape(2, 2), np.ones(2, bool), written, size).reshape(4)
            iuv = resize_iuv_u8(iuv, size)
        return densepose_record(iuv, box, 1.0, 1)
