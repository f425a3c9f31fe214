"""Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020) in
bounded memory.

Both estimate each set's manifold as the union of balls reaching every sample's k-th
nearest neighbour. The references build full N×N distance matrices (10 GB at 50k in
float32); here distances are computed in float32 blocks of ``block``×``block`` with
torch and folded into per-row accumulators straight away, so memory is O(N·k + block²).

Conventions follow the references exactly: precision/recall as torch-fidelity's ``prc``
(k=3, a sample counts when its distance is ``<=`` a radius), density/coverage as the
``prdc`` package (k=5, strict ``<``). "real" is the reference set (``ganeval fid``'s first
input), "fake" the set being judged (its second input)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ganeval.errors import BadInput

DEFAULT_BLOCK = 2048


@dataclass(frozen=True)
class PRDCResult:
    precision: float
    recall: float
    density: float
    coverage: float
    k_pr: int
    k_dc: int
    n_real: int
    n_fake: int


def _as_tensor(x, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
    return t.to(device=device, dtype=torch.float32)


def _squared_distances(x: torch.Tensor, y: torch.Tensor, x_sq: torch.Tensor, y_sq: torch.Tensor) -> torch.Tensor:
    """|x-y|² by the matrix-product expansion, clamped at 0 (rounding can go below)."""
    return (x_sq[:, None] + y_sq[None, :] - 2.0 * (x @ y.T)).clamp_min_(0.0)


def _blocks(n: int, block: int):
    for start in range(0, n, block):
        yield start, min(n, start + block)


def kth_neighbour_sq_radii(x: torch.Tensor, ks: tuple[int, ...], block: int = DEFAULT_BLOCK) -> dict[int, torch.Tensor]:
    """Squared distance of every row to its k-th nearest other row, for each k in ``ks``
    (the (k+1)-th smallest distance counting the row itself, as both references do)."""
    n = len(x)
    kmax = max(ks)
    if n < kmax + 1:
        raise BadInput(f"k={kmax} nearest neighbours need at least {kmax + 1} samples per set, got {n}")
    sq = (x * x).sum(1)
    out = torch.empty((n, kmax + 1), dtype=torch.float32, device=x.device)
    for r0, r1 in _blocks(n, block):
        best = None
        for c0, c1 in _blocks(n, block):
            d = _squared_distances(x[r0:r1], x[c0:c1], sq[r0:r1], sq[c0:c1])
            cand = d if best is None else torch.cat([best, d], dim=1)
            best = torch.topk(cand, min(kmax + 1, cand.shape[1]), dim=1, largest=False).values
        out[r0:r1] = best
    return {k: out[:, k].clone() for k in ks}


def prdc(real, fake, k_pr: int = 3, k_dc: int = 5, block: int = DEFAULT_BLOCK,
         device: torch.device | str = "cpu") -> PRDCResult:
    """Precision, recall, density and coverage of ``fake`` against ``real`` (N×D arrays)."""
    device = torch.device(device)
    x_real, x_fake = _as_tensor(real, device), _as_tensor(fake, device)
    if x_real.ndim != 2 or x_fake.ndim != 2 or x_real.shape[1] != x_fake.shape[1]:
        raise BadInput(f"prdc needs two feature arrays of equal width, got {tuple(x_real.shape)} and {tuple(x_fake.shape)}")
    if k_pr < 1 or k_dc < 1:
        raise BadInput(f"prdc: k must be at least 1, got {k_pr} and {k_dc}")
    # distances do not change under translation; centring keeps the float32 expansion accurate
    centre = x_real.mean(0, keepdim=True)
    x_real, x_fake = x_real - centre, x_fake - centre
    ks = (k_pr, k_dc)
    real_r = kth_neighbour_sq_radii(x_real, ks, block)
    fake_r = kth_neighbour_sq_radii(x_fake, (k_pr,), block)
    n_real, n_fake = len(x_real), len(x_fake)
    real_sq, fake_sq = (x_real * x_real).sum(1), (x_fake * x_fake).sum(1)

    fake_in_real = torch.zeros(n_fake, dtype=torch.bool, device=device)     # precision (<=)
    fake_density = torch.zeros(n_fake, dtype=torch.float64, device=device)  # density (<)
    real_in_fake = torch.zeros(n_real, dtype=torch.bool, device=device)     # recall (<=)
    real_nearest_fake = torch.full((n_real,), float("inf"), dtype=torch.float32, device=device)  # coverage
    for f0, f1 in _blocks(n_fake, block):
        for r0, r1 in _blocks(n_real, block):
            d = _squared_distances(x_fake[f0:f1], x_real[r0:r1], fake_sq[f0:f1], real_sq[r0:r1])
            fake_in_real[f0:f1] |= (d <= real_r[k_pr][None, r0:r1]).any(1)
            fake_density[f0:f1] += (d < real_r[k_dc][None, r0:r1]).sum(1).double()
            real_in_fake[r0:r1] |= (d <= fake_r[k_pr][f0:f1, None]).any(0)
            real_nearest_fake[r0:r1] = torch.minimum(real_nearest_fake[r0:r1], d.min(0).values)
    return PRDCResult(
        precision=float(fake_in_real.double().mean()),
        recall=float(real_in_fake.double().mean()),
        density=float(fake_density.mean() / k_dc),
        coverage=float((real_nearest_fake < real_r[k_dc]).double().mean()),
        k_pr=k_pr, k_dc=k_dc, n_real=n_real, n_fake=n_fake,
    )


def subsample(features: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most ``n`` rows, drawn without replacement with ``seed`` (kept in input order)."""
    if len(features) <= n:
        return features
    rows = np.sort(np.random.RandomState(seed).choice(len(features), n, replace=False))
    return features[rows]
