"""Parity of ganeval.ssim with scikit-image's Gaussian SSIM (the definition we promise)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import rgb2gray
from skimage.metrics import structural_similarity

from ganeval.errors import BadInput
from ganeval.ssim import SSIMEngine, _planes_torch, gaussian_taps, planar, ssim, ssim_matrix, to_planes, valid_filter_matrix


def skimage_ssim(a: np.ndarray, b: np.ndarray, gray: bool = False) -> float:
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    if gray:
        return structural_similarity(rgb2gray(a), rgb2gray(b), data_range=1.0, **kw)
    return structural_similarity(a, b, channel_axis=-1, data_range=255, **kw)


def _pairs(faces32: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    smooth = np.clip(faces32[:6].astype(int) + rng.integers(-40, 41, size=(6, 32, 32, 3)), 0, 255).astype(np.uint8)
    flat = np.stack([np.full((32, 32, 3), v, np.uint8) for v in (0, 7, 128, 255)])
    a = np.concatenate([noise, faces32[:10], smooth, flat])
    b = np.concatenate([noise[::-1], faces32[10:20], faces32[:6], flat[::-1]])
    return a, b


@pytest.mark.parity
@pytest.mark.parametrize("gray", [False, True])
def test_matrix_matches_skimage(faces32, gray, parity):
    """Random, synthetic-face, noisy and constant images, all pairs, float32 engine."""
    a, b = _pairs(faces32)
    ours = ssim_matrix(a, b, gray=gray)
    ref = np.array([[skimage_ssim(x, y, gray) for y in b] for x in a])
    parity(f"SSIM matrix ({'luminance' if gray else 'RGB'}), batched float32", "scikit-image structural_similarity",
           ours, ref)
    assert np.abs(ours - ref).max() < 1e-5
    assert ref.min() < 0.05 and ref.max() > 0.999  # the set spans the whole range


@pytest.mark.parity
@pytest.mark.parametrize("shape", [(11, 11), (40, 57), (64, 64)])
def test_single_pair_float64_exact(shape, parity):
    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-60, 61, size=a.shape), 0, 255).astype(np.uint8)
    parity("SSIM of one pair, float64", "scikit-image structural_similarity", ssim(a, b), skimage_ssim(a, b))
    for gray in (False, True):
        assert ssim(a, b, gray=gray) == pytest.approx(skimage_ssim(a, b, gray), abs=1e-9)


def test_identical_images_score_one(faces32):
    assert ssim(faces32[0], faces32[0]) == pytest.approx(1.0, abs=1e-12)
    assert ssim_matrix(faces32[:3], faces32[:3]).diagonal() == pytest.approx(np.ones(3), abs=1e-6)


def test_filter_is_scipy_gaussian_on_valid_region():
    from scipy.ndimage import gaussian_filter

    taps = gaussian_taps()
    assert len(taps) == 11 and taps.sum() == pytest.approx(1.0)
    x = np.random.default_rng(1).random((30, 23))
    ref = gaussian_filter(x, 1.5, truncate=3.5, mode="reflect")[5:-5, 5:-5]
    ours = valid_filter_matrix(30) @ x @ valid_filter_matrix(23).T
    assert np.abs(ours - ref).max() < 1e-12


def test_strided_score_is_the_subsampled_ssim_map(faces32):
    """The screening score is exactly the mean of skimage's SSIM map at every 4th pixel."""
    a, b = faces32[30], faces32[31]
    _, smap = structural_similarity(a, b, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, full=True)
    ref = smap[5:-5, 5:-5][::4, ::4].mean()
    engine = SSIMEngine(32, 32, stride=4)
    full = engine.one_to_many(engine.moments(a[None]), 0, engine.moments(b[None]))
    mu, var = engine.local_stats(b[None])
    raw = engine.one_to_raw(engine.moments(a[None]), 0, planar(b[None]), mu, var)
    assert float(full[0]) == pytest.approx(ref, abs=1e-5)
    assert float(raw[0]) == pytest.approx(ref, abs=1e-5)


def test_pairs_and_cross_agree(faces32):
    engine = SSIMEngine(32, 32, chunk=3)  # tiny chunks exercise the chunk loop
    x, y = engine.moments(faces32[:4]), engine.moments(planar(faces32[4:11]))  # both layouts
    cross = engine.cross(x, y)
    ix, iy = torch.tensor([0, 3, 2, 1]), torch.tensor([6, 0, 5, 2])
    assert engine.pairs(x, y, ix, iy).numpy() == pytest.approx(cross[ix, iy].numpy(), abs=1e-7)


def test_too_small_or_mismatched_images():
    tiny = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(BadInput, match="at least 11"):
        ssim_matrix(tiny, tiny)
    with pytest.raises(BadInput, match="differ"):
        ssim(np.zeros((16, 16, 3), np.uint8), np.zeros((16, 17, 3), np.uint8))
    with pytest.raises(BadInput, match="RGB"):
        SSIMEngine(16, 16).moments(np.zeros((1, 16, 16, 4), np.uint8))


@pytest.mark.parametrize("gray", [False, True])
def test_device_path_matches_numpy_path(faces32, gray):
    """The GPU branch of to_planes, run on CPU tensors, equals the numpy branch."""
    imgs = faces32[:3]
    ref = to_planes(imgs, gray=gray)
    assert torch.equal(_planes_torch(torch.from_numpy(imgs), True, gray, torch.float32), ref)
    assert torch.equal(_planes_torch(torch.from_numpy(planar(imgs)), False, gray, torch.float32), ref)
    assert torch.equal(to_planes(planar(imgs), gray=gray), ref)
