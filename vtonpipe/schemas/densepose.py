"""Schema of the ``densepose`` annotation (DensePose IUV of the main person)."""

from ..core.schema import Field
from .annotations import annotation_schema

SCHEMA = annotation_schema(
    "densepose",
    1,
    "image",
    (
        Field("iuv", "uint8", ("H", "W", 3), dense=True, doc="I part 0..24 (0 background), U, V 0..255; image pixel grid"),
        Field("bbox", "float32", (4,), doc="person box x0, y0, x1, y1 in pixels"),
        Field("score", "float32", doc="detection score (1 for rendered IUV)"),
        Field("num_people", "int32", doc="people detected; the row describes the main one"),
    ),
    doc="DensePose IUV in DensePose's conventions (docs/CONVENTIONS.md).",
)

#: what a ``densepose`` backend returns: the schema's own fields (:attr:`Schema.record_type`)
DenseposeRecord = SCHEMA.record_type
