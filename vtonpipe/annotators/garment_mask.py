"""``garment_mask``: foreground mask of in-shop garment images (classical, offline)."""

from __future__ import annotations

from typing import Any, Sequence


from ..converters.masks import mask_bbox
from ..models.garment_mask import segment_garment
from ..schemas.garment_mask import SCHEMA
from .base import AnnotationFailure, AnnotatorSpec, Backend, ImageItem, register_annotator, register_backend

SPEC = register_annotator(
    AnnotatorSpec(
        name="garment_mask",
        level="image",
        schema=SCHEMA,
        default_backend="classical",
        kinds=("garment",),
        doc="Border background estimate, threshold, morphology, GrabCut refinement.",
    )
)


@register_backend
class ClassicalGarmentMask(Backend):
    annotator = "garment_mask"
    name = "classical"
    version = "1"
    default_params = {"border": 4, "min_delta_e": 6.0, "mad_factor": 4.0, "grabcut_iters": 3, "min_area_fraction": 0.01}
    doc = "Offline: colour distance to the border's background + morphology + GrabCut."

    def annotate(self, items: Sequence[ImageItem], ctx: Any) -> list[dict[str, Any] | AnnotationFailure]:
        out: list[dict[str, Any] | AnnotationFailure] = []
        p = self.params
        for item in items:
            seg = segment_garment(
                item.image, border=p["border"], min_delta_e=p["min_delta_e"], mad_factor=p["mad_factor"], grabcut_iters=p["grabcut_iters"]
            )
            area = float(seg.mask.mean())
            if area < p["min_area_fraction"]:
                out.append(AnnotationFailure("no_garment", f"garment covers {area:.2%} of the image (< {p['min_area_fraction']:.0%})"))
                continue
            out.append(
                {
                    "mask": seg.mask,
                    "area_fraction": area,
                    "bbox": mask_bbox(seg.mask),
                    "background_rgb": seg.background_rgb,
                }
            )
        return out
