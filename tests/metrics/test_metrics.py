"""IS, precision/recall and density/coverage against torch-fidelity and prdc on identical inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ganeval.compat import ensure_torchvision_importable
from ganeval.errors import BadInput
from ganeval.metrics.inception_score import inception_score
from ganeval.metrics.prdc import kth_neighbour_sq_radii, prdc, subsample

ensure_torchvision_importable()  # torch-fidelity imports torchvision


def _pair(n1=300, n2=260, dim=24, seed=0):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n1, dim)).astype(np.float32)
    fake = (rng.normal(size=(n2, dim)) * 1.2 + 0.3).astype(np.float32)
    return real, fake


@pytest.mark.parity
@pytest.mark.parametrize("n", [100, 237])
def test_inception_score_matches_torch_fidelity(n, parity):
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = torch.randn(n, 1008, generator=torch.Generator().manual_seed(n)) * 3
    ours = inception_score(logits)
    ref = isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=2020)
    parity("Inception Score from logits", "torch-fidelity isc_features_to_metric", ours.mean,
           ref["inception_score_mean"])
    assert ours.mean == pytest.approx(ref["inception_score_mean"], rel=1e-6)
    assert ours.std == pytest.approx(ref["inception_score_std"], rel=1e-6)
    assert ours.mean > 1.5  # confident, varied logits score well above 1


def test_inception_score_too_few():
    with pytest.raises(BadInput, match="at least 10 samples"):
        inception_score(np.zeros((5, 1008)))


@pytest.mark.parity
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("block", [64, 4096])
def test_precision_recall_match_torch_fidelity(seed, block, parity):
    from torch_fidelity.metric_prc import calculate_precision_recall_full

    real, fake = _pair(seed=seed)
    ours = prdc(real, fake, k_pr=3, block=block)
    # torch-fidelity: features_1 is generated, features_2 real
    precision, recall = calculate_precision_recall_full(torch.from_numpy(fake), torch.from_numpy(real), 3, 10000)
    parity("precision and recall, k = 3", "torch-fidelity calculate_precision_recall_full",
           [ours.precision, ours.recall], [precision, recall])
    assert ours.precision == pytest.approx(precision, rel=1e-6)
    assert ours.recall == pytest.approx(recall, rel=1e-6)
    assert 0.05 < ours.precision < 0.99 and 0.05 < ours.recall < 0.99  # not a degenerate comparison


@pytest.mark.parity
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("block", [50, 4096])
def test_density_coverage_match_prdc_package(seed, block, capsys, parity):
    from prdc import compute_prdc

    real, fake = _pair(seed=seed)
    ours = prdc(real, fake, k_pr=5, k_dc=5, block=block)
    ref = compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    capsys.readouterr()
    keys = ("precision", "recall", "density", "coverage")
    parity("precision, recall, density, coverage, k = 5", "prdc compute_prdc",
           [getattr(ours, k) for k in keys], [float(ref[k]) for k in keys])
    for key in ("precision", "recall", "density", "coverage"):
        assert getattr(ours, key) == pytest.approx(float(ref[key]), rel=1e-6), key
    assert 0.05 < ours.coverage < 0.99 and ours.density > 0.05


def test_identical_sets_are_perfect():
    real, _ = _pair()
    res = prdc(real, real.copy())
    assert res.precision == 1.0 and res.recall == 1.0 and res.coverage == 1.0


def test_radii_equal_brute_force_and_bad_input():
    real, _ = _pair(n1=90)
    x = torch.from_numpy(real)
    radii = kth_neighbour_sq_radii(x, (3, 5), block=16)
    full = torch.cdist(x.double(), x.double()) ** 2
    brute = full.sort(dim=1).values
    assert torch.allclose(radii[3].double(), brute[:, 3], rtol=1e-4)
    assert torch.allclose(radii[5].double(), brute[:, 5], rtol=1e-4)
    with pytest.raises(BadInput, match="at least 6 samples"):
        prdc(real[:5], real[:40])
    with pytest.raises(BadInput, match="equal width"):
        prdc(real, real[:, :3])


def test_subsample_is_seeded_and_ordered():
    x = np.arange(100)[:, None].astype(np.float32)
    a, b = subsample(x, 10, 0), subsample(x, 10, 0)
    assert np.array_equal(a, b) and len(a) == 10 and np.all(np.diff(a[:, 0]) > 0)
    assert subsample(x, 200, 0) is x
