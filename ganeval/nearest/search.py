"""Find each query's top-k training images by exact SSIM, fast.

The default search is a cascade; only its last step decides the answer, and that step
is exact:

1. **embed**: FAISS returns ``candidates`` training images per query by embedding inner
   product (:mod:`ganeval.nearest.embed`);
2. **screen**: a strided SSIM (the exact SSIM map averaged over every 4th row and column,
   correlation ≈ 0.997 with the full score) keeps the best ``shortlist``; it reads the
   training images' local statistics from the index, so it costs a fraction of an exact
   score;
3. **score**: exact SSIM on the shortlist, then the top k.

``exhaustive`` scores every training image exactly (the ground truth of ``--exact``,
``--mean-all`` and ``--check-recall``). Both work in chunks: at most ``block`` queries'
and ``train_chunk`` training images' SSIM moments (~256 MB each) are held at once.

Default ``candidates`` (512, or 128·k for k > 4): with the per-window cs embedding every
true top-4 of held-out real anime faces lay within the first 285 FAISS candidates at 64 px
(300 queries × 9,000) and 192 at 96 px (100 queries), so 512 leaves a margin of ~2×. End
to end (benchmarks/nearest_bench.py --compare, docs/benchmarks.md): recall@1 = recall@4 =
1.000 on 200 other real queries at 64 and 96 px, in 0.6–0.75× the search time of the old
default (1,024 candidates of the pooled embedding: recall@4 0.989 / 0.996); synthetic faces
(1000×20000, 64 px) reach 1.000 from 128 candidates up, 72× faster than exhaustive."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ganeval.nearest.index import SCREEN_STRIDE, TrainIndex
from ganeval.nearest.parallel import cpu_workers, run_parallel
from ganeval.progress import progress
from ganeval.ssim import SSIMEngine, planar

DEFAULT_CANDIDATES = 512
MOMENTS_BUDGET = 256 << 20  # bytes of cached SSIM moments per side


def default_candidates(k: int) -> int:
    """FAISS candidates per query (see the module docstring for how 512 was measured)."""
    return max(DEFAULT_CANDIDATES, 128 * k)


def default_shortlist(k: int) -> int:
    """Exact scores per query after screening: the strided score's top 16 held the exact
    top 4 in every measured query; 32 (or 8k) leaves a wide margin."""
    return max(32, 8 * k)


@dataclass
class Neighbours:
    """Top-k training neighbours of each query, best first."""

    index: np.ndarray            # Q×k int64 training indices
    score: np.ndarray            # Q×k float64 exact SSIM
    method: str                  # "cascade" | "exhaustive"
    candidates: int = 0
    shortlist: int = 0
    mean_all: np.ndarray | None = None  # Q, mean SSIM over the whole training set (exhaustive only)

    def __len__(self) -> int:
        return len(self.index)

    def first(self, k: int) -> "Neighbours":
        """The best ``k`` of each query's neighbours."""
        return Neighbours(self.index[:, :k], self.score[:, :k], self.method, self.candidates, self.shortlist,
                          self.mean_all)

    def take(self, rows: np.ndarray) -> "Neighbours":
        return Neighbours(self.index[rows], self.score[rows], self.method, self.candidates, self.shortlist,
                          None if self.mean_all is None else self.mean_all[rows])


def _best_k(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top k by score, ties broken by the lower training index (deterministic)."""
    order = np.lexsort((ids, -scores))[:k]
    return ids[order], scores[order]


class Searcher:
    """SSIM search over one training index on one device."""

    def __init__(self, index: TrainIndex, device: torch.device | str = "cpu", train_chunk: int | None = None,
                 workers: int | None = None):
        self.index = index
        self.device = torch.device(device)
        h, w = index.size
        self.engine = SSIMEngine(h, w, gray=index.gray, device=self.device)
        self.screen = SSIMEngine(h, w, gray=index.gray, device=self.device, stride=SCREEN_STRIDE)
        per_image = 4 * self.engine.channels * (h * w + 4 * self.engine.out_h * self.engine.out_w)
        self.block = max(1, MOMENTS_BUDGET // per_image)
        self.train_chunk = train_chunk or min(self.block, 1024)
        self.workers = workers if workers is not None else cpu_workers(self.device)

    def _per_query(self, fn: Callable[[int], None], n: int) -> None:
        run_parallel(fn, n, self.workers)

    @staticmethod
    def _gather(array: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` of a (memory-mapped) array, read in sorted order."""
        order = np.argsort(ids, kind="stable")
        out = np.empty((len(ids),) + array.shape[1:], dtype=array.dtype)
        out[order] = array[ids[order]]
        return out

    # ------------------------------------------------------------------ cascade
    def cascade(self, queries: np.ndarray, k: int, candidates: int = DEFAULT_CANDIDATES,
                shortlist: int | None = None, exclude: np.ndarray | None = None,
                desc: str = "searching") -> Neighbours:
        """Embedding shortlist → strided SSIM screen → exact SSIM top-k.

        ``exclude[i]`` (a training index, or −1) is never returned for query i."""
        n = len(self.index)
        shortlist = shortlist or default_shortlist(k)
        extra = 0 if exclude is None else 1
        n_cand = min(n, max(candidates, shortlist, k) + extra)
        out_ids = np.full((len(queries), k), -1, dtype=np.int64)
        out_scores = np.full((len(queries), k), -np.inf, dtype=np.float64)
        embedder = self.index.embedder(self.device) if n_cand < n else None
        lock = threading.Lock()
        with progress(total=len(queries), desc=desc, unit="img") as bar:
            for s in range(0, len(queries), self.block):
                block = queries[s : s + self.block]
                if embedder is not None:
                    ids = self.index.search(embedder(block), n_cand, use_gpu=self.device.type == "cuda",
                                            local_rank=self.device.index or 0)
                else:
                    ids = np.broadcast_to(np.arange(n, dtype=np.int64), (len(block), n))
                block = planar(block)
                q_screen = self.screen.moments(block) if n_cand > shortlist else None
                q_full = self.engine.moments(block)

                def one(i: int) -> None:
                    cand = ids[i][ids[i] >= 0]
                    if exclude is not None:
                        cand = cand[cand != exclude[s + i]]
                    if len(cand) > shortlist:
                        cand = np.sort(cand)  # sorted: friendlier reads from the memory maps
                        stats = torch.from_numpy(self.index.screen_stats[cand]).to(self.device)
                        screened = self.screen.one_to_raw(q_screen, i, self.index.planes[cand],
                                                          stats[:, 0], stats[:, 1]).cpu().numpy()
                        cand = cand[np.sort(np.argpartition(-screened, shortlist - 1)[:shortlist])]
                    pix = self._gather(self.index.planes, cand)
                    scores = self.engine.one_to_many(q_full, i, self.engine.moments(pix)).cpu().numpy()
                    best, best_scores = _best_k(scores, cand, k)
                    out_ids[s + i, : len(best)] = best
                    out_scores[s + i, : len(best)] = best_scores
                    with lock:
                        bar.update(1)

                self._per_query(one, len(block))
        return Neighbours(out_ids, out_scores, "cascade", n_cand, shortlist)

    # ------------------------------------------------------------------ within a subset
    def best_within(self, queries: np.ndarray, ids: np.ndarray, desc: str = "SSIM within cells") -> np.ndarray:
        """Exact SSIM of each query to its most similar training image among ``ids`` (all
        queries share the subset: e.g. one k-means cell, for Meehan et al.'s in-cell distance)."""
        ids = np.sort(np.asarray(ids, dtype=np.int64))
        best = np.full(len(queries), -np.inf, dtype=np.float64)
        if not len(ids) or not len(queries):
            return best
        with progress(total=len(queries) * len(ids), desc=desc, unit="pair", unit_scale=True) as bar:
            for s in range(0, len(queries), self.block):
                q = self.engine.moments(planar(queries[s : s + self.block]))
                for t in range(0, len(ids), self.train_chunk):
                    chunk = ids[t : t + self.train_chunk]
                    tm = self.engine.moments(self._gather(self.index.planes, chunk))

                    def one(i: int) -> None:
                        best[s + i] = max(best[s + i], float(self.engine.one_to_many(q, i, tm).max()))

                    self._per_query(one, len(q))
                    bar.update(len(q) * len(chunk))
        return best

    # ------------------------------------------------------------------ exhaustive
    def exhaustive(self, queries: np.ndarray, k: int, mean_all: bool = False, exclude: np.ndarray | None = None,
                   desc: str = "exhaustive SSIM") -> Neighbours:
        """Exact SSIM of every query against every training image, in chunks."""
        n = len(self.index)
        out_ids = np.full((len(queries), k), -1, dtype=np.int64)
        out_scores = np.full((len(queries), k), -np.inf, dtype=np.float64)
        sums = np.zeros(len(queries), dtype=np.float64)
        lock = threading.Lock()
        with progress(total=len(queries) * n, desc=desc, unit="pair", unit_scale=True) as bar:
            for s in range(0, len(queries), self.block):
                q = self.engine.moments(planar(queries[s : s + self.block]))
                nq = len(q)
                best_ids = np.full((nq, 0), -1, dtype=np.int64)
                best_scores = np.zeros((nq, 0), dtype=np.float64)
                for t in range(0, n, self.train_chunk):
                    t_ids = np.arange(t, min(n, t + self.train_chunk), dtype=np.int64)
                    tm = self.engine.moments(np.asarray(self.index.planes[t : t + len(t_ids)]))
                    block = np.empty((nq, len(t_ids)), dtype=np.float64)

                    def one(i: int) -> None:
                        block[i] = self.engine.one_to_many(q, i, tm).cpu().numpy()
                        with lock:  # per query, so a small training set does not jump 0 → 100%
                            bar.update(len(t_ids))

                    self._per_query(one, nq)
                    sums[s : s + nq] += block.sum(axis=1)
                    if exclude is not None:
                        hit = (exclude[s : s + nq, None] == t_ids[None, :])
                        block[hit] = -np.inf
                    ids = np.concatenate([best_ids, np.broadcast_to(t_ids, (nq, len(t_ids)))], axis=1)
                    scores = np.concatenate([best_scores, block], axis=1)
                    keep = min(k, scores.shape[1])
                    # keep k plus ties at the boundary; the final sort breaks them by index
                    part = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
                    best_ids = np.take_along_axis(ids, part, axis=1)
                    best_scores = np.take_along_axis(scores, part, axis=1)
                for i in range(nq):
                    ids_i, sc_i = _best_k(best_scores[i], best_ids[i], k)
                    out_ids[s + i, : len(ids_i)] = ids_i
                    out_scores[s + i, : len(ids_i)] = sc_i
        mean = sums / n if mean_all else None
        if mean is not None and exclude is not None:
            raise ValueError("mean_all with exclude is not defined")
        return Neighbours(out_ids, out_scores, "exhaustive", n, n, mean)


def recall_at(found: Neighbours, truth: Neighbours, k: int, tol: float = 1e-5) -> float:
    """Share of the true top-k found: a returned neighbour counts when its exact SSIM is at
    least the true k-th best (within ``tol``), so tied training images count alike."""
    k = min(k, truth.score.shape[1], found.score.shape[1])
    kth = truth.score[:, k - 1 : k] - tol
    hits = (found.score[:, :k] >= kth).sum(axis=1)
    return float(np.mean(np.minimum(hits, k) / k))
