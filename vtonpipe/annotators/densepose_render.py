"""``densepose`` backend ``render`` (the default): DensePose IUV rendered from the fitted body.

Each person image's ``body`` row is posed (:func:`vtonpipe.models.bodies.posed_mesh`) and
rasterised on the image's pixel grid (one sample per pixel centre, docs/CONVENTIONS.md); every
body pixel gets its face's DensePose part and the chart (U, V) interpolated at the hit point,
``round(255 * u)``. anny bodies use anny's charts (:func:`vtonpipe.models.render.iuv.anny_charts`: the
same parts, anny's own UV), SMPL bodies DensePose's own SMPL charts
(:func:`vtonpipe.models.render.iuv.smpl_charts`), rasterised through their faces in SMPL vertex ids.
``bbox`` holds the edges of the rendered foreground in the pixel-centre frame (first column
``i0`` and last ``i1`` give ``x0 = i0 - 0.5``, ``x1 = i1 + 0.5``), ``score`` 1, ``num_people``
1. A body that renders no pixel (outside the image) fails with ``empty_render``.

``snap_to_mask_px`` > 0 (params.yaml: 1; the backend's default 0 renders the body alone) also
reads the ``person_mask`` row and fits the render to the observed person
(:func:`~vtonpipe.models.render.iuv.snap_to_mask`): no body outside the mask, and mask pixels up
to that many px off the rendered body take its nearest pixel's I, U, V. On the harder seed-12
sample part accuracy 0.862 -> 0.882 and background called body 0.0118 -> 0.0107 at 1 px
(2 px: 0.886, 0.0133; 3 px: 0.888, 0.0147). ``register_to_mask_px`` > 0 (params.yaml: 2; default
0) first moves the whole render by a smooth displacement of up to 5 px that brings its silhouette
onto the mask pixels within that many px of it (:func:`~vtonpipe.models.render.snap.registration_sources`):
a limb the fit put a pixel or two off moves with its inner part boundaries, which the fill leaves
where the fit put them. Stop 39, on stop 38's bodies: registered 2 px then snapped 1, part
accuracy 0.9199 -> 0.9216 (seed 12), 0.9096 -> 0.9115 (seed 11), 0.8862 -> 0.8896 (seed 31)
against a 2 px snap, background called body unchanged (docs/BODY_FIT.md).

``parsing_hands`` (params.yaml: true) also reads the ``parsing`` row: hands are bare skin, so a
rendered hand pixel the LIP parsing calls upper-body clothing (a hand the fit put in front of the
body that the photo shows behind it: hands on the hips or behind the back) shows the body rendered
without its hands there (:func:`~vtonpipe.models.render.iuv.hands_behind`). On the harder seed-12
sample (stop 35) part accuracy 0.911 -> 0.916 at 1 px, 0.914 -> 0.919 at 2 px; leaving hands on
pants and skirts in front (version 3, stop 36) 0.9188 -> 0.9191. The parser must not read
DensePose then (``body_parts: keypoints``; else a dependency cycle, an error of ``dag write``).

The row key covers the image and its ``body`` row (:func:`body_input_sha256`; when fitted to the mask its
``person_mask`` row too, with ``parsing_hands`` its ``parsing`` row): a refitted body
re-renders, and an image whose body was missing is rendered once the body exists.

``raster``: ``binned`` (exact CPU ray casting from the camera centre, compiled with numba:
:mod:`vtonpipe.models.render.binned`), ``embree`` (Embree ray casting), ``torch`` (z-buffer on the
backend's device) or ``auto`` (``torch`` on CUDA devices, ``binned`` otherwise); all give the same
IUV but at pixel centres within float rounding of a face edge (:mod:`vtonpipe.models.render.raster`).
A batch's anny bodies are posed in one forward (:func:`vtonpipe.models.bodies.posed.posed_meshes`).

Accuracy against the noise in the body parameters: docs/MEASUREMENTS.md (``python benchmarks/bench_flow.py
accuracy``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from ..converters.masks import mask_box_edges
from ..core import AnnotationFailure, Backend, Context, ImageItem, Requirements
from ..models.bodies.posed import PosedMesh, posed_meshes
from ..models.render.iuv import HAND_PARTS, anny_charts, hands_behind, iuv_from_raster, smpl_charts, snap_to_mask
from ..models.render.raster import Raster, rasterize
from ..schemas.densepose import DenseposeRecord
from .densepose import SPEC as DENSEPOSE_SPEC
from .registry import register_backend

RASTER_CHOICES = ("auto", "binned", "embree", "torch")


def raster_backend(choice: str, device: str) -> str:
    """The rasteriser a ``raster`` param selects: ``auto`` is ``torch`` on CUDA, ``binned`` elsewhere."""
    if choice not in RASTER_CHOICES:
        raise ValueError(f"raster must be one of {RASTER_CHOICES}, got {choice!r}")
    if choice == "auto":
        return "torch" if str(device).startswith("cuda") else "binned"
    return choice


def render(mesh: PosedMesh, faces: np.ndarray, raster: str = "binned", device: str = "cpu") -> Raster:
    """Rasterise ``mesh.vertices`` with ``faces`` (F, 3) for ``mesh.camera`` on its pixel grid."""
    return rasterize(mesh.vertices, faces, mesh.camera, backend=raster, device=device)


def render_iuv(mesh: PosedMesh, raster: str = "binned", device: str = "cpu", without_hands: bool = False) -> np.ndarray:
    """DensePose IUV uint8 (H, W, 3) of a posed anny or SMPL body on its camera's pixel grid
    (``without_hands``: of the body without the faces of its hands, :data:`HAND_PARTS`)."""
    if mesh.model == "anny":
        charts = anny_charts()
        faces, face_part, face_uv = mesh.faces, charts.face_part, charts.face_uv
        if len(faces) != len(face_part):
            raise ValueError(f"anny mesh has {len(faces)} faces, its charts {len(face_part)}")
    elif mesh.model == "smpl":
        charts = smpl_charts()
        faces, face_part, face_uv = charts.smpl_faces, charts.face_part, charts.face_uv
    else:
        raise ValueError(f"no DensePose charts for body model {mesh.model!r}")
    if without_hands:
        keep = ~np.isin(face_part, HAND_PARTS)
        faces, face_part, face_uv = faces[keep], face_part[keep], face_uv[keep]
    return iuv_from_raster(render(mesh, faces, raster, device), face_part, face_uv)


def body_input_sha256(ctx: Context, image_ids: Sequence[str]) -> str:
    """sha256 over each image's bytes hash and the key of its ``body`` row.

    A body row's key (its input, backend, version and params hash) fixes its parameters, so a
    result keyed by this changes whenever a body it renders changes; an image without a body row
    hashes as such, so its ``missing_upstream`` failure is retried once the body exists.
    """
    parts = [f"{ctx.image_sha256(i)}/{ctx.annotation_key('body', i) or 'no-body'}" for i in image_ids]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def with_row_sha256(ctx: Context, key: str, annotator: str, image_id: str) -> str:
    """``key`` extended by the key of ``image_id``'s ``annotator`` row (``person_mask``, ``parsing``:
    a result that reads it changes with it; an image without that row hashes as such, ``no-mask``
    / ``no-parsing``, so it is retried once the row exists)."""
    missing = "no-" + annotator.removeprefix("person_")
    return hashlib.sha256(f"{key}/{ctx.annotation_key(annotator, image_id) or missing}".encode()).hexdigest()


@register_backend
class RenderDensePose(Backend):
    spec = DENSEPOSE_SPEC
    name = "render"
    version = "3"  # 3: parsing_hands hides hands on upper-body clothing only (not pants or skirt)
    requirements = Requirements(packages=("torch", "anny", "numba", "scipy", "cv2"))
    default_params = {"raster": "auto", "register_to_mask_px": 0, "snap_to_mask_px": 0, "parsing_hands": False}
    doc = "IUV rendered from the fitted body (anny charts for anny, DensePose's SMPL charts for SMPL)."

    @property
    def requires(self) -> tuple[str, ...]:
        return ("body",) + ("person_mask",) * self.fits_mask + ("parsing",) * bool(self.params["parsing_hands"])

    @property
    def fits_mask(self) -> bool:
        """Whether the render is fitted to the ``person_mask`` row (registered or snapped)."""
        return self.params["register_to_mask_px"] > 0 or self.params["snap_to_mask_px"] > 0

    def setup(self) -> None:
        self.raster = raster_backend(self.params["raster"], self.device)

    def input_sha256(self, item_id: str, ctx: Context) -> str:
        key = body_input_sha256(ctx, [item_id])
        if self.fits_mask:
            key = with_row_sha256(ctx, key, "person_mask", item_id)
        if self.params["parsing_hands"]:
            key = with_row_sha256(ctx, key, "parsing", item_id)
        return key

    def annotate(self, items: Sequence[ImageItem], ctx: Context) -> list[DenseposeRecord | AnnotationFailure]:
        bodies: dict[int, object] = {}
        out: list[DenseposeRecord | AnnotationFailure | None] = [None] * len(items)
        snap, register, hands = self.params["snap_to_mask_px"], self.params["register_to_mask_px"], bool(self.params["parsing_hands"])
        masks: dict[int, np.ndarray] = {}
        parsings: dict[int, np.ndarray] = {}
        for k, item in enumerate(items):
            try:
                bodies[k] = ctx.annotation("body", item.image_id)
                if self.fits_mask:
                    masks[k] = ctx.annotation("person_mask", item.image_id).mask
                if hands:
                    parsings[k] = ctx.annotation("parsing", item.image_id).parsing
            except AnnotationFailure as f:
                bodies.pop(k, None)
                out[k] = f
        sizes = [(items[k].image.shape[1], items[k].image.shape[0]) for k in bodies]
        for (k, body), mesh in zip(bodies.items(), posed_meshes(list(bodies.values()), sizes)):
            iuv = render_iuv(mesh, self.raster, self.device)
            if self.fits_mask:
                iuv = snap_to_mask(iuv, masks[k], snap, register)
            if hands and np.isin(iuv[..., 0], HAND_PARTS).any():
                behind = render_iuv(mesh, self.raster, self.device, without_hands=True)
                iuv = hands_behind(iuv, snap_to_mask(behind, masks[k], snap, register) if self.fits_mask else behind, parsings[k])
            mask = iuv[..., 0] > 0
            if not mask.any():
                out[k] = AnnotationFailure("empty_render", f"the {body.model} body of {items[k].image_id} covers no pixel of the image")
            else:
                out[k] = DenseposeRecord(iuv=iuv, bbox=mask_box_edges(mask), score=1.0, num_people=1)
        return out
