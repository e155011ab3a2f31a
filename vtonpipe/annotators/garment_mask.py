"""``garment_mask``: foreground mask of in-shop garment images (classical, offline)."""

from __future__ import annotations

from ..converters.masks import mask_bbox
from ..core import AnnotationFailure, AnnotatorSpec, Backend, Context, ImageItem
from ..models.classical.garment_mask import segment_garment
from ..schemas.garment_mask import SCHEMA, GarmentMaskRecord
from .registry import register_annotator, register_backend

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
    spec = SPEC
    name = "classical"
    version = "2"
    default_params = {"border": 4, "blur_sigma": 1.0, "min_delta_e": 2.0, "mad_factor": 4.0, "grabcut_iters": 3, "min_area_fraction": 0.01}
    doc = "Offline: colour distance to the border's background + morphology + GrabCut."

    def annotate_one(self, item: ImageItem, ctx: Context) -> GarmentMaskRecord:
        p = self.params
        seg = segment_garment(
            item.image, border=p["border"], blur_sigma=p["blur_sigma"], min_delta_e=p["min_delta_e"], mad_factor=p["mad_factor"], grabcut_iters=p["grabcut_iters"]
        )
        area = float(seg.mask.mean())
        if area < p["min_area_fraction"]:
            raise AnnotationFailure("no_garment", f"garment covers {area:.2%} of the image (< {p['min_area_fraction']:.0%})")
        return GarmentMaskRecord(mask=seg.mask, area_fraction=area, bbox=mask_bbox(seg.mask), background_rgb=seg.background_rgb)
