"""What every feature network offers to the statistics code."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ExtractorInfo:
    name: str          # "inception" | "illust2vec"
    dim: int           # feature dimension
    input_size: int    # the network's native input side; mixed-size sets are resized to it
    weights_id: str    # sha256 of the weight file, part of every cache key
    standard: bool     # True when the weights are the published ones (numbers comparable to papers)
    mode: str = "exact"  # "exact": the reference's op order; "fast": reordered float32 math


class FeatureExtractor(nn.Module):
    """Takes uint8 images N×3×H×W (RGB, 0–255) and returns float32 features N×dim.

    Each network owns its own resize and normalisation so that callers never differ."""

    info: ExtractorInfo

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError
