"""``ganeval nearest`` as a function: load, index, search, measure, write.

The CLI only parses arguments into :class:`NearestOptions`; tests and notebooks call
:func:`run_nearest` directly."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np

from ganeval.device import resolve_device
from ganeval.errors import BadInput
from ganeval import distributed
from ganeval.features.extract import source_features
from ganeval.nearest import copying, cosine, report
from ganeval.nearest.embed import EmbedSpec
from ganeval.nearest.index import (RESIZE_FILTER, SCREEN_STRIDE, IndexSettings, TrainIndex, load_images,
                                   native_channels, open_index)
from ganeval.nearest.report import HUBNESS_K
from ganeval.nearest.search import Neighbours, Searcher, default_candidates, default_shortlist, recall_at
from ganeval.outputs import OutputDir
from ganeval.sources import Source, open_source

# Distinct faces' top-1 SSIM stayed below 0.79 on 20k synthetic and 9k real anime faces,
# while JPEG-75 re-encodes and ±10% brightness copies scored 0.78–0.99.
DEFAULT_COPY_THRESHOLD = 0.8
SSIM_DEFINITION = ("skimage.metrics.structural_similarity(a, b, channel_axis=-1, data_range=255, "
                   "gaussian_weights=True, sigma=1.5, use_sample_covariance=False)")


@dataclass
class SearchOptions:
    """How the neighbours are found."""

    k: int = 4
    gray: bool = False
    space: str = "ssim"          # "ssim", or a feature network of ganeval.features.registry (cosine)
    weights: str | None = None   # that network's weight file (default: cache or download)
    exact: bool = False
    candidates: int | None = None  # None: default_candidates(k)
    shortlist: int | None = None   # None: default_shortlist(k)
    check_recall: int = 0
    mean_all: bool = False
    seed: int = 0


@dataclass
class IndexOptions:
    """How the images are read and the training index is built and cached."""

    pca: int = 0
    rebuild: bool = False
    device: str = "auto"
    batch_size: int = 64
    num_workers: int = 0
    strict: bool = False


@dataclass
class ReportOptions:
    """What is written about the neighbours."""

    outdir: str | None = None
    copy_threshold: float = DEFAULT_COPY_THRESHOLD
    test: str | None = None
    cells: int | None = None
    contact_sheets: int = 64
    plots: bool = True
    output: OutputDir | None = None  # outdir checked by ganeval.outputs (the CLI); opened just before writing


_GROUPS = {"search": SearchOptions, "index": IndexOptions, "report": ReportOptions}


@dataclass
class NearestOptions:
    """One ``ganeval nearest`` run: the two sides and the options of each part."""

    generated: str | Source      # a path, or a Source (the Python API wraps arrays and generators)
    train: str | Source
    search: SearchOptions = field(default_factory=SearchOptions)
    index: IndexOptions = field(default_factory=IndexOptions)
    report: ReportOptions = field(default_factory=ReportOptions)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def flat(cls, generated: str | Source, train: str | Source, **options) -> "NearestOptions":
        """From the flat keywords of ``find_nearest`` and the CLI (``k=4, exact=True, test=…``):
        each goes to the part that owns it; an unknown one is BadInput."""
        parts = {name: {} for name in _GROUPS}
        owner = {f.name: name for name, group in _GROUPS.items() for f in fields(group)}
        unknown = sorted(set(options) - set(owner))
        if unknown:
            raise BadInput(f"unknown nearest option(s) {', '.join(unknown)}")
        for key, value in options.items():
            parts[owner[key]][key] = value
        return cls(generated, train, **{name: _GROUPS[name](**kw) for name, kw in parts.items()})

    @staticmethod
    def option_names() -> set[str]:
        return {f.name for group in _GROUPS.values() for f in fields(group)}


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
            mean_all: bool = False, keep: int | None = None) -> Neighbours:
    """Top ``keep`` (default ``k``) neighbours from a search sized for ``k``: the exact
    scores of the cascade's shortlist already hold a few more than ``k``."""
    keep = max(k, keep or k)
    if opts.search.exact or mean_all:
        return searcher.exhaustive(images, keep, mean_all=mean_all, desc=desc)
    return searcher.cascade(images, keep, opts.search.candidates or default_candidates(k),
                            opts.search.shortlist or default_shortlist(k), desc=desc)


def _open(x, what: str) -> Source:
    """A path, or a Source the caller built (the Python API hands arrays in as ArraySource)."""
    if isinstance(x, Source):
        if len(x) == 0:
            raise BadInput(f"{what}: contains no images")
        return x
    return open_source(x)


def run_nearest(opts: NearestOptions, say: Callable[[str], None] = lambda m: None) -> dict:
    """Run the whole command; returns the summary (also written to OUTDIR/summary.json).

    Under torchrun every rank searches its share of the queries; only rank 0 speaks and
    writes, and every rank returns the same neighbours."""
    return run_nearest_full(opts, say)[0]


def run_nearest_full(opts: NearestOptions, say: Callable[[str], None] = lambda m: None
                     ) -> tuple[dict, Neighbours, list[str], list[str]]:
    """:func:`run_nearest`, also returning the neighbours and the generated and training keys."""
    world, device = distributed.setup(str(resolve_device(opts.index.device)))
    if not world.is_main:
        say = lambda m: None  # noqa: E731 - one voice
    clean = False
    try:
        summary = _run(opts, say, device, world)
        clean = True
        return summary
    finally:
        distributed.teardown(clean, world)


is_main_process = distributed.is_main_process  # the CLI prints only on rank 0


def _run(opts: NearestOptions, say: Callable[[str], None], device, world: distributed.World) -> dict:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    feature_space = opts.search.space != "ssim"
    if feature_space:
        unsupported = [flag for flag, on in (("--mean-all", opts.search.mean_all), ("--check-recall", opts.search.check_recall),
                                             ("--test", opts.report.test), ("--gray", opts.search.gray)) if on]
        if unsupported:
            raise BadInput(f"{', '.join(unsupported)} work with --space ssim only (feature search is exact cosine)")
    gen_src = _open(opts.generated, "generated")
    train_src = _open(opts.train, "training")
    test_src = open_source(opts.report.test) if opts.report.test else None
    if opts.search.k > len(train_src):
        raise BadInput(f"-k {opts.search.k} is larger than the training set ({len(train_src)} files)")
    _check_channels(gen_src, train_src, "generated", opts.search.gray)
    if test_src is not None:
        _check_channels(test_src, train_src, "--test", opts.search.gray)

    t = time.perf_counter()
    if feature_space:
        space = _FeatureSpace(opts, train_src, device)
        index = None
    else:
        settings = IndexSettings(gray=opts.search.gray, spec=EmbedSpec(pca_dim=opts.index.pca))
        if world.size > 1 and not world.is_main:
            distributed.main_verdict(world)  # rank 0 builds (or checks) the cached index first
        try:
            index = open_index(train_src, settings, opts.index.batch_size, opts.index.num_workers, opts.index.strict,
                               opts.index.rebuild and world.is_main, device, on_note=say)
        except BadInput as err:
            if world.size > 1 and world.is_main:
                distributed.main_verdict(world, str(err))  # the waiting ranks stop with the same line
            raise
        if world.size > 1 and world.is_main:
            distributed.main_verdict(world)
        space = _SSIMSpace(index)
    timings["index"] = time.perf_counter() - t
    say(space.describe())
    if space.skipped:
        say(f"skipped {space.skipped} unreadable training image(s), e.g. {space.skipped_first or '?'}")
    if opts.search.k > space.n:
        raise BadInput(f"-k {opts.search.k} is larger than the training set's {space.n} readable images"
                       + (f" ({space.skipped} unreadable skipped)" if space.skipped else ""))
    if space.resized_from:
        say(f"training images of other sizes resized to {space.size[0]}x{space.size[1]}: "
            f"{sum(space.resized_from.values())} ({RESIZE_FILTER})")

    t = time.perf_counter()
    gen = load_images(gen_src, space.size, opts.index.batch_size, opts.index.num_workers, opts.index.strict, "reading generated")
    timings["load_generated"] = time.perf_counter() - t
    if gen.resized:
        sizes = ", ".join(f"{h}x{w}" for h, w in gen.resized_from)
        say(f"resized {gen.resized} generated image(s) from {sizes} to the training size "
            f"{space.size[0]}x{space.size[1]} ({RESIZE_FILTER})")
    if gen.skipped:
        say(f"skipped {len(gen.skipped)} corrupt generated image(s), e.g. {gen.skipped[0][0]}")

    t = time.perf_counter()
    if feature_space:
        nb = space.search(gen.images, min(space.n, max(opts.search.k, HUBNESS_K[-1])))
        searcher = None
    else:
        searcher = Searcher(index, device)
        mine = distributed.shard(len(gen.images), world)
        part = _search(searcher, gen.images[mine], opts.search.k, opts, "nearest training images", mean_all=opts.search.mean_all,
                       keep=min(len(index), HUBNESS_K[-1]))
        nb = Neighbours(distributed.gather_rows(part.index, world), distributed.gather_rows(part.score, world),
                        part.method, part.candidates, part.shortlist,
                        None if part.mean_all is None else distributed.gather_rows(part.mean_all, world))
    timings["search"] = time.perf_counter() - t
    # hubness reads the longer lists (k-occurrence up to k = 10); everything else the top k
    hubs = report.hubness(nb.index, space.keys)
    nb = nb.first(opts.search.k)
    top1 = nb.score[:, 0]

    recall = None
    if opts.search.check_recall and world.is_main:
        t = time.perf_counter()
        recall = _check_recall(searcher, gen.images, nb, opts)
        timings["check_recall"] = time.perf_counter() - t
        say(f"recall against exhaustive search on {recall['queries']} queries: "
            f"recall@1 {recall['recall@1']:.4f}, recall@{opts.search.k} {recall[f'recall@{opts.search.k}']:.4f}")

    copy_stats = None
    if test_src is not None and world.is_main:
        t = time.perf_counter()
        copy_stats = _copy_statistics(searcher, index, gen.images, nb, test_src, opts, say)
        timings["copy_statistics"] = time.perf_counter() - t

    shares = report.copy_shares(top1, opts.report.copy_threshold)
    summary = {
        "generated": {"path": str(gen_src.path), "n": len(gen.keys), "skipped_corrupt": len(gen.skipped),
                      "resized": _resize_note(gen, space.size)},
        "train": {"path": str(train_src.path), "n": space.n, "size": list(space.size),
                  "skipped_corrupt": space.skipped,
                  "resized": {"count": int(sum(space.resized_from.values())),
                              "from": {f"{h}x{w}": c for (h, w), c in space.resized_from.items()},
                              "filter": RESIZE_FILTER},
                  "index": space.index_summary()},
        "settings": {"k": opts.search.k, "gray": opts.search.gray, "space": opts.search.space, "score": space.score_name,
                     "method": nb.method, "candidates": nb.candidates, "shortlist": nb.shortlist,
                     "screen_stride": None if feature_space else SCREEN_STRIDE,
                     "device": str(device), "processes": world.size,
                     "ssim": SSIM_DEFINITION + (" on luminance" if opts.search.gray else "")},
        "ranks": report.rank_statistics(nb.score),
        "copies": shares,
        "hubness": hubs,
        "recall": recall,
        "mean_all": None if nb.mean_all is None else report.describe(nb.mean_all),
        "copy_statistics": copy_stats,
    }
    word = "SSIM" if not feature_space else f"{opts.search.space} cosine"
    say(f"top-1 {word}: mean {summary['ranks'][0]['mean']:.4f}, median {summary['ranks'][0]['median']:.4f}; "
        f"copies (top-1 ≥ {opts.report.copy_threshold}): {shares['copies']} of {len(top1)} "
        f"({100 * shares['copy_share']:.1f}%)")
    if hubs["hubs"]:
        top = hubs["hubs"][0]
        say(f"hubness: {hubs['distinct_top1']} distinct top-1 training images; the most frequent, {top['train']}, "
            f"is top-1 of {top['top1_count']} of {hubs['queries']} ({100 * top['top1_share']:.1f}%)")
    if hubs["warning"]:
        say(f"warning: {hubs['warning']}")

    if opts.report.outdir:
        t = time.perf_counter()
        try:
            summary["outputs"] = _write_outputs(Path(opts.report.outdir), opts, gen, space, nb, hubs, write=world.is_main)
        finally:  # also on Ctrl-C: a later --overwrite may then replace what was written
            if opts.report.output is not None and world.is_main:
                opts.report.output.record_new()
        timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    summary["timings_seconds"] = {k: round(v, 3) for k, v in timings.items()}
    if opts.report.outdir and world.is_main:
        report.write_json(Path(opts.report.outdir) / "summary.json", summary)
        if opts.report.output is not None:
            opts.report.output.record_new()
    return summary, nb, gen.keys, space.keys


class _SSIMSpace:
    """The SSIM training index seen through what the pipeline needs."""

    score_name = "SSIM"

    def __init__(self, index: TrainIndex):
        self.index = index
        self.n, self.size, self.keys = len(index), index.size, index.keys
        self.skipped, self.skipped_first, self.resized_from = index.skipped, index.skipped_first, index.resized_from

    def describe(self) -> str:
        i = self.index
        return (f"training index: {len(i)} images at {i.size[0]}x{i.size[1]}, "
                + ("reused from cache" if i.cached else f"built in {i.build_seconds:.1f}s") + f" ({i.path})")

    def index_summary(self) -> dict:
        i = self.index
        return {"path": str(i.path), "cached": i.cached, "kind": i.kind, "build_seconds": round(i.build_seconds, 3)}

    def images(self, ids) -> np.ndarray:
        return self.index.images(ids)


class _FeatureSpace:
    """Training features of one network, exact cosine search (:mod:`ganeval.nearest.cosine`)."""

    def __init__(self, opts: NearestOptions, source: Source, device):
        from ganeval.features.registry import build_extractor

        self.opts, self.source, self.device = opts, source, device
        self.extractor = build_extractor(opts.search.space, opts.search.weights, device).eval()
        self.score_name = f"cosine similarity of {opts.search.space} features"
        t = time.perf_counter()
        self.fs = source_features(source, self.extractor, device, opts.index.batch_size, opts.index.num_workers, opts.index.strict,
                                  use_cache=not opts.index.rebuild, desc=f"{opts.search.space} features of {source.path.name}")
        self.seconds = time.perf_counter() - t
        self.train = cosine.unit_rows(self.fs.features)
        self.n = len(self.train)
        self.size = tuple(source.read(int(self.fs.source_index[0])).shape[:2])  # display size: the first image's
        self.keys = [source.key(int(i)) for i in self.fs.source_index]
        self.skipped = self.fs.skipped
        self.skipped_first = self.fs.skipped_files[0][0] if self.fs.skipped_files else ""
        self.resized_from: dict = {}

    def describe(self) -> str:
        how = "reused from cache" if self.fs.cached else f"computed in {self.seconds:.1f}s"
        return f"training features: {self.n} images, {self.opts.search.space} ({self.extractor.info.dim}-d), {how}"

    def index_summary(self) -> dict:
        info = self.extractor.info
        return {"kind": "flat cosine", "cached": self.fs.cached, "features": info.name, "dim": info.dim,
                "weights_id": info.weights_id, "standard_weights": info.standard}

    def search(self, images: np.ndarray, k: int) -> Neighbours:
        batches = (images[i : i + self.opts.index.batch_size] for i in range(0, len(images), self.opts.index.batch_size))
        queries = cosine.embed_batches(self.extractor, batches, self.device)
        return cosine.cosine_search(queries, self.train, k, self.opts.search.space)

    def images(self, ids) -> np.ndarray:
        return cosine.read_images(self.source, self.fs.source_index, ids, self.size)


def _check_recall(searcher: Searcher, images: np.ndarray, nb: Neighbours, opts: NearestOptions) -> dict:
    n = min(opts.search.check_recall, len(images))
    rows = np.sort(np.random.default_rng(opts.search.seed).choice(len(images), size=n, replace=False))
    if nb.method == "exhaustive":
        truth = nb.take(rows)
    else:
        truth = searcher.exhaustive(images[rows], opts.search.k, desc="recall check (exhaustive)")
    found = nb.take(rows)
    out = {"queries": int(n), "against": "exhaustive exact SSIM" if nb.method != "exhaustive"
           else "nothing: the search itself was exhaustive"}
    for k in sorted({1, opts.search.k}):
        out[f"recall@{k}"] = recall_at(found, truth, k)
    return out


def _copy_statistics(searcher: Searcher, index: TrainIndex, gen_images: np.ndarray, nb: Neighbours,
                     test_src: Source, opts: NearestOptions, say) -> dict:
    test = load_images(test_src, index.size, opts.index.batch_size, opts.index.num_workers, opts.index.strict, "reading --test")
    if test.resized:
        say(f"resized {test.resized} --test image(s) to {index.size[0]}x{index.size[1]} ({RESIZE_FILTER})")
    test_nb = _search(searcher, test.images, 1, opts, "test set neighbours")
    # k-means cells on (a sample of) the training embeddings, as Meehan et al. partition the data
    embed = index.embedder(searcher.device)
    rng = np.random.default_rng(opts.search.seed)
    sample = np.sort(rng.choice(len(index), size=min(len(index), 20_000), replace=False))
    # default: ~20+ test and ~40 generated samples per cell, so cells pass C_T's τ = 20/m
    n_cells = opts.report.cells or max(1, min(50, len(test.images) // 20, len(gen_images) // 40, len(sample) // 20))
    cells = copying.kmeans_cells(embed(index.planes[sample]), n_cells, seed=opts.search.seed)
    train_cells = np.concatenate([copying.assign(cells, embed(np.asarray(index.planes[s : s + opts.index.batch_size])))
                                  for s in range(0, len(index), opts.index.batch_size)])
    gen_cells, test_cells = copying.assign(cells, embed(gen_images)), copying.assign(cells, embed(test.images))
    gen_dist, test_dist = _in_cell_distances(searcher, train_cells, (gen_images, gen_cells), (test.images, test_cells))
    ct = copying.data_copying_ct(gen_dist, gen_cells, test_dist, test_cells, n_cells)
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
            "distance": "1 - top-1 SSIM to the training set (C_T: to the training images of the sample's own cell)",
            "meehan_ct": ct.to_dict(), "authenticity": auth_dict}


def _in_cell_distances(searcher: Searcher, train_cells: np.ndarray,
                       *sides: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
    """1 − SSIM of each sample to the most similar training image of its own k-means cell
    (Meehan et al.'s L(x)), exact; a cell without training images gives NaN (excluded)."""
    out = [np.full(len(images), np.nan) for images, _ in sides]
    for c in np.unique(np.concatenate([cells for _, cells in sides])):
        members = np.flatnonzero(train_cells == c)
        if not len(members):
            continue
        for (images, cells), dist in zip(sides, out):
            rows = np.flatnonzero(cells == c)
            if len(rows):
                dist[rows] = 1.0 - searcher.best_within(images[rows], members, desc=f"SSIM within cell {c}")
    return out


def _train_self_neighbours(searcher: Searcher, index: TrainIndex, ids: np.ndarray, opts: NearestOptions) -> np.ndarray:
    """Exact SSIM of each training image ``ids[i]`` to its nearest *other* training image."""
    images = index.images(ids)
    if opts.search.exact:
        nb = searcher.exhaustive(images, 1, exclude=ids, desc="training neighbours")
    else:
        nb = searcher.cascade(images, 1, opts.search.candidates or default_candidates(1), opts.search.shortlist,
                              exclude=ids, desc="training neighbours")
    return nb.score[:, 0]


def _write_outputs(outdir: Path, opts: NearestOptions, gen, space, nb: Neighbours, hubs: dict,
                   write: bool = True) -> list[str]:
    """Everything in OUTDIR; ``write=False`` (torchrun ranks other than 0) only names the files."""
    written = ["neighbours.csv"]
    if write:
        if opts.report.output is not None:
            opts.report.output.open()  # removes an earlier run's outputs (--overwrite) now that the new ones are ready
        outdir.mkdir(parents=True, exist_ok=True)
        report.write_neighbours_csv(outdir / "neighbours.csv", gen.keys, space.keys, nb.index, nb.score)
    if opts.report.plots:
        if write:
            report.plot_rank_histograms(outdir / "ssim_hist.png", nb.score, opts.report.copy_threshold)
        written.append("ssim_hist.png")
    if opts.report.contact_sheets:
        order = np.lexsort((np.arange(len(nb.score)), -nb.score[:, 0]))[: opts.report.contact_sheets]
        if write:
            paths = report.write_contact_sheets(outdir / "contact_sheets", order, gen.images, space.images,
                                                nb.index, nb.score, gen.keys)
            report.write_hub_sheet(outdir / "contact_sheets" / "hubs.png", hubs, space.images)
            written.extend(str(p.relative_to(outdir)) for p in paths)
        else:
            written.extend(f"contact_sheets/sheet_{i + 1:03d}.png" for i in range(-(-len(order) // 16)))
        if hubs["hubs"]:
            written.append("contact_sheets/hubs.png")
    if nb.mean_all is not None:
        if write:
            report.write_mean_csv(outdir / "mean_ssim.csv", gen.keys, nb.mean_all, nb.score[:, 0])
        written.append("mean_ssim.csv")
        if opts.report.plots:
            if write:
                report.plot_mean_curve(outdir / "mean_ssim.png", nb.mean_all, nb.score[:, 0])
            written.append("mean_ssim.png")
    written.append("summary.json")
    return written
