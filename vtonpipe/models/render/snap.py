"""Fitting a rendered body to the observed person mask.

:func:`snap_sources` (the IUV and flow renders): the mask pixels just off the body take their
nearest body pixel's values. :func:`registration_sources` (the IUV render, before the snap): the
whole render moves by a smooth displacement that brings its silhouette onto the mask, so a limb
the fit put a pixel or two off moves with its inner part boundaries. The callers drop the body
outside the mask. :func:`variational_refinement` builds the solver this and the flow's photometric
refinement share.
"""

from __future__ import annotations

import numpy as np

#: ``cv2.VariationalRefinement`` settings of :func:`registration_sources`, on signed distances in
#: px clipped at ``clip_px``: smoothness ``alpha``, gradient constancy ``gamma`` (the silhouettes'
#: normals), value constancy ``delta`` (their distance), 20 fixed-point x 5 SOR iterations from a
#: zero displacement, which is then capped at ``max_shift_px``. Swept on the seed-11 and seed-12
#: harder samples (docs/BODY_FIT.md, stop 39): on seed 11 alpha 0.7-1.5, clip 4-8 px, 20-40
#: iterations and caps 3-8 px lie within 0.0009 of part accuracy of one another.
MASK_REGISTRATION = {"clip_px": 6.0, "alpha": 1.0, "gamma": 1.0, "delta": 1.0, "fixed_point_iterations": 20, "sor_iterations": 5, "max_shift_px": 5.0}


def variational_refinement(settings: dict):
    """A ``cv2.VariationalRefinement`` (Brox et al.'s energy, solved from the flow it is given) with
    ``settings``' smoothness ``alpha``, gradient constancy ``gamma``, value constancy ``delta`` and
    ``fixed_point_iterations`` x ``sor_iterations``."""
    import cv2

    refinement = cv2.VariationalRefinement.create()
    refinement.setAlpha(settings["alpha"])
    refinement.setGamma(settings["gamma"])
    refinement.setDelta(settings["delta"])
    refinement.setFixedPointIterations(settings["fixed_point_iterations"])
    refinement.setSorIterations(settings["sor_iterations"])
    return refinement


def signed_distance(region: np.ndarray, clip: float) -> np.ndarray:
    """(H, W) float32 Euclidean distance in px from each pixel centre to ``region`` (H, W) bool's
    edge: positive outside, negative inside, clipped to [-clip, clip]."""
    from scipy import ndimage

    region = np.asarray(region, bool)
    distance = ndimage.distance_transform_edt(~region) - ndimage.distance_transform_edt(region)
    return np.clip(distance, -clip, clip).astype(np.float32)


def registration_sources(body: np.ndarray, mask: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel of a render of the body pixels ``body`` (H, W) bool takes its value so that
    the render follows the person ``mask`` (H, W) {0, 1}: ``(iy, ix)`` (H, W) int, the pixel
    ``x + d(x)`` rounded, ``d`` a smooth displacement (px, at most ``max_shift_px``) with the
    target's signed distance at ``x`` matching the body's at ``x + d`` (``cv2.VariationalRefinement``,
    :data:`MASK_REGISTRATION`). The target is the mask pixels within ``reach`` px of the body:
    farther ones are hair or loose clothes, which the body must not stretch into. ``reach`` <= 0 or
    an empty body: every pixel its own source."""
    from scipy import ndimage

    body = np.asarray(body, bool)
    h, w = body.shape
    iy, ix = np.mgrid[:h, :w]
    if reach <= 0 or not body.any():
        return iy, ix
    settings = MASK_REGISTRATION
    target = np.asarray(mask).astype(bool) & (ndimage.distance_transform_edt(~body) <= reach)
    shift = np.zeros((h, w, 2), np.float32)
    variational_refinement(settings).calc(signed_distance(target, settings["clip_px"]), signed_distance(body, settings["clip_px"]), shift)
    length = np.linalg.norm(shift, axis=-1, keepdims=True)
    shift *= np.minimum(1.0, settings["max_shift_px"] / np.maximum(length, 1e-6))
    return np.clip(np.rint(iy + shift[..., 1]), 0, h - 1).astype(np.int64), np.clip(np.rint(ix + shift[..., 0]), 0, w - 1).astype(np.int64)


def snap_sources(body: np.ndarray, mask: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where a render of the body pixels ``body`` (H, W) bool grows to fit the person ``mask``
    (H, W) {0, 1}: ``fill`` (H, W) bool, the mask pixels off the body within ``radius`` px of it
    (Euclidean, pixel centres), and ``(iy, ix)`` (H, W) int, each pixel's nearest body pixel, whose
    values a filled pixel takes. ``body`` must hold a pixel (the callers leave an empty render as it is)."""
    from scipy import ndimage

    distance, (iy, ix) = ndimage.distance_transform_edt(~body, return_indices=True)
    return np.asarray(mask).astype(bool) & ~body & (distance <= radius), iy, ix
