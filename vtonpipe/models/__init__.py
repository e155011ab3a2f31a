"""The models behind the annotators and the trainers, grouped by role:

- :mod:`~vtonpipe.models.bodies`: parametric bodies (anny, SMPL), the camera, posing a body row,
  and fitting bodies to keypoints;
- :mod:`~vtonpipe.models.render`: rasterising meshes, DensePose charts and IUV, body flow;
- :mod:`~vtonpipe.models.nets`: the ported and wrapped networks whose weights users bring or
  packages ship (DensePose R-CNN, SCHP, OpenPose, MediaPipe);
- :mod:`~vtonpipe.models.classical`: classical CV (garment segmentation, geometric parsing);
- :mod:`~vtonpipe.models.warp`, :mod:`~vtonpipe.models.tryon`: the trainable networks of the
  reference try-on systems.

Models take arrays and return arrays: no pipeline, schema or registry code.
"""
