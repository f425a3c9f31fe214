"""The one resize module and the one uint8 ↔ [-1, 1] conversion: equal to what they replaced."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganeval.atomic import save_npz
from ganeval.errors import BadInput
from ganeval.images import signed_to_uint8, uint8_to_signed
from ganeval.resample import downscale, fit_size, resize_rgb, scaled_size
from ganeval.sources import open_source
from ganeval.upscale import compare_source


def test_the_conversions_equal_the_expressions_they_replace():
    x = torch.randint(0, 256, (2, 3, 5, 7), dtype=torch.uint8)
    assert torch.equal(uint8_to_signed(x), x.float().div_(127.5).sub_(1.0))
    y = torch.randn(2, 3, 5, 7) * 1.5  # out of range too: clamped
    # NVlabs' conversion (gen_images.py): x * 127.5 + 128, clamped, truncated
    assert torch.equal(signed_to_uint8(y), (y * 127.5 + 128).clamp(0, 255).to(torch.uint8))
    assert torch.equal(signed_to_uint8(uint8_to_signed(x)), x)  # exact round trip
    f = torch.zeros(1)
    uint8_to_signed(f)
    assert f.item() == 0  # a float input is not modified in place


def test_resize_is_pillows_filter_and_accepts_a_side_or_a_size():
    img = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    for method, flt in (("bicubic", Image.Resampling.BICUBIC), ("lanczos", Image.Resampling.LANCZOS)):
        ref = np.asarray(Image.fromarray(img).resize((12, 8), flt))
        assert np.array_equal(resize_rgb(img, (8, 12), method), ref)
    assert resize_rgb(img, 16).shape == (16, 16, 3)
    assert resize_rgb(img, (20, 30)) is img
    with pytest.raises(BadInput, match="unknown resampling filter"):
        resize_rgb(img, 8, "nearest")
    assert downscale(img, 4).shape == (5, 7, 3)  # 30 → cropped to 28 first
    assert fit_size(20, 30, 60) == (40, 60) and scaled_size(img.shape, 2) == (40, 60)


def test_compare_source_measures_any_upscaler_function(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    images[2] = 0
    save_npz(tmp_path / "hr.npz", images=images)

    def nearest_x4(lr: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)

    res = compare_source(open_source(tmp_path / "hr.npz"), 4, nearest_x4, rows=2, name="nearest")
    assert res.images == 3 and res.skipped == [] and len(res.shown) == 2
    assert set(res.methods) == {"bicubic", "lanczos", "nearest"}
    save_npz(tmp_path / "tiny.npz", images=images[:, :8, :8])  # smaller than SSIM's 11-px window
    with pytest.raises(BadInput, match="tiny.npz: no usable images"):
        compare_source(open_source(tmp_path / "tiny.npz"), 4, label="tiny.npz")
