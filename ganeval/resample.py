"""The one resize module: classical (Pillow) resampling of RGB uint8 images.

Every resize in the project goes through ``resize_rgb``: dataset loading, SSIM search, the
study's display, the upscale baselines. ``downscale`` is the one degradation model (Pillow
bicubic, antialiased) behind SRGAN's training inputs and ``ganeval upscale-compare``, so a
model is trained and measured on the same low-resolution images. Learned upscalers (SRGAN)
live in ``ganeval.models``; this module knows only filters."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ganeval.errors import BadInput

FILTERS = {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}


def parse_size(size: int | tuple[int, int]) -> tuple[int, int]:
    """An int (a square side) or an (h, w) pair → (h, w)."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    return int(size[0]), int(size[-1])


def resize_rgb(arr: np.ndarray, size: int | tuple[int, int], method: str = "bicubic") -> np.ndarray:
    """H×W×3 uint8 → ``size`` ((h, w), or a square side) with Pillow's bicubic or Lanczos filter
    (antialiased when shrinking); the array itself when it already has that size."""
    h, w = parse_size(size)
    if arr.shape[:2] == (h, w):
        return arr
    try:
        resample = FILTERS[method]
    except KeyError:
        raise BadInput(f"unknown resampling filter {method!r}; use {' or '.join(FILTERS)}") from None
    return np.asarray(Image.fromarray(arr).resize((w, h), resample), dtype=np.uint8)


def fit_size(height: int, width: int, size: int) -> tuple[int, int]:
    """(h, w) with the longer side equal to ``size`` and the aspect ratio kept."""
    if height >= width:
        return size, max(1, round(width * size / height))
    return max(1, round(height * size / width)), size


def scaled_size(shape: tuple[int, ...], size_or_scale: float | int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """The (h, w) target of an image of ``shape`` for a factor (a number) or a size (an (h, w) pair)."""
    if isinstance(size_or_scale, (tuple, list)):
        return int(size_or_scale[0]), int(size_or_scale[-1])
    factor = float(size_or_scale)
    if factor <= 0:
        raise BadInput(f"scale must be positive, got {size_or_scale}")
    return round(shape[0] * factor), round(shape[1] * factor)


def downscale(img: np.ndarray, factor: int) -> np.ndarray:
    """H×W×3 uint8 → (H//factor)×(W//factor)×3 with Pillow's bicubic. Rows and columns past a
    multiple of ``factor`` are cropped first, so the LR pixel grid maps exactly."""
    h, w = img.shape[0] // factor * factor, img.shape[1] // factor * factor
    if h == 0 or w == 0:
        raise BadInput(f"a {img.shape[1]}×{img.shape[0]} image is smaller than the scale factor {factor}")
    return resize_rgb(np.ascontiguousarray(img[:h, :w]), (h // factor, w // factor), "bicubic")


def downscale_batch(images: np.ndarray, factor: int) -> np.ndarray:
    """N×H×W×3 uint8 → N×(H/f)×(W/f)×3, image by image through ``downscale``."""
    return np.stack([downscale(img, factor) for img in images])


def tf1_bilinear_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """TensorFlow 1.x's ``resize_bilinear`` (align_corners=False, no half-pixel centres), the
    resize of the TF Inception graph that torch-fidelity reproduces: output pixel i samples the
    input at i·in/out (the top-left corner convention), interpolating between floor and
    floor+1 (clamped at the edge); rows, then columns. float N×C×H×W in, N×C×size×size out."""
    def axis(n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pos = torch.arange(size, dtype=torch.float32, device=x.device) * torch.tensor(n_in / size, dtype=torch.float32)
        lo = pos.long()
        return lo, (lo + 1).clamp_max(n_in - 1), pos - lo.float()

    ylo, yhi, dy = axis(x.shape[2])
    xlo, xhi, dx = axis(x.shape[3])
    top, bottom = x[:, :, ylo, :], x[:, :, yhi, :]
    top = top[:, :, :, xlo] + (top[:, :, :, xhi] - top[:, :, :, xlo]) * dx.view(1, 1, 1, size)
    bottom = bottom[:, :, :, xlo] + (bottom[:, :, :, xhi] - bottom[:, :, :, xlo]) * dx.view(1, 1, 1, size)
    return top + (bottom - top) * dy.view(1, 1, size, 1)
