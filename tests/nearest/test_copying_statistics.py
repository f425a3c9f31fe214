"""Meehan et al.'s C_T (in-cell distances, continuity correction) and Radovanović et al.'s
hubness (k-occurrence skewness), each against an independent computation of the paper's
definition on identical inputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import mannwhitneyu, skew
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors

from ganeval.nearest import copying, report
from ganeval.nearest.index import IndexSettings, open_index
from ganeval.nearest.pipeline import _in_cell_distances
from ganeval.nearest.search import Searcher
from ganeval.sources import ArraySource
from ganeval.ssim import ssim_matrix
from ganeval.synth import make_faces


def _reference_ct(test, test_cells, gen, gen_cells, train, train_cells, tau):
    """C_T as Meehan et al. define it (AISTATS 2020, eq. 4 and their released code's
    conventions): in-cell 1-NN distances, U of generated against test with the null mean
    mn/2 − ½, cells with a generated share above τ, weighted by the test share."""
    n, m = len(test), len(gen)
    num = den = 0.0
    for c in np.unique(train_cells):
        p, q, t = test[test_cells == c], gen[gen_cells == c], train[train_cells == c]
        if len(q) / m <= tau:
            continue
        nn = NearestNeighbors(n_neighbors=1).fit(t)
        lq, lp = nn.kneighbors(q)[0][:, 0], nn.kneighbors(p)[0][:, 0]
        u = mannwhitneyu(lq, lp, alternative="less").statistic
        z = (u - (len(lq) * len(lp) / 2 - 0.5)) / np.sqrt(len(lq) * len(lp) * (len(lq) + len(lp) + 1) / 12)
        num += len(p) / n * z
        den += len(p) / n
    return num / den


def _in_cell_euclidean(points, cells, train, train_cells):
    out = np.empty(len(points))
    for c in np.unique(cells):
        nn = NearestNeighbors(n_neighbors=1).fit(train[train_cells == c])
        out[cells == c] = nn.kneighbors(points[cells == c])[0][:, 0]
    return out


@pytest.mark.parametrize("copy_scale", [None, 0.05])
def test_ct_equals_the_reference_statistic(copy_scale):
    rng = np.random.default_rng(0)
    train = rng.normal(size=(600, 5))
    test = rng.normal(size=(300, 5))
    gen = rng.normal(size=(400, 5)) if copy_scale is None else train[:400] + copy_scale * rng.normal(size=(400, 5))
    km = KMeans(n_clusters=4, n_init=3, random_state=0).fit(train)
    cells = {name: km.predict(x) for name, x in (("train", train), ("test", test), ("gen", gen))}
    expected = _reference_ct(test, cells["test"], gen, cells["gen"], train, cells["train"], tau=20 / len(gen))
    ours = copying.data_copying_ct(_in_cell_euclidean(gen, cells["gen"], train, cells["train"]), cells["gen"],
                                   _in_cell_euclidean(test, cells["test"], train, cells["train"]), cells["test"], 4)
    assert ours.ct == pytest.approx(expected, abs=1e-9)
    if copy_scale is None:
        assert abs(ours.ct) < 3      # same law: no evidence either way
    else:
        assert ours.ct < -10         # near-copies of training points


def test_in_cell_distances_are_exact_ssim_within_each_cell():
    faces = make_faces(48, size=32, seed=5)
    train, queries = faces[:36], faces[36:]
    index = open_index(ArraySource(Path("train.npy"), train), IndexSettings())
    train_cells = np.arange(36) % 3
    query_cells = np.array([0, 1, 2] * 4)
    (dist,) = _in_cell_distances(Searcher(index, workers=1), train_cells, (queries, query_cells))
    full = ssim_matrix(queries, train)
    expected = [1 - full[i, train_cells == query_cells[i]].max() for i in range(len(queries))]
    np.testing.assert_allclose(dist, expected, atol=1e-6)
    # a cell with no training image gives no distance (the cell is left out of C_T)
    (empty,) = _in_cell_distances(Searcher(index, workers=1), train_cells, (queries[:2], np.array([7, 0])))
    assert np.isnan(empty[0]) and np.isfinite(empty[1])


def _knn_ids(queries, train, k):
    return NearestNeighbors(n_neighbors=k).fit(train).kneighbors(queries)[1]


def test_k_occurrence_skewness_matches_its_definition():
    rng = np.random.default_rng(1)
    train, queries = rng.normal(size=(500, 20)), rng.normal(size=(500, 20))
    ids = _knn_ids(queries, train, 10)
    res = report.hubness(ids, [f"{i:04d}" for i in range(500)])
    for k in (1, 5, 10):
        counts = np.array([(ids[:, :k] == x).sum() for x in range(500)])  # zeros included
        assert res["skewness"][f"S_N{k}"] == pytest.approx(skew(counts), abs=1e-12)


def test_strong_hubness_is_reported_although_no_single_hub_dominates():
    # d = 100 Gaussians: the classic case of strong hubness (Radovanović et al. 2010, fig. 1)
    rng = np.random.default_rng(2)
    train, queries = rng.normal(size=(2000, 100)), rng.normal(size=(2000, 100))
    res = report.hubness(_knn_ids(queries, train, 10), [f"{i:04d}" for i in range(2000)])
    assert res["top1_share"] < report.HUB_WARNING_SHARE           # the old single share sees nothing
    assert res["skewness"]["S_N10"] > report.HUB_WARNING_SKEW
    assert "k-occurrence skewness" in res["warning"]
    # d = 2: little hubness, no warning
    low = report.hubness(_knn_ids(rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2)), 10),
                         [f"{i:04d}" for i in range(2000)])
    assert low["skewness"]["S_N10"] < report.HUB_WARNING_SKEW and low["warning"] is None


def test_short_neighbour_lists_report_the_k_they_hold():
    res = report.hubness(np.array([[0, 1], [0, 2], [1, 0]]), ["a", "b", "c"])
    assert set(res["skewness"]) == {"S_N1"}
    assert report.hubness(np.array([0, 0, 1]), ["a", "b", "c"])["top1_share"] == pytest.approx(2 / 3)
