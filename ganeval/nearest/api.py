"""``ganeval.find_nearest``: the ``ganeval nearest`` command as one Python call.

Notebooks and training scripts hold images in memory or hold the generator itself; this
takes either (or paths) and runs the very same pipeline as the command, so the result has
the keys of ``--json`` / ``summary.json``, plus the neighbour table as arrays."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Union

import numpy as np
import torch

from ganeval.images import to_uint8_nhwc
from ganeval.errors import BadInput
from ganeval.nearest.pipeline import OUTPUT_NAMES, NearestOptions, run_nearest_full
from ganeval.outputs import prepare_output_dir
from ganeval.results import Result
from ganeval.sources import ArraySource, Source

Images = Union[str, os.PathLike, np.ndarray, torch.Tensor, Source, Callable[[torch.Tensor], torch.Tensor],
               Iterator]


class NearestResult(Result):
    """The summary (same keys as ``summary.json``), with the neighbours themselves as attributes:
    ``index`` Q×k training positions, ``score`` Q×k similarities (SSIM, or cosine in a feature
    space), ``generated_keys`` and ``train_keys`` naming the rows and the positions."""

    index: np.ndarray
    score: np.ndarray
    generated_keys: list[str]
    train_keys: list[str]

    def neighbours(self, query: int) -> list[tuple[str, float]]:
        """Query ``query``'s neighbours as (training key, score), best first."""
        return [(self.train_keys[int(i)], float(s)) for i, s in zip(self.index[query], self.score[query]) if i >= 0]


def sample_generator(G: Any, n: int, z_dim: int | None, batch_size: int = 64, seed: int = 0,
                     device: torch.device | str = "cpu") -> np.ndarray:
    """The images of seeds ``seed … seed+n−1`` of a generator (anything
    :func:`ganeval.generators.load_generator` takes), through the one sampler."""
    from ganeval.generators import load_generator

    if n is None or n <= 0:
        raise BadInput("a generator needs n > 0 images")
    gen = load_generator(G, z_dim=z_dim, device=device, label="G(z)")
    return np.concatenate([b.numpy() for b in gen.sample(n=n, seed=seed, batch_size=batch_size)])


def as_source(images: Images, what: str, n: int | None = None, z_dim: int | None = None,
              batch_size: int = 64, seed: int = 0, device: torch.device | str = "cpu",
              value_range: tuple[float, float] | None = None) -> str | os.PathLike | Source:
    """A path stays a path (the command's own loader reads it); everything else becomes an ArraySource."""
    if isinstance(images, (str, os.PathLike, Source)):
        return images
    if isinstance(images, (np.ndarray, torch.Tensor)):
        array = to_uint8_nhwc(images, value_range, what, strict_range=True).numpy()
    elif callable(images) or type(images).__name__ == "Generator":
        if n is None:
            raise BadInput(f"{what}: a generator needs n= (and z_dim= for a plain G(z))")
        array = sample_generator(images, n, z_dim, batch_size, seed, device)
    elif isinstance(images, Iterator):
        array = np.concatenate([to_uint8_nhwc(b, value_range, what, strict_range=True).numpy() for b in images])
    else:
        raise BadInput(f"{what}: expected a path, uint8 array/tensor, G(z) callable or iterator of batches, "
                       f"got {type(images).__name__}")
    return ArraySource(Path(f"<{what} array>"), array)


def find_nearest(generated: Images, train: Images, k: int = 4, *, space: str = "ssim", n: int | None = None,
                 z_dim: int | None = None, value_range: tuple[float, float] | None = None, outdir: str | os.PathLike | None = None, overwrite: bool = False,
                 device: str = "auto", seed: int = 0, batch_size: int = 64, verbose: bool = False,
                 say: Callable[[str], None] | None = None, **options: Any) -> NearestResult:
    """Each generated image's ``k`` nearest training images, as ``ganeval nearest`` finds them.

    ``generated`` / ``train``: a folder, zip, .npy/.npz path; a uint8 array or tensor (N×H×W×3 or
    N×3×H×W; float ones with ``value_range=(-1, 1)`` or ``(0, 1)``); an iterator of such batches; or for
    ``generated`` a generator (``ganeval.load_generator``'s result, a checkpoint/pickle path is
    read as images: load it first) or a callable ``G(z)`` with ``z_dim`` and ``n``. ``space``: "ssim"
    or a feature network (cosine). ``options``: any other field of
    the parts of :class:`~ganeval.nearest.pipeline.NearestOptions` (``SearchOptions``:
    ``exact``, ``candidates``, ``check_recall``, ``gray``, …; ``IndexOptions``: ``pca``,
    ``rebuild``, …; ``ReportOptions``: ``test``, ``copy_threshold``, …). Without ``outdir`` nothing is written except the cached index.
    ``outdir`` follows the output policy of ``ganeval nearest -o``, checked before the work: a
    non-empty folder needs ``overwrite``, which replaces only what an earlier run wrote there.
    Progress notes go to ``say`` (the CLI passes its printer), or to stdout with ``verbose``.

    >>> result = find_nearest(fake_uint8, "train.zip", k=4)          # doctest: +SKIP
    >>> result["ranks"][0]["mean"], result.neighbours(0)[0]             # doctest: +SKIP"""
    from ganeval.device import resolve_device

    unknown = sorted(set(options) - NearestOptions.option_names())
    if unknown:
        raise BadInput(f"find_nearest: unknown option(s) {', '.join(unknown)}")
    if outdir is not None and options.get("output") is None:
        inputs = [x for x in (generated, train, options.get("test")) if isinstance(x, (str, os.PathLike))]
        options["output"] = prepare_output_dir(outdir, "nearest", inputs, overwrite, reserve=OUTPUT_NAMES, defer=True)
    sample_device = resolve_device(device)
    opts = NearestOptions.flat(
        as_source(generated, "generated", n, z_dim, batch_size, seed, sample_device, value_range),
        as_source(train, "train", batch_size=batch_size, value_range=value_range),
        outdir=None if outdir is None else str(outdir), k=k, space=space, device=device, seed=seed,
        batch_size=batch_size, plots=options.pop("plots", outdir is not None),
        contact_sheets=options.pop("contact_sheets", 64 if outdir is not None else 0), **options)
    if say is None:
        say = (lambda m: print(m, flush=True)) if verbose else (lambda m: None)
    summary, nb, gen_keys, train_keys = run_nearest_full(opts, say)
    result = NearestResult(summary)
    result.index, result.score = nb.index, nb.score
    result.generated_keys, result.train_keys = list(gen_keys), list(train_keys)
    return result
