"""Study images as people see them: upscaled to the study's fixed display size and encoded as
PNG bytes, so the page embeds pixels only (no file name, path or URL that could hint at truth).

Lanczos (Pillow) by default. A study whose settings name ``upscaler: "srgan:CKPT"`` goes
through the image-to-image upscaler registered under "srgan" in the ``ganeval.image_upscalers``
entry points (:func:`ganeval.upscale.image_upscaler`), looked up only when asked for (the study
never imports a model); where it is missing or fails, Lanczos is used and a warning is logged once.
Results are cached in memory: every participant sees the same few hundred images."""
from __future__ import annotations

import functools
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ganeval.images import decode_image
from ganeval.resample import fit_size, resize_rgb
from ganeval.upscale import image_upscaler

log = logging.getLogger(__name__)

UPSCALER_KIND = "srgan"  # the entry point providing ``upscale_image(rgb, (h, w), method, device)``
UPSCALER_DEVICE = "auto"
CACHE_SIZE = 256


def lanczos(arr: np.ndarray, size: int) -> np.ndarray:
    """Resize RGB uint8 so its longer side is ``size`` with Pillow's Lanczos filter."""
    return resize_rgb(arr, fit_size(arr.shape[0], arr.shape[1], size), "lanczos")


def _find_model_upscaler() -> Callable[..., np.ndarray] | None:
    """The image-to-image ``upscale_image``, or None where it is not installed."""
    return image_upscaler(UPSCALER_KIND)


_FAILED: set[str] = set()  # upscalers that failed in this process: not retried per picture


@functools.lru_cache(maxsize=None)
def _warn_once(message: str) -> None:
    log.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def upscale(arr: np.ndarray, size: int, upscaler: str | None = None) -> np.ndarray:
    """``arr`` at display size: through the configured model when there is one (it runs at
    its own factor, then Lanczos meets the exact size), else Lanczos alone."""
    if upscaler:
        method = upscaler.strip()
        if not method.lower().startswith("srgan:"):
            _warn_once(f"unknown upscaler {upscaler!r} (expected 'srgan:CKPT'); using Lanczos")
        else:
            fn = _find_model_upscaler()
            if method in _FAILED:
                pass  # failed before: every picture of the study gets the same Lanczos display
            elif fn is None:
                _warn_once(f"upscaler {upscaler!r} is configured but no SRGAN module is installed "
                           f"(no {UPSCALER_KIND!r} in the ganeval.image_upscalers entry points); using Lanczos")
            else:
                try:
                    out = np.asarray(fn(arr, fit_size(arr.shape[0], arr.shape[1], size), method,
                                        UPSCALER_DEVICE), dtype=np.uint8)
                    if out.shape[:2] == fit_size(arr.shape[0], arr.shape[1], size) and out.shape[2:] == (3,):
                        return out
                    _FAILED.add(method)
                    _warn_once(f"upscaler {upscaler!r} returned shape {out.shape}; using Lanczos")
                except Exception as err:  # a broken checkpoint must not stop the study
                    _FAILED.add(method)
                    _warn_once(f"upscaler {upscaler!r} failed ({type(err).__name__}: {err}); using Lanczos")
    return lanczos(arr, size)


def upscaler_status(upscaler: str | None) -> str:
    """One line for the admin page: what people actually see."""
    if not upscaler:
        return "Lanczos (Pillow)"
    method = upscaler.strip()
    if method.lower().startswith("srgan:") and method not in _FAILED and _find_model_upscaler() is not None:
        return f"{upscaler} (then Lanczos to the display size)"
    return f"Lanczos (Pillow) — {upscaler!r} is configured but not available"


@functools.lru_cache(maxsize=CACHE_SIZE)
def _cached_png(path: str, mtime_ns: int, file_size: int, size: int, upscaler: str | None) -> bytes:
    arr = upscale(decode_image(path), size, upscaler)
    buf = io.BytesIO()
    # no metadata is written: the PNG carries pixels only
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def display_png(image_path: str | os.PathLike, size: int, upscaler: str | None = None) -> bytes:
    """PNG bytes of the study image at display size (cached by path, mtime, size, upscaler)."""
    path = Path(image_path)
    st = path.stat()
    return _cached_png(str(path), st.st_mtime_ns, st.st_size, int(size), upscaler or None)
