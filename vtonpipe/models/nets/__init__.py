"""Networks of the annotators: DensePose R-CNN (:mod:`.densepose_rcnn`), SCHP (:mod:`.schp`),
OpenPose (:mod:`.openpose`), and the MediaPipe solutions (:mod:`.mediapipe`)."""
