"""Upscaling RGB images: Pillow's bicubic or Lanczos, or an SRGAN checkpoint.

One ``downscale`` (Pillow bicubic, antialiased) makes every low-resolution image in the
project, for SRGAN training pairs and for ``ganeval upscale-compare``, so the model is
trained and measured on the same degradation. ``upscale_image`` is the entry point for
other parts (the study app): one image in, one image out, models cached between calls."""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ganeval.errors import BadInput

PIL_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}
METHODS_HELP = "bicubic, lanczos or srgan:CKPT"
DEFAULT_SCALE = 4


def pil_resize(img: np.ndarray, size: tuple[int, int], method: str = "bicubic") -> np.ndarray:
    """H×W×3 uint8 → size (h, w) with Pillow's filter (antialiased when shrinking)."""
    h, w = size
    if img.shape[:2] == (h, w):
        return img
    return np.asarray(Image.fromarray(img).resize((w, h), PIL_FILTERS[method]), dtype=np.uint8)


def downscale(img: np.ndarray, factor: int) -> np.ndarray:
    """H×W×3 uint8 → (H//factor)×(W//factor)×3 with Pillow's bicubic: the one degradation
    model behind SRGAN's training inputs and the upscale-compare benchmark. Rows and columns
    past a multiple of ``factor`` are cropped first, so the LR pixel grid maps exactly."""
    h, w = img.shape[0] // factor * factor, img.shape[1] // factor * factor
    if h == 0 or w == 0:
        raise BadInput(f"a {img.shape[1]}×{img.shape[0]} image is smaller than the scale factor {factor}")
    return pil_resize(np.ascontiguousarray(img[:h, :w]), (h // factor, w // factor), "bicubic")


def downscale_batch(images: np.ndarray, factor: int) -> np.ndarray:
    """N×H×W×3 uint8 → N×(H/f)×(W/f)×3, image by image through ``downscale``."""
    return np.stack([downscale(img, factor) for img in images])


# ---------------------------------------------------------------------- SRGAN

class SRGANUpscaler:
    """An SRGAN generator from a checkpoint, applied to uint8 images."""

    def __init__(self, checkpoint: str | os.PathLike, device: str | torch.device = "cpu"):
        from ganeval.device import resolve_device
        from ganeval.models.checkpoint import load_checkpoint, load_generator, model_config

        data = load_checkpoint(checkpoint)
        cfg = model_config(data)
        if cfg.model != "srgan":
            raise BadInput(f"{data['path']}: holds a '{cfg.model}' model, not an SRGAN upscaler; "
                           "train one with `ganeval train srgan --data HR_SRC --scale 4`")
        self.device = resolve_device(device)
        self.G, self.cfg = load_generator(data, self.device)
        self.scale = int(self.G.scale)
        self.path = data["path"]

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        """N×h×w×3 (or h×w×3) uint8 → N×(s·h)×(s·w)×3 uint8."""
        single = images.ndim == 3
        batch = images[None] if single else images
        x = torch.from_numpy(np.require(batch, np.uint8, ['C', 'W'])).to(self.device).permute(0, 3, 1, 2)
        x = x.float().div_(127.5).sub_(1.0).contiguous(memory_format=torch.channels_last)
        y = self.G(x).float().add_(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
        out = y.permute(0, 2, 3, 1).cpu().numpy()
        return out[0] if single else out


@functools.lru_cache(maxsize=4)
def _cached_upscaler(path: str, mtime: float, device: str) -> SRGANUpscaler:
    return SRGANUpscaler(path, device)


def load_upscaler(checkpoint: str | os.PathLike, device: str | torch.device = "cpu") -> SRGANUpscaler:
    """The SRGAN of a checkpoint, kept between calls (keyed by path, mtime and device)."""
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        path = path / "checkpoint.pt"
    mtime = path.stat().st_mtime if path.exists() else 0.0
    return _cached_upscaler(str(path.resolve() if path.exists() else path), mtime, str(device))


def parse_method(method: str) -> tuple[str, str | None]:
    """"bicubic" | "lanczos" | "srgan:CKPT" → (kind, checkpoint or None)."""
    kind, sep, ckpt = method.partition(":")
    kind = kind.lower()
    if kind in PIL_FILTERS and not sep:
        return kind, None
    if kind == "srgan" and ckpt:
        return kind, ckpt
    raise BadInput(f"unknown upscaling method {method!r}; use {METHODS_HELP}")


def upscale_array(img: np.ndarray, scale: int | None = None, method: str = "bicubic",
                  device: str | torch.device = "cpu") -> np.ndarray:
    """H×W×3 uint8 → (scale·H)×(scale·W)×3 uint8 by ``method`` (bicubic, lanczos, srgan:CKPT).

    ``scale`` defaults to the SRGAN's own factor (4 for bicubic/lanczos). An SRGAN asked for
    another factor runs once and Lanczos resamples its output to the requested size."""
    kind, ckpt = parse_method(method)
    if scale is None:
        scale = load_upscaler(ckpt, device).scale if kind == "srgan" else DEFAULT_SCALE
    if scale < 1:
        raise BadInput(f"scale must be at least 1, got {scale}")
    return upscale_image(img, (img.shape[0] * scale, img.shape[1] * scale), method, device)


def upscale_image(rgb: np.ndarray, size_or_scale: float | int | Sequence[int], method: str,
                  device: str | torch.device = "cpu") -> np.ndarray:
    """One H×W×3 uint8 image resized by a factor (a number) or to a size (an (h, w) pair) with
    bicubic, lanczos or srgan:CKPT; for other parts of the project (the study app) that only
    need pixels. An SRGAN runs once at its own factor, then Lanczos meets the requested size."""
    kind, ckpt = parse_method(method)
    if isinstance(size_or_scale, (tuple, list)):
        size = (int(size_or_scale[0]), int(size_or_scale[-1]))
    else:
        factor = float(size_or_scale)
        if factor <= 0:
            raise BadInput(f"scale must be positive, got {size_or_scale}")
        size = (round(rgb.shape[0] * factor), round(rgb.shape[1] * factor))
    if kind != "srgan":
        return pil_resize(rgb, size, kind)
    out = load_upscaler(ckpt, device)(rgb)
    return pil_resize(out, size, "lanczos")


# ---------------------------------------------------------------------- measuring upscalers

def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB for uint8 images (data range 255), as scikit-image's peak_signal_noise_ratio;
    inf for identical images."""
    err = np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2)
    return float("inf") if err == 0 else float(10 * np.log10(255.0 ** 2 / err))


def compare_one(hr: np.ndarray, scale: int, srgan: SRGANUpscaler | None = None) -> dict[str, np.ndarray]:
    """HR (cropped to a multiple of ``scale``) → its LR by ``downscale`` and the reconstructions:
    {"LR", "bicubic", "lanczos", ["srgan"], "HR"}, every one but LR at HR size."""
    lr = downscale(hr, scale)
    hr = np.ascontiguousarray(hr[:lr.shape[0] * scale, :lr.shape[1] * scale])
    size = hr.shape[:2]
    out = {"LR": lr, "bicubic": pil_resize(lr, size, "bicubic"), "lanczos": pil_resize(lr, size, "lanczos")}
    if srgan is not None:
        out["srgan"] = srgan(lr)
    out["HR"] = hr
    return out


def score(results: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """{method: (PSNR, SSIM)} of each reconstruction against HR (SSIM as ganeval.ssim: Gaussian
    σ=1.5, population covariance, data range 255, channels averaged: scikit-image's settings)."""
    from ganeval.ssim import ssim

    hr = results["HR"]
    return {m: (psnr(hr, img), ssim(hr, img)) for m, img in results.items() if m not in ("LR", "HR")}
