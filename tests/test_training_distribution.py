"""FID, KID and IS statistics on hand-checked feature sets, and the weight-file contract."""

import numpy as np
import pytest
import scipy.linalg

from vtonpipe.core.errors import MissingWeightsError
from vtonpipe.training import distribution as dist


def test_frechet_distance_of_1d_gaussians_is_mean_and_std_differences_squared():
    # (m1 - m2)^2 + s1^2 + s2^2 - 2 s1 s2 = (m1 - m2)^2 + (s1 - s2)^2: means 1 and 4, stds 2 and 3
    assert dist.frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([4.0]), np.array([[9.0]])) == pytest.approx(9 + 1)


def test_frechet_distance_matches_the_sqrtm_formula_and_is_zero_for_equal_gaussians():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T, b @ b.T + np.eye(5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert dist.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert dist.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-9)


def test_fid_from_features_uses_unbiased_covariances():
    real = np.array([[0.0], [2.0]])  # mean 1, variance 2
    fake = np.array([[1.0], [3.0], [5.0]])  # mean 3, variance 4
    assert dist.fid_from_features(real, fake) == pytest.approx(4 + 2 + 4 - 2 * np.sqrt(8))


def test_polynomial_mmd2_on_a_hand_computed_case():
    # d = 1, k(a, b) = (a b + 1)^3: k(0,1) = 1, k(2,1) = 27, cross k(0,1) = 1, k(0,2) = 1, k(1,1) = 8, k(1,2) = 27
    x, y = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    assert dist.polynomial_mmd2(x, y) == pytest.approx(1 + 27 - 2 * (1 + 1 + 8 + 27) / 4)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_shifted_ones():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(400, 8))
    same, _ = dist.kernel_inception_distance(real, rng.normal(size=(400, 8)), subsets=20, subset_size=200)
    shifted, _ = dist.kernel_inception_distance(real, rng.normal(size=(400, 8)) + 1.0, subsets=20, subset_size=200)
    assert abs(same) < 0.01 and shifted > 0.1


def test_inception_score_of_uniform_and_of_confident_balanced_predictions():
    k = 5
    assert dist.inception_score(np.full((50, k), 1 / k), splits=5)[0] == pytest.approx(1.0)
    one_hot = np.eye(k)[np.arange(50) % k]  # every split holds each class equally often
    mean, std = dist.inception_score(one_hot, splits=5)
    assert mean == pytest.approx(k, rel=1e-6) and std == pytest.approx(0, abs=1e-6)


def test_missing_weights_name_the_file_the_place_and_the_checksum(tmp_path, monkeypatch):
    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(tmp_path))
    with pytest.raises(MissingWeightsError, match=r"pt_inception-2015-12-05-6726825d\.pth.*put it at .*inception.*6726825d"):
        dist.require_weights(["fid"])
    with pytest.raises(MissingWeightsError, match=r"alexnet-owt-7be5be79\.pth"):
        dist.load_lpips()


def _weights(tmp_path, monkeypatch):
    """Randomly initialised networks saved under the expected file names (checksums not checked)."""
    import torch

    from vtonpipe.models.nets.inception_fid import FIDInceptionV3
    from vtonpipe.models.nets.lpips import LPIPS

    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(tmp_path))
    monkeypatch.setattr(dist, "INCEPTION_SHA256_PREFIX", "")
    monkeypatch.setattr(dist, "ALEXNET_SHA256_PREFIX", "")
    torch.manual_seed(0)
    (tmp_path / "inception").mkdir()
    (tmp_path / "lpips").mkdir()
    torch.save(FIDInceptionV3().state_dict(), tmp_path / "inception" / "pt_inception-2015-12-05-6726825d.pth")
    lp = LPIPS()
    for lin in lp.lins:
        lin.weight.abs_()
    torch.save(
        {f"features.{k}": v for k, v in lp.features.state_dict().items()} | {"classifier.1.weight": torch.zeros(4096, 9216)},
        tmp_path / "lpips" / "alexnet-owt-7be5be79.pth",
    )
    torch.save({f"lin{i}.model.1.weight": lin.weight for i, lin in enumerate(lp.lins)}, tmp_path / "lpips" / "alex.pth")


def test_the_networks_load_their_published_layouts_and_feed_the_statistics(tmp_path, monkeypatch, one_torch_thread):
    import torch

    _weights(tmp_path, monkeypatch)
    net = dist.load_inception()
    assert net.fc.weight.shape == (1008, 2048) and "Mixed_7c.branch3x3dbl_3b.bn.running_var" in net.state_dict()
    metrics = dist.DistributionMetrics(["fid", "kid", "is", "lpips"])
    g = torch.Generator().manual_seed(0)
    target = torch.rand(3, 3, 64, 48, generator=g)
    metrics.add(target.flip(-1), target, torch.tensor([True, True, False]))
    out = metrics.results()
    assert out["paired"]["fid"] is not None and out["unpaired"]["fid"] is None  # one unpaired image: no covariance
    assert out["paired"]["is"] >= 1 - 1e-9 and out["paired"]["lpips"] > 0
    lp = dist.load_lpips()
    assert torch.allclose(lp(target, target), torch.zeros(3)) and (lp(target, target.flip(-1)) > 0).all()


def test_doctor_lists_the_trainers_and_evaluations_weight_files(tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from vtonpipe.cli import main

    monkeypatch.setenv("VTONPIPE_WEIGHTS", str(tmp_path))
    out = CliRunner().invoke(main, ["doctor", "--json"])
    files = {w["file"]: w for w in json.loads(out.output)["training_weights"]}
    assert set(files) == {"vgg/vgg19-dcbb9e9d.pth", "inception/pt_inception-2015-12-05-6726825d.pth", "lpips/alexnet-owt-7be5be79.pth", "lpips/alex.pth"}
    assert not files["lpips/alex.pth"]["present"] and str(tmp_path / "lpips" / "alex.pth") in files["lpips/alex.pth"]["problem"]
    assert files["inception/pt_inception-2015-12-05-6726825d.pth"]["used_by"] == "eval --metric fid, eval --metric kid, eval --metric is"
