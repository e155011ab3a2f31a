"""Lab colour models of the geometric parser: features, Gaussian mixtures, the skin model
and the per-person models of skin, hair, top, bottom and shoes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from .constants import (
    CHEST,
    CHI2_3_99,
    CLEAR_SKIN,
    CROWN,
    FLOOR_STD,
    MIN_SAMPLES,
    NLL_CAP,
    NO_COLOUR_CHROMA,
    SAME_COLOURS,
    SKIN_PRIOR,
    THIGHS,
    Material,
    Part,
)


def _logsumexp(a: np.ndarray) -> np.ndarray:
    """log(sum(exp(a), axis=1)) of (N, K) finite values."""
    top = a.max(1)
    return top + np.log(np.exp(a - top[:, None]).sum(1))


def colour_features(image: np.ndarray) -> np.ndarray:
    """float32 (H, W, 3) shading-normalised CIE Lab of an RGB uint8 image (sRGB, D65):
    ``(L, 50 a / (L + 16), 50 b / (L + 16))``. Scaling a surface's linear-light colour by k scales
    ``L + 16``, ``a`` and ``b`` alike (by k^(1/3), above Lab's linear toe), so the last two
    channels keep a fabric's chromaticity across shading while L keeps its lightness."""
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab[..., 1:] *= 50.0 / (lab[..., :1] + 16.0)
    return lab


def shows_colour(image: np.ndarray, mask: np.ndarray) -> bool:
    """Whether the person's pixels (``mask`` (H, W) bool of the RGB uint8 ``image``) show colour:
    the 90th percentile of their CIE Lab chroma reaches NO_COLOUR_CHROMA. False for grayscale
    images (equal channels: 8-bit or 16-bit grayscale decoded to RGB) and near-equal channels
    (a grayscale image re-encoded in colour, a faint tint)."""
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[np.asarray(mask).astype(bool)]
    return bool(len(lab)) and float(np.percentile(np.hypot(lab[:, 1], lab[:, 2]), 90)) >= NO_COLOUR_CHROMA


@dataclass(frozen=True)
class ColourModel:
    """A Gaussian mixture over Lab colours: ``means`` (K, 3), ``covs`` (K, 3, 3), ``weights`` (K,)."""

    means: np.ndarray
    covs: np.ndarray
    weights: np.ndarray

    @classmethod
    def fit(cls, samples: np.ndarray, components: int = 2, iterations: int = 8, max_samples: int = 2000) -> ColourModel | None:
        """EM fit on (N, 3) Lab samples, deterministic (components start as quantile slices along
        the principal axis); ``FLOOR_STD`` is added to every covariance. None below MIN_SAMPLES."""
        x = np.asarray(samples, np.float64)
        if len(x) < MIN_SAMPLES:
            return None
        if len(x) > max_samples:
            x = x[np.linspace(0, len(x) - 1, max_samples).astype(np.int64)]
        k = max(1, min(components, len(x) // MIN_SAMPLES))
        centred = x - x.mean(0)
        axis = np.linalg.svd(centred, full_matrices=False)[2][0]
        resp = np.zeros((len(x), k))
        resp[np.argsort(centred @ axis), np.arange(len(x)) * k // len(x)] = 1.0
        floor = np.diag(FLOOR_STD**2)
        for i in range(iterations):
            nk = resp.sum(0) + 1e-9
            means = resp.T @ x / nk[:, None]
            covs = np.stack([((x - m) * r[:, None]).T @ (x - m) / n for m, r, n in zip(means, resp.T, nk)]) + floor
            model = cls(means, covs, nk / nk.sum())
            if i + 1 < iterations:
                resp = model._log_joint(x)
                resp = np.exp(resp - _logsumexp(resp)[:, None])
        return model

    @classmethod
    def gaussian(cls, mean: np.ndarray, std: np.ndarray) -> ColourModel:
        """A single axis-aligned Gaussian."""
        return cls(np.asarray(mean, np.float64)[None], np.diag(np.asarray(std, np.float64) ** 2)[None], np.ones(1))

    @cached_property
    def _whiten(self) -> np.ndarray:
        """(K, 3, 3) per-component W with ``W W^T = cov^-1``: ``|d W|^2`` is the squared Mahalanobis distance."""
        return np.linalg.cholesky(np.linalg.inv(self.covs))

    @cached_property
    def _log_norm(self) -> np.ndarray:
        """(K,) log weight - log normaliser of each component."""
        return np.log(self.weights) - 0.5 * (np.linalg.slogdet(self.covs)[1] + 3 * np.log(2 * np.pi))

    def _mahalanobis2(self, x: np.ndarray) -> np.ndarray:
        """(N, K) squared Mahalanobis distance of (N, 3) colours to each component."""
        return np.stack([np.square((x - m) @ w).sum(1) for m, w in zip(self.means, self._whiten)], axis=1)

    def _log_joint(self, x: np.ndarray) -> np.ndarray:
        return self._log_norm - 0.5 * self._mahalanobis2(x)

    def nll(self, x: np.ndarray) -> np.ndarray:
        """(N,) negative log-density (nats) of (N, 3) Lab colours."""
        return -_logsumexp(self._log_joint(np.asarray(x, np.float64)))

    def near(self, x: np.ndarray, chi2: float = CHI2_3_99) -> np.ndarray:
        """(N,) bool: within ``chi2`` squared Mahalanobis distance of some component."""
        return self._mahalanobis2(np.asarray(x, np.float64)).min(1) < chi2

    def without(self, other: ColourModel, chi2: float = 7.81) -> ColourModel:
        """This model without its components of the same colour as a component of ``other``
        (squared Mahalanobis distance between the means under the sum of both covariances below
        ``chi2``); itself when every component would go."""
        d = self.means[:, None, :] - other.means[None]
        m2 = np.einsum("kji,kjil,kjl->kj", d, np.linalg.inv(self.covs[:, None] + other.covs[None]), d)
        keep = (m2 >= chi2).all(1)
        if keep.all() or not keep.any():
            return self
        return ColourModel(self.means[keep], self.covs[keep], self.weights[keep] / self.weights[keep].sum())

    def lightness_tolerant(self, factor: float) -> ColourModel:
        """The same model with the L standard deviation multiplied by ``factor`` (to match an
        in-shop photo's colours under the person image's different lighting)."""
        scale = np.array([factor, 1.0, 1.0])
        return ColourModel(self.means, self.covs * np.outer(scale, scale)[None], self.weights)


def garment_colours(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, 3) Lab colours of an in-shop garment image's garment pixels (mask eroded by 1 px so
    that the edges' blend with the background is left out)."""
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return colour_features(image)[inner if inner.any() else mask.astype(bool)]


@dataclass(frozen=True)
class Evidence:
    """What a pixel's features tell apart, and the sampling thresholds that follow from it.

    ``colour``: CIE Lab, where skin, garments and hair differ in chromaticity whatever the
    shading. ``luminance`` (an image without colour: :func:`shows_colour`): lightness alone (a and
    b set to 0), where one surface's shading spans about as much lightness as the difference
    between skin and most garments, so a zone's pixels sample a garment, hair or shoe model from
    one standard deviation off the skin model, no mixture component is dropped for being near the
    skin's lightness, and the in-shop garment's lightness is matched as it is.
    """

    colour: bool
    not_skin: float  # squared Mahalanobis distance from skin beyond which a chest or thigh pixel samples a garment
    clear_skin: float  # ... within which a crown or foot pixel is skin (left out of the hair and shoe samples)
    drop_skin_components: bool  # garment mixture components of the skin's colour are dropped (:meth:`ColourModel.without`)
    shop_lightness_tolerance: float  # :meth:`ColourModel.lightness_tolerant` factor of the in-shop garment's model

    def features(self, lab: np.ndarray) -> np.ndarray:
        """(N, 3) :func:`colour_features` as this evidence sees them: unchanged, or with a and b
        set to 0 (without colour they are noise)."""
        return lab if self.colour else lab * np.array([1.0, 0.0, 0.0])

    @property
    def skin_prior(self) -> ColourModel:
        """The generic skin model :data:`SKIN_PRIOR`, its chromaticity 0 without colour."""
        mean, std = SKIN_PRIOR
        return ColourModel.gaussian(self.features(mean[None])[0], std)


COLOUR = Evidence(colour=True, not_skin=CHI2_3_99, clear_skin=CLEAR_SKIN, drop_skin_components=True, shop_lightness_tolerance=3.0)
LUMINANCE = Evidence(colour=False, not_skin=1.0, clear_skin=1.0, drop_skin_components=False, shop_lightness_tolerance=1.0)


def skin_model(lab: np.ndarray, pixels: np.ndarray, trusted: bool, prior: ColourModel) -> ColourModel:
    """Skin colours from the (N, 3) ``lab`` colours of the ``pixels`` (N,) bool: the face oval
    (``trusted``) or places skin usually shows (face centre, hands: only the colours that the
    generic skin model ``prior``, :attr:`Evidence.skin_prior`, accepts). A 3-component mixture is
    fitted to those with L between their 10th and 95th percentiles (no eyes, brows, nostrils,
    shadows or highlights) and its heaviest component whose mean the prior accepts (the heaviest
    if none) is the skin (lips, hair, sleeves fall in the others); the prior itself without
    enough pixels."""
    x = lab[pixels]
    if not trusted:
        x = x[prior.near(x)]
    if len(x):
        lo, hi = np.percentile(x[:, 0], [10, 95])
        x = x[(x[:, 0] >= lo) & (x[:, 0] <= hi)]
    mixture = ColourModel.fit(x, components=3)
    if mixture is None:
        return prior
    plausible = prior.near(mixture.means)
    k = int(np.argmax(np.where(plausible, mixture.weights, -1.0) if plausible.any() else mixture.weights))
    return ColourModel(mixture.means[k : k + 1], mixture.covs[k : k + 1], np.ones(1))


@dataclass(frozen=True)
class Models:
    """The person's colour models (None: not seen on this person)."""

    skin: ColourModel
    hair: ColourModel | None
    top: ColourModel | None
    bottom: ColourModel | None
    shoe: ColourModel | None
    one_colour: bool  # top and bottom of the same colours (:func:`_same_garment`)

    def costs(self, x: np.ndarray, lower: np.ndarray, cap: float = NLL_CAP) -> tuple[np.ndarray, np.ndarray]:
        """(4, N) negative log-density (nats, at most ``cap``) of (N, 3) colours for each
        :class:`Material`, and (4, N) bool where the material has no model. A garment is the
        likelier of the top and the bottom on the ``lower`` (N,) bool pixels (where a bottom may
        be), the top elsewhere."""
        nll = {k: np.minimum(m.nll(x), cap) if m is not None else np.full(len(x), cap) for k, m in
               (("skin", self.skin), ("hair", self.hair), ("top", self.top), ("bottom", self.bottom), ("shoe", self.shoe))}  # fmt: skip
        garment = np.where(lower, np.minimum(nll["top"], nll["bottom"]), nll["top"])
        missing = [self.hair is None, self.top is None and self.bottom is None, self.shoe is None]
        absent = np.stack([np.zeros(len(x), bool)] + [np.full(len(x), m) for m in missing])
        if self.top is None and self.bottom is not None:
            absent[Material.GARMENT] = ~lower
        return np.stack([nll["skin"], nll["hair"], garment, nll["shoe"]]), absent


def _not(model: ColourModel | None, x: np.ndarray) -> np.ndarray:
    """(N,) bool: colours ``model`` does not claim (all when there is no model)."""
    return ~model.near(x) if model is not None else np.ones(len(x), bool)


def colour_models(
    lab: np.ndarray,
    zone: np.ndarray,
    torso_t: np.ndarray,
    leg_f: np.ndarray,
    skin: ColourModel,
    garment: np.ndarray | None,
    category: str | None,
    evidence: Evidence = COLOUR,
) -> Models:
    """Fit the person's models from its pixels: ``lab`` (N, 3), their ``zone`` (N,) (a
    :class:`Part` or CROWN), torso coordinate ``torso_t`` (N,), hip-to-ankle fraction ``leg_f``
    (N,) (nan off the legs); ``garment`` (M, 3) in-shop Lab colours or None; ``category``
    upper_body | lower_body | dresses | None; the sampling thresholds of ``evidence``.

    ``one_colour`` tells whether the top and bottom have the same colours (:func:`_same_garment`).
    """
    torso = zone == Part.TORSO
    chest = torso & (torso_t >= CHEST[0]) & (torso_t <= CHEST[1])
    thighs = np.isin(zone, (Part.R_LEG, Part.L_LEG)) & (leg_f >= THIGHS[0]) & (leg_f <= THIGHS[1])
    not_skin = ~skin.near(lab, evidence.not_skin)
    ref = ColourModel.fit(garment, components=3) if garment is not None else None
    role = None
    if ref is not None:
        ref = ref.lightness_tolerant(evidence.shop_lightness_tolerance)
        matches = ref.near(lab) & (ref.nll(lab) < skin.nll(lab))
        role = {"lower_body": "bottom", "dresses": "dress"}.get(category or "", "top")
    if role == "bottom":
        bottom_samples = lab[matches & (thighs | (torso & (torso_t > CHEST[1])))]
        bottom = ColourModel.fit(bottom_samples, components=3)
        top_samples = lab[chest & not_skin & _not(bottom, lab)]
    else:
        if role is None:
            top_samples = lab[chest & not_skin]
        else:
            top_samples = lab[matches & ((torso | thighs) if role == "dress" else chest)]
        bottom_samples = lab[thighs & not_skin]
        bottom = ColourModel.fit(bottom_samples, components=3)
    top = ColourModel.fit(top_samples, components=3)
    if evidence.drop_skin_components:  # skin slipped into the samples
        top, bottom = (m.without(skin) if m is not None else None for m in (top, bottom))
    one_colour = top is not None and bottom is not None and _same_garment(top, top_samples, bottom, bottom_samples)
    crown = lab[zone == CROWN]
    hair = ColourModel.fit(crown[~skin.near(crown, evidence.clear_skin)], components=2)
    feet = np.isin(zone, (Part.R_FOOT, Part.L_FOOT)) & ~skin.near(lab, evidence.clear_skin)
    shoe = ColourModel.fit(lab[feet & _not(bottom, lab)], components=2) or ColourModel.fit(lab[feet], components=2)
    return Models(skin, hair, top, bottom, shoe, one_colour)


def _same_garment(top: ColourModel, top_samples: np.ndarray, bottom: ColourModel, bottom_samples: np.ndarray) -> bool:
    """Whether each model explains the other's samples within SAME_COLOURS nats per pixel of
    their own (one colour scheme on the chest and on the thighs: a dress, a long top, a matching
    set)."""
    return bool(
        np.mean(top.nll(bottom_samples) - bottom.nll(bottom_samples)) < SAME_COLOURS
        and np.mean(bottom.nll(top_samples) - top.nll(top_samples)) < SAME_COLOURS
    )
