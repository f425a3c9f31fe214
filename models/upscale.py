"""Image-to-image upscaling by method name: "bicubic", "lanczos" (``ganeval.resample``) or
"srgan:CKPT" (an SRGAN checkpoint). The entry point for ``ganeval upscale`` and the study
app's display (``upscale_image``: one image in, one image out, models cached between calls).

Classical resampling lives in the core (``ganeval.resample``); this module adds the learned
upscaler, so the core never imports a model."""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ganeval.device import resolve_device
from ganeval.errors import BadInput
from ganeval.images import signed_to_uint8, uint8_to_signed
from ganeval.models.checkpoint import load_checkpoint, load_generator, model_config
from ganeval.resample import FILTERS, resize_rgb, scaled_size

METHODS_HELP = "bicubic, lanczos or srgan:CKPT"
DEFAULT_SCALE = 4


class SRGANUpscaler:
    """An SRGAN generator from a checkpoint, applied to uint8 images."""

    def __init__(self, checkpoint: str | os.PathLike, device: str | torch.device = "cpu"):
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
        x = uint8_to_signed(x).contiguous(memory_format=torch.channels_last)
        out = signed_to_uint8(self.G(x)).permute(0, 2, 3, 1).cpu().numpy()
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
    if kind in FILTERS and not sep:
        return kind, None
    if kind == "srgan" and ckpt:
        return kind, ckpt
    raise BadInput(f"unknown upscaling method {method!r}; use {METHODS_HELP}")


def resolve_method(method: str, scale: int | None, device: str | torch.device = "cpu"
                   ) -> tuple[int, SRGANUpscaler | None]:
    """(the scale to use, the SRGAN or None) for a method string; the scale defaults to the
    SRGAN's own factor (``DEFAULT_SCALE`` for bicubic and Lanczos)."""
    kind, ckpt = parse_method(method)
    model = load_upscaler(ckpt, device) if kind == "srgan" else None
    if scale is None:
        scale = model.scale if model is not None else DEFAULT_SCALE
    if scale < 1:
        raise BadInput(f"scale must be at least 1, got {scale}")
    return scale, model


def upscale_array(img: np.ndarray, scale: int | None = None, method: str = "bicubic",
                  device: str | torch.device = "cpu") -> np.ndarray:
    """H×W×3 uint8 → (scale·H)×(scale·W)×3 uint8 by ``method`` (bicubic, lanczos, srgan:CKPT).

    ``scale`` defaults to the SRGAN's own factor (4 for bicubic/lanczos). An SRGAN asked for
    another factor runs once and Lanczos resamples its output to the requested size."""
    scale, _ = resolve_method(method, scale, device)
    return upscale_image(img, (img.shape[0] * scale, img.shape[1] * scale), method, device)


def upscale_image(rgb: np.ndarray, size_or_scale: float | int | Sequence[int], method: str,
                  device: str | torch.device = "cpu") -> np.ndarray:
    """One H×W×3 uint8 image resized by a factor (a number) or to a size (an (h, w) pair) with
    bicubic, lanczos or srgan:CKPT; for other parts of the project (the study app) that only
    need pixels. An SRGAN runs once at its own factor, then Lanczos meets the requested size."""
    kind, ckpt = parse_method(method)
    size = scaled_size(rgb.shape, size_or_scale)
    if kind != "srgan":
        return resize_rgb(rgb, size, kind)
    return resize_rgb(load_upscaler(ckpt, device)(rgb), size, "lanczos")
