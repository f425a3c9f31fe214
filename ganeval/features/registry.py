"""Name → feature network, the one place that knows which extractors exist."""
from __future__ import annotations

import os

import torch

from ganeval.errors import BadInput
from ganeval.features.base import FeatureExtractor

FEATURES = ("inception", "illust2vec", "dinov2")
RESIZES = ("pytorch-fid", "clean")


def build_extractor(name: str, weights: str | os.PathLike | None, device: torch.device,
                    fast: bool = False, resize: str = "pytorch-fid") -> FeatureExtractor:
    """``fast`` trades bit-parity with the reference for speed where a network offers it;
    ``resize`` picks pytorch-fid's or clean-fid's preprocessing (Inception only)."""
    if resize not in RESIZES:
        raise BadInput(f"unknown resize {resize!r}: choose one of {', '.join(RESIZES)}")
    if resize != "pytorch-fid" and name != "inception":
        raise BadInput(f"--resize {resize} applies to Inception features only, not {name}")
    if name == "inception":
        from ganeval.features.inception import build_inception

        return build_inception(weights, device, fast, resize)
    if name == "illust2vec":
        from ganeval.features.illust2vec import build_illust2vec

        return build_illust2vec(weights, device)
    if name == "dinov2":
        from ganeval.features.dinov2 import build_dinov2

        return build_dinov2(weights, device)
    raise BadInput(f"unknown features {name!r}: choose one of {', '.join(FEATURES)}")
