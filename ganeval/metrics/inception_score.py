"""Inception Score (Salimans et al. 2016) as torch-fidelity's ``isc`` computes it.

Input: the FID Inception's 1008-way logits without the classifier bias (torch-fidelity's
``logits_unbiased``; the softmax does not see a constant shift, but the bias is per class).
Samples are shuffled with RandomState(2020), split into 10 consecutive chunks, and the
score is exp(E KL(p(y|x) || p(y))) per chunk, in float64; mean and (population) std."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ganeval.errors import BadInput


@dataclass(frozen=True)
class ISResult:
    mean: float
    std: float
    splits: int


def inception_score(logits, splits: int = 10, shuffle: bool = True, seed: int = 2020) -> ISResult:
    logits = torch.as_tensor(np.asarray(logits) if not torch.is_tensor(logits) else logits).cpu()
    if logits.ndim != 2:
        raise BadInput(f"Inception Score needs N×classes logits, got shape {tuple(logits.shape)}")
    n = logits.shape[0]
    if n < splits:
        raise BadInput(f"Inception Score with {splits} splits needs at least {splits} samples, got {n}")
    if shuffle:
        logits = logits[np.random.RandomState(seed).permutation(n)]
    logits = logits.double()
    p, log_p = logits.softmax(dim=1), logits.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        p_chunk, log_p_chunk = p[lo:hi], log_p[lo:hi]
        marginal = p_chunk.mean(dim=0, keepdim=True)
        kl = (p_chunk * (log_p_chunk - marginal.log())).sum(dim=1).mean()
        scores.append(float(kl.exp()))
    return ISResult(float(np.mean(scores)), float(np.std(scores)), splits)
