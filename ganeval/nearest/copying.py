"""Copy statistics from the literature, on SSIM nearest-neighbour distances.

Both use the distance d(x) = 1 − SSIM(x, its nearest training image), from the same exact
search as the rest of ``ganeval nearest``.

* **Meehan et al. 2020, C_T** ("A Non-Parametric Test to Detect Data-Copying in Generative
  Models", AISTATS). The training set is cut into cells by k-means; in each cell the
  generated samples' distances are compared with held-out real samples' distances by the
  Mann–Whitney U test, z-scored under the null; C_T is the average of the cell z-scores
  weighted by each cell's share of held-out samples, over cells holding more than
  τ·m generated samples (τ = 20/m by default: more than 20). As in the paper and its code,
  a sample's distance is to the nearest training image *within its cell*, and the z-score
  carries the continuity correction of the reference code (mean mn/2 − ½). C_T ≪ 0 means
  generated images sit closer to the training set than real unseen images do: data copying;
  C_T ≫ 0 means under-fitting.
* **Alaa et al. 2022, authenticity** ("How Faithful is your Synthetic Data?", ICML). A
  generated sample is *unauthentic* when it is closer to its nearest training image r*
  than r* is to its own nearest other training image; authenticity is the authentic share."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import faiss
import numpy as np
from scipy.stats import mannwhitneyu

MIN_GENERATED_PER_CELL = 20


def mann_whitney_z(gen: np.ndarray, test: np.ndarray) -> float:
    """Z-scored U of ``gen`` against ``test`` (U counts pairs where gen > test, ties ½):
    negative when generated distances are smaller. The null mean is mn/2 − ½ (continuity
    correction), as in Meehan et al.'s code."""
    m, n = len(gen), len(test)
    u = float(mannwhitneyu(gen, test, alternative="less").statistic)
    return (u - (m * n / 2.0 - 0.5)) / np.sqrt(m * n * (m + n + 1) / 12.0)


@dataclass
class CopyTest:
    ct: float | None
    cells: int
    cells_used: int
    min_generated_per_cell: int
    per_cell: list[dict] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def kmeans_cells(train_embeddings: np.ndarray, n_cells: int, seed: int = 0) -> faiss.Index:
    """A k-means partition of the training embeddings; returns an index giving each point's cell."""
    x = np.ascontiguousarray(train_embeddings, dtype=np.float32)
    n_cells = max(1, min(n_cells, len(x)))
    km = faiss.Kmeans(x.shape[1], n_cells, niter=25, seed=seed, verbose=False,
                      max_points_per_centroid=max(256, len(x) // n_cells + 1))
    km.train(x)
    return km.index


def assign(cells: faiss.Index, embeddings: np.ndarray) -> np.ndarray:
    _, ids = cells.search(np.ascontiguousarray(embeddings, dtype=np.float32), 1)
    return ids[:, 0]


def data_copying_ct(gen_dist: np.ndarray, gen_cells: np.ndarray, test_dist: np.ndarray, test_cells: np.ndarray,
                    n_cells: int, min_generated: int = MIN_GENERATED_PER_CELL) -> CopyTest:
    """Meehan et al.'s C_T from per-sample in-cell distances (each sample's distance to the
    nearest training sample of its own cell) and cell labels."""
    gen_dist, test_dist = np.asarray(gen_dist, float), np.asarray(test_dist, float)
    per_cell, weights, zs = [], [], []
    n = len(test_dist)
    for c in range(n_cells):
        g, t = gen_dist[gen_cells == c], test_dist[test_cells == c]
        g, t = g[~np.isnan(g)], t[~np.isnan(t)]  # NaN: a cell without training images
        entry = {"cell": c, "generated": int(len(g)), "test": int(len(t)), "z": None}
        if len(g) > min_generated and len(t) > 0:
            entry["z"] = mann_whitney_z(g, t)
            weights.append(len(t) / n)
            zs.append(entry["z"])
        per_cell.append(entry)
    if not zs:
        return CopyTest(None, n_cells, 0, min_generated, per_cell,
                        f"no cell holds more than {min_generated} generated and at least 1 test sample; "
                        "use more samples or fewer cells")
    ct = float(np.dot(weights, zs) / np.sum(weights))
    return CopyTest(ct, n_cells, len(zs), min_generated, per_cell)


@dataclass
class Authenticity:
    share: float                 # authentic share of generated samples
    authentic: np.ndarray        # per generated sample, bool

    def to_dict(self) -> dict:
        return {"authenticity": self.share, "unauthentic": int((~self.authentic).sum()), "n": int(len(self.authentic))}


def authenticity(gen_top1_ssim: np.ndarray, gen_top1_train: np.ndarray, train_nn_ssim: dict[int, float]) -> Authenticity:
    """Alaa et al.'s rule with d = 1 − SSIM: authentic when d(g, r*) > d(r*, NN(r*)),
    i.e. SSIM(g, r*) < SSIM(r*, its nearest other training image)."""
    real = np.array([train_nn_ssim[int(t)] for t in gen_top1_train], dtype=float)
    authentic = np.asarray(gen_top1_ssim, float) < real
    return Authenticity(float(authentic.mean()) if len(authentic) else float("nan"), authentic)
