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
    assert y.min() >= x.min() - 1e-5 and y.max() <= x.max() + 1e-5  # bilinear resampling never overshoots


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
    assert float(pipe.p) == 1.0  # and at 1


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
