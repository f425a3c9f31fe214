"""Parity with pytorch-fid and torch-fidelity on identical inputs and identical weights."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ganeval.compat import ensure_torchvision_importable
from ganeval.features.inception import InceptionExtractor, load_inception_state
from ganeval.metrics.fid import frechet_distance, mean_and_covariance
from ganeval.metrics.kid import kernel_inception_distance
from ganeval.features.featureset import FeatureSet
from ganeval.stats import load_stats, save_stats

ensure_torchvision_importable()
from pytorch_fid import fid_score as pfid_score  # noqa: E402
from pytorch_fid import inception as pfid_inception  # noqa: E402
from torch_fidelity.metric_fid import fid_statistics_to_metric  # noqa: E402
from torch_fidelity.metric_kid import kid_features_to_metric  # noqa: E402


@pytest.fixture(scope="module")
def both_networks(inception_state):
    state = inception_state
    # bypass pytorch-fid's download: its loader gets our state dict
    original = pfid_inception.load_state_dict_from_url
    pfid_inception.load_state_dict_from_url = lambda *a, **k: state
    try:
        reference = pfid_inception.InceptionV3([pfid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    finally:
        pfid_inception.load_state_dict_from_url = original
    ours = InceptionExtractor({k: v for k, v in state.items() if not k.startswith("fc.")}, "test", False).eval()
    assert ours.info.mode == "exact"
    return ours, reference


@pytest.mark.parametrize("size", [32, 75, 299])
def test_inception_features_match_pytorch_fid(both_networks, size):
    ours, reference = both_networks
    gen = torch.Generator().manual_seed(size)
    images = torch.randint(0, 256, (3, 3, size, size), dtype=torch.uint8, generator=gen)
    with torch.inference_mode():
        a = ours(images)
        b = reference(images.float() / 255.0)[0].flatten(1)
    assert a.shape == (3, 2048)
    assert torch.allclose(a, b, rtol=0, atol=1e-5), (a - b).abs().max()
    # a meaningful comparison: features differ between images far more than the tolerance
    assert a.std(dim=0).mean() > 1e-2


@pytest.mark.parity
def test_synthetic_faces_features_match(both_networks, faces32, parity):
    ours, reference = both_networks
    images = torch.from_numpy(faces32[:4]).permute(0, 3, 1, 2).contiguous()
    with torch.inference_mode():
        a = ours(images)
        b = reference(images.float() / 255.0)[0].flatten(1)
    parity("Inception pool3 features, preset pytorch-fid", "pytorch-fid InceptionV3", a, b)
    assert (a - b).abs().max().item() < 1e-5
    assert a.std(dim=0).mean() > 1e-2


def _feature_pair(dim=64, n1=400, n2=350, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n1, dim))
    b = rng.normal(size=(n2, dim)) @ rng.normal(size=(dim, dim)) * 0.3 + 0.25
    return a, b


@pytest.mark.parity
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_matches_pytorch_fid_and_torch_fidelity(seed, parity):
    a, b = _feature_pair(seed=seed)
    m1, s1 = mean_and_covariance(a)
    m2, s2 = mean_and_covariance(b)
    # our mean/covariance equal pytorch-fid's np.mean / np.cov
    np.testing.assert_allclose(s1, np.cov(a, rowvar=False), rtol=1e-12, atol=1e-12)
    ours = frechet_distance(m1, s1, m2, s2)
    ref_pfid = pfid_score.calculate_frechet_distance(m1, s1, m2, s2)
    ref_tfid = fid_statistics_to_metric({"mu": m1, "sigma": s1}, {"mu": m2, "sigma": s2}, False)[
        "frechet_inception_distance"]
    parity("FID from (mu, sigma)", "pytorch-fid calculate_frechet_distance", ours, ref_pfid)
    parity("FID from (mu, sigma)", "torch-fidelity fid_statistics_to_metric", ours, ref_tfid)
    assert ours == pytest.approx(ref_pfid, rel=1e-6)
    assert ours == pytest.approx(ref_tfid, rel=1e-6)
    assert ours > 1.0


def test_frechet_identical_is_zero_and_singular_covariance_survives():
    a, _ = _feature_pair(dim=64, n1=20)  # 20 samples < 64 dims: singular sigma
    with pytest.warns(UserWarning, match="samples"):
        m, s = mean_and_covariance(a)
    assert frechet_distance(m, s, m, s) == pytest.approx(0.0, abs=1e-6)
    with pytest.warns(UserWarning, match="samples"):
        m2, s2 = mean_and_covariance(a[::-1] + 0.5)
    ref = fid_statistics_to_metric({"mu": m, "sigma": s}, {"mu": m2, "sigma": s2}, False)["frechet_inception_distance"]
    assert frechet_distance(m, s, m2, s2) == pytest.approx(ref, rel=1e-5)


def test_frechet_mismatched_dimensions():
    from ganeval.errors import BadInput

    with pytest.raises(BadInput, match="different dimensions"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


@pytest.mark.parity
@pytest.mark.parametrize("subset_size", [100, 300])
def test_kid_matches_torch_fidelity(subset_size, parity):
    a, b = _feature_pair(dim=32, n1=400, n2=380)
    ours = kernel_inception_distance(a, b, subsets=15, subset_size=subset_size)
    ref = kid_features_to_metric(
        torch.from_numpy(a), torch.from_numpy(b), kid_subsets=15, kid_subset_size=subset_size, verbose=False,
        rng_seed=2020, kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=1)
    parity("KID mean", "torch-fidelity kid_features_to_metric", ours.mean, ref["kernel_inception_distance_mean"])
    assert ours.mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-9)
    assert ours.std == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-9)
    assert ours.mean > 0


def test_kid_direct_path_equals_full_kernel_path(monkeypatch):
    import ganeval.metrics.kid as kid

    a, b = _feature_pair(dim=16, n1=120, n2=110)
    full = kid.kernel_inception_distance(a, b, subsets=5, subset_size=50)
    monkeypatch.setattr(kid, "_FULL_KERNEL_BYTES", 0)
    direct = kid.kernel_inception_distance(a, b, subsets=5, subset_size=50)
    assert direct.mean == pytest.approx(full.mean, rel=1e-10)


def test_stats_files_interchangeable_with_pytorch_fid(tmp_path):
    a, b = _feature_pair()
    ours_file = tmp_path / "ours.npz"
    save_stats(ours_file, FeatureSet.from_features("a", a, extractor="inception"))
    # pytorch-fid reads ours
    with np.load(ours_file) as f:
        mu, sigma = f["mu"][:], f["sigma"][:]
    np.testing.assert_allclose(mu, a.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(a, rowvar=False), rtol=1e-10, atol=1e-12)
    # we read pytorch-fid's (written exactly as its save_fid_stats does)
    theirs_file = tmp_path / "theirs.npz"
    np.savez_compressed(theirs_file, mu=b.mean(axis=0), sigma=np.cov(b, rowvar=False))
    fs = load_stats(theirs_file)
    assert fs.origin == "statistics" and fs.extractor is None
    value = frechet_distance(load_stats(ours_file).mu, load_stats(ours_file).sigma, fs.mu, fs.sigma)
    assert value == pytest.approx(pfid_score.calculate_frechet_distance(mu, sigma, fs.mu, fs.sigma), rel=1e-6)


def test_weight_loader_rejects_foreign_state(tmp_path):
    from ganeval.errors import BadInput

    path = tmp_path / "foreign.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(BadInput, match="not FID Inception weights"):
        load_inception_state(path)
    path.write_bytes(b"not a torch file")
    with pytest.raises(BadInput, match="not a readable"):
        load_inception_state(path)


def test_fast_mode_close_to_exact(both_networks, inception_state):
    ours, _ = both_networks
    fast = InceptionExtractor({k: v for k, v in inception_state.items() if not k.startswith("fc.")}, "t", False,
                              fast=True).eval()
    images = torch.randint(0, 256, (3, 3, 48, 48), dtype=torch.uint8, generator=torch.Generator().manual_seed(9))
    with torch.inference_mode():
        exact, quick = ours(images), fast(images)
    assert fast.info.mode == "fast" and ours.info.mode == "exact"
    assert (exact - quick).abs().max() < 1e-3  # float32 reordering only; exact vs float64 is ~1e-4 too


@pytest.mark.parity
def test_clean_resize_equals_clean_fid(parity):
    from cleanfid.resize import make_resizer

    from ganeval.features.inception import clean_resize

    resizer = make_resizer("PIL", False, "bicubic", (299, 299))
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (2, 41, 57, 3), dtype=np.uint8)
    ours = clean_resize(torch.from_numpy(images).permute(0, 3, 1, 2)).numpy()
    ref = np.stack([resizer(img) for img in images]).transpose(0, 3, 1, 2)
    assert ours.dtype == np.float32 and ours.shape == (2, 3, 299, 299)
    parity("Inception input after resize, preset clean-fid", "clean-fid make_resizer", ours, ref)
    np.testing.assert_array_equal(ours, ref)
    assert not np.array_equal(ref, np.round(ref))  # not quantised: that is the point of clean-fid


@pytest.mark.slow
@pytest.mark.parity
def test_clean_mode_features_match_clean_fid(inception_state, tmp_path, faces32, parity):
    """clean-fid's whole clean path on files (its ResizeDataset: Pillow decode, float bicubic,
    ToTensor) and its network. Its TF-graph TorchScript cannot be downloaded in tests; its
    forward is (x - 128) / 128 into the TF graph, which is clean-fid's own port of the graph
    (cleanfid.inception_pytorch, pytorch-fid's code) with our test weights."""
    from PIL import Image
    from cleanfid import inception_pytorch
    from cleanfid.utils import ResizeDataset

    files = []
    for i, face in enumerate(faces32[:3]):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(face).save(files[-1])
    dataset = ResizeDataset(files, mode="clean")
    batch = torch.stack([dataset[i] for i in range(len(files))])
    original = inception_pytorch.load_state_dict_from_url
    inception_pytorch.load_state_dict_from_url = lambda *a, **k: inception_state
    try:
        net = inception_pytorch.InceptionV3([3], resize_input=False, normalize_input=False).eval()
    finally:
        inception_pytorch.load_state_dict_from_url = original
    ours = InceptionExtractor(inception_state, "test", False, resize="clean").eval()
    images = torch.from_numpy(faces32[:3]).permute(0, 3, 1, 2).contiguous()
    with torch.inference_mode():
        ref = net((batch - 128) / 128)[0].flatten(1)
        got = ours(images)
        default = InceptionExtractor(inception_state, "test", False).eval()(images)
    assert ours.info.resize == "clean"
    parity("Inception pool3 features, preset clean-fid", "clean-fid InceptionV3 on ResizeDataset", got, ref)
    assert (got - ref).abs().max().item() < 1e-5
    assert (got - default).abs().max().item() > 1e-3  # the two resizes really differ


def test_logits_match_torch_fidelity_logits_unbiased(inception_state):
    """The Inception Score's input: pool3 @ fc.weightᵀ, as torch-fidelity's logits_unbiased."""
    ours = InceptionExtractor(inception_state, "test", False).eval()
    pool3 = torch.randn(4, 2048, generator=torch.Generator().manual_seed(0)).abs()
    got = ours.logits(pool3)
    assert got.shape == (4, 1008)
    assert torch.allclose(got, pool3.mm(inception_state["fc.weight"].T), atol=1e-6)
    no_fc = InceptionExtractor({k: v for k, v in inception_state.items() if not k.startswith("fc.")}, "t", False)
    from ganeval.errors import BadInput

    with pytest.raises(BadInput, match="classifier"):
        no_fc.logits(pool3)
