"""``keypoints``: OpenPose COCO-18 body keypoints of the main person in each person image.

Backends:

- ``mediapipe`` (default, offline): MediaPipe Pose (one person; when it finds no one, retried at
  ``retry_detection_confidence`` 0.2, on the tiles of a wide photo and on the photo framed by a
  border, :meth:`MediaPipeKeypoints.detect`), its 33 landmarks mapped to
  COCO-18 (:func:`~vtonpipe.converters.keypoints.mp33_to_coco18`) and, with ``coco_offsets``
  (default on), moved from BlazePose's landmark definitions to COCO's joints
  (:func:`~vtonpipe.converters.keypoints.blazepose_to_coco_joints`: its ankles sit 4 % of a
  torso length above COCO's, for one; keypoint error 2.44 -> 1.98 px on the harder sample,
  ``benchmarks/bench_keypoint_offsets.py``); with ``mirror_average`` (default on) the landmarks
  are the mean of the photo's and its mirror image's, unmirrored
  (:func:`~vtonpipe.models.nets.mediapipe.mirror_averaged`: 1.99 -> 1.84 px there, the stage
  about 1.6x slower; where the two passes name the legs the other way round, the legs of the pass
  whose hips follow its shoulders: 1.84 -> 1.79 px); where the two disagree by more than
  ``reframe_gap`` (0.015 person sizes, :func:`~vtonpipe.models.nets.mediapipe.mirror_gap`; 1.5x
  the largest gap among seed 12's 120 photos; None: never) MediaPipe has misread the photo, and the
  pair is read again on the photo zoomed out by each of ``reframe_scales`` ([0.7]), the pair that
  agrees best kept (a back view 31 px off -> 2.6 px); confidence is MediaPipe's visibility. Points with
  visibility below ``min_visibility`` (default 0.5, the threshold MediaPipe's own drawing uses)
  or outside the image are reported undetected (0, 0, 0); the landmarks (averaged, before the
  offsets) are kept in ``landmarks_mp33`` whatever their visibility. Pose sees one person, so
  ``people`` holds that one and ``num_people`` is counted by models that see several
  (:class:`~vtonpipe.models.mediapipe_models.PeopleCounter`: MediaPipe's full-range face
  detector and Selfie Segmentation on square tiles; a person counts by a face or a person-size
  silhouette, :mod:`vtonpipe.models.people`), at least 1. ``benchmarks/bench_people_count.py``:
  on the sample's 256 x 192 person photos composed side by side it counts 1, 2, 3 and 4 people
  right on 48 of 48 images each (Pose once at confidence 0.5 finds no person on 7 of the 48
  four-person 256 x 768 images; with the retries on none); with two people overlapping (one pasted over the other, 0.7,
  0.5, 0.35 of a width apart) it counts 2 on 41, 38, 32 of 48 (the silhouettes merge, and both
  faces must then be found). The count costs about 30-50 ms per image of up to 512 x 600 px.
- ``openpose-caffe``: CMU's COCO model through OpenCV DNN (user brings the prototxt + caffemodel).
- ``openpose-torch``: the PyTorch port's ``body_pose_model.pth`` (user brings it).
  Both OpenPose backends decode several people with part affinity fields
  (:func:`~vtonpipe.models.nets.openpose.decode_people`); confidence is the heatmap value at the
  peak. Single scale by default (``scales: [1.0]`` at ``input_height`` 368); CMU's demo averages
  ``[0.5, 1.0, 1.5, 2.0]``.

Several people (OpenPose): the main one maximises
:func:`~vtonpipe.converters.keypoints.main_person_score` (size x centrality); ``people`` holds
all of them, the main first, and ``num_people`` is their number. No person ->
``AnnotationFailure("no_person")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ..converters.keypoints import blazepose_to_coco_joints, clear_outside, keypoint_bbox
from ..core import (
    AnnotationFailure,
    AnnotatorSpec,
    Backend,
    Context,
    ImageItem,
    Requirements,
    WeightFile,
)
from ..models.nets.mediapipe import MainPersonPose, PeopleCounter, PoseResult, mirror_averaged, pose_coco18
from ..models.nets.openpose import (
    CaffePoseNet,
    PoseNet,
    TorchPoseNet,
    decode_people,
    pose_maps,
    rank_people,
)
from ..schemas.keypoints import SCHEMA, KeypointsRecord
from .registry import register_annotator, register_backend

SPEC = register_annotator(
    AnnotatorSpec(
        name="keypoints",
        level="image",
        schema=SCHEMA,
        default_backend="mediapipe",
        kinds=("person",),
        doc="OpenPose COCO-18 keypoints (x, y px, confidence) of the main person, and the people count.",
    )
)

OPENPOSE_PROTOTXT = WeightFile(
    "openpose/pose_deploy_linevec.prototxt",
    "https://raw.githubusercontent.com/CMU-Perceptual-Computing-Lab/openpose/master/models/pose/coco/pose_deploy_linevec.prototxt",
    "17051b87f709aa094e09c5da7b78e9016a1f37b2b452ed1f190fe74cce70b1ad",
    "OpenPose COCO network definition (Caffe prototxt)",
)
OPENPOSE_CAFFEMODEL = WeightFile(
    "openpose/pose_iter_440000.caffemodel",
    "the COCO model of CMU OpenPose's models/getModels.sh (github.com/CMU-Perceptual-Computing-Lab/openpose; "
    "its original host posefs1.perception.cs.cmu.edu is offline, the script lists the current mirror)",
    "b4cf475576abd7b15d5316f1ee65eb492b5c9f5865e70a2e7882ed31fb682549",
    "OpenPose COCO body weights (Caffe, 200 MB)",
)
OPENPOSE_TORCH = WeightFile(
    "openpose/body_pose_model.pth",
    "https://huggingface.co/lllyasviel/Annotators/resolve/main/body_pose_model.pth (the pytorch-openpose port, github.com/Hzzone/pytorch-openpose)",
    "25a948c16078b0f08e236bda51a385d855ef4c153598947c28c0d47ed94bb746",
    "OpenPose COCO body weights (PyTorch port, 200 MB)",
)


def _record(people: Sequence[np.ndarray], score: float, landmarks: np.ndarray | None = None, num_people: int | None = None) -> KeypointsRecord:
    """The record of ranked poses (main first); ``num_people`` the people in the image (default:
    the poses)."""
    main = people[0]
    return KeypointsRecord(
        keypoints=main,
        people=np.stack(people),
        num_people=len(people) if num_people is None else num_people,
        score=score,
        bbox=keypoint_bbox(main),
        landmarks_mp33=landmarks,
    )


@register_backend
class MediaPipeKeypoints(Backend):
    spec = SPEC
    name = "mediapipe"
    version = "7"
    requirements = Requirements(packages=("mediapipe",))
    default_params = {
        "min_visibility": 0.5,
        "min_detection_confidence": 0.5,
        "retry_detection_confidence": 0.2,
        "coco_offsets": True,
        "mirror_average": True,
        "reframe_gap": 0.015,
        "reframe_scales": [0.7],
    }
    doc = "Offline: MediaPipe Pose (one person) mapped to COCO-18 and moved to COCO's joints; visibility as confidence; people counted from faces and silhouettes."

    def setup(self) -> None:
        p = self.params
        self.detect = MainPersonPose(
            min_detection_confidence=p["min_detection_confidence"], retry_detection_confidence=p["retry_detection_confidence"], min_visibility=p["min_visibility"]
        )
        self._people = PeopleCounter(min_detection_confidence=p["min_detection_confidence"])

    def coco18(self, pose: PoseResult, size: tuple[int, int]) -> np.ndarray:
        """COCO-18 (18, 3) of a Pose result in an image of ``size`` (H, W): :func:`pose_coco18` at
        ``min_visibility``, with ``coco_offsets`` moved to COCO's joint definitions
        (:func:`~vtonpipe.converters.keypoints.blazepose_to_coco_joints`)."""
        kp = pose_coco18(pose, size, self.params["min_visibility"])
        return clear_outside(blazepose_to_coco_joints(kp), size) if self.params["coco_offsets"] else kp

    def annotate_one(self, item: ImageItem, ctx: Context) -> KeypointsRecord:
        p = self.params
        res = (
            mirror_averaged(self.detect, item.image, reframe_gap=p["reframe_gap"], reframe_scales=tuple(p["reframe_scales"]))
            if p["mirror_average"]
            else self.detect(item.image)
        )
        if res is None:
            raise AnnotationFailure("no_person", "MediaPipe Pose found no person (also not at the retry confidence, on tiles or framed)")
        kp = self.coco18(res, item.image.shape[:2])
        found = kp[:, 2] > 0
        if not found.any():
            raise AnnotationFailure("no_person", f"no COCO-18 point inside the image with visibility >= {self.params['min_visibility']}")
        return _record([kp], float(kp[found, 2].mean()), res.landmarks, max(1, self._people(item.image)))


class _OpenPoseBackend(Backend):
    """The OpenPose backends: a 57-channel PoseNet + the shared PAF decoder."""

    default_params: ClassVar[dict[str, Any]] = {
        "input_height": 368,
        "scales": [1.0],
        "peak_threshold": 0.1,
        "peak_sigma": 3.0,
        "paf_threshold": 0.05,
        "min_parts": 4,
        "min_mean_score": 0.4,
    }
    _net: PoseNet

    def annotate_one(self, item: ImageItem, ctx: Context) -> KeypointsRecord:
        p = self.params
        heatmaps, pafs = pose_maps(item.image, self._net, input_height=p["input_height"], scales=p["scales"])
        people = decode_people(
            heatmaps,
            pafs,
            peak_threshold=p["peak_threshold"],
            peak_sigma=p["peak_sigma"],
            paf_threshold=p["paf_threshold"],
            min_parts=p["min_parts"],
            min_mean_score=p["min_mean_score"],
        )
        if not people:
            raise AnnotationFailure("no_person", "OpenPose found no person")
        people = rank_people(people, item.image.shape[:2])
        return _record([q.keypoints for q in people], people[0].score)


@register_backend
class OpenPoseCaffe(_OpenPoseBackend):
    spec = SPEC
    name = "openpose-caffe"
    version = "1"
    requirements = Requirements(packages=("cv2",), weights=(OPENPOSE_PROTOTXT, OPENPOSE_CAFFEMODEL))
    doc = "OpenPose COCO (CMU's Caffe model via OpenCV DNN), multi-person PAF decoding."

    def setup(self) -> None:
        prototxt, caffemodel = (w.require() for w in self.requirements.weights)
        self._net = CaffePoseNet(prototxt, caffemodel)


@register_backend
class OpenPoseTorch(_OpenPoseBackend):
    spec = SPEC
    name = "openpose-torch"
    version = "1"
    requirements = Requirements(packages=("torch",), weights=(OPENPOSE_TORCH,))
    doc = "OpenPose COCO (pytorch-openpose's body_pose_model.pth), multi-person PAF decoding."

    def setup(self) -> None:
        (weights,) = self.requirements.weights
        self._net = TorchPoseNet(weights.require(), self.device)
