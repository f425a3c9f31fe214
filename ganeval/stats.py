"""Statistics files: pytorch-fid's format (``mu``, ``sigma``) plus optional metadata keys
that pytorch-fid ignores (``n``, ``extractor``, ``resize``); and a path as one side of an
FID: a statistics file as it is, or its images through the feature layer."""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ganeval import atomic
from ganeval.distributed import World
from ganeval.errors import BadInput
from ganeval.features.base import FeatureExtractor
from ganeval.features.extract import source_features
from ganeval.features.featureset import FeatureSet
from ganeval.sources import open_source
from ganeval.metrics.fid import check_stats


def is_stats_file(path: str | Path) -> bool:
    path = Path(path)
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as npz:
            return "mu" in npz.files and "sigma" in npz.files
    except (ValueError, OSError, zipfile.BadZipFile, EOFError):
        return False  # not statistics; opened as images, a corrupt file is reported there


def load_stats(path: str | Path) -> FeatureSet:
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise BadInput(f"{path}: not a readable statistics file (not a .npz zip archive: truncated or corrupt?)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            mu, sigma = check_stats(npz["mu"], npz["sigma"], str(path))
            extractor = str(npz["extractor"]) if "extractor" in npz.files else None
            resize = str(npz["resize"]) if "resize" in npz.files else None
            n = int(npz["n"]) if "n" in npz.files else 0
    except (ValueError, OSError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise BadInput(f"{path}: not a readable statistics file ({err})") from err
    return FeatureSet(str(path), mu, sigma, n, None, extractor, origin="statistics", resize=resize)


def save_stats(path: str | Path, fs: FeatureSet) -> None:
    """pytorch-fid's layout; float64 as np.cov gives, plus metadata pytorch-fid ignores."""
    fs.require_statistics()
    meta = {"n": np.int64(fs.n)}
    if fs.extractor:
        meta["extractor"] = np.array(fs.extractor)
    if fs.resize:
        meta["resize"] = np.array(fs.resize)
    atomic.save_npz(path, mu=fs.mu, sigma=fs.sigma, **meta)


def path_features(path: str | Path, extractor: FeatureExtractor, device: torch.device, batch_size: int = 50,
                  num_workers: int = 0, strict: bool = False, use_cache: bool = True,
                  on_skip: Callable[[str], None] | None = None, world: World | None = None) -> FeatureSet:
    """One side of an FID: a statistics .npz as it is, or the features of an image source."""
    if is_stats_file(path):
        fs = load_stats(path)
        if fs.extractor and fs.extractor != extractor.info.name:
            raise BadInput(f"{path}: statistics were computed with {fs.extractor} features, not {extractor.info.name}")
        if fs.resize and fs.resize != extractor.info.resize:
            raise BadInput(f"{path}: statistics were computed with --resize {fs.resize}, not {extractor.info.resize}")
        return fs
    return source_features(open_source(path), extractor, device, batch_size, num_workers, strict,
                           use_cache=use_cache, on_skip=on_skip, world=world)
