"""Parametric bodies: anny (:mod:`.anny`), SMPL from the user's model file (:mod:`.smpl`), the
pinhole camera (:mod:`.camera`), a body row posed in its camera frame (:mod:`.posed`), and
fitting bodies to keypoints (:mod:`.fitting`)."""
