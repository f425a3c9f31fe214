"""``ganeval nearest``: exact neighbours, planted copies, recall, outputs, cache, bad input."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import faiss
import numpy as np
import pytest
from PIL import Image

from ganeval.cli.main import main
from ganeval.nearest import copying
from ganeval.nearest.embed import EmbedSpec
from ganeval.nearest.index import IndexSettings, load_images, open_index
from ganeval.nearest.search import Searcher, recall_at
from ganeval.sources import ArraySource, open_source
from ganeval.ssim import ssim_matrix
from ganeval.synth import make_faces


def _jpeg(img: np.ndarray, quality: int = 75) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def _brightness(img: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(np.round(img.astype(float) * factor), 0, 255).astype(np.uint8)


def _index(images: np.ndarray, **settings):
    return open_index(ArraySource(Path("train.npy"), images), IndexSettings(**settings))


@pytest.fixture(scope="module")
def faces96() -> np.ndarray:
    return make_faces(200, size=96, seed=3)


def test_exhaustive_is_skimage_exact_and_mean_all(faces32):
    train, queries = faces32[:40], faces32[40:]
    truth = ssim_matrix(queries, train)
    nb = Searcher(_index(train), train_chunk=16).exhaustive(queries, k=3, mean_all=True)
    order = np.argsort(-truth, axis=1)[:, :3]
    assert (nb.index == order).all()
    assert nb.score == pytest.approx(np.take_along_axis(truth, order, 1), abs=1e-6)
    assert nb.mean_all == pytest.approx(truth.mean(axis=1), abs=1e-6)


@pytest.mark.slow
def test_planted_copies_found_at_rank_one(faces96):
    """Exact copies and copies re-encoded as JPEG 75, shifted by 1 pixel or ±10% brighter.

    96 px like the real set: at 32 px a 1-pixel shift of a flat cartoon face can fall below
    another face's SSIM (SSIM is not shift-invariant), and then no exact search finds it."""
    train = faces96[:160]
    originals = np.arange(0, 160, 8)  # 20 planted copies
    perturb = [lambda x: x, _jpeg, lambda x: np.roll(x, 1, axis=1), lambda x: np.roll(x, 1, axis=0),
               lambda x: _brightness(x, 1.1), lambda x: _brightness(x, 0.9)]
    planted = np.stack([perturb[i % len(perturb)](train[o]) for i, o in enumerate(originals)])
    generated = np.concatenate([faces96[160:], planted])  # 40 unrelated faces, then the copies
    nb = Searcher(_index(train)).cascade(generated, k=4, candidates=48, shortlist=16)
    assert (nb.index[40:, 0] == originals).all()
    assert (nb.score[40::6, 0] > 0.999).all()  # untouched copies
    assert (nb.score[40:, 0] > nb.score[40:, 1]).all()


@pytest.mark.slow
def test_recall_against_exhaustive_on_synthetic_faces():
    """Recall@4 ≥ 0.99 with the default embedding, far fewer candidates than images."""
    train, queries = make_faces(600, size=48, seed=0), make_faces(40, size=48, seed=1)
    searcher = Searcher(_index(train))
    found = searcher.cascade(queries, k=4, candidates=64)
    truth = searcher.exhaustive(queries, k=4)
    assert recall_at(found, truth, 4) >= 0.99
    assert recall_at(found, truth, 1) == 1.0


def test_ivf_index_and_exclude(faces32):
    train = faces32[:40]
    index = _index(train, ivf_threshold=10)
    assert index.kind == "ivf" and "ScalarQuantizer" in type(faiss.downcast_index(index.faiss_index.index)).__name__
    searcher = Searcher(index)
    nb = searcher.cascade(train[:5], k=1, candidates=40, shortlist=8)
    assert (nb.index[:, 0] == np.arange(5)).all()
    ex = searcher.cascade(train[:5], k=1, candidates=40, shortlist=8, exclude=np.arange(5))
    truth = ssim_matrix(train[:5], train)
    np.fill_diagonal(truth[:, :5], -np.inf)
    assert (ex.index[:, 0] == truth.argmax(1)).all()
    pca = _index(train, spec=EmbedSpec(pca_dim=16))
    assert pca.kind == "flat" and pca.faiss_index.d == pca.embedder()(train[:1]).shape[1]
    assert (Searcher(pca).cascade(train[:5], k=1, candidates=8, shortlist=4).index[:, 0] == np.arange(5)).all()


@pytest.mark.slow
def test_ivf_sq8_recall_matches_flat():
    """The compressed index (forced by a low threshold) finds what the flat index finds."""
    train, queries = make_faces(400, size=32, seed=0), make_faces(30, size=32, seed=1)
    flat = Searcher(_index(train)).cascade(queries, k=4, candidates=64)
    ivf_index = _index(train, ivf_threshold=100)
    assert ivf_index.kind == "ivf"
    ivf = Searcher(ivf_index).cascade(queries, k=4, candidates=64)
    assert recall_at(ivf, flat, 1) == 1.0
    assert recall_at(ivf, flat, 4) >= 0.95


def test_pca_keeps_inner_products_without_a_mean_offset():
    """The PCA in front of the index is uncentred (no offset), so the inner products it keeps
    rank candidates as the embedding does; a centred PCA would add <y, mean> to every score."""
    train = make_faces(300, size=32, seed=0)
    index = _index(train, spec=EmbedSpec(pca_dim=64))
    pca = faiss.downcast_VectorTransform(index.faiss_index.chain.at(0))
    assert isinstance(pca, faiss.PCAMatrix)
    assert np.abs(faiss.vector_to_array(pca.mean)).max() < 1e-6
    assert np.abs(faiss.vector_to_array(pca.b)).max() < 1e-6
    queries = make_faces(20, size=32, seed=1)
    flat = Searcher(_index(train)).cascade(queries, k=4, candidates=32)
    reduced = Searcher(index).cascade(queries, k=4, candidates=32)
    assert recall_at(reduced, flat, 4) >= 0.95


def test_load_images_resizes_and_counts_mixed_sizes(tmp_path, faces32):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(faces32[i]).save(folder / f"a{i}.png")
    for i in range(3):
        Image.fromarray(make_faces(1, size=48, seed=i)[0]).save(folder / f"b{i}.png")
    loaded = load_images(open_source(folder), (32, 32), batch_size=4)
    assert loaded.images.shape == (8, 32, 32, 3)
    assert loaded.resized == 3 and dict(loaded.resized_from) == {(48, 48): 3}


def test_copy_statistics():
    rng = np.random.default_rng(0)
    test = rng.random(200)
    sigma = np.sqrt(200 * 200 * 401 / 12)
    assert copying.mann_whitney_z(test.copy(), test) == pytest.approx(0.5 / sigma, abs=1e-12)  # continuity
    copies = copying.data_copying_ct(np.zeros(100), np.zeros(100, int), test, np.zeros(200, int), 1)
    assert copies.ct < -10  # generated far closer to the training set than held-out data
    fresh = copying.data_copying_ct(test[:100] + 1, np.zeros(100, int), test, np.zeros(200, int), 1)
    assert fresh.ct > 10
    sparse = copying.data_copying_ct(test[:30], np.arange(30) % 3, test, np.arange(200) % 3, 3)
    assert sparse.ct is None and "no cell" in sparse.note  # 10 per cell < 20
    auth = copying.authenticity(np.array([1.0, 0.5]), np.array([3, 4]), {3: 0.7, 4: 0.7})
    assert auth.authentic.tolist() == [False, True] and auth.share == 0.5


# ------------------------------------------------------------------ the command

@pytest.fixture()
def sets(tmp_path, faces32) -> dict[str, Path]:
    train = make_faces(120, size=32, seed=0)
    gen = make_faces(30, size=48, seed=1)  # another size: resized to the training size
    gen[:4] = np.stack([np.asarray(Image.fromarray(t).resize((48, 48), Image.Resampling.BICUBIC))
                        for t in train[[5, 10, 15, 20]]])
    paths = {"train": tmp_path / "train.npy", "gen": tmp_path / "gen.npy", "test": tmp_path / "test.npy"}
    np.save(paths["train"], train)
    np.save(paths["gen"], gen)
    np.save(paths["test"], make_faces(60, size=32, seed=2))
    return paths


@pytest.mark.slow
def test_cli_end_to_end_and_cache_reuse(sets, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["nearest", str(sets["gen"]), str(sets["train"]), "-k", "3", "-o", str(out), "--check-recall", "8",
            "--mean-all", "--test", str(sets["test"]), "--contact-sheets", "20", "--num-workers", "0"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "resized 30 generated image(s) from 48x48" in err and "built in" in err
    for name in ("neighbours.csv", "summary.json", "ssim_hist.png", "mean_ssim.csv", "mean_ssim.png",
                 "contact_sheets/sheet_001.png", "contact_sheets/sheet_002.png"):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader((out / "neighbours.csv").open()))
    assert len(rows) == 30 * 3 and rows[0].keys() == {"query", "rank", "train", "ssim"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["generated"]["resized"]["count"] == 30
    assert [r["rank"] for r in summary["ranks"]] == [1, 2, 3]
    assert summary["ranks"][0]["mean"] >= summary["ranks"][2]["mean"]
    assert summary["copies"]["copies"] >= 4 and summary["copies"]["copy_share"] + summary["copies"]["original_share"] == 1
    assert summary["recall"]["recall@3"] == 1.0  # --mean-all searched exhaustively
    assert summary["mean_all"]["n"] == 30
    stats = summary["copy_statistics"]
    assert stats["meehan_ct"]["cells"] >= 1 and stats["authenticity"]["n"] == 30
    assert stats["authenticity"]["unauthentic"] >= 4  # the planted copies
    with Image.open(out / "contact_sheets/sheet_001.png") as sheet:
        assert sheet.width > 4 * 32

    index_dir = Path(summary["train"]["index"]["path"])
    built = (index_dir / "index.faiss").stat().st_mtime_ns
    assert main(["nearest", str(sets["gen"]), str(sets["train"]), "-k", "3", "--json", "--num-workers", "0"]) == 0
    captured = capsys.readouterr()
    again = json.loads(captured.out)
    assert again["train"]["index"]["cached"] is True and "reused from cache" in captured.err
    assert (index_dir / "index.faiss").stat().st_mtime_ns == built
    assert again["ranks"][0]["mean"] == pytest.approx(summary["ranks"][0]["mean"], abs=1e-9)


def test_cli_cascade_matches_exact(sets, capsys):
    base = ["nearest", str(sets["gen"]), str(sets["train"]), "-k", "2", "--json", "--num-workers", "0"]
    assert main(base + ["--candidates", "24"]) == 0
    fast = json.loads(capsys.readouterr().out)
    assert main(base + ["--exact"]) == 0
    exact = json.loads(capsys.readouterr().out)
    assert fast["settings"]["method"] == "cascade" and exact["settings"]["method"] == "exhaustive"
    assert fast["ranks"][0]["mean"] == pytest.approx(exact["ranks"][0]["mean"], abs=1e-6)


def _fails(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "Traceback" not in err
    return err


def test_bad_input(sets, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no images" in _fails(["nearest", str(empty), str(sets["train"])], capsys)
    assert "no images" in _fails(["nearest", str(sets["gen"]), str(empty)], capsys)
    assert "larger than the training set" in _fails(["nearest", str(sets["gen"]), str(sets["train"]), "-k", "121"],
                                                      capsys)
    gray = tmp_path / "gray.npy"
    np.save(gray, make_faces(10, size=32, seed=4)[..., :1].copy())
    assert "--gray" in _fails(["nearest", str(gray), str(sets["train"])], capsys)
    assert main(["nearest", str(gray), str(sets["train"]), "--gray", "--json", "--num-workers", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["gray"] is True
    gray_pngs = tmp_path / "gray_pngs"
    gray_pngs.mkdir()
    for i in range(3):
        Image.fromarray(make_faces(1, size=32, seed=i)[0]).convert("L").save(gray_pngs / f"{i}.png")
    assert "1 channel(s)" in _fails(["nearest", str(gray_pngs), str(sets["train"])], capsys)
    tiny = tmp_path / "tiny.npy"
    np.save(tiny, np.zeros((3, 8, 8, 3), np.uint8))
    assert "at least 11" in _fails(["nearest", str(sets["gen"]), str(tiny), "-k", "1"], capsys)


@pytest.mark.parametrize("gray_name", ["000_gray16.png", "zzz_gray16.png"])
def test_channel_handling_does_not_depend_on_file_order(tmp_path, gray_name):
    """A 16-bit grayscale PNG among colour images: the set is colour whichever file comes first."""
    from ganeval.nearest.index import native_channels

    root = tmp_path / "mixed"
    root.mkdir()
    faces = make_faces(3, size=32, seed=9)
    for i, face in enumerate(faces[:2]):
        Image.fromarray(face).save(root / f"m{i}.png")
    gray16 = (np.asarray(Image.fromarray(faces[2]).convert("L"), dtype=np.uint16) * 257)
    Image.fromarray(gray16).save(root / gray_name)
    assert Image.open(root / gray_name).mode.startswith("I")
    assert native_channels(open_source(root)) == 3
    only_gray = tmp_path / "gray"
    only_gray.mkdir()
    Image.fromarray(gray16).save(only_gray / "a.png")
    Image.fromarray(faces[0]).convert("L").save(only_gray / "b.png")
    assert native_channels(open_source(only_gray)) == 1
