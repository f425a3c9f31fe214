"""The one path from an image source, a generator or a statistics file to features.

fid, every metric, ``nearest --space``, compare and the training monitor all come here, so
they share one cache (``cache_dir("features")``, keyed by the source's content hash, the
network, its weights, input size, mode and resize; a side may also be a statistics file,
:func:`ganeval.stats.path_features`) and one guard: TF32 off while a network
runs, so features do not depend on the GPU's default precision."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from ganeval import atomic
from ganeval.allocator import reuse_freed_blocks
from ganeval.cache import cache_dir, settings_key
from ganeval.distributed import World, all_flags, gather_objects, gather_rows, shard_range
from ganeval.errors import BadInput
from ganeval.features.base import FeatureExtractor
from ganeval.features.featureset import FeatureSet
from ganeval.progress import progress
from ganeval.sources import Source

CACHE_VERSION = 3  # 3: which source image each row is, and the names of skipped files


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
def extract_features(extractor: FeatureExtractor, batches: Iterable[torch.Tensor | np.ndarray],
                     device: torch.device) -> np.ndarray:
    """Run uint8 N×H×W×3 batches through the network; returns float32 N×D."""
    extractor = extractor.to(device).eval()
    out = []
    on_cpu = torch.device(device).type == "cpu"
    with full_precision_matmul(), (reuse_freed_blocks() if on_cpu else contextlib.nullcontext()):
        for images in batches:
            x = torch.as_tensor(np.ascontiguousarray(images) if isinstance(images, np.ndarray) else images)
            out.append(extractor(x.to(device, non_blocking=True).permute(0, 3, 1, 2)).float().cpu().numpy())
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
    on_skip: Callable[[str], None] | None = None,
    world: World | None = None,
    desc: str | None = None,
) -> FeatureSet:
    """Features of every readable image in ``source``, from the cache when possible.

    With a multi-process ``world`` (torchrun; every rank must call this) each process extracts
    a contiguous run of whole batches and every process gets all features in source order,
    bit-identical to a single process; only rank 0 reports skips and writes the cache.
    Default: this process alone (e.g. rank 0 measuring FID during DDP training)."""
    world = World() if world is None else world
    label = str(source.path)
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
                           strict=strict, desc=desc or f"{extractor.info.name} features: {source.path.name}",
                           indices=shard_range(len(source), batch_size, world) if world.distributed else None)
    features = gather_rows(_extract_shard(extractor, loader, device, world), world, device)
    if world.distributed:
        loader.corrupt = [item for part in gather_objects(loader.corrupt, world) for item in part]
    if not len(features):
        raise BadInput(f"{label}: no readable images" + (f" ({loader.report_corrupt()})" if loader.corrupt else ""))
    report = loader.report_corrupt()
    if report and on_skip is not None and world.is_main:
        on_skip(report)
    bad = {name for name, _ in loader.corrupt}
    source_index = np.asarray([i for i in range(len(source)) if not bad or source.key(i) not in bad], np.int64)
    fs = FeatureSet.from_features(label, features, extractor=extractor.info.name, skipped=len(loader.corrupt),
                                  skip_report=report, resize=extractor.info.resize, source_index=source_index,
                                  skipped_files=[(str(k), str(w)) for k, w in loader.corrupt])
    if cache_file is not None and world.is_main:
        stats = {"mu": fs.mu, "sigma": fs.sigma} if fs.mu is not None else {}
        atomic.save_npz(cache_file, n=np.int64(fs.n), features=features, source_index=source_index,
                        skipped=np.int64(fs.skipped), skip_report=np.array(report or ""),
                        skipped_files=np.asarray(["\t".join(s) for s in fs.skipped_files], dtype=str), **stats)
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
            stats = (npz["mu"], npz["sigma"]) if "mu" in npz.files else (None, None)
            skipped_files = [tuple(s.split("\t", 1)) for s in npz["skipped_files"].tolist()]
            return FeatureSet(label, *stats, int(npz["n"]), npz["features"], extractor.info.name, cached=True,
                              skipped=int(npz["skipped"]), skip_report=str(npz["skip_report"]) or None,
                              resize=extractor.info.resize, source_index=npz["source_index"],
                              skipped_files=skipped_files)
    except (ValueError, OSError, KeyError):
        cache_file.unlink(missing_ok=True)  # a damaged cache entry is recomputed
        return None


def generator_features(batches: Iterable[torch.Tensor | np.ndarray], extractor: FeatureExtractor,
                       device: torch.device, n: int, label: str, world: World | None = None) -> FeatureSet:
    """Stream generated uint8 N×H×W×3 batches (handed in by the caller: the core never loads a
    model) straight into the network. Under a multi-process ``world`` each process hands in
    its share of ``n`` and every process gets all rows, in seed order."""
    world = World() if world is None else world

    def counted():
        with progress(total=n, desc=f"sampling {label}", unit="img") as bar:
            for images in batches:
                bar.update(len(images))
                yield images

    features = extract_features(extractor, counted(), device)
    if world.distributed:
        features = gather_rows(features, world, device)
    return FeatureSet.from_features(label, features, extractor=extractor.info.name, origin="generator",
                                    resize=extractor.info.resize)
