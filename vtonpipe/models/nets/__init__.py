"""Networks of the annotators: DensePose R-CNN (:mod:`.densepose_rcnn`), SCHP (:mod:`.schp`),
OpenPose (:mod:`.openpose`), and the MediaPipe solutions (:mod:`.mediapipe`); the evaluation
networks: the FID Inception-v3 (:mod:`.inception_fid`) and LPIPS-AlexNet (:mod:`.lpips`)."""
