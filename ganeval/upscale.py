"""Measuring an upscaler against the classical baselines (``ganeval upscale-compare``).

Each high-resolution image is degraded by ``ganeval.resample.downscale`` (the same degradation
SRGAN trains on), then rebuilt by bicubic, Lanczos and, when one is handed in, a learned
upscaler; PSNR and SSIM are measured against the original. The learned upscaler reaches this
module as a plain callable (uint8 LR → uint8 HR), so the core never imports a model.

Other parts that only need pixels (the study's display) find a learned upscaler through the
``ganeval.image_upscalers`` entry-point group that pyproject.toml declares: the package names
its own implementation there, and nothing imports ``ganeval.models`` around the layer contract."""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Callable

import numpy as np

from ganeval.errors import BadInput
from ganeval.images import CorruptImage
from ganeval.progress import progress
from ganeval.resample import downscale, resize_rgb
from ganeval.sources import Source
from ganeval.ssim import ssim

Upscaler = Callable[[np.ndarray], np.ndarray]  # h×w×3 uint8 → (s·h)×(s·w)×3 uint8
MIN_SIDE = 11  # SSIM's 11-px Gaussian window must fit inside an image
UPSCALER_GROUP = "ganeval.image_upscalers"
# upscale_image(rgb, (h, w), "srgan:CKPT", device) -> h×w×3 uint8


def image_upscaler(kind: str) -> Callable[..., np.ndarray] | None:
    """The installed ``upscale_image`` function registered under ``kind`` (e.g. "srgan"), or
    None where none is installed or it cannot be imported."""
    for entry in entry_points(group=UPSCALER_GROUP, name=kind):
        try:
            fn = entry.load()
        except ImportError:
            continue
        if callable(fn):
            return fn
    return None


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB for uint8 images (data range 255), as scikit-image's peak_signal_noise_ratio;
    inf for identical images."""
    err = np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2)
    return float("inf") if err == 0 else float(10 * np.log10(255.0 ** 2 / err))


def compare_one(hr: np.ndarray, scale: int, upscaler: Upscaler | None = None,
                name: str = "srgan") -> dict[str, np.ndarray]:
    """HR (cropped to a multiple of ``scale``) → its LR by ``downscale`` and the reconstructions:
    {"LR", "bicubic", "lanczos", [name], "HR"}, every one but LR at HR size."""
    lr = downscale(hr, scale)
    hr = np.ascontiguousarray(hr[:lr.shape[0] * scale, :lr.shape[1] * scale])
    size = hr.shape[:2]
    out = {"LR": lr, "bicubic": resize_rgb(lr, size, "bicubic"), "lanczos": resize_rgb(lr, size, "lanczos")}
    if upscaler is not None:
        out[name] = upscaler(lr)
    out["HR"] = hr
    return out


def score(results: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """{method: (PSNR, SSIM)} of each reconstruction against HR (SSIM as ganeval.ssim: Gaussian
    σ=1.5, population covariance, data range 255, channels averaged: scikit-image's settings)."""
    hr = results["HR"]
    return {m: (psnr(hr, img), ssim(hr, img)) for m, img in results.items() if m not in ("LR", "HR")}


@dataclass
class Comparison:
    """The outcome of ``compare_source``: mean PSNR/SSIM per method and a few rows to show."""
    images: int
    scale: int
    methods: dict[str, dict[str, float]]
    shown: list[dict[str, np.ndarray]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why), for ``skipped_line``


def compare_source(source: Source, scale: int, upscaler: Upscaler | None = None, n: int | None = None,
                   rows: int = 6, name: str = "srgan", label: str = "source") -> Comparison:
    """Compare on the first ``n`` images of ``source`` (all by default). Unreadable images and
    images too small for SSIM after downscaling are skipped and counted; ``label`` names the
    source in the error raised when nothing is left."""
    n = min(n or len(source), len(source))
    scores: dict[str, list[tuple[float, float]]] = {}
    shown: list[dict[str, np.ndarray]] = []
    skipped: list[tuple[str, str]] = []
    with progress(total=n, desc="upscale-compare", unit="img") as bar:
        for i in range(n):
            bar.update(1)
            try:
                hr = source.read(i)
            except CorruptImage as err:
                skipped.append((source.key(i), str(err)))
                continue
            if min(hr.shape[:2]) // scale * scale < MIN_SIDE:
                skipped.append((source.key(i), f"smaller than {MIN_SIDE} px after ×{scale} downscaling"))
                continue
            results = compare_one(hr, scale, upscaler, name)
            for method, value in score(results).items():
                scores.setdefault(method, []).append(value)
            if len(shown) < rows:
                shown.append(results)
    if not scores:
        raise BadInput(f"{label}: no usable images among the first {n}")
    count = len(next(iter(scores.values())))
    methods = {m: {"psnr": float(np.mean([v[0] for v in vals])), "ssim": float(np.mean([v[1] for v in vals]))}
               for m, vals in scores.items()}
    return Comparison(count, scale, methods, shown, skipped)


def side_by_side(rows: list[dict[str, np.ndarray]], pad: int = 2) -> np.ndarray:
    """One row per image: LR (nearest, at HR size) | bicubic | Lanczos | [learned] | HR, on white."""
    columns = [k for k in rows[0] if k != "LR"]
    h = max(r["HR"].shape[0] for r in rows)
    w = max(r["HR"].shape[1] for r in rows)
    n_cols = len(columns) + 1
    sheet = np.full((len(rows) * (h + pad) + pad, n_cols * (w + pad) + pad, 3), 255, np.uint8)
    for r, res in enumerate(rows):
        hr = res["HR"]
        factor = hr.shape[0] // res["LR"].shape[0]
        lr_big = np.repeat(np.repeat(res["LR"], factor, axis=0), factor, axis=1)
        for c, img in enumerate([lr_big] + [res[k] for k in columns]):
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            sheet[y:y + img.shape[0], x:x + img.shape[1]] = img
    return sheet
