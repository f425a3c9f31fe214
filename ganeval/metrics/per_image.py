"""Scores of every generated image, for finding the good and the bad ones and for asking which
number agrees with people (``ganeval fid --per-image scores.csv``).

- realism (Kynkäänniemi et al. 2019, Sec. 4): max over real samples φ_r of NND_k(φ_r) / ‖φ_g − φ_r‖,
  with the half of the real samples whose k-NN radius is largest left out (the paper's guard
  against outliers); above 1 the image lies inside the estimated real manifold.
- rarity (Han et al. 2022): the smallest k-NN radius among the real samples whose ball contains
  the image — large where real data is sparse; empty when no ball contains it (off the manifold).
- the nearest real sample (index and Euclidean feature distance): a copy has distance ≈ 0; and,
  where both sides are images, the SSIM between the image and that nearest real image (the
  pixel view of the same neighbour, as ``ganeval nearest`` scores it).
- a Gaussian log-density of the image's features under the real features' mean and covariance
  (the model FID fits), up to a constant: −½ Mahalanobis².
All in bounded memory: distances come in float32 blocks (as ``metrics.prdc``)."""
from __future__ import annotations

import csv
import io
import os

import numpy as np
import torch

from ganeval.errors import BadInput
from ganeval.sources import Source
from ganeval.metrics.prdc import DEFAULT_BLOCK, _as_tensor, _blocks, _squared_distances, kth_neighbour_sq_radii

COLUMNS = ("index", "realism", "rarity", "nearest_real", "nearest_real_distance", "nearest_real_ssim",
           "gaussian_loglik")


def per_image_scores(real: np.ndarray, fake: np.ndarray, k: int = 3, block: int = DEFAULT_BLOCK,
                     device: torch.device | str = "cpu") -> dict[str, np.ndarray]:
    """One value per row of ``fake`` for each column of :data:`COLUMNS` (``index`` is the row)."""
    if real is None or fake is None:
        raise BadInput("per-image scores need images on both sides (a statistics file holds only mu and sigma)")
    dev = torch.device(device)
    r, f = _as_tensor(real, dev), _as_tensor(fake, dev)
    radii = kth_neighbour_sq_radii(r, (k,), block)[k].sqrt()
    kept = radii <= radii.median()  # realism: the half with the smaller radii
    r_sq, f_sq = (r * r).sum(1), (f * f).sum(1)
    realism = torch.full((len(f),), -float("inf"), device=dev)
    rarity = torch.full((len(f),), float("inf"), device=dev)
    nearest = torch.zeros(len(f), dtype=torch.long, device=dev)
    nearest_d = torch.full((len(f),), float("inf"), device=dev)
    for f0, f1 in _blocks(len(f), block):
        for r0, r1 in _blocks(len(r), block):
            d = _squared_distances(f[f0:f1], r[r0:r1], f_sq[f0:f1], r_sq[r0:r1]).sqrt()
            rad = radii[r0:r1][None, :]
            ratio = torch.where(kept[r0:r1][None, :], rad / d.clamp_min(1e-12), torch.tensor(-float("inf"), device=dev))
            realism[f0:f1] = torch.maximum(realism[f0:f1], ratio.max(1).values)
            inside = torch.where(d <= rad, rad.expand_as(d), torch.tensor(float("inf"), device=dev))
            rarity[f0:f1] = torch.minimum(rarity[f0:f1], inside.min(1).values)
            best_d, best_i = d.min(1)
            better = best_d < nearest_d[f0:f1]
            nearest_d[f0:f1] = torch.where(better, best_d, nearest_d[f0:f1])
            nearest[f0:f1] = torch.where(better, best_i + r0, nearest[f0:f1])
    rarity = torch.where(torch.isinf(rarity), torch.tensor(float("nan"), device=dev), rarity)
    return {"index": np.arange(len(f)), "realism": realism.cpu().numpy(), "rarity": rarity.cpu().numpy(),
            "nearest_real": nearest.cpu().numpy(), "nearest_real_distance": nearest_d.cpu().numpy(),
            "nearest_real_ssim": np.full(len(f), np.nan),
            "gaussian_loglik": gaussian_loglik(np.asarray(real, np.float64), np.asarray(fake, np.float64))}


def nearest_real_ssim(fake: Source, fake_rows: np.ndarray, real: Source, real_rows: np.ndarray,
                      nearest: np.ndarray) -> np.ndarray:
    """SSIM (RGB, float64) of each fake image with its nearest real image in feature space;
    ``*_rows`` map feature rows to source positions (skipped files leave gaps). A real image of
    another size is resized to the fake's first (Pillow bicubic)."""
    from ganeval.progress import progress
    from ganeval.resample import resize_rgb
    from ganeval.ssim import ssim

    out = np.empty(len(nearest))
    with progress(total=len(nearest), desc="SSIM to the nearest real image", unit="img") as bar:
        for i, j in enumerate(nearest):
            a, b = fake.read(int(fake_rows[i])), real.read(int(real_rows[int(j)]))
            if b.shape[:2] != a.shape[:2]:
                b = resize_rgb(b, a.shape[:2])
            out[i] = ssim(a, b) if min(a.shape[:2]) >= 11 else np.nan
            bar.update(1)
    return out


def gaussian_loglik(real: np.ndarray, fake: np.ndarray, ridge: float = 1e-6) -> np.ndarray:
    """−½ (x − μ)ᵀ Σ⁻¹ (x − μ) under the real features' Gaussian (a ridge keeps Σ invertible
    when there are fewer samples than dimensions)."""
    mu = real.mean(0)
    sigma = np.cov(real, rowvar=False) + ridge * np.eye(real.shape[1])
    centred = fake - mu
    return -0.5 * np.einsum("ij,ij->i", centred, np.linalg.solve(sigma, centred.T).T)


def write_scores_csv(path: str | os.PathLike, scores: dict[str, np.ndarray], names: list[str] | None = None) -> None:
    from ganeval import atomic

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("name",) * bool(names) + COLUMNS)
    for i in range(len(scores["index"])):
        row = [scores[c][i] for c in COLUMNS]
        cells = [int(row[0])] + [("" if np.isnan(v) else f"{float(v):.6g}") if c != "nearest_real" else int(v)
                                 for c, v in zip(COLUMNS[1:], row[1:])]
        writer.writerow(([names[i]] if names else []) + cells)
    atomic.write_text(path, buf.getvalue())
