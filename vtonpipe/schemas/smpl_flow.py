"""Schema of the ``smpl_flow`` annotation: dense 2D flow and visibility between the bodies of a
pair's target and source person images (3D-GCL's SMPL flow; DIAF's 3-state visibility)."""

from ..core.schema import Field
from .annotations import annotation_schema

SCHEMA = annotation_schema(
    "smpl_flow",
    1,
    "pair",
    (
        Field("flow", "float32", ("H", "W", 2), dense=True, doc="target grid -> source pixels: (x_s - x, y_s - y); 0 off the body"),
        Field("visibility", "uint8", ("H", "W"), dense=True, doc="0 visible in both, 1 body pixel hidden in the source, 2 background"),
        Field("visible_fraction", "float32", doc="share of the target's body pixels visible in the source"),
    ),
    doc="Body-surface correspondence flow between a pair's two people.",
)

#: what a ``smpl_flow`` backend returns: the schema's own fields (:attr:`Schema.record_type`)
SmplFlowRecord = SCHEMA.record_type
