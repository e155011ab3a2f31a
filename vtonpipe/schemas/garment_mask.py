"""Schema of the ``garment_mask`` annotation (in-shop garment foreground)."""

from ..core.schema import Field
from .annotations import annotation_schema

SCHEMA = annotation_schema(
    "garment_mask",
    1,
    "image",
    (
        Field("mask", "uint8", ("H", "W"), dense=True, doc="1 = garment, 0 = background, image pixel grid"),
        Field("area_fraction", "float32", doc="garment pixels / image pixels"),
        Field("bbox", "int32", (4,), doc="x0, y0, x1, y1 in pixels, x1/y1 exclusive"),
        Field("background_rgb", "uint8", (3,), doc="estimated background colour"),
    ),
    doc="Garment foreground of in-shop garment images.",
)

#: what a ``garment_mask`` backend returns: the schema's own fields (:attr:`Schema.record_type`)
GarmentMaskRecord = SCHEMA.record_type
