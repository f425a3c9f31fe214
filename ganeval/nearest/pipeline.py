"""``ganeval nearest`` as a function: load, index, search, measure, write.

The CLI only parses arguments into :class:`NearestOptions`; tests and notebooks call
:func:`run_nearest` directly."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ganeval.device import resolve_device
from ganeval.errors import BadInput
from ganeval.nearest import copying, report
from ganeval.nearest.embed import EmbedSpec
from ganeval.nearest.index import (RESIZE_FILTER, SCREEN_STRIDE, IndexSettings, TrainIndex, load_images,
                                   native_channels, open_index)
from ganeval.nearest.search import Neighbours, Searcher, default_candidates, recall_at
from ganeval.outputs import OutputDir
from ganeval.sources import Source, open_source

# Distinct faces' top-1 SSIM stayed below 0.79 on 20k synthetic and 9k real anime faces,
# while JPEG-75 re-encodes and ±10% brightness copies scored 0.78–0.99.
DEFAULT_COPY_THRESHOLD = 0.8
SSIM_DEFINITION = ("skimage.metrics.structural_similarity(a, b, channel_axis=-1, data_range=255, "
                   "gaussian_weights=True, sigma=1.5, use_sample_covariance=False)")


@dataclass
class NearestOptions:
    generated: str
    train: str
    outdir: str | None = None
    k: int = 4
    gray: bool = False
    exact: bool = False
    candidates: int | None = None
    shortlist: int | None = None
    check_recall: int = 0
    copy_threshold: float = DEFAULT_COPY_THRESHOLD
    mean_all: bool = False
    test: str | None = None
    cells: int | None = None
    contact_sheets: int = 64
    pca: int = 0
    rebuild: bool = False
    device: str = "auto"
    batch_size: int = 64
    num_workers: int = 0
    strict: bool = False
    seed: int = 0
    plots: bool = True
    notes: list[str] = field(default_factory=list)
    output: OutputDir | None = None  # outdir checked by ganeval.outputs (the CLI); opened just before writing


# what _write_outputs may write: a file of someone else's with such a name is refused up front
OUTPUT_NAMES = ("neighbours.csv", "summary.json", "ssim_hist.png", "contact_sheets/*", "mean_ssim.csv",
                "mean_ssim.png")


def _check_channels(a: Source, b: Source, what: str, gray: bool) -> None:
    ca, cb = native_channels(a), native_channels(b)
    if ca != cb and not gray:
        raise BadInput(f"{what} images have {ca} channel(s) but the training images have {cb}: "
                       "SSIM on RGB needs both in colour; compare luminance with --gray")


def _resize_note(loaded, size) -> dict:
    return {"count": loaded.resized, "from": {f"{h}x{w}": c for (h, w), c in loaded.resized_from.items()},
            "to": f"{size[0]}x{size[1]}", "filter": RESIZE_FILTER}


def _search(searcher: Searcher, images: np.ndarray, k: int, opts: NearestOptions, desc: str,
            mean_all: bool = False) -> Neighbours:
    if opts.exact or mean_all:
        return searcher.exhaustive(images, k, mean_all=mean_all, desc=desc)
    return searcher.cascade(images, k, opts.candidates or default_candidates(k), opts.shortlist, desc=desc)


def run_nearest(opts: NearestOptions, say: Callable[[str], None] = lambda m: None) -> dict:
    """Run the whole command; returns the summary (also written to OUTDIR/summary.json)."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    device = resolve_device(opts.device)
    gen_src = open_source(opts.generated)
    train_src = open_source(opts.train)
    test_src = open_source(opts.test) if opts.test else None
    if opts.k > len(train_src):
        raise BadInput(f"-k {opts.k} is larger than the training set ({len(train_src)} images)")
    _check_channels(gen_src, train_src, "generated", opts.gray)
    if test_src is not None:
        _check_channels(test_src, train_src, "--test", opts.gray)

    t = time.perf_counter()
    index = open_index(train_src, IndexSettings(gray=opts.gray, spec=EmbedSpec(pca_dim=opts.pca)),
                       opts.batch_size, opts.num_workers, opts.strict, opts.rebuild, device, on_note=say)
    timings["index"] = time.perf_counter() - t
    say(f"training index: {len(index)} images at {index.size[0]}x{index.size[1]}, "
        + ("reused from cache" if index.cached else f"built in {index.build_seconds:.1f}s") + f" ({index.path})")
    if opts.k > len(index):
        raise BadInput(f"-k {opts.k} is larger than the readable training set ({len(index)} images)")
    if index.resized_from:
        say(f"training images of other sizes resized to {index.size[0]}x{index.size[1]}: "
            f"{sum(index.resized_from.values())} ({RESIZE_FILTER})")

    t = time.perf_counter()
    gen = load_images(gen_src, index.size, opts.batch_size, opts.num_workers, opts.strict, "reading generated")
    timings["load_generated"] = time.perf_counter() - t
    if gen.resized:
        sizes = ", ".join(f"{h}x{w}" for h, w in gen.resized_from)
        say(f"resized {gen.resized} generated image(s) from {sizes} to the training size "
            f"{index.size[0]}x{index.size[1]} ({RESIZE_FILTER})")
    if gen.skipped:
        say(f"skipped {len(gen.skipped)} corrupt generated image(s), e.g. {gen.skipped[0][0]}")

    searcher = Searcher(index, device)
    t = time.perf_counter()
    nb = _search(searcher, gen.images, opts.k, opts, "nearest training images", mean_all=opts.mean_all)
    timings["search"] = time.perf_counter() - t
    top1 = nb.score[:, 0]

    recall = None
    if opts.check_recall:
        t = time.perf_counter()
        recall = _check_recall(searcher, gen.images, nb, opts)
        timings["check_recall"] = time.perf_counter() - t
        say(f"recall against exhaustive search on {recall['queries']} queries: "
            f"recall@1 {recall['recall@1']:.4f}, recall@{opts.k} {recall[f'recall@{opts.k}']:.4f}")

    copy_stats = None
    if test_src is not None:
        t = time.perf_counter()
        copy_stats = _copy_statistics(searcher, index, gen.images, nb, test_src, opts, say)
        timings["copy_statistics"] = time.perf_counter() - t

    shares = report.copy_shares(top1, opts.copy_threshold)
    summary = {
        "generated": {"path": str(gen_src.path), "n": len(gen.keys), "skipped_corrupt": len(gen.skipped),
                      "resized": _resize_note(gen, index.size)},
        "train": {"path": str(train_src.path), "n": len(index), "size": list(index.size),
                  "skipped_corrupt": index.skipped,
                  "resized": {"count": int(sum(index.resized_from.values())),
                              "from": {f"{h}x{w}": c for (h, w), c in index.resized_from.items()},
                              "filter": RESIZE_FILTER},
                  "index": {"path": str(index.path), "cached": index.cached, "kind": index.kind,
                            "build_seconds": round(index.build_seconds, 3)}},
        "settings": {"k": opts.k, "gray": opts.gray, "method": nb.method,
                     "candidates": nb.candidates, "shortlist": nb.shortlist, "screen_stride": SCREEN_STRIDE,
                     "device": str(device), "ssim": SSIM_DEFINITION + (" on luminance" if opts.gray else "")},
        "ranks": report.rank_statistics(nb.score),
        "copies": shares,
        "recall": recall,
        "mean_all": None if nb.mean_all is None else report.describe(nb.mean_all),
        "copy_statistics": copy_stats,
    }
    say(f"top-1 SSIM: mean {summary['ranks'][0]['mean']:.4f}, median {summary['ranks'][0]['median']:.4f}; "
        f"copies (top-1 ≥ {opts.copy_threshold}): {shares['copies']} of {len(top1)} "
        f"({100 * shares['copy_share']:.1f}%)")

    if opts.outdir:
        t = time.perf_counter()
        try:
            summary["outputs"] = _write_outputs(Path(opts.outdir), opts, gen, index, nb)
        finally:  # also on Ctrl-C: a later --overwrite may then replace what was written
            if opts.output is not None:
                opts.output.record_new()
        timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    summary["timings_seconds"] = {k: round(v, 3) for k, v in timings.items()}
    if opts.outdir:
        report.write_json(Path(opts.outdir) / "summary.json", summary)
        if opts.output is not None:
            opts.output.record_new()
    return summary


def _check_recall(searcher: Searcher, images: np.ndarray, nb: Neighbours, opts: NearestOptions) -> dict:
    n = min(opts.check_recall, len(images))
    rows = np.sort(np.random.default_rng(opts.seed).choice(len(images), size=n, replace=False))
    if nb.method == "exhaustive":
        truth = nb.take(rows)
    else:
        truth = searcher.exhaustive(images[rows], opts.k, desc="recall check (exhaustive)")
    found = nb.take(rows)
    out = {"queries": int(n), "against": "exhaustive exact SSIM" if nb.method != "exhaustive"
           else "nothing: the search itself was exhaustive"}
    for k in sorted({1, opts.k}):
        out[f"recall@{k}"] = recall_at(found, truth, k)
    return out


def _copy_statistics(searcher: Searcher, index: TrainIndex, gen_images: np.ndarray, nb: Neighbours,
                     test_src: Source, opts: NearestOptions, say) -> dict:
    test = load_images(test_src, index.size, opts.batch_size, opts.num_workers, opts.strict, "reading --test")
    if test.resized:
        say(f"resized {test.resized} --test image(s) to {index.size[0]}x{index.size[1]} ({RESIZE_FILTER})")
    test_nb = _search(searcher, test.images, 1, opts, "test set neighbours")
    # k-means cells on (a sample of) the training embeddings, as Meehan et al. partition the data
    embed = index.embedder(searcher.device)
    rng = np.random.default_rng(opts.seed)
    sample = np.sort(rng.choice(len(index), size=min(len(index), 20_000), replace=False))
    # default: ~20+ test and ~40 generated samples per cell, so cells pass C_T's τ = 20/m
    n_cells = opts.cells or max(1, min(50, len(test.images) // 20, len(gen_images) // 40, len(sample) // 20))
    cells = copying.kmeans_cells(embed(index.planes[sample]), n_cells, seed=opts.seed)
    ct = copying.data_copying_ct(1 - nb.score[:, 0], copying.assign(cells, embed(gen_images)),
                                 1 - test_nb.score[:, 0], copying.assign(cells, embed(test.images)), n_cells)
    # Alaa et al.: each top-1 training image's own nearest other training image
    uniq = np.unique(nb.index[:, 0])
    if len(index) > 1:
        own = _train_self_neighbours(searcher, index, uniq, opts)
        auth = copying.authenticity(nb.score[:, 0], nb.index[:, 0], dict(zip(uniq.tolist(), own.tolist())))
        auth_dict = auth.to_dict()
    else:
        auth_dict = {"authenticity": None, "note": "needs at least 2 training images"}
    if ct.ct is not None:
        say(f"data-copying C_T (Meehan et al. 2020): {ct.ct:.3f} over {ct.cells_used}/{ct.cells} cells "
            "(≪ 0: copying, ≫ 0: under-fitting)")
    else:
        say(f"data-copying C_T: not computed ({ct.note})")
    if auth_dict.get("authenticity") is not None:
        say(f"authenticity (Alaa et al. 2022): {auth_dict['authenticity']:.4f}")
    return {"test": {"path": str(test_src.path), "n": len(test.keys),
                     "top1": report.describe(test_nb.score[:, 0])},
            "distance": "1 - top-1 SSIM to the training set",
            "meehan_ct": ct.to_dict(), "authenticity": auth_dict}


def _train_self_neighbours(searcher: Searcher, index: TrainIndex, ids: np.ndarray, opts: NearestOptions) -> np.ndarray:
    """Exact SSIM of each training image ``ids[i]`` to its nearest *other* training image."""
    images = index.images(ids)
    if opts.exact:
        nb = searcher.exhaustive(images, 1, exclude=ids, desc="training neighbours")
    else:
        nb = searcher.cascade(images, 1, opts.candidates or default_candidates(1), opts.shortlist,
                              exclude=ids, desc="training neighbours")
    return nb.score[:, 0]


def _write_outputs(outdir: Path, opts: NearestOptions, gen, index: TrainIndex, nb: Neighbours) -> list[str]:
    if opts.output is not None:
        opts.output.open()  # removes an earlier run's outputs (--overwrite) now that the new ones are ready
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    report.write_neighbours_csv(outdir / "neighbours.csv", gen.keys, index.keys, nb.index, nb.score)
    written.append("neighbours.csv")
    if opts.plots:
        report.plot_rank_histograms(outdir / "ssim_hist.png", nb.score, opts.copy_threshold)
        written.append("ssim_hist.png")
    if opts.contact_sheets:
        order = np.lexsort((np.arange(len(nb.score)), -nb.score[:, 0]))[: opts.contact_sheets]
        paths = report.write_contact_sheets(outdir / "contact_sheets", order, gen.images, index.images,
                                            nb.index, nb.score, gen.keys)
        written.extend(str(p.relative_to(outdir)) for p in paths)
    if nb.mean_all is not None:
        report.write_mean_csv(outdir / "mean_ssim.csv", gen.keys, nb.mean_all, nb.score[:, 0])
        written.append("mean_ssim.csv")
        if opts.plots:
            report.plot_mean_curve(outdir / "mean_ssim.png", nb.mean_all, nb.score[:, 0])
            written.append("mean_ssim.png")
    written.append("summary.json")
    return written
