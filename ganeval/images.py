"""The one image decoder: any file Pillow reads becomes an RGB uint8 H×W×3 array; and the one
conversion between uint8 pixels and the [-1, 1] floats every generator reads and writes.

Grayscale and palette images are expanded, transparency is composited on white,
16-bit and 32-bit integer images are scaled (not clipped) to 8 bits, CMYK and other
colour spaces go through Pillow's conversion."""
from __future__ import annotations

import io
import os
import warnings
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:  # pragma: no cover
    import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

# Pillow's decompression-bomb check stays on; a bomb counts as a corrupt file.
warnings.simplefilter("error", Image.DecompressionBombWarning)


class CorruptImage(Exception):
    """A file that cannot be decoded as an image."""


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _high_bit_to_uint8(img: Image.Image) -> np.ndarray:
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        peak = 1.0 if float(np.nanmax(arr, initial=0.0)) <= 1.0 else 255.0
        return np.clip(np.nan_to_num(arr) * (255.0 / peak), 0, 255).round().astype(np.uint8)
    arr = arr.astype(np.int64)
    peak = 65535 if arr.max(initial=0) > 255 or img.mode.startswith("I;16") else 255
    return np.clip(np.round(arr * (255.0 / peak)), 0, 255).astype(np.uint8)


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Convert any Pillow image to RGB uint8, compositing transparency on white."""
    if img.mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    if img.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        gray = _high_bit_to_uint8(img)
        return np.repeat(gray[..., None], 3, axis=2)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"), dtype=np.uint8)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def decode_image(data: bytes | str | os.PathLike) -> np.ndarray:
    """Decode bytes or a path into RGB uint8 H×W×3; raise CorruptImage on failure."""
    try:
        fh = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else open(data, "rb")
        with fh, Image.open(fh) as img:
            img.load()  # truncated files fail here, not later
            arr = to_rgb_array(img)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning, EOFError) as err:
        raise CorruptImage(str(err) or type(err).__name__) from err
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise CorruptImage(f"unexpected decoded shape {arr.shape}")
    return np.ascontiguousarray(arr)


def encode_png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def uint8_to_signed(images: "torch.Tensor") -> "torch.Tensor":
    """uint8 tensor (any layout) → float32 in [-1, 1], the range every generator reads and writes.
    (Takes torch tensors; torch is not imported here so decoding stays light.)"""
    return images.float().div(127.5).sub_(1.0)


def signed_to_uint8(images: "torch.Tensor") -> "torch.Tensor":
    """Float tensor in [-1, 1] → uint8, the same layout and device: NVlabs' conversion
    ``(x · 127.5 + 128).clamp(0, 255)`` truncated, so generator images match theirs pixel for pixel."""
    return images.float().mul(127.5).add_(128).clamp_(0, 255).byte()


def to_uint8_nhwc(images: "np.ndarray | torch.Tensor", value_range: tuple[float, float] | None = (-1.0, 1.0),
                  what: str = "the generator's output", strict_range: bool = False) -> "torch.Tensor":
    """The one conversion of images to pixels: an N×C×H×W or N×H×W×C (or N×H×W) array or tensor
    → uint8 N×H×W×3 RGB on the CPU (gray repeated). uint8 passes through; floats are mapped from
    ``value_range`` — (-1, 1) as NVlabs converts (``signed_to_uint8``), or (0, 1) — and refused
    without one. ``strict_range``: values outside the range are an error instead of clamped."""
    import torch

    from ganeval.errors import BadInput

    x = images.detach() if torch.is_tensor(images) else torch.as_tensor(np.asarray(images))
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise BadInput(f"{what}: expected N×C×H×W or N×H×W×C images, got shape {tuple(x.shape)}")
    if x.shape[-1] not in (1, 3, 4) and x.shape[1] in (1, 3, 4):
        x = x.permute(0, 2, 3, 1)
    if x.shape[-1] == 4:
        x = x[..., :3]
    if x.dtype != torch.uint8:
        if not x.is_floating_point():
            raise BadInput(f"{what}: images must be uint8 (0–255) or float, got {x.dtype}")
        if value_range is None:
            raise BadInput(f"{what}: float images need value_range=(-1, 1) or (0, 1); or pass uint8 0–255")
        lo, hi = (float(v) for v in value_range)
        if (lo, hi) not in ((-1.0, 1.0), (0.0, 1.0)):
            raise BadInput(f"{what}: value_range must be (-1, 1) or (0, 1), got {value_range}")
        if strict_range and x.numel() and (float(x.min()) < lo - 0.01 or float(x.max()) > hi + 0.01):
            raise BadInput(f"{what}: float images must lie in [{lo:g}, {hi:g}] (value_range); "
                           f"got [{float(x.min()):.3g}, {float(x.max()):.3g}]")
        x = signed_to_uint8(x) if lo < 0 else x.float().mul(255).add_(0.5).clamp_(0, 255).byte()
    if x.shape[-1] == 1:
        x = x.expand(-1, -1, -1, 3)
    return x.contiguous().cpu()
