"""Per-image scores against by-hand computations of the papers' definitions."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from ganeval.cli.main import main
from ganeval.metrics.per_image import per_image_scores
from ganeval.ssim import ssim


def _by_hand(real: np.ndarray, fake: np.ndarray, k: int = 3):
    d_rr = np.linalg.norm(real[:, None] - real[None], axis=2)
    radii = np.sort(d_rr, axis=1)[:, k]  # k-th neighbour, the point itself at 0
    d = np.linalg.norm(fake[:, None] - real[None], axis=2)
    kept = radii <= np.median(radii)
    realism = (radii[None, kept] / d[:, kept]).max(1)  # Kynkäänniemi et al. 2019, pruned half
    inside = np.where(d <= radii[None], radii[None], np.inf)
    rarity = inside.min(1)
    rarity[np.isinf(rarity)] = np.nan  # Han et al. 2022: outside every ball, no score
    mu, sigma = real.mean(0), np.cov(real, rowvar=False) + 1e-6 * np.eye(real.shape[1])
    c = fake - mu
    loglik = -0.5 * np.einsum("ij,ij->i", c, np.linalg.solve(sigma, c.T).T)
    return realism, rarity, d.argmin(1), d.min(1), loglik


def test_scores_equal_the_definitions():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(60, 5)).astype(np.float32)
    fake = np.concatenate([rng.normal(size=(30, 5)), rng.normal(size=(10, 5)) * 4 + 6]).astype(np.float32)
    fake[0] = real[7]  # a copy
    got = per_image_scores(real, fake, k=3, block=16)  # several blocks on both sides
    realism, rarity, nearest, dist, loglik = _by_hand(real.astype(np.float64), fake.astype(np.float64))
    np.testing.assert_allclose(got["realism"][1:], realism[1:], rtol=1e-4)
    np.testing.assert_allclose(got["rarity"], rarity, rtol=1e-4)
    assert np.array_equal(got["nearest_real"], nearest) and got["nearest_real"][0] == 7
    np.testing.assert_allclose(got["nearest_real_distance"][1:], dist[1:], rtol=1e-4, atol=1e-5)
    assert got["nearest_real_distance"][0] < 1e-3
    np.testing.assert_allclose(got["gaussian_loglik"], loglik, rtol=1e-6)
    assert np.isnan(got["rarity"][30:]).all()  # the far cluster lies outside every real ball
    assert (got["realism"][30:] < 1).all() and np.median(got["realism"][1:30]) > 1


@pytest.mark.slow
def test_fid_writes_per_image_scores(tmp_path, faces32, inception_weights, capsys):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, images=faces32[:12])
    np.savez(b, images=faces32[12:20])
    out = tmp_path / "scores.csv"
    common = ["--weights", inception_weights, "--device", "cpu", "--num-workers", "0", "--json", "--metrics", "fid"]
    assert main(["fid", str(a), str(b), "--per-image", str(out)] + common) == 0
    json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 8 and set(rows[0]) == {"name", "index", "realism", "rarity", "nearest_real",
                                                "nearest_real_distance", "nearest_real_ssim", "gaussian_loglik"}
    assert [r["name"] for r in rows] == [f"{i:06d}" for i in range(8)]  # the images' keys in their source
    for r in rows:  # the pixel view of the same neighbour
        want = ssim(faces32[12 + int(r["index"])], faces32[int(r["nearest_real"])])
        assert float(r["nearest_real_ssim"]) == pytest.approx(want, abs=1e-5)
    assert main(["fid", str(a), str(b), "--per-image", str(out)] + common) == 2  # exists: refused
    assert "--overwrite" in capsys.readouterr().err
    stats = tmp_path / "a_stats.npz"
    assert main(["fid", str(a), "--save-stats", str(stats)] + common[:-2]) == 0
    capsys.readouterr()
    assert main(["fid", str(stats), str(b), "--per-image", str(tmp_path / "x.csv")] + common) == 2
    assert "needs images on both sides" in capsys.readouterr().err
