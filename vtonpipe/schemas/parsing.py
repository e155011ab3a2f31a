"""Schema of the ``parsing`` annotation (human parsing of person images, LIP labels)."""

from ..converters.labels import NUM_LIP_CLASSES
from ..core.schema import Field
from .annotations import annotation_schema

SCHEMA = annotation_schema(
    "parsing",
    1,
    "image",
    (
        Field("parsing", "uint8", ("H", "W"), dense=True, doc="LIP label id 0..19 per pixel (docs/CONVENTIONS.md), image pixel grid"),
        Field(
            "native_label_set",
            "string",
            doc="label set the backend predicts before conversion to LIP (lip, atr, cihp...): LIP classes it lacks never appear",
        ),
        Field("class_pixels", "int32", (NUM_LIP_CLASSES,), doc="pixel count of each LIP class"),
        Field("person_fraction", "float32", doc="non-background pixels / image pixels"),
        Field("bbox", "int32", (4,), doc="x0, y0, x1, y1 of the non-background pixels in pixels, x1/y1 exclusive"),
    ),
    doc="Human parsing in LIP's 20 labels; every backend converts to LIP.",
)

#: what a ``parsing`` backend returns: the schema's own fields (:attr:`Schema.record_type`)
ParsingRecord = SCHEMA.record_type
