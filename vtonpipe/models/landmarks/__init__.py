"""SAL-VTON's 32 garment landmarks: the ``sal-hrnet`` network (:mod:`.hrnet`), its losses
(:mod:`.losses`), decoding and prediction (:mod:`.decode`), and the model-free ``geometric``
estimator (:mod:`.geometric`). The definition of the points is in
:mod:`vtonpipe.converters.landmarks`."""
