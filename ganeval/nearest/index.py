"""The training-set index: planar pixels, screening statistics and a FAISS index.

Built once per training set and cached under ``cache_dir("nearest")``, keyed by the
set's content hash and every setting that changes it (size, gray, embedding, index
type), so a second run over the same training set starts searching at once. Building
streams the set in chunks into memory-mapped files, so memory stays bounded:

* ``planes.npy``: N×3×H×W uint8 (100k 64×64 images: 1.2 GB on disk);
* ``screen.npy``: each image's local SSIM mean and variance at the screening stride
  (N×2×C×14×14 float32 at 64×64: 4.7 kB per image);
* ``index.faiss``: the embeddings (flat: 21 kB per 64×64 image, 52 kB at 96×96; with
  ``pca_dim`` far less), ``basis.npy``: the embedding's window basis (queries must use the
  very same), and ``meta.json``: keys, size, settings.

100k 64×64 training images: ~3 GB on disk; building and searching peaked at 6.3 GB RSS
(memory-mapped pages included).

Flat (exact inner product) up to ``IVF_THRESHOLD`` images; above it an uncentred PCA to
256 dimensions (it keeps inner products, see ``_new_faiss_index``) + IVF with 8-bit
scalar-quantised codes (IVF-SQ8: 256 bytes per image, measured in docs/benchmarks.md).
faiss-gpu is used for the search when it is installed and sees a GPU: one GPU per torchrun
rank, or the index sharded over every GPU one process sees."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from ganeval.atomic import write_text
from ganeval.cache import cache_dir, settings_key
from ganeval.errors import BadInput
from ganeval.resample import resize_rgb
from ganeval.nearest.embed import Embedder, EmbedSpec
from ganeval.nearest.parallel import cpu_workers, run_parallel
from ganeval.progress import progress
from ganeval.sources import ArraySource, FolderSource, Source, ZipSource
from ganeval.ssim import SSIMEngine, planar

INDEX_VERSION = 3        # 2: IVF indexes hold 8-bit scalar-quantised codes (IVF-SQ8); 3: uncentred PCA
IVF_THRESHOLD = 300_000  # flat search stays fast and exact below this many training images
IVF_PCA_DIM = 256        # IVF indexes reduce the embedding to this many dimensions by default
SCREEN_STRIDE = 4        # the screening SSIM averages every 4th row and column of the map
RESIZE_FILTER = "Pillow bicubic (antialiased when shrinking)"


# ------------------------------------------------------------------ loading images

@dataclass
class LoadedImages:
    """A whole image set at one size, with what happened on the way."""

    images: np.ndarray             # N×H×W×3 uint8 (may be a memmap)
    keys: list[str]
    resized_from: Counter = field(default_factory=Counter)  # (h, w) → count of images resized
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def resized(self) -> int:
        return sum(self.resized_from.values())


_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "F")


def native_channels(source: Source) -> int:
    """1 for a grayscale set, 3 for colour: the array's channels, or the Pillow modes of the
    files (decoding always yields RGB, so this is read from headers before decoding).

    A set is grayscale only when every readable file is: the answer never depends on file
    order. Colour sets stop at their first colour file; only all-gray sets read every header."""
    import io

    from PIL import Image

    if isinstance(source, ArraySource):
        return 1 if source.array.shape[3] == 1 else 3
    if not isinstance(source, (FolderSource, ZipSource)):
        return 3
    seen_gray = False
    for i in range(len(source)):
        try:
            if isinstance(source, FolderSource):
                opened = Image.open(source.files[i])
            else:
                opened = Image.open(io.BytesIO(source._open().read(source.members[i])))
            with opened as img:
                if img.mode not in _GRAY_MODES:
                    return 3
                seen_gray = True
        except Exception:  # noqa: BLE001 - a corrupt file says nothing; the loader reports it
            continue
    return 1 if seen_gray else 3


class ResizingReader:
    """Iterate a source in batches at one size, counting exactly which images were resized.

    Batches keep their decoded size and are resized here (``resize_rgb``), so the count is
    exact; a set that mixes sizes inside one batch is finished one image at a time.
    ``size=None`` takes the size of the first image read."""

    def __init__(self, source: Source, size: tuple[int, int] | None, batch_size: int = 64,
                 num_workers: int = 0, strict: bool = False, desc: str | None = None):
        self.source, self.size = source, (tuple(size) if size else None)
        self.batch_size, self.num_workers, self.strict = batch_size, num_workers, strict
        self.desc = desc or source.path.name
        self.resized_from: Counter = Counter()
        self.skipped: list[tuple[str, str]] = []

    def _batches(self, batch_size: int, num_workers: int, start: int):
        it = self.source.loader(batch_size=batch_size, num_workers=num_workers, strict=self.strict,
                                indices=range(start, len(self.source)), desc=self.desc)
        try:
            for batch in it:
                yield batch
        finally:
            self.skipped.extend(it.corrupt)

    def __iter__(self):
        done = 0
        try:
            for batch in self._batches(self.batch_size, self.num_workers, 0):
                done = batch.indices[-1] + 1
                yield self._fit(batch.images.numpy()), batch.indices
        except BadInput as err:
            if "different sizes" not in str(err):
                raise
            for batch in self._batches(1, 0, done):
                yield self._fit(batch.images.numpy()), batch.indices

    def _fit(self, imgs: np.ndarray) -> np.ndarray:
        if self.size is None:
            self.size = tuple(imgs.shape[1:3])
        if tuple(imgs.shape[1:3]) != self.size:
            self.resized_from[tuple(imgs.shape[1:3])] += len(imgs)
            imgs = np.stack([resize_rgb(img, self.size) for img in imgs])
        return imgs


def load_images(source: Source, size: tuple[int, int] | None, batch_size: int = 64, num_workers: int = 0,
                strict: bool = False, desc: str | None = None) -> LoadedImages:
    """Read a whole set into memory at ``size`` (None: the size of its first image)."""
    reader = ResizingReader(source, size, batch_size, num_workers, strict, desc)
    parts, keys = [], []
    for imgs, indices in reader:
        parts.append(imgs)
        keys.extend(source.key(i) for i in indices)
    if not parts:
        raise BadInput(f"{source.path}: no readable images")
    return LoadedImages(np.concatenate(parts), keys, reader.resized_from, reader.skipped)


# ------------------------------------------------------------------ the index

@dataclass
class IndexSettings:
    """Everything that makes two indexes of the same set differ."""

    size: tuple[int, int] | None = None  # None: the training set's own (first image's) size
    gray: bool = False
    spec: EmbedSpec = field(default_factory=EmbedSpec)
    ivf_threshold: int = IVF_THRESHOLD

    def key(self, content_hash: str) -> str:
        return settings_key(version=INDEX_VERSION, content=content_hash, size=self.size, gray=self.gray,
                            spec=self.spec.key(), ivf_threshold=self.ivf_threshold, screen=SCREEN_STRIDE)


@dataclass
class TrainIndex:
    """A cached training index; arrays are memory-mapped, so opening it costs nothing."""

    keys: list[str]
    planes: np.ndarray           # N×3×H×W uint8 (planar: what SSIM reads)
    screen_stats: np.ndarray     # N×2×C×h×w float32: local mean and variance at the screening stride
    faiss_index: faiss.Index
    gray: bool
    spec: EmbedSpec
    kind: str                    # "flat" | "ivf"
    path: Path
    cached: bool                 # True when this run reused an existing index
    resized_from: Counter = field(default_factory=Counter)
    skipped: int = 0
    skipped_first: str = ""      # the first unreadable training file, for the one-line note
    build_seconds: float = 0.0
    basis: np.ndarray | None = None  # the embedding's window basis, as built (None: recompute)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(int(v) for v in self.planes.shape[2:4])

    def images(self, ids) -> np.ndarray:
        """Training images ``ids`` as N×H×W×3 uint8 (for display)."""
        return np.ascontiguousarray(self.planes[np.asarray(ids)].transpose(0, 2, 3, 1))

    def embedder(self, device="cpu") -> Embedder:
        return Embedder(self.size[0], self.size[1], self.spec, self.gray, device, basis=self.basis)

    def search(self, embeddings: np.ndarray, count: int, use_gpu: bool = True, local_rank: int = 0) -> np.ndarray:
        """Top-``count`` training indices by embedding inner product (−1 pads short rows)."""
        index = self.faiss_index
        placement, gpus = gpu_placement(_gpu_count() if use_gpu else 0, _world_size(), local_rank)
        if placement != "cpu":  # pragma: no cover - needs faiss-gpu and a GPU
            index = _to_gpu(index, placement, gpus)
        _, ids = index.search(np.ascontiguousarray(embeddings, dtype=np.float32), int(count))
        return ids


def gpu_placement(n_gpus: int, world_size: int = 1, local_rank: int = 0) -> tuple[str, list[int]]:
    """Where the FAISS index goes: ``("cpu", [])`` without GPUs; ``("one", [g])`` for a single
    GPU or one process per GPU under torchrun (each rank its own); ``("shards", all)`` when one
    process sees several GPUs: the index is split across them (faiss IndexShards)."""
    if n_gpus <= 0:
        return "cpu", []
    if n_gpus == 1 or world_size > 1:
        return "one", [local_rank % n_gpus]
    return "shards", list(range(n_gpus))


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _gpu_count() -> int:
    try:
        return faiss.get_num_gpus()
    except AttributeError:  # faiss-cpu
        return 0


_GPU_CACHE: dict[tuple, tuple] = {}  # (resources kept alive, GPU index)


def _to_gpu(index: faiss.Index, placement: str, gpus: list[int]) -> faiss.Index:  # pragma: no cover - GPU only
    key = (id(index), placement, tuple(gpus))
    if key not in _GPU_CACHE:
        if placement == "one":
            res = faiss.StandardGpuResources()
            _GPU_CACHE[key] = (res, faiss.index_cpu_to_gpu(res, gpus[0], index))
        else:
            options = faiss.GpuMultipleClonerOptions()
            options.shard = True  # each GPU holds 1/n of the vectors; results are merged
            _GPU_CACHE[key] = (None, faiss.index_cpu_to_all_gpus(index, options, ngpu=len(gpus)))
    return _GPU_CACHE[key][1]


def _new_faiss_index(embeddings: np.ndarray, settings: IndexSettings) -> tuple[faiss.Index, str]:
    """Flat IP (optionally PCA'd) below the IVF threshold; PCA + IVF above it.

    Only indexes that need training read a sample of ``embeddings`` (a memory map)."""
    n, dim = embeddings.shape
    pca_dim = settings.spec.pca_dim
    kind = "ivf" if n > settings.ivf_threshold else "flat"
    if kind == "ivf":
        pca_dim = pca_dim or IVF_PCA_DIM
    nlist = int(max(16, 4 * np.sqrt(n))) if kind == "ivf" else 0
    sample = None
    if pca_dim or kind == "ivf":
        size = min(n, max(20_000, 40 * nlist))
        ids = np.sort(np.random.default_rng(0).choice(n, size=size, replace=False))
        sample = np.ascontiguousarray(embeddings[ids])
        pca_dim = min(pca_dim, dim, len(sample)) if pca_dim else 0  # PCA's rank is bounded by both
        nlist = min(nlist, max(1, len(sample) // 39))
    out_dim = pca_dim or dim
    if kind == "flat":
        inner: faiss.Index = faiss.IndexFlatIP(out_dim)
    else:  # IVF-SQ8: one byte per PCA dimension (256 B per image), a quarter of IVF-Flat's memory
        inner = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(out_dim), out_dim, nlist,
                                              faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        inner.nprobe = max(8, nlist // 4)  # generous (recall 0.99 -> 1.0 @1 at 100k, measured): candidates are re-scored exactly
    index = inner
    if pca_dim and pca_dim < dim:
        # uncentred PCA: the search ranks by inner product, and projecting out a common mean would
        # add a per-image bias <y, mean> to every score (recall fell to 0.83 at 500k that way).
        # Trained on the sample and its mirror image, whose mean is zero, faiss's PCA is exactly
        # the eigenbasis of E[x xᵀ] with no offset: the best rank-d keeper of inner products.
        pca = faiss.PCAMatrix(dim, pca_dim)
        pca.train(np.concatenate([sample, -sample]))
        index = faiss.IndexPreTransform(pca, inner)
    if not index.is_trained:
        index.train(sample)
    return index, kind


def _cache_entry(content_hash: str, settings: IndexSettings) -> Path:
    return cache_dir("nearest") / f"{content_hash[:16]}-{settings.key(content_hash)}"


def open_index(source: Source, settings: IndexSettings, batch_size: int = 64, num_workers: int = 0,
               strict: bool = False, rebuild: bool = False, device="cpu", on_note=None) -> TrainIndex:
    """Load the cached index of ``source`` with these settings, building it if needed."""
    content_hash = source.content_hash()
    entry = _cache_entry(content_hash, settings)
    if not rebuild and (entry / "meta.json").exists():
        try:
            cached = _load(entry, cached=True)
        except (OSError, ValueError, RuntimeError, KeyError) as err:  # damaged entry: rebuild it
            if on_note:
                on_note(f"cached index {entry} unreadable ({err}); rebuilding")
        else:
            if strict and cached.skipped:
                raise BadInput(f"{source.path}: {cached.skipped} training image(s) are unreadable, e.g. "
                               f"{cached.skipped_first or '?'} (recorded in the cached index; --strict refuses them)")
            return cached
    start = time.perf_counter()
    _remove_stale_builds(entry.parent)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=entry.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would hide a shared cache from other users
    try:
        _build(source, settings, tmp, batch_size, num_workers, strict, device)
        meta = json.loads((tmp / "meta.json").read_text())
        meta["build_seconds"] = time.perf_counter() - start
        write_text(tmp / "meta.json", json.dumps(meta))
        if entry.exists():  # rebuilt on purpose, or another process finished first
            shutil.rmtree(entry, ignore_errors=True)
        try:
            os.replace(tmp, entry)
        except OSError:  # another process put its (identical) entry there meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return _load(entry, cached=False)


def _remove_stale_builds(folder: Path, max_age_s: float = 86_400) -> None:
    """Builds interrupted more than a day ago (a live build touches its folder constantly)."""
    now = time.time()
    for path in folder.glob(".building-*"):
        try:
            if now - path.stat().st_mtime > max_age_s:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


def _build(source: Source, settings: IndexSettings, out: Path, batch_size: int, num_workers: int,
           strict: bool, device) -> None:
    n_max = len(source)
    reader = ResizingReader(source, settings.size, batch_size, num_workers, strict, f"indexing {source.path.name}")
    planes = stats = embeddings_tmp = embedder = screen = None
    keys: list[str] = []
    filled = 0
    workers = cpu_workers(device)
    for imgs, indices in reader:
        if planes is None:
            h, w = reader.size
            screen = SSIMEngine(h, w, gray=settings.gray, device=device, stride=SCREEN_STRIDE)
            embedder = Embedder(h, w, settings.spec, settings.gray, device)
            planes = np.lib.format.open_memmap(out / "planes.npy", mode="w+", dtype=np.uint8, shape=(n_max, 3, h, w))
            stats = np.lib.format.open_memmap(out / "screen.npy", mode="w+", dtype=np.float32,
                                              shape=(n_max, 2, screen.channels, screen.out_h, screen.out_w))
            embeddings_tmp = np.lib.format.open_memmap(out / "embeddings.tmp.npy", mode="w+", dtype=np.float32,
                                                       shape=(n_max, embedder.dim))
        parts = np.array_split(np.arange(filled, filled + len(imgs)), max(1, min(workers, len(imgs) // 8)))

        def one(j: int) -> None:  # disjoint rows of the memory maps: safe in parallel threads
            sl = slice(int(parts[j][0]), int(parts[j][-1]) + 1)
            planes[sl] = planar(imgs[sl.start - filled : sl.stop - filled])
            mu, var = screen.local_stats(planes[sl])
            stats[sl, 0], stats[sl, 1] = mu.cpu().numpy(), var.cpu().numpy()
            embeddings_tmp[sl] = embedder(planes[sl])

        run_parallel(one, len(parts), workers)
        keys.extend(source.key(i) for i in indices)
        filled += len(imgs)
    if not filled:
        raise BadInput(f"{source.path}: no readable training images")
    for arr in (planes, stats):
        arr.flush()
    del planes, stats
    if filled < n_max:  # corrupt files were skipped: shrink the files to what was read
        for name in ("planes.npy", "screen.npy"):
            _truncate(out / name, filled)
    index, kind = _new_faiss_index(embeddings_tmp[:filled], settings)
    with progress(total=filled, desc="adding to index", unit="img") as bar:
        for s in range(0, filled, 16_384):
            index.add(np.ascontiguousarray(embeddings_tmp[s : min(s + 16_384, filled)]))
            bar.update(min(16_384, filled - s))
    del embeddings_tmp
    (out / "embeddings.tmp.npy").unlink()
    faiss.write_index(index, str(out / "index.faiss"))
    np.save(out / "basis.npy", embedder.basis)
    meta = {
        "version": INDEX_VERSION, "source": str(source.path), "n": filled, "size": list(reader.size),
        "gray": settings.gray, "spec": settings.spec.key(), "kind": kind, "keys": keys,
        "resized_from": {f"{h}x{w}": c for (h, w), c in reader.resized_from.items()},
        "skipped": len(reader.skipped),
        "skipped_first": reader.skipped[0][0] if reader.skipped else "",
    }
    write_text(out / "meta.json", json.dumps(meta))


def _truncate(path: Path, n: int) -> None:
    full = np.load(path, mmap_mode="r")
    trimmed = np.lib.format.open_memmap(path.with_suffix(".trim"), mode="w+", dtype=full.dtype, shape=(n,) + full.shape[1:])
    for s in range(0, n, 4096):
        trimmed[s : s + 4096] = full[s : min(n, s + 4096)]
    trimmed.flush()
    del trimmed, full
    os.replace(path.with_suffix(".trim"), path)


def _load(entry: Path, cached: bool) -> TrainIndex:
    meta = json.loads((entry / "meta.json").read_text())
    planes = np.load(entry / "planes.npy", mmap_mode="r")
    stats = np.load(entry / "screen.npy", mmap_mode="r")
    index = faiss.read_index(str(entry / "index.faiss"))
    if not (len(meta["keys"]) == len(planes) == len(stats) == index.ntotal):
        raise ValueError("index entry is inconsistent")
    spec_fields = {k: v for k, v in meta["spec"].items() if k != "version"}
    resized = Counter({tuple(int(v) for v in k.split("x")): c for k, c in meta.get("resized_from", {}).items()})
    return TrainIndex(keys=meta["keys"], planes=planes, screen_stats=stats, faiss_index=index, gray=meta["gray"],
                      spec=EmbedSpec(**spec_fields), kind=meta["kind"], path=entry, cached=cached,
                      resized_from=resized, skipped=meta.get("skipped", 0), skipped_first=meta.get("skipped_first", ""),
                      build_seconds=meta.get("build_seconds", 0.0), basis=np.load(entry / "basis.npy"))
