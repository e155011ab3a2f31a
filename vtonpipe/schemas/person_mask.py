"""Schema of the ``person_mask`` annotation (person foreground and face region)."""

from ..core.schema import Field
from .annotations import annotation_schema

SCHEMA = annotation_schema(
    "person_mask",
    1,
    "image",
    (
        Field("mask", "uint8", ("H", "W"), dense=True, doc="1 = person, 0 = background, image pixel grid"),
        Field("area_fraction", "float32", doc="person pixels / image pixels"),
        Field("bbox", "int32", (4,), doc="person x0, y0, x1, y1 in pixels, x1/y1 exclusive"),
        Field("face_mask", "uint8", ("H", "W"), dense=True, nullable=True, doc="1 inside the face-mesh face oval; null when no face is found"),
        Field("face_oval", "float32", (36, 2), nullable=True, doc="face oval polygon x, y px (MediaPipe face mesh, in order); null when no face"),
        Field("face_bbox", "int32", (4,), nullable=True, doc="face_mask x0, y0, x1, y1 in pixels, x1/y1 exclusive; null when no face"),
    ),
    doc="Person foreground (MediaPipe segmentation thresholded to {0, 1}) and the face oval region.",
)

#: what a ``person_mask`` backend returns: the schema's own fields (:attr:`Schema.record_type`)
PersonMaskRecord = SCHEMA.record_type
