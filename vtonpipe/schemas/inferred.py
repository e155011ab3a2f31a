"""Schemas of what ``vtonpipe infer`` writes for a split's pairs: a trained warp model's warped
garments and a try-on generator's images (``BUILD/inferred/<kind>/<model>/<split>[-unpaired]/``).

Rows carry the provenance columns of every annotation: ``annotator`` is ``infer.<kind>``,
``backend`` the model name, ``params`` the checkpoint (path, sha256, step), the model settings and
whether the garments were swapped (unpaired); ``input_sha256`` hashes the pair's packed shard.
Maps are at the model's training resolution.
"""

from ..core.schema import Field
from .annotations import annotation_schema

WARP_SCHEMA = annotation_schema(
    "inferred_warp",
    1,
    "pair",
    (
        Field("warped_garment", "uint8", ("H", "W", 3), dense=True, doc="the garment warped onto the target person, RGB"),
        Field("warped_mask", "uint8", ("H", "W"), dense=True, doc="the warped garment's mask, 0..255"),
        Field("flow", "float32", ("H", "W", 2), dense=True, doc="on the target grid, to the pixels of the image the model warps (x_w - x, y_w - y), px"),
    ),
    doc="Garments warped by a trained warp model (vtonpipe infer warp).",
)

TRYON_SCHEMA = annotation_schema(
    "inferred_tryon",
    1,
    "pair",
    (
        Field("tryon", "uint8", ("H", "W", 3), dense=True, doc="the synthesised try-on image, RGB"),
        Field(
            "composition_mask",
            "uint8",
            ("H", "W"),
            dense=True,
            nullable=True,
            doc="where the warped garment was composited, 0..255 (models with a composition mask)",
        ),
    ),
    doc="Try-on images of a trained generator (vtonpipe infer tryon).",
)

#: training kind -> the schema its inferred outputs are stored with
INFERRED_SCHEMAS = {"warp": WARP_SCHEMA, "tryon": TRYON_SCHEMA}
