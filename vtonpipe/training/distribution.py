"""Set-level image metrics of generated images: FID, KID, IS (on Inception-v3 features) and
LPIPS (on AlexNet features), the statistics on features and the weight files they need.

The statistics are computed here on feature arrays, float64:

- :func:`frechet_distance` (FID, Heusel et al. 2017): ``|mu_1 - mu_2|^2 + Tr(S_1 + S_2 -
  2 (S_1 S_2)^(1/2))`` of the two feature sets' means and covariances (unbiased, ``N - 1``);
- :func:`kernel_inception_distance` (KID, Binkowski et al. 2018): the unbiased MMD^2 estimate
  under the cubic polynomial kernel ``k(x, y) = (x . y / d + 1)^3``, averaged over random subsets;
- :func:`inception_score` (IS, Salimans et al. 2016): ``exp(E_x KL(p(y|x) || p(y)))`` per split of
  the class probabilities, mean and standard deviation over the splits.

The feature networks need weight files the user brings (:data:`WEIGHT_FILES`, under
``<weights_dir>``): pytorch-fid's FID Inception-v3 for FID / KID / IS, torchvision's AlexNet and
the LPIPS v0.1 linear layers for LPIPS. :func:`require_weights` raises
:class:`~vtonpipe.core.MissingWeightsError` naming the file, where to put it and its checksum.
The Inception-v3 and LPIPS networks themselves are not implemented yet
(:func:`feature_network` says so once the weights are present).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.errors import MissingWeightsError
from ..core.weights import WeightFile

#: metric -> the weight files its feature network needs
WEIGHT_FILES: dict[str, tuple[WeightFile, ...]] = {}
_INCEPTION = WeightFile(
    "inception/pt_inception-2015-12-05-6726825d.pth",
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    None,
    "pytorch-fid's FID Inception-v3 (TF 2015-12-05 graph), for FID, KID and IS; sha256 begins 6726825d",
)
_ALEXNET = WeightFile(
    "lpips/alexnet-owt-7be5be79.pth",
    "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    None,
    "torchvision AlexNet ImageNet weights, LPIPS's backbone; sha256 begins 7be5be79",
)
_LPIPS_LIN = WeightFile(
    "lpips/alex.pth",
    "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
    None,
    "LPIPS v0.1 linear layers for AlexNet",
)
WEIGHT_FILES.update({"fid": (_INCEPTION,), "kid": (_INCEPTION,), "is": (_INCEPTION,), "lpips": (_ALEXNET, _LPIPS_LIN)})
DISTRIBUTION_METRICS = tuple(WEIGHT_FILES)


def weight_problems(metric: str) -> list[str]:
    """What is missing to compute ``metric`` (empty when its weight files are present)."""
    if metric not in WEIGHT_FILES:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(DISTRIBUTION_METRICS)}")
    return [p for f in WEIGHT_FILES[metric] if (p := f.problem())]


def require_weights(metrics: Sequence[str]) -> None:
    """:class:`MissingWeightsError` listing every missing file of the requested ``metrics``."""
    problems = sorted({p for m in metrics for p in weight_problems(m)})
    if problems:
        raise MissingWeightsError(f"{', '.join(metrics)} need weight files that are not here: " + "; ".join(problems))


def feature_network(metric: str):
    """The feature network of ``metric`` (weights checked first). Not implemented yet: raises
    :class:`NotImplementedError` saying so once the weights are present."""
    require_weights([metric])
    raise NotImplementedError(
        f"{metric}: the weight files are present but vtonpipe does not implement the "
        f"{'LPIPS AlexNet' if metric == 'lpips' else 'FID Inception-v3'} network yet; the statistics "
        "(vtonpipe.training.distribution.frechet_distance, kernel_inception_distance, inception_score) take its features"
    )


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative
    eigenvalues from round-off clipped to 0)."""
    w, v = np.linalg.eigh(matrix)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(d,)`` and unbiased covariance ``(d, d)`` of ``features`` ``(N, d)``, N >= 2."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"expected (N >= 2, d) features, got shape {f.shape}")
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance of two Gaussians: ``|mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2))``.

    ``Tr((S1 S2)^(1/2))`` is computed as ``Tr((A S2 A)^(1/2))`` with ``A = S1^(1/2)`` (the same
    eigenvalues, and ``A S2 A`` is symmetric PSD, so no complex round-off as with ``sqrtm``)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    a = _psd_sqrt(s1)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(a @ s2 @ a), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * cross)


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID of two feature sets ``(N, d)``, ``(M, d)`` (pool3 features of the FID Inception)."""
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


def polynomial_mmd2(x: np.ndarray, y: np.ndarray, degree: int = 3, coef: float = 1.0) -> float:
    """Unbiased MMD^2 of samples ``x`` (m, d), ``y`` (n, d) under ``k(a, b) = (a . b / d + coef)^degree``:
    ``mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j)``; m, n >= 2."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m, n, d = len(x), len(y), x.shape[1]
    if m < 2 or n < 2:
        raise ValueError("the unbiased MMD needs at least 2 samples per set")
    kxx = (x @ x.T / d + coef) ** degree
    kyy = (y @ y.T / d + coef) ** degree
    kxy = (x @ y.T / d + coef) ** degree
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, *, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID: mean and standard deviation over ``subsets`` random subsets (``subset_size`` of each
    set, drawn without replacement; the whole set when smaller) of :func:`polynomial_mmd2`."""
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(real), len(fake))
    values = [polynomial_mmd2(real[rng.choice(len(real), size, replace=False)], fake[rng.choice(len(fake), size, replace=False)]) for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


def inception_score(probs: np.ndarray, splits: int = 10, eps: float = 1e-12) -> tuple[float, float]:
    """IS of class probabilities ``probs`` (N, K) (rows summing to 1): per split of consecutive
    rows, ``exp(mean_x sum_k p(k|x) (log p(k|x) - log p(k)))`` with ``p(k)`` the split's mean;
    returns the mean and standard deviation over the ``splits`` splits."""
    p = np.asarray(probs, np.float64)
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(0, keepdims=True)
        kl = (part * (np.log(part + eps) - np.log(marginal + eps))).sum(1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
