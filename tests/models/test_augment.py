"""ADA: the augmentation pipeline keeps shapes, passes gradients and keeps its promises;
the controller moves p towards r_t = 0.6."""
from __future__ import annotations

import pytest
import torch

from ganeval.models.augment import AdaController, AugmentPipe

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(n=6, c=3, size=16, seed=0):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("channels", [1, 3])
def test_full_strength_keeps_shapes_and_passes_gradients(channels):
    pipe = AugmentPipe(p=1.0)
    x = _images(c=channels).requires_grad_(True)
    y = pipe(x, torch.Generator().manual_seed(1))
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert not torch.allclose(y, x)
    (grad,) = torch.autograd.grad(y.square().sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # second order, as R1 needs: the gradient's own gradient reaches a weight behind the pipe
    w = torch.ones((), requires_grad=True)
    x2 = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad((pipe(x2 * w, torch.Generator().manual_seed(1)) ** 2).sum(), x2, create_graph=True)
    (gw,) = torch.autograd.grad(g.square().sum(), w)
    assert torch.isfinite(gw) and gw != 0


def test_zero_probability_is_the_identity_and_randomness_is_seeded():
    x = _images()
    assert AugmentPipe(p=0.0)(x) is x
    pipe = AugmentPipe(p=0.7)
    a = pipe(x, torch.Generator().manual_seed(3))
    b = pipe(x, torch.Generator().manual_seed(3))
    c = pipe(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # with p tiny every gate is closed: the resampling grid lands on pixel centres exactly
    torch.testing.assert_close(AugmentPipe(p=1e-9)(x, torch.Generator().manual_seed(0)), x, rtol=0, atol=1e-5)


def test_geometry_moves_pixels_but_not_a_constant_image():
    pipe = AugmentPipe(p=1.0, colour=False)
    flat = torch.full((4, 3, 16, 16), 0.3)
    torch.testing.assert_close(pipe(flat, torch.Generator().manual_seed(0)), flat)  # reflection padding: no borders
    x = _images()
    y = pipe(x, torch.Generator().manual_seed(0))
    assert (y - x).abs().mean() > 0.1
    # the sym6 low-pass of the supersampled path rings a little at edges (as the reference's does)
    spread = float(x.max() - x.min())
    assert y.min() >= x.min() - 0.15 * spread and y.max() <= x.max() + 0.15 * spread


def test_colour_transforms_keep_grey_grey_and_move_colours():
    pipe = AugmentPipe(p=1.0, geometric=False)
    grey = _images(c=1).expand(-1, 3, -1, -1).contiguous()
    y = pipe(grey, torch.Generator().manual_seed(0))
    # brightness, contrast, luma flip, hue rotation about the grey axis and saturation all map grey to grey
    torch.testing.assert_close(y[:, 0], y[:, 1], rtol=0, atol=1e-5)
    torch.testing.assert_close(y[:, 1], y[:, 2], rtol=0, atol=1e-5)
    x = _images()
    z = pipe(x, torch.Generator().manual_seed(0))
    # colour transforms act per pixel: the same affine map of RGB at every pixel of an image
    flat_x = torch.cat([x.flatten(2), torch.ones(6, 1, 256)], dim=1)  # N×4×HW
    solution = torch.linalg.lstsq(flat_x.transpose(1, 2), z.flatten(2).transpose(1, 2)).solution
    torch.testing.assert_close(flat_x.transpose(1, 2) @ solution, z.flatten(2).transpose(1, 2), rtol=0, atol=1e-4)


def test_p_rises_when_d_separates_and_falls_when_it_does_not():
    pipe = AugmentPipe(p=0.0)
    ada = AdaController(pipe, target=0.6, interval=4, speed_kimg=1.0)  # 1000 images take p from 0 to 1
    confident = torch.full((8,), 3.0)  # D calls every real image real: r_t = 1 > 0.6
    for _ in range(8):
        ada.accumulate(confident)
        ada.update(images_per_step=8)
    assert float(pipe.p) == pytest.approx(2 * 8 * 4 / 1000)  # two adjustments of 32 images each
    assert ada.last_rt == 1.0
    unsure = torch.tensor([1.0, -1.0, -2.0, 0.5])  # r_t = 0 < 0.6
    for _ in range(4):
        ada.accumulate(unsure)
        ada.update(images_per_step=8)
    assert float(pipe.p) == pytest.approx(8 * 4 / 1000) and ada.last_rt == 0.0
    for _ in range(40):
        ada.accumulate(unsure)
        ada.update(images_per_step=8)
    assert float(pipe.p) == 0.0  # clipped at 0
    for _ in range(4000):
        ada.accumulate(confident)
        ada.update(images_per_step=8)
    assert float(pipe.p) > 1.0  # not at 1: like the reference, p is bounded below only


def test_controller_state_round_trips():
    pipe = AugmentPipe()
    ada = AdaController(pipe, interval=3, speed_kimg=0.5)
    for _ in range(4):
        ada.accumulate(torch.ones(4))
        ada.update(images_per_step=4)
    other = AdaController(AugmentPipe(), interval=3, speed_kimg=0.5)
    other.load_state_dict(ada.state_dict())
    for a in (ada, other):
        for _ in range(2):
            a.accumulate(-torch.ones(4))
            a.update(images_per_step=4)
    assert float(other.pipe.p) == float(ada.pipe.p) and other.last_rt == ada.last_rt


# ---------------------------------------------------------------- the reference's geometric resampling (issue 15)

def test_sym6_taps_are_an_orthonormal_wavelet_low_pass():
    """Typos in the constants would break these identities (sum √2, unit energy, even shifts orthogonal)."""
    import math

    from ganeval.models.augment import SYM6

    h = torch.tensor(SYM6, dtype=torch.float64)
    assert len(h) == 12 and float(h.sum()) == pytest.approx(math.sqrt(2), abs=1e-12)
    assert float(h.square().sum()) == pytest.approx(1.0, abs=1e-11)
    for shift in (2, 4, 6, 8, 10):
        assert abs(float((h[:-shift] * h[shift:]).sum())) < 1e-11


def _smooth(n=2, c=3, size=24):
    """Low-frequency images: what resampling should carry over almost exactly."""
    coarse = torch.rand(n, c, 6, 6, generator=torch.Generator().manual_seed(3))
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)


def test_supersampled_resampling_keeps_the_image_under_the_identity_and_follows_transforms():
    import math

    from ganeval.models.augment import _rotate2d, _scale2d, geometric_resample

    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    eye = torch.eye(3).expand(3, 3, 3).clone()
    torch.testing.assert_close(geometric_resample(x, eye), x, atol=1e-5, rtol=0)  # sym6 up∘down: perfect reconstruction
    smooth = _smooth()
    flipped = geometric_resample(smooth, _scale2d(-torch.ones(2), torch.ones(2)))
    assert (flipped - smooth.flip(3)).abs().mean() < 0.01  # sym6 is nearly, not exactly, symmetric
    turned = geometric_resample(smooth, _rotate2d(torch.full((2,), math.pi / 2)))
    assert min(float((turned - torch.rot90(smooth, k, (2, 3))).abs().mean()) for k in (1, 3)) < 0.01
    half = geometric_resample(smooth, _scale2d(torch.full((2,), 2.0), torch.full((2,), 2.0)))  # zoom out ×2
    assert half.shape == smooth.shape and torch.isfinite(half).all()


def test_resampling_does_not_alias_a_fine_pattern_into_a_coarse_one():
    """A zoom-out of a pixel-wide checkerboard: point sampling (grid_sample alone) turns it into
    a strong coarse pattern; the ×2 supersampled path with sym6 filtering keeps that energy low."""
    from ganeval.models.augment import _scale2d, geometric_resample

    size = 32
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    checker = ((xx + yy) % 2).float().expand(1, 1, -1, -1) * 2 - 1
    inv = _scale2d(torch.full((1,), 1.37), torch.full((1,), 1.37))  # output samples 1.37 input pixels apart
    direct = torch.nn.functional.grid_sample(checker, torch.nn.functional.affine_grid(inv[:, :2], checker.shape,
                                                                                      align_corners=False),
                                             mode="bilinear", padding_mode="reflection", align_corners=False)
    ours = geometric_resample(checker, inv)
    inner = slice(6, -6)
    assert ours[..., inner, inner].std() < 0.5 * direct[..., inner, inner].std()


def test_up_and_downsampling_equal_upfirdn2d_written_out():
    """upfirdn2d's definition (zero insertion, pad or crop, FIR, decimation) on the sym6 taps,
    computed the slow, literal way, against the operator-matrix implementation."""
    import torch.nn.functional as F

    from ganeval.models.augment import SYM6, downsample2d, upsample2d

    taps = torch.tensor(SYM6, dtype=torch.float64)
    taps = (taps / taps.sum()).float()
    k = len(taps)

    def fir(x, f):  # correlate both axes with f
        n, c, h, w = x.shape
        y = F.conv2d(F.conv2d(x.reshape(n * c, 1, h, w), f.view(1, 1, 1, -1)), f.view(1, 1, -1, 1))
        return y.reshape(n, c, *y.shape[2:])

    def crop_pad(x, p0, p1):
        x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
        return x[:, :, max(-p0, 0):x.shape[2] - max(-p1, 0), max(-p0, 0):x.shape[3] - max(-p1, 0)]

    x = torch.rand(2, 3, 10, 13, generator=torch.Generator().manual_seed(4))
    zeros = torch.zeros(2, 3, 10, 2, 13, 2)
    zeros[:, :, :, 0, :, 0] = x
    up = crop_pad(zeros.reshape(2, 3, 20, 26), (k + 1) // 2, (k - 2) // 2)
    torch.testing.assert_close(upsample2d(x, taps), fir(up, taps.flip(0) * 2), atol=1e-6, rtol=0)
    big = torch.rand(2, 3, 30, 34, generator=torch.Generator().manual_seed(5))
    for padding in (0, -6):
        literal = fir(crop_pad(big, padding + (k - 1) // 2, padding + (k - 2) // 2), taps)[:, :, ::2, ::2]
        torch.testing.assert_close(downsample2d(big, taps, padding), literal, atol=1e-6, rtol=0)
