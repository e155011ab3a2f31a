"""Schema of the ``keypoints`` annotation (OpenPose COCO-18 body keypoints of the main person)."""

from ..core.schema import Field
from .annotations import annotation_schema

SCHEMA = annotation_schema(
    "keypoints",
    1,
    "image",
    (
        Field("keypoints", "float32", (18, 3), doc="main person, COCO-18 order: x, y px (pixel centres at integers), confidence; (0, 0, 0) undetected"),
        Field("people", "float32", ("N", 18, 3), doc="keypoints of every person whose pose was found, the main person first (mediapipe: the main person only)"),
        Field(
            "num_people",
            "int32",
            doc="people in the image (>= 1): openpose the poses decoded (= N); mediapipe counted from faces and person-size silhouettes "
            "(vtonpipe.models.people; may exceed N); groundtruth 1 (the sample shows one person)",
        ),
        Field("score", "float32", doc="main person's score: mediapipe mean confidence of its points; openpose (part + limb scores) / parts"),
        Field("bbox", "float32", (4,), doc="x0, y0, x1, y1 px of the main person's detected keypoints"),
        Field("landmarks_mp33", "float32", (33, 4), nullable=True, doc="mediapipe only: the 33 raw landmarks x px, y px, z px (z x W, hip-midpoint origin, smaller = closer), visibility"),
    ),
    doc="Body keypoints in OpenPose COCO-18 order (docs/CONVENTIONS.md).",
)

#: what a ``keypoints`` backend returns: the schema's own fields (:attr:`Schema.record_type`)
KeypointsRecord = SCHEMA.record_type
