"""Neighbours by cosine similarity in a feature network's space (``--space inception|…``).

SSIM compares pixels, so it favours low-contrast images and misses copies that moved or
changed colour; copy-detection work compares network features instead (Somepalli et al.
2023, Carlini et al. 2023). The features come from the project's extractors
(:func:`ganeval.features.registry.build_extractor`, any name it knows), L2-normalised, and a
flat inner-product FAISS index gives the exact top-k cosine neighbours. The training
features are cached under ``cache_dir("nearest")`` by content hash, network and weights."""
from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np
import torch

from ganeval.atomic import save_npz
from ganeval.cache import cache_dir, settings_key
from ganeval.errors import BadInput
from ganeval.features.base import FeatureExtractor
from ganeval.resample import resize_rgb
from ganeval.nearest.index import ResizingReader
from ganeval.nearest.search import Neighbours
from ganeval.sources import Source

FEATURE_CACHE_VERSION = 1


@dataclass
class FeatureSet:
    """L2-normalised features of a set, and which source images they came from."""

    features: np.ndarray      # N×D float32, unit rows
    source_index: np.ndarray  # N int64: position in the source (unreadable files are skipped)
    size: tuple[int, int]     # the size every image was brought to before the network
    skipped: list[tuple[str, str]]
    cached: bool = False


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    faiss.normalize_L2(x)
    return x


def embed_batches(extractor: FeatureExtractor, batches, device: torch.device) -> np.ndarray:
    """Features of an iterable of N×H×W×3 uint8 batches."""
    out = []
    with torch.no_grad():
        for imgs in batches:
            x = torch.as_tensor(np.ascontiguousarray(imgs)).permute(0, 3, 1, 2).to(device)
            out.append(extractor(x).float().cpu().numpy())
    return _unit_rows(np.concatenate(out)) if out else np.zeros((0, extractor.info.dim), np.float32)


def source_features(source: Source, extractor: FeatureExtractor, device: torch.device, batch_size: int = 64,
                    num_workers: int = 0, strict: bool = False, desc: str | None = None,
                    cache: bool = True) -> FeatureSet:
    """Features of a whole source (cached by content when ``cache``); mixed sizes are brought
    to the first image's size, then the network resizes to its own input."""
    info = extractor.info
    path = None
    if cache:
        key = settings_key(version=FEATURE_CACHE_VERSION, space=info.name, weights=info.weights_id, mode=info.mode)
        path = cache_dir("nearest") / f"features-{source.content_hash()[:16]}-{key}.npz"
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as z:
                    skipped = [tuple(s.split("\t", 1)) for s in z["skipped"].tolist()]
                    if strict and skipped:
                        raise BadInput(f"{source.path}: {len(skipped)} unreadable image(s), e.g. {skipped[0][0]} "
                                       "(recorded in the cached features; --strict refuses them)")
                    return FeatureSet(z["features"], z["source_index"], tuple(int(v) for v in z["size"]),
                                      skipped, cached=True)
            except (OSError, ValueError, KeyError):
                pass  # damaged cache entry: recompute below
    reader = ResizingReader(source, None, batch_size, num_workers, strict, desc or f"{info.name} features")
    index: list[int] = []

    def batches():
        for imgs, indices in reader:
            index.extend(indices)
            yield imgs

    feats = embed_batches(extractor, batches(), device)
    if not len(feats):
        raise BadInput(f"{source.path}: no readable images")
    result = FeatureSet(feats, np.asarray(index, dtype=np.int64), tuple(reader.size), list(reader.skipped))
    if path is not None:
        save_npz(path, features=feats, source_index=result.source_index, size=np.asarray(result.size),
                 skipped=np.asarray(["\t".join(s) for s in result.skipped], dtype=str))
    return result


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

