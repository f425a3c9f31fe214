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


def to_uint8_nhwc(images: torch.Tensor) -> torch.Tensor:
    """A generator's output (N×C×H×W float in [-1, 1], or uint8 already) → uint8 N×H×W×3 RGB on
    the CPU (gray repeated): how every generated image becomes pixels."""
    import torch

    from ganeval.errors import BadInput

    if not torch.is_tensor(images) or images.ndim != 4:
        raise BadInput(f"the generator must return an N×C×H×W tensor, got {type(images).__name__}"
                       f"{tuple(images.shape) if torch.is_tensor(images) else ''}")
    out = images if images.dtype == torch.uint8 else signed_to_uint8(images)
    if out.shape[1] in (1, 3) and out.shape[-1] not in (1, 3):
        out = out.permute(0, 2, 3, 1)
    if out.shape[-1] == 1:
        out = out.expand(-1, -1, -1, 3)
    return out.contiguous().cpu()
