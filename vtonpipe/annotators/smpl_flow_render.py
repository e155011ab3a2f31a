"""``smpl_flow`` backend ``render`` (the default): flow and visibility between a pair's fitted bodies.

For a pair (source person image, target person image) both ``body`` rows are posed
(:func:`vtonpipe.models.bodies.posed_mesh`) and rasterised on their own images' pixel grids; each
target body pixel's surface point (face + barycentrics) is placed on the source body and
projected into the source image (:func:`vtonpipe.models.flow.body_flow`). ``flow`` is on the
target grid and points to the source, ``visibility`` has DIAF's three states (0 visible in the
source, 1 hidden there: self-occluded or outside the source image, 2 background), both exactly as
docs/CONVENTIONS.md; ``visible_fraction`` is the share of target body pixels in state 0. Both
bodies must share a mesh topology (anny and anny, or SMPL of any gender and SMPL; otherwise
``model_mismatch``); a target body that renders no pixel fails with ``empty_render``. A trainer
gets 3D-GCL's global-correspondence ground truth ``o_gt`` (1/8 resolution) from a row with
``vtonpipe.models.flow.correspondence_ground_truth(row["flow"], row["visibility"], stride=8)``.

Params: ``raster`` as in :mod:`vtonpipe.annotators.densepose_render` (``auto``: ``torch`` on CUDA,
``embree`` otherwise) rasterises the target; visibility is exact whatever the rasteriser: the
source camera's ray to each surface point is cast against the source body (Embree, CPU).

The row key covers both images and both ``body`` rows
(:func:`~vtonpipe.annotators.densepose_render.body_input_sha256`).

Measured with ``python benchmarks/bench_flow.py`` on random anny pairs (one person, two poses,
camera azimuths within 45 degrees of the front; see the script):

Speed (``speed``), pairs/s of the work per pair (two ``posed_mesh``, the target's
rasterisation, ``body_flow``'s ray casting against the source body), best of 2 rounds over 8
pairs, 2 torch threads, 2 CPU cores, no GPU measured::

    size        embree   torch (CPU)   torch / embree
    256x192     16.9     19.3          1.15
    1024x768    6.3      5.7           0.91

Posing alone runs at about 80 pairs/s; most of the rest is building the Embree scenes (about
20 ms each) and, at 1024 x 768, the rasterisation itself.

Accuracy (``accuracy``): 16 pairs at 256 x 192, ground truth from the exact parameters, output
from parameters with Gaussian noise (``pose`` radians on each axis-angle component of 12 main
bones, ``shape`` on each phenotype value, ``transl`` metres on each axis; bodies about 5.2 m away,
1 cm ~ 1.4 px). ``EPE`` over every ground-truth visible pixel (``FlowAccuracy``: pixels the
perturbed target body misses count with flow 0), ``EPE on`` over those it covers; IoU of the
visible and hidden states and the mean over the three::

    pose  shape  transl | EPE px  EPE on | IoU vis  IoU hid  mIoU
    0     0      0      |  0.000   0.000 |  1.000    1.000   1.000
    0.02  0      0      |  2.61    1.83  |  0.843    0.544   0.788
    0.05  0      0      |  5.64    3.89  |  0.690    0.342   0.659
    0.1   0      0      |  8.91    6.45  |  0.537    0.198   0.548
    0     0.05   0      |  5.53    4.11  |  0.814    0.452   0.744
    0     0.1    0      |  9.47    7.34  |  0.707    0.298   0.649
    0     0      0.005  |  2.04    1.53  |  0.883    0.623   0.829
    0     0      0.01   |  3.88    2.92  |  0.794    0.460   0.739
    0     0      0.02   |  7.07    5.49  |  0.652    0.298   0.627
    0.02  0.05   0.005  |  6.74    4.97  |  0.725    0.349   0.674
    0.05  0.05   0.01   |  8.75    6.47  |  0.591    0.230   0.580
    0.1   0.1    0.02   | 13.04   10.80  |  0.429    0.115   0.472

Hidden regions are thin bands (the sides turning away, behind a limb), so their IoU drops fast.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..models.bodies import SMPL_GENDERS, PosedMesh, posed_mesh
from ..models.flow import BACKGROUND, VISIBLE, body_flow
from .base import AnnotationFailure, Backend, PairItem, Requirements, register_backend
from .densepose_render import body_input_sha256, raster_backend, render


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
    annotator = "smpl_flow"
    name = "render"
    version = "2"
    requirements = Requirements(packages=("torch", "anny", "embreex"))
    default_params = {"raster": "auto"}
    requires = ("body",)
    doc = "Target -> source flow and 3-state visibility between the pair's two fitted bodies."

    def setup(self) -> None:
        self.raster = raster_backend(self.params["raster"], self.device)

    def input_sha256(self, item_id: str, ctx: Any) -> str:
        pair = ctx.pair(item_id)
        return body_input_sha256(ctx, [pair["source_image_id"], pair["target_image_id"]])

    def annotate(self, items: Sequence[PairItem], ctx: Any) -> list[dict[str, Any] | AnnotationFailure]:
        out: list[dict[str, Any] | AnnotationFailure] = []
        for item in items:
            ids = (item.source_image_id, item.target_image_id)
            try:
                rows = [ctx.annotation("body", i) for i in ids]
            except AnnotationFailure as f:
                out.append(f)
                continue
            models = [r["model"] for r in rows]
            if len({model_family(m) for m in models}) != 1:
                out.append(AnnotationFailure("model_mismatch", f"source body is {models[0]}, target body {models[1]}"))
                continue
            source, target = (posed_mesh(r, ctx.images[i]["width"], ctx.images[i]["height"]) for r, i in zip(rows, ids))
            flow, visibility = pair_flow(source, target, self.raster, self.device)
            body = int((visibility != BACKGROUND).sum())
            if body == 0:
                out.append(AnnotationFailure("empty_render", f"the target body of {item.pair_id} covers no pixel of its image"))
                continue
            out.append({"flow": flow, "visibility": visibility, "visible_fraction": float((visibility == VISIBLE).sum() / body)})
        return out
