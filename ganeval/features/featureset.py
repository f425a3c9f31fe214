"""What one side of a measurement holds once its images went through a network."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ganeval.errors import BadInput
from ganeval.metrics.fid import mean_and_covariance


@dataclass
class FeatureSet:
    """Features of a set (or only their statistics, read from a .npz), and where they came from.

    ``mu``/``sigma`` are None for a set of fewer than two images (nearest neighbours still work
    on it; FID refuses it). ``source_index`` says which source image each row is: unreadable
    files are skipped, so row i is not always image i."""

    label: str
    mu: np.ndarray | None
    sigma: np.ndarray | None
    n: int
    features: np.ndarray | None = None
    extractor: str | None = None
    origin: str = "images"      # images | statistics | generator
    cached: bool = False
    skipped: int = 0
    skip_report: str | None = None  # the one-line warning about skipped corrupt files
    resize: str | None = None       # the extractor's preprocessing ("pytorch-fid", "clean", "native")
    source_index: np.ndarray | None = None
    skipped_files: list[tuple[str, str]] = field(default_factory=list)  # (name, why) of each skipped file

    @classmethod
    def from_features(cls, label: str, features: np.ndarray, **kw) -> "FeatureSet":
        mu = sigma = None
        if len(features) >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the caller warns once, with the label
                mu, sigma = mean_and_covariance(features)
        return cls(label, mu, sigma, len(features), features, **kw)

    def require_statistics(self) -> "FeatureSet":
        """Itself, or the one-line refusal of a set too small for a covariance."""
        if self.mu is None or self.sigma is None:
            raise BadInput(f"{self.label}: FID needs at least 2 images, got {self.n}")
        return self
