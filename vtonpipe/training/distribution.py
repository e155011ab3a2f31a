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
The networks are :mod:`vtonpipe.models.nets.inception_fid` and :mod:`vtonpipe.models.nets.lpips`
(:func:`load_inception`, :func:`load_lpips`); :class:`DistributionMetrics` accumulates their
outputs over an evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.errors import MissingWeightsError
from ..core.weights import WeightFile, check_sha256_prefix

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
#: the first hex digits of the files' sha256 (torch.hub's convention: they are in the file names)
INCEPTION_SHA256_PREFIX = "6726825d"
ALEXNET_SHA256_PREFIX = "7be5be79"
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


def _load(file: WeightFile, sha256_prefix: str | None) -> dict:
    """State dict of ``file`` (its sha256 checked against ``sha256_prefix``), ``weights_only``."""
    import torch

    path = file.require()
    if sha256_prefix is not None:
        check_sha256_prefix(path, sha256_prefix)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise MissingWeightsError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


def load_inception():
    """The FID Inception-v3 (:class:`~vtonpipe.models.nets.inception_fid.FIDInceptionV3`) on its
    weight file; :class:`MissingWeightsError` when the file is absent or not the expected one."""
    from ..models.nets.inception_fid import FIDInceptionV3

    net = FIDInceptionV3()
    net.load_state_dict(_load(_INCEPTION, INCEPTION_SHA256_PREFIX))
    return net.eval()


def load_lpips():
    """LPIPS-AlexNet (:class:`~vtonpipe.models.nets.lpips.LPIPS`) on its two weight files."""
    from ..models.nets.lpips import LPIPS

    return LPIPS().load(_load(_ALEXNET, ALEXNET_SHA256_PREFIX), _load(_LPIPS_LIN, None))


class DistributionMetrics:
    """Accumulates what the requested ``metrics`` need over an evaluation, batch by batch
    (:meth:`add`), and computes them (:meth:`results`): FID and KID of the generated images of
    each kind (``paired`` / ``unpaired``) against every target image seen, IS of the generated
    ones, and the mean LPIPS of the paired ones to their targets."""

    def __init__(self, metrics, device="cpu"):
        require_weights(metrics)
        self.metrics = tuple(metrics)
        self.inception = load_inception().to(device) if set(self.metrics) & {"fid", "kid", "is"} else None
        self.lpips = load_lpips().to(device) if "lpips" in self.metrics else None
        self.real: list[np.ndarray] = []
        self.fake: dict[str, list[np.ndarray]] = {"paired": [], "unpaired": []}
        self.probs: dict[str, list[np.ndarray]] = {"paired": [], "unpaired": []}
        self.lpips_values: list[np.ndarray] = []

    def add(self, tryon, target, paired) -> None:
        """One batch: generated ``tryon`` and ``target`` (B, 3, H, W) in [0, 1], ``paired`` (B,) bool."""
        import torch

        mask = paired.bool().cpu().numpy()
        if self.inception is not None:
            real_f, _ = self.inception(target.float())
            fake_f, logits = self.inception(tryon.float().clamp(0, 1))
            probs = torch.softmax(logits, 1).double().cpu().numpy()
            self.real.append(real_f.double().cpu().numpy())
            fake_f = fake_f.double().cpu().numpy()
            for kind, sel in (("paired", mask), ("unpaired", ~mask)):
                self.fake[kind].append(fake_f[sel])
                self.probs[kind].append(probs[sel])
        if self.lpips is not None and mask.any():
            self.lpips_values.append(self.lpips(tryon.float().clamp(0, 1)[mask], target.float()[mask]).double().cpu().numpy())

    def results(self) -> dict[str, dict[str, float | None]]:
        """``{"paired": {...}, "unpaired": {...}}`` of the requested metrics (None where a set has
        fewer than 2 images)."""
        out: dict[str, dict[str, float | None]] = {"paired": {}, "unpaired": {}}
        real = np.concatenate(self.real) if self.real else np.zeros((0, 2048))
        for kind in out:
            fake = np.concatenate(self.fake[kind]) if self.fake[kind] else np.zeros((0, 2048))
            enough = len(fake) >= 2 and len(real) >= 2
            if "fid" in self.metrics:
                out[kind]["fid"] = fid_from_features(real, fake) if enough else None
            if "kid" in self.metrics:
                out[kind]["kid"] = kernel_inception_distance(real, fake)[0] if enough else None
            if "is" in self.metrics:
                probs = np.concatenate(self.probs[kind]) if self.probs[kind] else np.zeros((0, 1008))
                out[kind]["is"] = inception_score(probs, splits=min(10, len(probs)))[0] if len(probs) >= 1 else None
        if "lpips" in self.metrics:
            out["paired"]["lpips"] = float(np.concatenate(self.lpips_values).mean()) if self.lpips_values else None
        return out


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
