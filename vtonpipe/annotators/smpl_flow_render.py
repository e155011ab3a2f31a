"""``smpl_flow`` backend ``render`` (the default): flow and visibility between a pair's fitted bodies.

For a pair (source person image, target person image) both ``body`` rows are posed
(:func:`vtonpipe.models.bodies.posed_mesh`) and rasterised on their own images' pixel grids; each
target body pixel's surface point (face + barycentrics) is placed on the source body and
projected into the source image (:func:`vtonpipe.models.render.flow.body_flow`). ``flow`` is on the
target grid and points to the source, ``visibility`` has DIAF's three states (0 visible in the
source, 1 hidden there: self-occluded or outside the source image, 2 background), both exactly as
docs/CONVENTIONS.md; ``visible_fraction`` is the share of target body pixels in state 0. Both
bodies must share a mesh topology (anny and anny, or SMPL of any gender and SMPL; otherwise
``model_mismatch``); a target body that renders no pixel fails with ``empty_render``. A trainer
gets 3D-GCL's global-correspondence ground truth ``o_gt`` (1/8 resolution) from a row with
``vtonpipe.models.render.flow.correspondence_ground_truth(row["flow"], row["visibility"], stride=8)``.

Params: ``raster`` as in :mod:`vtonpipe.annotators.densepose_render` (``auto``: ``torch`` on CUDA,
``embree`` otherwise) rasterises the target; visibility is exact whatever the rasteriser: the
source camera's ray to each surface point is cast against the source body (Embree, CPU).

The row key covers both images and both ``body`` rows
(:func:`~vtonpipe.annotators.densepose_render.body_input_sha256`).

Speed and accuracy against the noise in the body parameters: docs/MEASUREMENTS.md
(``python benchmarks/bench_flow.py``).
"""

from __future__ import annotations

import numpy as np

from ..core import AnnotationFailure, Backend, Context, PairItem, Requirements
from ..models.bodies.posed import SMPL_GENDERS, PosedMesh, posed_mesh
from ..models.render.flow import BACKGROUND, VISIBLE, body_flow
from ..schemas.smpl_flow import SmplFlowRecord
from .densepose_render import body_input_sha256, raster_backend, render
from .registry import register_backend
from .smpl_flow import SPEC as SMPL_FLOW_SPEC


def model_family(model: str) -> str:
    """The mesh topology of a ``body`` row's ``model``: ``smpl`` for every SMPL gender, else itself."""
    return "smpl" if model in SMPL_GENDERS else model


def pair_flow(source: PosedMesh, target: PosedMesh, raster: str = "embree", device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Flow float32 (H, W, 2) and visibility uint8 (H, W) on the target's pixel grid (``target.camera``)
    from the target body to the source body (same model), seen through their own cameras."""
    if source.model != target.model or source.faces.shape != target.faces.shape:
        raise ValueError(f"flow needs two bodies of one model, got {source.model} and {target.model}")
    return body_flow(render(target, target.faces, raster, device), target.faces, source.vertices, source.camera)


@register_backend
class RenderSmplFlow(Backend):
    spec = SMPL_FLOW_SPEC
    name = "render"
    version = "2"
    requirements = Requirements(packages=("torch", "anny", "embreex"))
    default_params = {"raster": "auto"}
    requires = ("body",)
    doc = "Target -> source flow and 3-state visibility between the pair's two fitted bodies."

    def setup(self) -> None:
        self.raster = raster_backend(self.params["raster"], self.device)

    def input_sha256(self, item_id: str, ctx: Context) -> str:
        pair = ctx.pair(item_id)
        return body_input_sha256(ctx, [pair["source_image_id"], pair["target_image_id"]])

    def annotate_one(self, item: PairItem, ctx: Context) -> SmplFlowRecord:
        ids = (item.source_image_id, item.target_image_id)
        bodies = [ctx.annotation("body", i) for i in ids]
        models = [b.model for b in bodies]
        if len({model_family(m) for m in models}) != 1:
            raise AnnotationFailure("model_mismatch", f"source body is {models[0]}, target body {models[1]}")
        source, target = (posed_mesh(b, ctx.images[i]["width"], ctx.images[i]["height"]) for b, i in zip(bodies, ids))
        flow, visibility = pair_flow(source, target, self.raster, self.device)
        body_pixels = int((visibility != BACKGROUND).sum())
        if body_pixels == 0:
            raise AnnotationFailure("empty_render", f"the target body of {item.pair_id} covers no pixel of its image")
        return SmplFlowRecord(flow=flow, visibility=visibility, visible_fraction=float((visibility == VISIBLE).sum() / body_pixels))
