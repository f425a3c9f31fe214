"""Embeddings whose inner product tracks SSIM, so FAISS can shortlist SSIM neighbours.

SSIM averages, over its Gaussian windows, a luminance term times the contrast-structure
term ``cs = (2σxy + C2) / (σx² + σy² + C2)``. On real drawings the near-ties that decide
recall are set by cs, window by window, so the embedding is cs itself, made an inner
product. Per window w and channel, with ``s = sqrt(σ² + C2/2)``:

* **patch**: the window's centred, Gaussian-weighted pixels ``sqrt(g)·(x − μw) / s``; the
  inner product of two is ``σxy / (sx·sy)``;
* **flat**: ``sqrt(C2/2) / s``; the product of two adds ``(C2/2) / (sx·sy)``.

Together ``(σxy + C2/2) / (sx·sy)``: cs with its denominator's arithmetic mean replaced by
the geometric one (equal when σx = σy). Summed over windows every ``stride`` pixels (the
screen's grid) and divided by their count, the embedding's inner product is a mean cs.
The 121 weighted pixels of a window are projected on the leading ``components`` principal
directions of a centred Gaussian-weighted window under a smooth-image model (pixel
correlation ρ^distance, data-free): 8 of 121 keep ~75% of a real patch's energy, and all
of what ranks neighbours. Everything is a strided convolution (CPU and GPU alike).

Measured against exhaustive SSIM on real anime faces (9,000 training faces; queries held
out from those docs/benchmarks.md reports on): every true top-4 lay within the first 285
FAISS candidates at 64 px (300 queries) and 192 at 96 px (100 queries); the previous pooled
per-pixel embedding needed up to 4,945. Stride 4 is the sweet spot (stride 6: up to 1,516
at 64 px); 8 components beat 4 (720) and cost less than 12 or 16 (175, 129) in index size.
A colour layout did not help; without the flat part recall collapses (0.93 at 1024).
An optional PCA (``faiss.PCAMatrix``) shrinks the index."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ganeval.ssim import C2, gaussian_taps, to_planes

EMBED_VERSION = 2   # 2: per-window cs embedding (1: pooled per-pixel normalisation)
BASIS_RHO = 0.9     # pixel correlation of the model the window basis is fitted to


@dataclass(frozen=True)
class EmbedSpec:
    """Settings of the embedding; part of the index cache key."""

    stride: int = 4       # windows every `stride` pixels of SSIM's valid region
    components: int = 8   # basis directions per window and channel (of 121)
    pca_dim: int = 0      # 0: no PCA

    def key(self) -> dict:
        return {"version": EMBED_VERSION, **asdict(self)}


def window_basis(components: int, rho: float = BASIS_RHO) -> np.ndarray:
    """121×components: leading eigenvectors of the covariance of a centred, Gaussian-weighted
    SSIM window ``sqrt(g)·(x − Σ g·x)`` when pixel correlation falls as ρ^distance.

    Some eigenvalues come in exactly equal pairs (x/y symmetry), so LAPACK may rotate within
    a pair; an index therefore stores the basis it was built with (``basis.npy``)."""
    taps = gaussian_taps()
    r = len(taps) // 2
    g = np.outer(taps, taps).ravel()
    yy, xx = (v.ravel() for v in np.mgrid[-r : r + 1, -r : r + 1])
    corr = rho ** np.hypot(yy[:, None] - yy[None], xx[:, None] - xx[None])
    centre = np.sqrt(g)[:, None] * (np.eye(len(g)) - g[None, :])   # x ↦ sqrt(g)·(x − Σ g·x)
    vals, vecs = np.linalg.eigh(centre @ corr @ centre.T)
    basis = vecs[:, np.argsort(-vals)[: min(components, len(g))]]
    return np.ascontiguousarray(basis * np.sign(basis[np.abs(basis).argmax(axis=0), range(basis.shape[1])]))


class Embedder:
    """Raw (pre-PCA) embeddings of uint8 images of one size (N×H×W×3 or planar N×3×H×W)."""

    def __init__(self, height: int, width: int, spec: EmbedSpec = EmbedSpec(), gray: bool = False,
                 device: torch.device | str = "cpu", batch: int = 32, basis: np.ndarray | None = None):
        self.spec, self.gray, self.device, self.batch = spec, gray, torch.device(device), batch
        self.basis = window_basis(spec.components) if basis is None else np.asarray(basis, dtype=np.float64)
        taps = gaussian_taps()
        g = np.outer(taps, taps)
        proj = (self.basis * np.sqrt(g).reshape(-1, 1)).T.reshape(-1, *g.shape)   # B^T·diag(sqrt g)
        # kernel 0: the window mean μ; kernels 1..m: the weighted pixels' projections
        self.kernels = torch.tensor(np.concatenate([g[None], proj])[:, None], dtype=torch.float32, device=self.device)
        self.kernel_sums = self.kernels[1:].sum(dim=(1, 2, 3)).view(1, -1, 1, 1)
        self.dim = int(self._embed_batch(np.zeros((1, 3, height, width), np.uint8)).shape[1])

    def _embed_batch(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        p = to_planes(images, self.gray, torch.float32, self.device)
        n = p.shape[0]
        x = p.reshape(-1, 1, *p.shape[-2:])
        x = x - x.mean(dim=(-2, -1), keepdim=True)   # float32 variances without cancellation
        out = F.conv2d(x, self.kernels, stride=self.spec.stride)
        mu = out[:, :1]
        var = F.conv2d(x * x, self.kernels[:1], stride=self.spec.stride).addcmul_(mu, mu, value=-1).clamp_min_(0)
        inv_s = var.add_(C2 / 2).rsqrt_()
        # centring inside the window: B^T·sqrt(g)·(x − μ) = conv(x) − μ·(kernel sums)
        patch = out[:, 1:].addcmul_(mu, self.kernel_sums.expand_as(out[:, 1:]), value=-1).mul_(inv_s)
        emb = torch.cat((patch, inv_s.mul_(float(np.sqrt(C2 / 2)))), dim=1)
        windows = emb.shape[0] // n * emb.shape[-2] * emb.shape[-1]
        return emb.reshape(n, -1) / float(np.sqrt(windows))

    def __call__(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        out = [self._embed_batch(images[i : i + self.batch]).cpu().numpy() for i in range(0, len(images), self.batch)]
        return np.ascontiguousarray(np.concatenate(out).astype(np.float32, copy=False))
