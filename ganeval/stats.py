"""Features and (mu, sigma) statistics of an image source, a generator or a .npz file.

Statistics files are pytorch-fid's format (``mu``, ``sigma``) plus optional metadata keys
that pytorch-fid ignores. Features of a source are cached by content hash + network +
weights, so a second run over the same images costs nothing."""
from __future__ import annotations

import contextlib
import zipfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from ganeval import atomic
from ganeval.allocator import reuse_freed_blocks
from ganeval.cache import cache_dir, settings_key
from ganeval.distributed import World, all_flags, gather_objects, gather_rows, shard_range
from ganeval.errors import BadInput
from ganeval.features.base import FeatureExtractor
from ganeval.metrics.fid import check_stats, mean_and_covariance
from ganeval.sources import Source, open_source

CACHE_VERSION = 2  # 2: the skipped-files report is stored with the features


@dataclass
class FeatureSet:
    """What FID/KID need of one side: statistics always, raw features when known."""

    label: str
    mu: np.ndarray
    sigma: np.ndarray
    n: int
    features: np.ndarray | None = None
    extractor: str | None = None
    origin: str = "images"      # images | statistics | generator
    cached: bool = False
    skipped: int = 0
    skip_report: str | None = None  # the one-line warning about skipped corrupt files
    resize: str | None = None       # the extractor's preprocessing ("pytorch-fid", "clean", "native")

    @classmethod
    def from_features(cls, label: str, features: np.ndarray, **kw) -> "FeatureSet":
        if len(features) < 2:
            raise BadInput(f"{label}: FID needs at least 2 images, got {len(features)}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the caller warns once, with the label
            mu, sigma = mean_and_covariance(features)
        return cls(label, mu, sigma, len(features), features, **kw)


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
    meta = {"n": np.int64(fs.n)}
    if fs.extractor:
        meta["extractor"] = np.array(fs.extractor)
    if fs.resize:
        meta["resize"] = np.array(fs.resize)
    atomic.save_npz(path, mu=fs.mu, sigma=fs.sigma, **meta)


@contextlib.contextmanager
def full_precision_matmul():
    """TF32 off while features are extracted (TF32 convolutions shift pool3 features by
    ~1e-3), and the caller's settings restored afterwards, so that training after a
    ``--fid-every`` measurement keeps running at TF32 speed."""
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@torch.inference_mode()
def extract_features(extractor: FeatureExtractor, batches: Iterable[torch.Tensor], device: torch.device) -> np.ndarray:
    """Run uint8 N×H×W×3 batches through the network; returns float32 N×D."""
    extractor = extractor.to(device).eval()
    out = []
    on_cpu = torch.device(device).type == "cpu"
    with full_precision_matmul(), (reuse_freed_blocks() if on_cpu else contextlib.nullcontext()):
        for images in batches:
            x = images.to(device, non_blocking=True).permute(0, 3, 1, 2)
            out.append(extractor(x).float().cpu().numpy())
    if not out:
        return np.empty((0, extractor.info.dim), dtype=np.float32)
    return np.concatenate(out)


def _cache_file(source: Source, extractor: FeatureExtractor) -> Path:
    info = extractor.info
    key = settings_key(v=CACHE_VERSION, net=info.name, weights=info.weights_id, size=info.input_size, mode=info.mode,
                       resize=info.resize)
    return cache_dir("features") / f"{info.name}-{source.content_hash()}-{key}.npz"


def source_features(
    source: Source,
    extractor: FeatureExtractor,
    device: torch.device,
    batch_size: int = 50,
    num_workers: int = 0,
    strict: bool = False,
    use_cache: bool = True,
    on_skip=None,
    world: World | None = None,
) -> FeatureSet:
    """Features of every readable image in ``source``, from the cache when possible.

    With a multi-process ``world`` (torchrun; every rank must call this) each process extracts
    a contiguous run of whole batches and every process gets all features in source order,
    bit-identical to a single process; only rank 0 reports skips and writes the cache.
    Default: this process alone (e.g. rank 0 measuring FID during DDP training)."""
    world = World() if world is None else world
    label = str(source.path)
    resize = extractor.info.resize
    cache_file = _cache_file(source, extractor) if use_cache else None
    cached = _read_cache(cache_file, label, extractor) if cache_file is not None else None
    if all_flags(cached is not None, world, device):  # every process takes the same path
        fs = cached
        if fs.skipped and strict:  # the same verdict as on the run that filled the cache
            raise BadInput(f"{label}: {fs.skipped} corrupt image(s) (--strict; {fs.skip_report or 'from the cache'})")
        if fs.skip_report and on_skip is not None and world.is_main:
            on_skip(fs.skip_report)
        return fs
    loader = source.loader(batch_size=batch_size, num_workers=num_workers, mixed_size=extractor.info.input_size,
                           strict=strict, desc=f"{extractor.info.name} features: {source.path.name}",
                           indices=shard_range(len(source), batch_size, world) if world.distributed else None)
    features = gather_rows(_extract_shard(extractor, loader, device, world), world, device)
    if world.distributed:
        loader.corrupt = [item for part in gather_objects(loader.corrupt, world) for item in part]
    report = loader.report_corrupt()
    if report and on_skip is not None and world.is_main:
        on_skip(report)
    fs = FeatureSet.from_features(label, features, extractor=extractor.info.name, skipped=len(loader.corrupt),
                                  skip_report=report, resize=resize)
    if cache_file is not None and world.is_main:
        atomic.save_npz(cache_file, mu=fs.mu, sigma=fs.sigma, n=np.int64(fs.n), features=features,
                        skipped=np.int64(fs.skipped), skip_report=np.array(report or ""))
    return fs


def _extract_shard(extractor: FeatureExtractor, loader, device: torch.device, world: World) -> np.ndarray:
    """This process's features. Under torchrun a bad input on one rank (--strict, mixed sizes)
    must not leave the others waiting in the gather for ever: every rank finishes its share,
    then all learn the first rank's error and raise it, so each exits with the same line."""
    if not world.distributed:
        return extract_features(extractor, (b.images for b in loader), device)
    error, local = None, np.empty((0, extractor.info.dim), dtype=np.float32)
    try:
        local = extract_features(extractor, (b.images for b in loader), device)
    except BadInput as err:
        error = str(err)
    errors = [e for e in gather_objects(error, world) if e]
    if errors:
        raise BadInput(errors[0])
    return local


def _read_cache(cache_file: Path, label: str, extractor: FeatureExtractor) -> FeatureSet | None:
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as npz:
            return FeatureSet(label, npz["mu"], npz["sigma"], int(npz["n"]), npz["features"],
                              extractor.info.name, cached=True, skipped=int(npz["skipped"]),
                              skip_report=str(npz["skip_report"]) or None, resize=extractor.info.resize)
    except (ValueError, OSError, KeyError):
        cache_file.unlink(missing_ok=True)  # a damaged cache entry is recomputed
        return None


def path_features(path: str | Path, extractor: FeatureExtractor, device: torch.device, batch_size: int = 50,
                  num_workers: int = 0, strict: bool = False, use_cache: bool = True, on_skip=None,
                  world: World | None = None) -> FeatureSet:
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


def generator_features(
    batches: Iterable[torch.Tensor | np.ndarray],
    extractor: FeatureExtractor,
    device: torch.device,
    n: int,
    name: str,
) -> FeatureSet:
    """Stream ``n`` generated samples (uint8 N×H×W×3 batches, handed in by the caller: the core
    never loads a model) straight into the network."""
    from ganeval.progress import progress

    def counted():
        with progress(total=n, desc=f"sampling {name}", unit="img") as bar:
            for images in batches:
                bar.update(len(images))
                yield images

    features = extract_features(extractor, counted(), device)
    return FeatureSet.from_features(f"generator {name}", features, extractor=extractor.info.name, origin="generator",
                                    resize=extractor.info.resize)
