"""`ganeval fid` end to end on synthetic faces with test-built Inception weights."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageFilter

from ganeval.cli.main import main

N = 12  # small sets: Inception runs at 299×299 on CPU


def _fid(capsys, *args) -> dict:
    code = main(["fid", *map(str, args), "--json", "--num-workers", "0", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def _blurred(faces: np.ndarray, radius: float) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(f).filter(ImageFilter.GaussianBlur(radius))) for f in faces])


@pytest.fixture()
def sets(tmp_path, faces32):
    paths = {}
    a = faces32[:N]
    for name, arr in {"a": a, "b": faces32[N:2 * N], "blur1": _blurred(a, 0.7), "blur2": _blurred(a, 1.5),
                      "blur3": _blurred(a, 3.0)}.items():
        paths[name] = tmp_path / f"{name}.npz"
        np.savez(paths[name], images=arr)
    rng = np.random.default_rng(0)
    for level in (10, 40):
        noisy = np.clip(a.astype(int) + rng.normal(0, level, a.shape), 0, 255).astype(np.uint8)
        paths[f"noise{level}"] = tmp_path / f"noise{level}.npz"
        np.savez(paths[f"noise{level}"], images=noisy)
    folder = tmp_path / "a_png"
    folder.mkdir()
    for i, face in enumerate(a):
        Image.fromarray(face).save(folder / f"{i:03d}.png")
    paths["a_png"] = folder
    return paths


@pytest.mark.slow
def test_fid_end_to_end(capsys, sets, inception_weights, tmp_path):
    w = ("--weights", inception_weights)
    same = _fid(capsys, sets["a"], sets["a_png"], *w)  # same pixels, different containers
    assert same["fid"] == pytest.approx(0.0, abs=1e-6)
    assert same["standard_weights"] is False
    assert same["a"]["n"] == N and same["b"]["n"] == N

    blurred = [_fid(capsys, sets["a"], sets[k], *w) for k in ("blur1", "blur2", "blur3")]
    blur = [r["fid"] for r in blurred]
    assert same["fid"] * 100 < blur[0] < blur[1] < blur[2], blur
    # unbiased KID of identical sets is negative (the estimator assumes independent samples)
    kid = [r["kid_mean"] for r in blurred]
    assert same["kid_mean"] < kid[0] < kid[1] < kid[2], kid
    noise = [_fid(capsys, sets["a"], sets[k], *w)["fid"] for k in ("noise10", "noise40")]
    assert 0 < noise[0] < noise[1], noise

    # second run comes from the feature cache
    again = _fid(capsys, sets["a"], sets["blur1"], *w)
    assert again["a"]["cached"] and again["b"]["cached"]
    assert again["fid"] == pytest.approx(blur[0], rel=1e-12)

    # statistics round trip: stats file vs images gives the same FID, KID becomes n/a
    stats = tmp_path / "a_stats.npz"
    assert main(["fid", str(sets["a"]), "--save-stats", str(stats), *w, "--num-workers", "0"]) == 0
    capsys.readouterr()
    from_stats = _fid(capsys, stats, sets["blur2"], *w)
    assert from_stats["fid"] == pytest.approx(blur[1], rel=1e-9)
    assert from_stats["kid_mean"] is None

    # the human-readable form
    assert main(["fid", str(sets["a"]), str(sets["b"]), *w, "--num-workers", "0"]) == 0
    text = capsys.readouterr().out
    assert "FID (inception, 2048-d):" in text and "KID:" in text


def _fails(capsys, args, code, fragment):
    assert main(args) == code
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and fragment in lines[0], err
    assert "Traceback" not in err


def test_fid_bad_input(capsys, tmp_path, sets, inception_weights):
    w = ["--weights", inception_weights]
    empty = tmp_path / "empty"
    empty.mkdir()
    _fails(capsys, ["fid", str(empty), str(sets["a"]), *w], 2, "contains no images")
    _fails(capsys, ["fid", str(tmp_path / "missing"), str(sets["a"]), *w], 2, "no such file")
    np.savez(tmp_path / "s3.npz", mu=np.zeros(3), sigma=np.eye(3))
    np.savez(tmp_path / "s4.npz", mu=np.zeros(4), sigma=np.eye(4))
    _fails(capsys, ["fid", str(tmp_path / "s3.npz"), str(tmp_path / "s4.npz"), *w], 2, "different dimensions")
    np.savez(tmp_path / "one.npz", images=np.zeros((1, 32, 32, 3), np.uint8))
    _fails(capsys, ["fid", str(tmp_path / "one.npz"), str(sets["a"]), *w, "--num-workers", "0"], 2, "at least 2 images")
    _fails(capsys, ["fid", str(sets["a"]), str(sets["b"]), "--device", "cuda:7", *w], 2, "device")
    bad_stats = tmp_path / "bad_stats.npz"
    np.savez(bad_stats, mu=np.zeros(2048), sigma=np.eye(2048), extractor=np.array("illust2vec"))
    _fails(capsys, ["fid", str(bad_stats), str(sets["a"]), *w, "--num-workers", "0"], 2, "illust2vec features")


def test_missing_weights_offline_names_the_file(capsys, sets):
    _fails(capsys, ["fid", str(sets["a"]), str(sets["b"])], 1, "pt_inception-2015-12-05-6726825d.pth")


@pytest.mark.slow
def test_fid_from_generator_equals_sample_then_fid(capsys, tmp_path, sets, inception_weights):
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--data", str(sets["a"]), "--out", str(run), "--resolution", "32",
                 "--steps", "2", "--batch-size", "4", "--device", "cpu", "--num-workers", "0"]) == 0
    ckpt = run / "checkpoint.pt"
    assert ckpt.is_file()
    samples = tmp_path / "samples.npz"
    assert main(["sample", str(ckpt), "-n", str(N), "-o", str(samples), "--seed", "5", "--batch-size", "5",
                 "--device", "cpu"]) == 0
    capsys.readouterr()
    w = ("--weights", inception_weights)
    streamed = _fid(capsys, sets["a"], "--generator", ckpt, "-n", N, "--seed", 5, "--batch-size", 5, *w)
    written = _fid(capsys, sets["a"], samples, "--batch-size", 5, *w)
    assert streamed["b"]["origin"] == "generator" and streamed["b"]["n"] == N
    assert streamed["fid"] == pytest.approx(written["fid"], rel=1e-6)
    assert streamed["kid_mean"] == pytest.approx(written["kid_mean"], rel=1e-5, abs=1e-9)
    assert streamed["fid"] > 1.0  # an untrained generator is far from the faces
    # truncation needs a mapping network: one line, before any sampling
    assert main(["fid", str(sets["a"]), "--generator", str(ckpt), "-n", "4", "--truncation", "0.7", *w]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the test-weights warning
    assert last.startswith("ganeval fid: error:") and "--truncation needs a style-based generator" in last


@pytest.mark.slow
def test_fid_all_metrics_save_features_and_stats(capsys, sets, inception_weights, tmp_path):
    w = ("--weights", inception_weights)
    feats, stats_a = tmp_path / "feats.npz", tmp_path / "out" / "a_stats.npz"
    # --save-stats before the inputs: the option takes one file, the positionals stay inputs
    res = _fid(capsys, "--save-stats", stats_a, sets["a"], sets["blur2"], "--metrics", "all", "--prdc-k", "2,3",
               "--save-features", feats, *w)
    for key in ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall", "density", "coverage"):
        assert isinstance(res[key], float), key
    assert res["prdc_k"] == [2, 3] and res["prdc_n"] == [N, N]
    assert res["is_mean"] >= 1.0 and 0.0 <= res["recall"] <= 1.0
    with np.load(feats) as f:
        a, b = f["a"], f["b"]
    assert a.shape == (N, 2048) and b.shape == (N, 2048) and a.dtype == np.float32
    with np.load(stats_a) as f:
        np.testing.assert_allclose(f["mu"], a.astype(np.float64).mean(0), rtol=1e-10, atol=1e-12)
    # the same features again from the cache, and metrics recomputed from the saved features agree
    from ganeval.metrics.fid import frechet_distance, mean_and_covariance

    again = _fid(capsys, sets["a"], sets["blur2"], "--metrics", "fid", *w)
    assert set(again) >= {"fid"} and "kid_mean" not in again
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fid = frechet_distance(*mean_and_covariance(a), *mean_and_covariance(b))
    assert again["fid"] == pytest.approx(fid, rel=1e-9) and res["fid"] == pytest.approx(fid, rel=1e-9)
    # an existing output is refused before any work, and replaced with --overwrite
    _fails(capsys, ["fid", str(sets["a"]), "--save-stats", str(stats_a), *w], 2, "already exists")
    assert main(["fid", str(sets["a"]), "--save-stats", str(stats_a), "--overwrite", *w, "--num-workers", "0"]) == 0
    # human-readable lines for every metric
    capsys.readouterr()
    assert main(["fid", str(sets["a"]), str(sets["b"]), "--metrics", "is,prdc", *w, "--num-workers", "0"]) == 0
    text = capsys.readouterr().out
    assert "IS (of B):" in text and "precision" in text and "coverage" in text and "FID" not in text


@pytest.mark.slow
def test_fid_metric_bad_input(capsys, sets, inception_weights, tmp_path):
    w = ["--weights", inception_weights, "--num-workers", "0"]
    a, b = str(sets["a"]), str(sets["b"])
    _fails(capsys, ["fid", a, b, "--metrics", "fid,precision", *w], 2, "unknown metric 'precision'")
    _fails(capsys, ["fid", a, b, "--prdc-k", "x", *w], 2, "--prdc-k")
    np.savez(tmp_path / "few.npz", images=np.load(sets["a"])["images"][:4])
    _fails(capsys, ["fid", a, str(tmp_path / "few.npz"), "--metrics", "prdc", *w], 2, "at least 6 samples")
    stats = tmp_path / "b_stats.npz"
    assert main(["fid", b, "--save-stats", str(stats), *w]) == 0
    capsys.readouterr()
    _fails(capsys, ["fid", a, str(stats), "--metrics", "is", *w], 2, "Inception Score needs images")
    _fails(capsys, ["fid", a, str(stats), "--metrics", "prdc", *w], 2, "need images")
    _fails(capsys, ["fid", a, str(stats), "--save-features", str(tmp_path / "f.npz"), *w], 2, "statistics file")
    # outputs onto an input are refused before any work, even with --overwrite
    _fails(capsys, ["fid", a, "--save-stats", a, "--overwrite", *w], 2, "is the input")
    _fails(capsys, ["fid", a, b, "--save-stats", str(tmp_path / "1.npz"), "--save-stats", str(tmp_path / "2.npz"),
                    "--save-stats", str(tmp_path / "3.npz"), *w], 2, "one file per input")
    # a sigma saved flat: its real shape in the message
    np.savez(tmp_path / "flat.npz", mu=np.zeros(2048), sigma=np.ones(2048))
    _fails(capsys, ["fid", str(tmp_path / "flat.npz"), a, *w], 2, "sigma (2048,)")
    _fails(capsys, ["fid", a, b, "--resize", "clean", "--features", "illust2vec", *w], 2, "Inception features only")


@pytest.mark.slow
def test_strict_and_skip_warning_survive_the_cache(capsys, tmp_path, faces32, inception_weights):
    folder = tmp_path / "with_corrupt"
    folder.mkdir()
    for i, face in enumerate(faces32[:6]):
        Image.fromarray(face).save(folder / f"{i}.png")
    (folder / "bad1.png").write_bytes(b"not a png")
    (folder / "bad2.jpg").write_bytes(b"\xff\xd8 truncated")
    other = tmp_path / "b.npz"
    np.savez(other, images=faces32[6:12])
    args = ["fid", str(folder), str(other), "--weights", inception_weights, "--num-workers", "0", "--json"]
    for run in range(2):  # computed, then from the cache: the same warning
        assert main(args) == 0
        captured = capsys.readouterr()
        assert "skipped 2 corrupt image(s)" in captured.err, (run, captured.err)
    assert json.loads(captured.out)["a"]["cached"] is True
    assert main([*args, "--strict"]) == 2  # the same verdict, exit code included, as without the cache
    err = capsys.readouterr().err
    assert "corrupt" in err and "--strict" in err and "Traceback" not in err


def test_tf32_is_off_only_during_extraction():
    import torch

    from ganeval.features.base import ExtractorInfo, FeatureExtractor
    from ganeval.features.extract import extract_features

    seen = []

    class Probe(FeatureExtractor):
        info = ExtractorInfo("probe", 2, 8, "x", False)

        def forward(self, images):
            seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
            return images.float().mean((2, 3))[:, :2]

    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    try:
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
        out = extract_features(Probe(), [torch.zeros(3, 8, 8, 3, dtype=torch.uint8)], torch.device("cpu"))
        assert out.shape == (3, 2) and seen == [(False, False)]
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
