"""The per-window cs embedding: its inner product is SSIM's contrast-structure term."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganeval.nearest.embed import Embedder, EmbedSpec, window_basis
from ganeval.nearest.index import IndexSettings, open_index
from ganeval.sources import ArraySource
from ganeval.ssim import C2, SSIMEngine, to_planes
from ganeval.synth import make_faces


def _mean_cs_proxy(x: np.ndarray, y: np.ndarray, stride: int) -> np.ndarray:
    """(σxy + C2/2) / sqrt((σx² + C2/2)(σy² + C2/2)), averaged over the strided windows."""
    h, w = x.shape[1:3]
    eng = SSIMEngine(h, w, dtype=torch.float64, stride=stride)
    px, py = to_planes(x, dtype=torch.float64), to_planes(y, dtype=torch.float64)
    mx, my = eng.filter(px), eng.filter(py)
    vx, vy = eng.filter(px * px) - mx * mx, eng.filter(py * py) - my * my
    cov = eng.filter(px * py) - mx * my
    cs = (cov + C2 / 2) / ((vx + C2 / 2) * (vy + C2 / 2)).sqrt()
    return cs.flatten(1).mean(1).numpy()


def test_full_basis_inner_product_is_mean_cs():
    faces = make_faces(8, size=40, seed=2)
    x, y = faces[:4], faces[4:]
    embed = Embedder(40, 40, EmbedSpec(stride=3, components=121))
    got = (embed(x) * embed(y)).sum(1)
    np.testing.assert_allclose(got, _mean_cs_proxy(x, y, 3), atol=2e-5)


def test_truncated_basis_keeps_the_ranking_close():
    faces = make_faces(40, size=32, seed=4)
    embed = Embedder(32, 32)
    got = embed(faces[:1]) @ embed(faces[1:]).T
    ref = _mean_cs_proxy(np.repeat(faces[:1], 39, 0), faces[1:], 4)
    assert np.corrcoef(got[0], ref)[0, 1] > 0.95


def test_window_basis_is_orthonormal_and_stored_with_the_index(tmp_path, monkeypatch):
    basis = window_basis(8)
    np.testing.assert_allclose(basis.T @ basis, np.eye(8), atol=1e-12)
    monkeypatch.setenv("GANEVAL_HOME", str(tmp_path))
    train = make_faces(20, size=32, seed=5)
    index = open_index(ArraySource(Path("t.npy"), train), IndexSettings())
    assert (index.path / "basis.npy").exists()
    np.testing.assert_array_equal(index.embedder().basis, np.load(index.path / "basis.npy"))
    reopened = open_index(ArraySource(Path("t.npy"), train), IndexSettings())
    assert reopened.cached and np.array_equal(reopened.basis, index.basis)
