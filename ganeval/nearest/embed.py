"""Embeddings whose inner product tracks SSIM, so FAISS can shortlist SSIM neighbours.

SSIM averages, over the Gaussian windows of the valid (cropped) region, a luminance term
times a contrast-structure term ``(2σxy + C2) / (σx² + σy² + C2)``. The embedding mirrors
its parts on the same valid region, each a unit vector with its own weight (the whole has
a constant norm, so inner product and cosine rank alike):

* **structure**: the locally normalised image ``(x − μ) / sqrt(σ² + C2)`` (μ, σ from the
  SSIM window itself), area-averaged to a grid per channel (default: half the valid size,
  at most 48). Its inner product approximates the mean local correlation σxy / (σx σy).
* **flatness**: ``sqrt(C2 / (σ² + C2))`` on the same grid, not centred. Where both images
  are flat, the C2 term makes a window score ≈ 1 whatever the correlation; on real
  drawings that is much of the image, and leaving it out loses most of the recall there.
* **colour**: the image area-averaged to ``colour_grid``², centred: the luminance term.

Weights and grids were chosen by the measured recall of the exact SSIM top-4 among the
FAISS candidates, on synthetic faces at 32, 48 and 64 px and on 10k real 96 px anime faces
(benchmarks/nearest_bench.py reports it). Cropping to SSIM's valid region mattered most
for small images. An optional PCA (``faiss.PCAMatrix``) shrinks the index."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from ganeval.ssim import C2, to_planes, valid_filter_matrix, window_radius

EMBED_VERSION = 1


@dataclass(frozen=True)
class EmbedSpec:
    """Settings of the embedding; part of the index cache key. Grids of 0 mean "half the
    valid size, at most 48"."""

    structure_grid: int = 0
    flat_grid: int = 0
    colour_grid: int = 8
    flat_weight: float = 1.5
    colour_weight: float = 0.15
    pca_dim: int = 0  # 0: no PCA

    def key(self) -> dict:
        return {"version": EMBED_VERSION, **asdict(self)}


def pool_matrix(n: int, grid: int) -> np.ndarray:
    """grid×n area-averaging matrix (what adaptive average pooling does), for matmuls."""
    grid = min(grid, n)
    m = np.zeros((grid, n), dtype=np.float64)
    for i in range(grid):
        start, end = (i * n) // grid, -((-(i + 1) * n) // grid)
        m[i, start:end] = 1.0 / (end - start)
    return m


def _unit(v: torch.Tensor) -> torch.Tensor:
    v = v.flatten(1)
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)


class Embedder:
    """Raw (pre-PCA) embeddings of uint8 images of one size (N×H×W×3 or planar N×3×H×W)."""

    def __init__(self, height: int, width: int, spec: EmbedSpec = EmbedSpec(), gray: bool = False,
                 device: torch.device | str = "cpu", batch: int = 32):
        self.spec, self.gray, self.device, self.batch = spec, gray, torch.device(device), batch
        self.r = window_radius()

        def mat(m: np.ndarray) -> torch.Tensor:
            return torch.tensor(np.ascontiguousarray(m), dtype=torch.float32, device=self.device)

        self.gh, self.gw_t = mat(valid_filter_matrix(height)), mat(valid_filter_matrix(width).T)
        vh, vw = height - 2 * self.r, width - 2 * self.r
        half = min(48, -(-max(vh, vw) // 2))
        self.grids = {name: (g if g > 0 else half) for name, g in
                      (("structure", spec.structure_grid), ("flat", spec.flat_grid), ("colour", spec.colour_grid))}
        self.pools = {g: (mat(pool_matrix(vh, g)), mat(pool_matrix(vw, g).T)) for g in set(self.grids.values())}
        self.dim = int(self._embed_batch(np.zeros((1, 3, height, width), np.uint8)).shape[1])

    def _pool(self, maps: torch.Tensor, grid: int) -> torch.Tensor:
        ph, pw_t = self.pools[grid]
        return torch.matmul(torch.matmul(ph, maps), pw_t)

    def _embed_batch(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        s, r = self.spec, self.r
        p = to_planes(images, self.gray, torch.float32, self.device)
        both = torch.matmul(torch.matmul(self.gh, torch.stack((p, p * p))), self.gw_t)   # valid region only
        mu, var = both[0], both[1].addcmul_(both[0], both[0], value=-1).clamp_min_(0)
        inv_sd = var.add_(C2).rsqrt_()
        centre = p[..., r:-r, r:-r]
        structure = self._pool((centre - mu).mul_(inv_sd), self.grids["structure"])
        parts = [_unit(structure - structure.mean(dim=(-2, -1), keepdim=True))]
        if s.flat_weight:
            parts.append(s.flat_weight * _unit(self._pool(inv_sd, self.grids["flat"])))
        if s.colour_weight:
            colour = self._pool(centre, self.grids["colour"])
            parts.append(s.colour_weight * _unit(colour - colour.mean(dim=(-2, -1), keepdim=True)))
        return torch.cat(parts, dim=1)

    def __call__(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        out = [self._embed_batch(images[i : i + self.batch]).cpu().numpy() for i in range(0, len(images), self.batch)]
        return np.ascontiguousarray(np.concatenate(out).astype(np.float32, copy=False))
