"""Neighbours by cosine similarity in a feature network's space (``--space inception|…``).

SSIM compares pixels, so it favours low-contrast images and misses copies that moved or
changed colour; copy-detection work compares network features instead (Somepalli et al.
2023, Carlini et al. 2023). The features come from the project's extractors
(:func:`ganeval.features.registry.build_extractor`, any name it knows), L2-normalised, and a
flat inner-product FAISS index gives the exact top-k cosine neighbours. The training
features come from the one feature layer (:mod:`ganeval.features.extract`) and share its
cache with ``ganeval fid``: features computed for an FID are reused here, and back."""
from __future__ import annotations

import faiss
import numpy as np
import torch

from ganeval.features.base import FeatureExtractor
from ganeval.features.extract import extract_features
from ganeval.resample import resize_rgb
from ganeval.nearest.search import Neighbours
from ganeval.sources import Source


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (a copy), so inner products are cosine similarities."""
    x = np.array(x, dtype=np.float32, order="C")
    faiss.normalize_L2(x)
    return x


def embed_batches(extractor: FeatureExtractor, batches, device: torch.device) -> np.ndarray:
    """Unit-length features of an iterable of N×H×W×3 uint8 batches."""
    return unit_rows(extract_features(extractor, batches, device))


def read_images(source: Source, source_index: np.ndarray, ids, size: tuple[int, int]) -> np.ndarray:
    """Training images ``ids`` (rows of a FeatureSet) as N×H×W×3 uint8 at ``size``, for display."""
    out = []
    for i in np.asarray(ids).reshape(-1):
        img = source.read(int(source_index[int(i)]))
        out.append(img if img.shape[:2] == tuple(size) else resize_rgb(img, size))
    return np.stack(out) if out else np.zeros((0, *size, 3), np.uint8)


def cosine_search(queries: np.ndarray, train: np.ndarray, k: int, space: str) -> Neighbours:
    """Exact top-k by cosine similarity (both sides unit rows); ties by the lower index."""
    index = faiss.IndexFlatIP(train.shape[1])
    index.add(np.ascontiguousarray(train, dtype=np.float32))
    k_search = min(len(train), k + 8)  # a few more, so equal scores can be ordered by index
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k_search)
    order = np.lexsort((ids, -scores), axis=1)[:, :k]
    return Neighbours(np.take_along_axis(ids, order, 1).astype(np.int64),
                      np.take_along_axis(scores, order, 1).astype(np.float64), f"cosine:{space}", len(train), 0)

