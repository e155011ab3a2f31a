"""Rendering bodies: rasterisers (:mod:`.raster`), DensePose charts and IUV (:mod:`.iuv`), the
flow and visibility between two bodies (:mod:`.flow`)."""
