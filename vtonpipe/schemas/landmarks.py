"""Schema of the ``landmarks`` annotation: SAL-VTON's 32 garment landmarks with attributes
(definition: :mod:`vtonpipe.converters.landmarks`), on in-shop garment images and on the person
wearing the garment."""

from ..core.schema import Field
from .annotations import annotation_schema

SCHEMA = annotation_schema(
    "landmarks",
    2,  # 2: the upper-garment definition (collar back, six neck points, four sleeve sections per side)
    "image",
    (
        Field("landmarks", "float32", (32, 3), doc="x, y px and attribute: 0 visible, 1 occluded, 2 absent (x = y = 0)"),
        Field("garment_category", "string", nullable=True, doc="garment type the landmarks belong to (tee, long_sleeve, sleeveless, upper_body, dresses...), when known"),
    ),
    doc="32 semantically associated garment landmarks per image.",
)

#: what a ``landmarks`` backend returns: the schema's own fields (:attr:`Schema.record_type`)
LandmarksRecord = SCHEMA.record_type
