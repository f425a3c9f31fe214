"""FID during training (`ganeval train --fid-every`): the curve the report plots."""
from __future__ import annotations

import csv
import json

import pytest

from ganeval.atomic import save_npz
from ganeval.cli.main import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _train(tmp_path, faces32, weights, *extra) -> int:
    data = tmp_path / "faces.npz"
    save_npz(data, images=faces32[:16])  # 16 reference images: Inception at 299 px is the slow part
    return main(["train", "dcgan", "--data", str(data), "--out", str(tmp_path / "run"), "--resolution", "32",
                 "--width", "8", "--batch-size", "8", "--num-workers", "0", "--device", "cpu",
                 "--fid-ref", str(data), "--fid-n", "16", "--fid-weights", weights, *extra])


@pytest.mark.slow
def test_fid_curve_is_logged_and_equals_fid_of_the_checkpoint(tmp_path, faces32, inception_weights, capsys):
    assert _train(tmp_path, faces32, inception_weights, "--steps", "4", "--fid-every", "2") == 0
    with open(tmp_path / "run" / "fid.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [2, 4]
    assert all(float(r["fid"]) > 0 and r["n"] == "16" and r["features"] == "inception" for r in rows)
    capsys.readouterr()
    # the last point is exactly what `ganeval fid --generator` says of the final checkpoint
    assert main(["fid", str(tmp_path / "faces.npz"), "--generator", str(tmp_path / "run" / "checkpoint.pt"),
                 "-n", "16", "--weights", inception_weights, "--device", "cpu", "--json", "--no-cache"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert float(rows[-1]["fid"]) == pytest.approx(res["fid"], rel=1e-4)

    # the report's training-run reader puts the curve beside the losses
    from ganeval.analysis.inputs import load_runs

    runs = load_runs([tmp_path / "run"])
    assert runs.dropna(subset=["fid"])["step"].tolist() == [2, 4]


def test_fid_every_needs_a_reference_and_weights(tmp_path, faces32, inception_weights, capsys):
    data = tmp_path / "faces.npz"
    save_npz(data, images=faces32[:16])
    base = ["train", "dcgan", "--data", str(data), "--resolution", "32", "--width", "8", "--batch-size", "8",
            "--steps", "2", "--num-workers", "0", "--device", "cpu", "--fid-every", "1"]
    assert main(base + ["--out", str(tmp_path / "a")]) == 2
    assert "--fid-every needs --fid-ref" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "b"), "--fid-ref", str(data), "--fid-weights", str(tmp_path / "none.pth")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("ganeval train: error:") and "does not exist" in last
    assert not (tmp_path / "b" / "checkpoint.pt").exists()  # stopped before any training


@pytest.mark.slow
def test_fid_every_logs_the_other_metrics_too(tmp_path, faces32, inception_weights, capsys):
    """--fid-metrics: the same numbers `ganeval fid --generator --metrics` gives for that checkpoint."""
    assert _train(tmp_path, faces32, inception_weights, "--steps", "2", "--fid-every", "2",
                  "--fid-metrics", "fid,kid,prdc") == 0
    with open(tmp_path / "run" / "fid.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["step", "kimg", "fid", "n", "features", "kid_mean", "kid_std",
                             "precision", "recall", "density", "coverage"]
    capsys.readouterr()
    assert main(["fid", str(tmp_path / "faces.npz"), "--generator", str(tmp_path / "run" / "checkpoint.pt"),
                 "-n", "16", "--weights", inception_weights, "--device", "cpu", "--json", "--no-cache",
                 "--metrics", "fid,kid,prdc"]) == 0
    res = json.loads(capsys.readouterr().out)
    for key in ("fid", "kid_mean", "precision", "recall", "density", "coverage"):
        assert float(rows[-1][key]) == pytest.approx(res[key], rel=1e-4, abs=1e-6), key
    bad = ["train", "dcgan", "--data", str(tmp_path / "faces.npz"), "--out", str(tmp_path / "bad"), "--steps", "1",
           "--fid-every", "1", "--fid-ref", str(tmp_path / "faces.npz"), "--fid-weights", inception_weights,
           "--fid-metrics", "fid,nope", "--device", "cpu", "--num-workers", "0", "--resolution", "32", "--width", "8",
           "--batch-size", "8"]
    assert main(bad) == 2 and "nope" in capsys.readouterr().err
