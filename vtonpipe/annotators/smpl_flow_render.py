"""``smpl_flow`` backend ``render`` (the default): flow and visibility between a pair's fitted bodies.

For a pair (source person image, target person image) both ``body`` rows are posed
(:func:`vtonpipe.models.bodies.posed.posed_meshes`) and rasterised on their own images' pixel grids; each
target body pixel's surface point (face + barycentrics) is placed on the source body and
projected into the source image (:func:`vtonpipe.models.render.flow.body_flow`). ``flow`` is on the
target grid and points to the source, ``visibility`` has DIAF's three states (0 visible in the
source, 1 hidden there: self-occluded or outside the source image, 2 background), both exactly as
docs/CONVENTIONS.md; ``visible_fraction`` is the share of target body pixels in state 0. Both
bodies must share a mesh topology (anny and anny, or SMPL of any gender and SMPL; otherwise
``model_mismatch``); a target body that renders no pixel fails with ``empty_render``. A trainer
gets 3D-GCL's global-correspondence ground truth ``o_gt`` (1/8 resolution) from a row with
``vtonpipe.models.render.flow.correspondence_ground_truth(row["flow"], row["visibility"], stride=8)``.

``snap_to_mask_px`` > 0 (params.yaml: 2; the backend's default 0 is the bodies alone) also reads
the target image's ``person_mask`` row and fits the flow to the observed person as ``densepose``'s
render does (:func:`~vtonpipe.models.render.flow.snap_flow_to_mask`): no body outside the mask, and
mask pixels up to that many px off the target body take its nearest pixel's flow and visibility.
On the harder seed-12 sample (pixels visible in both photos) flow EPE 3.42 -> 3.02 px, visibility IoU
of the hidden state 0.740 -> 0.753, of the visible state 0.809 -> 0.817 at 2 px (1 px: 3.10, 0.760,
0.824): a fifth of the EPE was on person pixels the fitted target body misses, which had no flow.

``photometric_refine`` (params.yaml: on; the backend's default off) then refines the flow on the
pixels visible in the source by the two photos themselves
(:func:`~vtonpipe.models.render.flow.refine_flow_photometric`: a variational refinement from the
rendered flow, gray level and gradient constancy with smoothness; about 10 ms a pair at 256 x 192):
harder seed-12 sample EPE 2.61 -> 2.50 px, seed 11 3.52 -> 3.40 (docs/BODY_FIT.md, stop 32).
Visibility is the bodies' as before.

``parsing_hands`` (params.yaml: on; the backend's default off) also reads the target image's
``parsing`` row and draws the target's hands as ``densepose/render``'s ``parsing_hands`` does: a
target hand pixel the parsing calls upper-body clothing (a hand the fit put in front of the body
that the photo shows behind it: hands on the hips or behind the back) flows from the body behind
it, the target rasterised without its hands
(:func:`~vtonpipe.models.render.flow.raster_hands_behind`). Such a hand over the belly flowed from
the source's hand, 70 px off when the source's arms are raised; harder seed-11 sample EPE 2.82 ->
2.31 px, seed 12 2.23 -> 2.14 (docs/BODY_FIT.md, stop 40). It reads the source's parsing row too:
a source hand most of whose fitted pixels the parsing calls upper-body clothing
(:func:`~vtonpipe.models.render.flow.hands_behind_body`, share
:data:`~vtonpipe.models.render.iuv.HIDDEN_HAND_SHARE`) is behind the source's body, so it hides
nothing and its own points are hidden (:class:`~vtonpipe.models.render.flow.HandsBehind`): hidden-state
IoU 0.785 -> 0.793 on seed 12, 0.766 -> 0.774 on seed 31 (docs/BODY_FIT.md, stop 41). A hand is
judged whole, not per pixel: the fitted hand in front of the body spills onto the clothing
around it, and those fringe pixels still hide what the true hand hides.

Params: ``raster`` as in :mod:`vtonpipe.annotators.densepose_render` (``auto``: ``torch`` on CUDA,
``binned`` otherwise) rasterises the target; visibility is exact whatever the rasteriser: the
source camera's ray to each surface point is cast against the source body
(:class:`~vtonpipe.models.render.binned.BinnedMesh`, CPU).

Per-image reuse: a batch poses each of its images' bodies once (anny bodies in one batched
forward) and bins each body once for its camera, which serves both as the target raster and as the
source occluder of every pair of the batch the image is in (MPV and DeepFashion list a person in
many pairs).

The row key covers both images and both ``body`` rows
(:func:`~vtonpipe.annotators.densepose_render.body_input_sha256`), with snapping the target's
``person_mask`` row too, with ``parsing_hands`` both images' ``parsing`` rows.

Speed and accuracy against the noise in the body parameters: docs/MEASUREMENTS.md
(``python benchmarks/bench_flow.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..core import AnnotationFailure, Backend, Context, PairItem, Requirements
from ..models.bodies.posed import SMPL_GENDERS, PosedMesh, posed_meshes
from ..models.render.binned import BinnedMesh
from ..models.render.flow import (
    BACKGROUND,
    VISIBLE,
    HandsBehind,
    body_flow,
    hand_pixels,
    hands_behind_body,
    raster_hands_behind,
    refine_flow_photometric,
    snap_flow_to_mask,
)
from ..models.render.iuv import HAND_PARTS, HIDDEN_HAND_SHARE, hand_faces, hidden_hands
from ..models.render.raster import Raster
from ..schemas.smpl_flow import SmplFlowRecord
from .densepose_render import body_input_sha256, raster_backend, render, with_row_sha256
from .registry import register_backend
from .smpl_flow import SPEC as SMPL_FLOW_SPEC


def model_family(model: str) -> str:
    """The mesh topology of a ``body`` row's ``model``: ``smpl`` for every SMPL gender, else itself."""
    return "smpl" if model in SMPL_GENDERS else model


def pair_flow(source: PosedMesh, target: PosedMesh, raster: str = "binned", device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Flow float32 (H, W, 2) and visibility uint8 (H, W) on the target's pixel grid (``target.camera``)
    from the target body to the source body (same model), seen through their own cameras."""
    if source.model != target.model or source.faces.shape != target.faces.shape:
        raise ValueError(f"flow needs two bodies of one model, got {source.model} and {target.model}")
    return body_flow(render(target, target.faces, raster, device), target.faces, source.vertices, source.camera)


@register_backend
class RenderSmplFlow(Backend):
    spec = SMPL_FLOW_SPEC
    name = "render"
    version = "4"
    requirements = Requirements(packages=("torch", "anny", "numba", "scipy", "cv2"))
    default_params = {"raster": "auto", "snap_to_mask_px": 0, "photometric_refine": False, "parsing_hands": False}
    doc = "Target -> source flow and 3-state visibility between the pair's two fitted bodies."

    @property
    def requires(self) -> tuple[str, ...]:
        return ("body",) + ("person_mask",) * (self.params["snap_to_mask_px"] > 0) + ("parsing",) * bool(self.params["parsing_hands"])

    def setup(self) -> None:
        self.raster = raster_backend(self.params["raster"], self.device)

    def input_sha256(self, item_id: str, ctx: Context) -> str:
        pair = ctx.pair(item_id)
        key = body_input_sha256(ctx, [pair["source_image_id"], pair["target_image_id"]])
        if self.params["snap_to_mask_px"] > 0:
            key = with_row_sha256(ctx, key, "person_mask", pair["target_image_id"])
        if self.params["parsing_hands"]:
            for image_id in (pair["source_image_id"], pair["target_image_id"]):
                key = with_row_sha256(ctx, key, "parsing", image_id)
        return key

    def annotate(self, items: Sequence[PairItem], ctx: Context) -> list[SmplFlowRecord | AnnotationFailure]:
        """Every image of the batch is posed once (one batched forward for anny bodies) and cast
        against once (:class:`BinnedMesh` for its camera), however many of the pairs it is in."""
        ids = list(dict.fromkeys(i for item in items for i in (item.source_image_id, item.target_image_id)))
        bodies: dict[str, object] = {}
        missing: dict[str, AnnotationFailure] = {}
        for i in ids:
            try:
                bodies[i] = ctx.annotation("body", i)
            except AnnotationFailure as f:
                missing[i] = f
        snap, hands = self.params["snap_to_mask_px"], bool(self.params["parsing_hands"])
        masks: dict[str, np.ndarray | AnnotationFailure] = {}  # the targets' person masks, when snapping
        parsings: dict[str, np.ndarray | AnnotationFailure] = {}  # both images' parsings, with parsing_hands
        for image_ids, wanted, name, field, rows in (
            ([item.target_image_id for item in items], snap > 0, "person_mask", "mask", masks),
            (ids, hands, "parsing", "parsing", parsings),
        ):
            for i in dict.fromkeys(image_ids) if wanted else ():
                try:
                    rows[i] = getattr(ctx.annotation(name, i), field)
                except AnnotationFailure as f:
                    rows[i] = f
        refine = self.params["photometric_refine"]
        photos: dict[str, np.ndarray | AnnotationFailure] = {}  # read here: the context's image cache is not thread-safe
        for i in ids if refine else ():
            try:
                photos[i] = ctx.load_image(i)
            except AnnotationFailure as f:  # an unreadable photo (decode_error)
                photos[i] = f
        results: list[SmplFlowRecord | AnnotationFailure | None] = [None] * len(items)
        for k, item in enumerate(items):
            s, t = item.source_image_id, item.target_image_id
            if s in missing or t in missing:
                results[k] = missing.get(s) or missing[t]
            elif isinstance(masks.get(t), AnnotationFailure):
                results[k] = masks[t]
            elif unparsed := [parsings[i] for i in (t, s) if isinstance(parsings.get(i), AnnotationFailure)]:
                results[k] = unparsed[0]
            elif unreadable := [photos[i] for i in (s, t) if isinstance(photos.get(i), AnnotationFailure)]:
                results[k] = unreadable[0]
            elif model_family(bodies[s].model) != model_family(bodies[t].model):
                results[k] = AnnotationFailure("model_mismatch", f"source body is {bodies[s].model}, target body {bodies[t].model}")
        needed = list(dict.fromkeys(i for k, item in enumerate(items) if results[k] is None for i in (item.source_image_id, item.target_image_id)))
        sizes = [(ctx.images[i]["width"], ctx.images[i]["height"]) for i in needed]
        meshes = dict(zip(needed, posed_meshes([bodies[i] for i in needed], sizes)))
        todo = [k for k in range(len(items)) if results[k] is None]
        sources = {items[k].source_image_id for k in todo}
        targets = {items[k].target_image_id for k in todo}

        def prepare(i: str) -> tuple[BinnedMesh, Raster | None, HandsBehind | None]:
            """The image's body as an occluder (as a source), its raster (as a target) and, with
            parsing_hands, as a source its hands the photo shows behind the body."""
            mesh = meshes[i]
            # anny's mesh is watertight and consistently wound: its back faces are never the nearest hit
            scene = BinnedMesh(mesh.vertices, mesh.faces, mesh.camera, closed=mesh.model == "anny")
            if i in sources:
                scene.bin()
            if not (i in targets or hands):
                return scene, None, None
            raster = scene.rasterize() if self.raster == "binned" or i not in targets else render(mesh, mesh.faces, self.raster, self.device)
            behind = None
            sides = np.stack([hand_faces(mesh.model, mesh.faces, (part,)) for part in HAND_PARTS]) if hands else None
            if hands and i in sources:
                hidden_sides = sides[hands_behind_body(raster, sides, parsings[i], HIDDEN_HAND_SHARE)]
                if len(hidden_sides):
                    hidden_faces = hidden_sides.any(0)
                    without = BinnedMesh(mesh.vertices, mesh.faces[~hidden_faces], mesh.camera).bin()
                    behind = HandsBehind(hidden_faces, without, hand_pixels(raster, hidden_faces))
            if i not in targets:
                return scene, None, behind
            if hands:
                hand = sides.any(0)
                hidden = hidden_hands(hand_pixels(raster, hand), parsings[i])
                if hidden.any():
                    raster = raster_hands_behind(raster, render(mesh, mesh.faces[~hand], self.raster, self.device), hand, hidden)
            return scene, raster, behind

        def flow(k: int) -> SmplFlowRecord | AnnotationFailure:
            item = items[k]
            source, target = meshes[item.source_image_id], meshes[item.target_image_id]
            raster = prepared[item.target_image_id][1]
            scene, _, behind = prepared[item.source_image_id]
            flow, visibility = body_flow(raster, target.faces, source.vertices, source.camera, occluders=scene, hands_behind=behind)
            if snap > 0:
                flow, visibility = snap_flow_to_mask(flow, visibility, masks[item.target_image_id], snap)
            if refine:
                flow = refine_flow_photometric(flow, visibility, photos[item.target_image_id], photos[item.source_image_id])
            body_pixels = int((visibility != BACKGROUND).sum())
            if body_pixels == 0:
                return AnnotationFailure("empty_render", f"the target body of {item.pair_id} covers no pixel of its image")
            return SmplFlowRecord(flow=flow, visibility=visibility, visible_fraction=float((visibility == VISIBLE).sum() / body_pixels))

        # the compiled ray casting releases the GIL: images, then pairs, on the worker's threads
        with ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:
            prepared = dict(zip(needed, pool.map(prepare, needed)))
            for k, record in zip(todo, pool.map(flow, todo)):
                results[k] = record
        return results
