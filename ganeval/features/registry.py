"""Name → feature network, the one place that knows which extractors exist."""
from __future__ import annotations

import os

import torch

from ganeval.errors import BadInput
from ganeval.features.base import FeatureExtractor

FEATURES = ("inception", "illust2vec")


def build_extractor(name: str, weights: str | os.PathLike | None, device: torch.device,
                    fast: bool = False) -> FeatureExtractor:
    """``fast`` trades bit-parity with the reference for speed where a network offers it."""
    if name == "inception":
        from ganeval.features.inception import build_inception

        return build_inception(weights, device, fast)
    if name == "illust2vec":
        from ganeval.features.illust2vec import build_illust2vec

        return build_illust2vec(weights, device)
    raise BadInput(f"unknown features {name!r}: choose one of {', '.join(FEATURES)}")
