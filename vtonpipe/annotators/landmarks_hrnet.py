"""``landmarks`` backend ``sal-hrnet``: SAL-VTON's two-branch landmark HRNet
(:mod:`vtonpipe.models.landmarks.hrnet`) from a checkpoint that ``vtonpipe train landmarks``
writes.

Garment images go through the garment branch; a person image goes through the person branch with
the in-shop garment it is paired with (``ctx.garments_of``; the first by id when there are
several), whose landmarks the garment branch estimates first. A person image without a paired
garment image fails with ``no_garment``; ``input_sha256`` covers the person image and that
garment. Decoding and the flip test (``flip_test``, on by default) are
:class:`~vtonpipe.models.landmarks.decode.LandmarkPredictor`'s.

The checkpoint (param ``checkpoint``, a path) is a training checkpoint ``vtonpipe train
landmarks`` writes (``checkpoints/last.pt`` or a ``step-XXXXXXX.pt`` of its run directory),
loaded with ``torch.load(..., weights_only=True)`` and rebuilt by
:func:`~vtonpipe.models.landmarks.hrnet.build_from_checkpoint` at the resolution it was trained
at; its path and sha256 are recorded in the provenance. The default path is where ``vtonpipe
train landmarks`` writes for the sample build (``<build>/runs/landmarks/sal-hrnet/checkpoints/last.pt``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from ..core import (
    AnnotationFailure,
    Backend,
    CheckpointFile,
    Context,
    ImageItem,
    Requirements,
)
from ..schemas.landmarks import LandmarksRecord
from .landmarks import SPEC, check_upper_garment, landmarks_record
from .registry import register_backend

RUN_CHECKPOINT = "runs/landmarks/sal-hrnet/checkpoints/last.pt"


@register_backend
class SALHRNetLandmarks(Backend):
    spec = SPEC
    name = "sal-hrnet"
    version = "3"  # 2: loads the trainer's checkpoints at their training resolution; 3: DARK decoding
    requirements = Requirements(packages=("torch",))
    default_params = {"checkpoint": f"data/sample/{RUN_CHECKPOINT}", "flip_test": True}
    doc = "SAL-VTON's landmark HRNet (garment branch, person branch with the paired garment) from a `vtonpipe train landmarks` checkpoint."

    def __init__(self, params: Mapping[str, Any] | None = None, *, device: str = "cpu"):
        super().__init__(params, device=device)
        if not isinstance(self.params["checkpoint"], str) or not self.params["checkpoint"]:
            raise ValueError(f"landmarks/sal-hrnet: checkpoint must be a path, not {self.params['checkpoint']!r}")

    def weight_files(self) -> tuple[CheckpointFile, ...]:
        return (
            CheckpointFile(
                self.params["checkpoint"],
                f"`vtonpipe train landmarks --build BUILD` writes BUILD/{RUN_CHECKPOINT}; set annotators.landmarks.params.checkpoint to it",
                description="the sal-hrnet landmark network",
            ),
        )

    def setup(self) -> None:
        import torch

        from ..models.landmarks.decode import LandmarkPredictor
        from ..models.landmarks.hrnet import build_from_checkpoint

        (checkpoint,) = self.weight_files()
        path = checkpoint.require()
        try:
            net, input_size, heatmap_sigma = build_from_checkpoint(torch.load(path, map_location="cpu", weights_only=True))
        except ValueError as e:
            raise ValueError(f"landmarks/sal-hrnet: {path}: {e}") from e
        self.predictor = LandmarkPredictor(net, input_size, heatmap_sigma, flip=bool(self.params["flip_test"]), device=self.device)

    def input_sha256(self, item_id: str, ctx: Context) -> str:
        """The image's sha256 for garments; for people, sha256 over the person's and its garment's."""
        if ctx.images[item_id]["kind"] != "person":
            return ctx.image_sha256(item_id)
        return hashlib.sha256("|".join(ctx.image_sha256(i) for i in [item_id, *sorted(ctx.garments_of(item_id))[:1]]).encode()).hexdigest()

    def annotate(self, items: Sequence[ImageItem], ctx: Context) -> list[LandmarksRecord | AnnotationFailure]:
        out: list[LandmarksRecord | AnnotationFailure | None] = [None] * len(items)
        garments, people = [], []
        for n, item in enumerate(items):
            try:
                check_upper_garment(item.category)
                if item.kind == "person":
                    worn = sorted(ctx.garments_of(item.image_id))
                    if not worn:
                        raise AnnotationFailure("no_garment", f"{item.image_id} has no paired in-shop garment image for the person branch")
                    people.append((n, item, ctx.load_image(worn[0])))
                else:
                    garments.append((n, item))
            except AnnotationFailure as f:
                out[n] = f
        if garments:
            for (n, item), lm in zip(garments, self.predictor.garments([item.image for _, item in garments])):
                out[n] = landmarks_record(lm, item.category)
        if people:
            for (n, item, _), lm in zip(people, self.predictor.people([item.image for _, item, _ in people], [g for _, _, g in people])):
                out[n] = landmarks_record(lm, item.category)
        return out  # type: ignore[return-value]
