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
    resize: str = "native"  # how inputs reach input_size: "pytorch-fid" | "clean" | "native" (the network's own)


class FeatureExtractor(nn.Module):
    """Takes uint8 images N×3×H×W (RGB, 0–255) and returns float32 features N×dim.

    Each network owns its own resize and normalisation so that callers never differ."""

    info: ExtractorInfo

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Class logits from features, for the Inception Score; only classifiers have them."""
        from ganeval.errors import BadInput

        raise BadInput(f"{self.info.name} features have no classifier: the Inception Score needs --features inception")

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError
