"""The Python API that ``ganeval fid`` calls: FID, KID, IS and precision/recall/density/
coverage between two sides, each a path, an image array, a generator or precomputed features.

>>> import ganeval
>>> fid = ganeval.compute_fid("real/", "fake.npz")                       # doctest: +SKIP
>>> ganeval.compute_metrics("real/", G, metrics="all", z_dim=128, n=10_000)  # doctest: +SKIP

Every check that can fail (metric names, inputs, output files) runs before any network
does; results are plain dicts with the same keys as ``ganeval fid --json``."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from ganeval import atomic
from ganeval.device import resolve_device
from ganeval.errors import BadInput
from ganeval.images import to_uint8_nhwc
from ganeval.features.base import FeatureExtractor
from ganeval.features.registry import build_extractor, preset_of, preset_resize
from ganeval.metrics.fid import frechet_distance
from ganeval.metrics.inception_score import inception_score
from ganeval.metrics.kid import kernel_inception_distance
from ganeval.metrics.prdc import prdc, subsample
from ganeval.outputs import check_output_file
from ganeval.results import Result
from ganeval.sources import ArraySource, open_source
from ganeval.distributed import World, shard_range
from ganeval.features.extract import generator_features, source_features
from ganeval.features.featureset import FeatureSet
from ganeval.stats import is_stats_file, path_features
from ganeval.stats import save_stats as write_stats

METRICS = ("fid", "kid", "is", "prdc")
DEFAULT_METRICS = ("fid", "kid")
PRDC_KEYS = ("precision", "recall", "density", "coverage")


class MetricsResult(Result):
    """FID, KID, IS, PRDC values and how they were measured: the keys of ``fid --json``
    (``fid``, ``kid_mean``, ``kid_std``, ``is_mean``, ``precision``, …, ``features``, ``a``, ``b``)."""


@dataclass
class Batches:
    """A side given as uint8 N×H×W×3 batches, made on demand (e.g. samples of a checkpoint)."""

    make: Callable[[], Iterable[torch.Tensor]]
    label: str
    n: int | None = None
    # make_share(start, count): the batches one process would draw from item ``start`` on, so
    # that under torchrun each process makes only its share (same latents as one process)
    make_share: Callable[[int, int], Iterable[torch.Tensor]] | None = None


def parse_metrics(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """"fid,kid" / ["fid", "is"] / "all" → names in canonical order; unknown names are an error."""
    if spec is None:
        return DEFAULT_METRICS
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if "all" in names:
        return METRICS
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise BadInput(f"unknown metric {unknown[0]!r}: choose from {', '.join(METRICS)} or all" if unknown
                       else f"no metrics given: choose from {', '.join(METRICS)} or all")
    return tuple(m for m in METRICS if m in names)


def parse_prdc_k(spec: int | str | Sequence[int]) -> tuple[int, int]:
    """k for precision/recall and for density/coverage: "3,5" (the papers' values) or one k for both."""
    try:
        values = [int(v) for v in (str(spec).split(",") if isinstance(spec, (int, str)) else spec)]
    except ValueError:
        raise BadInput(f"--prdc-k takes K or K_PR,K_DC (integers), got {spec!r}") from None
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) < 1:
        raise BadInput(f"--prdc-k takes K or K_PR,K_DC with K ≥ 1, got {spec!r}")
    return values[0], values[1]


# ------------------------------------------------------------------ sides

def generator_side(G: Any, seeds: Sequence[int], batch_size: int = 50, **options: Any) -> Batches:
    """The images of ``seeds`` of a :class:`ganeval.generators.Generator` as one side of
    :func:`compute_metrics`; under torchrun each process draws only its share (the same pixels
    one process draws, since an image depends on its seed alone)."""
    seeds = list(seeds)

    def share(start: int, count: int) -> Iterator[torch.Tensor]:
        return G.sample(seeds[start:start + count], batch_size=batch_size, **options)

    return Batches(lambda: share(0, len(seeds)), f"generator {G.label}", len(seeds), make_share=share)


def _as_side(x: Any, name: str, z_dim: int | None, n: int, batch_size: int, seed: int, device: torch.device,
             value_range: tuple[float, float] | None = None):
    """Normalise what the user gave into a path, an ArraySource, Batches or a FeatureSet."""
    if isinstance(x, (FeatureSet, Batches, ArraySource)):
        return x
    if isinstance(x, (str, os.PathLike)):
        if not Path(x).expanduser().exists():
            raise BadInput(f"{x}: no such file or folder")
        return str(x)
    if isinstance(x, np.ndarray) or torch.is_tensor(x):
        label = f"array {name}"
        return ArraySource(Path(label), to_uint8_nhwc(x, value_range, label, strict_range=True).numpy())
    if hasattr(x, "sample") and hasattr(x, "z_dim"):  # a ganeval.load_generator result
        return generator_side(x, range(seed, seed + n), batch_size)
    if callable(x):  # a plain G(z): the one sampler, z per seed
        from ganeval.sampler import renderer, sample_batches

        if not z_dim:
            raise BadInput(f"{name}: a generator G(z) needs its latent size (z_dim=...)")
        seeds, render = list(range(seed, seed + n)), renderer(x, name=f"generator {name}")

        def share(start: int, count: int) -> Iterator[torch.Tensor]:
            return sample_batches(render, z_dim, seeds[start:start + count], batch_size, device, f"generator {name}")

        return Batches(lambda: share(0, n), f"generator {name}", n, make_share=share)
    raise BadInput(f"{name}: expected a path, a uint8 image array or tensor, a generator G(z) or a FeatureSet, "
                   f"got {type(x).__name__}")


def _features_of(side, extractor: FeatureExtractor, device: torch.device, batch_size: int, num_workers: int,
                 strict: bool, cache: bool, on_warning: Callable[[str], None],
                 world: World | None = None) -> FeatureSet:
    world = World() if world is None else world
    if isinstance(side, FeatureSet):
        return side.require_statistics()
    if isinstance(side, str):
        fs = path_features(side, extractor, device, batch_size, num_workers, strict, use_cache=cache,
                           on_skip=on_warning, world=world)
    elif isinstance(side, ArraySource):
        fs = source_features(side, extractor, device, batch_size, num_workers, strict, use_cache=cache,
                             on_skip=on_warning, world=world)
    else:
        sharded = world.distributed and side.make_share is not None and side.n is not None
        share = shard_range(side.n, batch_size, world) if sharded else None
        made = side.make_share(share.start, len(share)) if sharded else side.make()
        fs = generator_features(made, extractor, device, len(share) if sharded else side.n, side.label,
                                world if sharded else None)
    return fs.require_statistics()


def describe(fs: FeatureSet) -> dict:
    return {"path": fs.label, "origin": fs.origin, "n": fs.n, "cached": fs.cached, "skipped_corrupt": fs.skipped}


# ------------------------------------------------------------------ metrics

def metrics_from_features(a: FeatureSet, b: FeatureSet, metrics: str | Sequence[str] | None = DEFAULT_METRICS,
                          extractor: FeatureExtractor | None = None, *, kid_subsets: int = 100,
                          kid_subset_size: int = 1000, prdc_k: int | str | Sequence[int] = (3, 5),
                          prdc_n: int = 10_000, seed: int = 0, device: torch.device | str = "cpu",
                          on_warning: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The requested metrics of two feature sets (``b`` is the one judged; IS is of ``b``).

    The function a training loop calls every few steps, with the reference's FeatureSet
    computed once; ``extractor`` is needed only for IS (its classifier)."""
    metrics = parse_metrics(metrics)
    on_warning = on_warning or (lambda msg: warnings.warn(msg, stacklevel=3))
    k_pr, k_dc = parse_prdc_k(prdc_k)
    out: dict[str, Any] = {}
    if "fid" in metrics:
        for fs in (a, b):
            if fs.origin != "statistics" and fs.n < len(fs.mu):
                on_warning(f"{fs.label}: {fs.n} samples < {len(fs.mu)} feature dimensions; FID is biased upwards "
                           "and only comparable at equal sample counts")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["fid"] = frechet_distance(a.mu, a.sigma, b.mu, b.sigma)
    if "kid" in metrics:
        kid = None
        if a.features is not None and b.features is not None:
            kid = kernel_inception_distance(a.features, b.features, kid_subsets, kid_subset_size)
        out.update(kid_mean=kid.mean if kid else None, kid_std=kid.std if kid else None,
                   kid_subsets=kid.subsets if kid else None, kid_subset_size=kid.subset_size if kid else None)
    if "is" in metrics:
        if b.features is None:
            raise BadInput(f"{b.label}: the Inception Score needs images (a statistics file holds no logits)")
        if extractor is None:
            raise BadInput("the Inception Score needs the feature extractor (its classifier)")
        result = inception_score(extractor.logits(torch.from_numpy(np.asarray(b.features))).cpu())
        out.update(is_mean=result.mean, is_std=result.std)
    if "prdc" in metrics:
        for fs in (a, b):
            if fs.features is None:
                raise BadInput(f"{fs.label}: precision/recall/density/coverage need images "
                               "(a statistics file holds only mu and sigma)")
            if fs.n < max(k_pr, k_dc) + 1:
                raise BadInput(f"{fs.label}: prdc with k={max(k_pr, k_dc)} needs at least {max(k_pr, k_dc) + 1} "
                               f"samples, got {fs.n}")
        real, fake = subsample(a.features, prdc_n, seed), subsample(b.features, prdc_n, seed + 1)
        result = prdc(real, fake, k_pr=k_pr, k_dc=k_dc, device=device)
        out.update({key: getattr(result, key) for key in PRDC_KEYS})
        out.update(prdc_k=[k_pr, k_dc], prdc_n=[result.n_real, result.n_fake])
    return out


def _check_outputs(save_stats: Sequence[str | os.PathLike], save_features: str | os.PathLike | None,
                   inputs: list, n_sides: int, overwrite: bool) -> None:
    paths = [x for x in inputs if isinstance(x, str)]
    if len(save_stats) > n_sides:
        raise BadInput(f"--save-stats given {len(save_stats)} times for {n_sides} input(s): one file per input")
    outs = [(p, "--save-stats") for p in save_stats] + ([(save_features, "--save-features")] if save_features else [])
    seen: set[str] = set()
    for out, flag in outs:
        real = os.path.realpath(os.fspath(out))
        if real in seen:
            raise BadInput(f"{out} is given twice as an output")
        seen.add(real)
        check_output_file(out, paths, overwrite=overwrite, flag=flag)
    if save_features:
        for side in inputs:
            if isinstance(side, FeatureSet) and side.features is None or isinstance(side, str) and is_stats_file(side):
                label = side if isinstance(side, str) else side.label
                raise BadInput(f"--save-features needs images: {label} is a statistics file (mu and sigma only)")


def compute_metrics(
    a: Any,
    b: Any = None,
    metrics: str | Sequence[str] | None = DEFAULT_METRICS,
    *,
    features: str = "inception",
    weights: str | os.PathLike | None = None,
    extractor: FeatureExtractor | None = None,
    device: str | torch.device = "auto",
    resize: str = "pytorch-fid",
    preset: str | None = None,
    fast: bool = False,
    batch_size: int = 50,
    num_workers: int = 0,
    strict: bool = False,
    cache: bool = True,
    z_dim: int | None = None,
    value_range: tuple[float, float] | None = None,
    n: int = 50_000,
    seed: int = 0,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    prdc_k: int | str | Sequence[int] = (3, 5),
    prdc_n: int = 10_000,
    save_stats: Sequence[str | os.PathLike] | str | os.PathLike | None = None,
    save_features: str | os.PathLike | None = None,
    per_image: str | os.PathLike | None = None,
    overwrite: bool = False,
    on_warning: Callable[[str], None] | None = None,
    world: World | None = None,
) -> "MetricsResult":
    """Metrics of ``b`` against ``a`` (the reference): a :class:`MetricsResult` whose
    ``as_dict()`` is what ``ganeval fid --json`` prints (``result.fid`` or ``result["fid"]``).

    ``a``/``b``: an image folder, .zip, .npy/.npz array, statistics .npz (``mu``, ``sigma``),
    a uint8 N×H×W×3 (or N×3×H×W) array or tensor (float ones with ``value_range=(-1, 1)`` or
    ``(0, 1)``), a generator from :func:`ganeval.load_generator` or a ``G(z)`` (give ``z_dim``;
    the images of seeds ``seed … seed+n−1``), a :class:`Batches` or a :class:`ganeval.features.featureset.FeatureSet`.
    ``b=None`` only computes (and saves) the statistics/features of ``a``. ``per_image``: a CSV
    of every image of ``b``'s realism and rarity scores, nearest ``a`` image and Gaussian
    log-density (:mod:`ganeval.metrics.per_image`). ``preset``: "pytorch-fid" (default),
    "torch-fidelity" or "clean-fid", the reference package whose Inception preprocessing every
    metric of the run uses, so its numbers equal that package's on the same images and weights.
    ``world`` (from ``ganeval.distributed.setup`` under torchrun): every process extracts a
    share and gets every feature, so the result equals one process's; only rank 0 writes."""
    world = World() if world is None else world
    metrics = parse_metrics(metrics)
    on_warning = on_warning or (lambda msg: warnings.warn(msg, stacklevel=2))
    dev = resolve_device(device)
    parse_prdc_k(prdc_k)
    stats_outs = [save_stats] if isinstance(save_stats, (str, os.PathLike)) else list(save_stats or [])
    sides = [_as_side(x, name, z_dim, n, batch_size, seed, dev, value_range)
             for x, name in ((a, "a"), (b, "b")) if x is not None]
    _check_outputs(stats_outs, save_features, sides, len(sides), overwrite)
    if per_image is not None:
        if len(sides) != 2:
            raise BadInput("--per-image scores the second input against the first: give two inputs")
        check_output_file(per_image, [s for s in sides if isinstance(s, str)], overwrite=overwrite, flag="--per-image")
        for side in sides:
            if isinstance(side, str) and is_stats_file(side) or isinstance(side, FeatureSet) and side.features is None:
                raise BadInput(f"--per-image needs images on both sides: {getattr(side, 'label', side)} is a "
                               "statistics file (mu and sigma only)")
    if len(sides) == 1 and not (stats_outs or save_features):
        raise BadInput("one input given: add a second input to compare, or --save-stats OUT.npz")
    if len(sides) == 2 and "is" in metrics and isinstance(sides[1], str) and is_stats_file(sides[1]):
        raise BadInput(f"{sides[1]}: the Inception Score needs images (a statistics file holds no logits)")
    if len(sides) == 2 and "is" in metrics:
        _check_is_samples(sides[1])
    if extractor is None:
        extractor = build_extractor(features, weights, dev, fast=fast, resize=preset_resize(preset, resize))
    if len(sides) == 2 and "is" in metrics:
        extractor.logits(torch.zeros(1, extractor.info.dim))  # no classifier: fail before the work
    if not extractor.info.standard:
        on_warning(f"{extractor.info.name} weights are not the published ones: values are not comparable "
                   "with published numbers")
    sets = [_features_of(s, extractor, dev, batch_size, num_workers, strict, cache, on_warning, world) for s in sides]
    for fs in sets:
        if fs.extractor and fs.extractor != extractor.info.name:
            raise BadInput(f"{fs.label}: features are {fs.extractor}, not {extractor.info.name}")
    for fs, out in zip(sets, stats_outs if world.is_main else []):
        write_stats(out, fs)
    if save_features and world.is_main:
        atomic.save_npz(save_features, **{key: np.asarray(fs.features, dtype=np.float32)
                                          for key, fs in zip("ab", sets)})
    result = MetricsResult()
    if per_image is not None and world.is_main:
        from ganeval.metrics.per_image import nearest_real_ssim, per_image_scores, write_scores_csv

        scores = per_image_scores(sets[0].features, sets[1].features, device=dev)
        sources = [_image_source(side) for side in sides]
        if all(src is not None for src in sources) and all(fs.source_index is not None for fs in sets):
            scores["nearest_real_ssim"] = nearest_real_ssim(sources[1], sets[1].source_index, sources[0],
                                                            sets[0].source_index, scores["nearest_real"])
        write_scores_csv(per_image, scores, names=_row_names(sides[1], sets[1], seed))
    if len(sets) == 2:
        result.update(metrics_from_features(sets[0], sets[1], metrics, extractor, kid_subsets=kid_subsets,
                                            kid_subset_size=kid_subset_size, prdc_k=prdc_k, prdc_n=prdc_n,
                                            seed=seed, device=dev, on_warning=on_warning))
    result.update(metrics=list(metrics), features=extractor.info.name, feature_dim=extractor.info.dim,
                  resize=extractor.info.resize, preset=preset_of(extractor.info.resize),
                  standard_weights=extractor.info.standard)
    for key, fs in zip("ab", sets):
        result[key] = describe(fs)
    return result


def _image_source(side: Any):
    """The images of a side when it has them to read again (a path or an array), else None."""
    if isinstance(side, ArraySource):
        return side
    return open_source(side) if isinstance(side, str) and not is_stats_file(side) else None


def _row_names(side: Any, fs: FeatureSet, seed: int) -> list[str]:
    """What each feature row is called in per-image tables: the image's key in its source (a
    file name, or the index in an array), or ``seedS`` for a generator's sample."""
    if fs.origin == "generator":
        return [f"seed{seed + i}" for i in range(fs.n)]
    source = _image_source(side)
    if source is None or fs.source_index is None:
        return [str(i) for i in range(fs.n)]
    return [source.key(int(i)) for i in fs.source_index]


def _check_is_samples(side: Any, splits: int = 10) -> None:
    """The Inception Score's 10 splits need 10 images: say so before any network runs."""
    if isinstance(side, FeatureSet):
        n = side.n
    elif isinstance(side, (Batches, ArraySource)):
        n = side.n if isinstance(side, Batches) else len(side)
    else:
        from ganeval.sources import open_source

        n = len(open_source(side))
    if n is not None and n < splits:
        label = getattr(side, "label", None) or getattr(side, "path", side)
        raise BadInput(f"{label}: the Inception Score ({splits} splits) needs at least {splits} images, got {n}")


def compute_fid(a: Any, b: Any, **kwargs: Any) -> float:
    """FID between ``a`` and ``b``; takes every keyword of :func:`compute_metrics`."""
    return float(compute_metrics(a, b, metrics=("fid",), **kwargs)["fid"])
