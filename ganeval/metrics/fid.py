"""Fréchet distance between two Gaussians, in float64, without scipy's sqrtm.

tr sqrt(S1 S2) equals tr sqrt(L1ᵀ S2 L1) for S1 = L1 L1ᵀ (a similarity transform), and
L1ᵀ S2 L1 is symmetric PSD, so its eigenvalues are real and non-negative up to rounding:
one Cholesky and one symmetric eigensolve, no complex parts to discard, and no
``scipy.linalg.sqrtm(..., disp=False)`` (SciPy 1.18 removed ``disp``). When S1 is
singular (fewer samples than dimensions) its PSD square root from eigh stands in for L1."""
from __future__ import annotations

import warnings

import numpy as np
import torch

from ganeval.errors import BadInput


def _psd_factor(sigma: torch.Tensor) -> torch.Tensor:
    """A matrix F with F Fᵀ = sigma: Cholesky when positive definite, else eigh's root."""
    factor, info = torch.linalg.cholesky_ex(sigma)
    if int(info) == 0:
        return factor
    values, vectors = torch.linalg.eigh(sigma)
    return vectors * values.clamp_min(0.0).sqrt()


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr sqrt(sigma1 · sigma2) for symmetric PSD matrices, in float64.

    torch's LAPACK calls are 2-3× faster than scipy's here (0.6 s at 2048-d on 2 cores)."""
    s1 = torch.from_numpy(np.ascontiguousarray(sigma1, dtype=np.float64))
    s2 = torch.from_numpy(np.ascontiguousarray(sigma2, dtype=np.float64))
    factor = _psd_factor(s1)
    inner = factor.mT @ s2 @ factor
    inner = (inner + inner.mT) * 0.5
    return float(torch.linalg.eigvalsh(inner).clamp_min(0.0).sqrt().sum())


def check_stats(mu: np.ndarray, sigma: np.ndarray, name: str = "statistics") -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim == 0 and sigma.ndim == 0:  # 1-d features: scalars are a 1×1 covariance
        mu, sigma = mu.reshape(1), sigma.reshape(1, 1)
    if mu.ndim != 1 or sigma.ndim != 2 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise BadInput(f"{name}: mu has shape {mu.shape} and sigma {sigma.shape}; expected (D,) and (D, D)")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise BadInput(f"{name}: mu or sigma contains NaN or infinity")
    return mu, sigma


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||² + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2), as in Heusel et al. 2017."""
    mu1, sigma1 = check_stats(mu1, sigma1, "first statistics")
    mu2, sigma2 = check_stats(mu2, sigma2, "second statistics")
    if mu1.shape != mu2.shape:
        raise BadInput(f"statistics have different dimensions: {mu1.shape[0]} and {mu2.shape[0]} "
                       "(were they computed with different feature networks?)")
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2))
    return max(value, 0.0) if value > -1e-6 * max(1.0, np.trace(sigma1)) else value


def mean_and_covariance(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 mean and unbiased covariance (rows are samples), as pytorch-fid's np.cov."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise BadInput(f"need at least 2 samples to estimate a covariance, got {features.shape[0] if features.ndim else 0}")
    n, dim = features.shape
    if n < dim:
        warnings.warn(
            f"only {n} samples for {dim}-d features: the covariance is singular and FID is biased upwards; "
            "compare FIDs only at equal sample counts (papers use 50,000)", stacklevel=2)
    mu = features.mean(axis=0)
    centred = features - mu
    sigma = centred.T @ centred / (n - 1)
    return mu, sigma
