"""Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with the cubic
polynomial kernel k(x, y) = (xᵀy / d + 1)³, averaged over random subsets.

Subset sampling follows torch-fidelity (RandomState(seed), 100 subsets of 1000, first set
then second) so that the numbers agree with it on identical features."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganeval.errors import BadInput

# Below this many bytes for the three full kernel matrices, compute them once and index
# subsets out of them; above, compute each subset's kernels directly.
_FULL_KERNEL_BYTES = 1 << 30


@dataclass(frozen=True)
class KIDResult:
    mean: float
    std: float
    subsets: int
    subset_size: int


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> np.ndarray:
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    m = k_xx.shape[0]
    sum_xx = k_xx.sum() - np.trace(k_xx)
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    features1: np.ndarray,
    features2: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 2020,
) -> KIDResult:
    """KID mean and std over subsets; subset_size shrinks to the smaller set when needed."""
    x = np.asarray(features1, dtype=np.float64)
    y = np.asarray(features2, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise BadInput(f"KID needs two feature arrays of equal width, got {x.shape} and {y.shape}")
    n1, n2 = len(x), len(y)
    size = min(subset_size, n1, n2)
    if size < 2:
        raise BadInput(f"KID needs at least 2 samples in each set, got {n1} and {n2}")
    rng = np.random.RandomState(seed)
    full = (n1 * n1 + n2 * n2 + n1 * n2) * 8 <= _FULL_KERNEL_BYTES
    if full:
        k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    values = np.empty(subsets)
    for s in range(subsets):
        i = rng.choice(n1, size, replace=False)
        j = rng.choice(n2, size, replace=False)
        if full:
            values[s] = mmd2_unbiased(k_xx[np.ix_(i, i)], k_yy[np.ix_(j, j)], k_xy[np.ix_(i, j)])
        else:
            xs, ys = x[i], y[j]
            values[s] = mmd2_unbiased(polynomial_kernel(xs, xs), polynomial_kernel(ys, ys), polynomial_kernel(xs, ys))
    return KIDResult(float(values.mean()), float(values.std()), subsets, size)
