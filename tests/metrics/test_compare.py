"""``ganeval compare``: one table for several generators and image sets against the same real
features, equal to ``compute_fid`` pair by pair; FID over a run's snapshots, resumable."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import ganeval
from ganeval.cli.main import main
from ganeval.compare import compare, over_training

pytestmark = pytest.mark.slow  # Inception at 299 px on every candidate

PKL = Path(__file__).resolve().parents[1] / "data" / "nvlabs" / "sg2_64.pkl"
N = 12


@pytest.fixture
def sets(tmp_path, faces32):
    real, other = tmp_path / "real.npz", tmp_path / "other.npz"
    np.savez(real, images=faces32[:N])
    np.savez(other, images=faces32[N:2 * N])
    return real, other


def test_the_table_equals_pairwise_fid(sets, tmp_path, inception_weights):
    real, other = sets
    kw = dict(weights=inception_weights, device="cpu", n=N)
    result = compare(str(real), [str(other), str(PKL)], ["faces", "nvlabs"], metrics="fid,kid", bootstrap=5,
                     outdir=tmp_path / "cmp", **kw)
    by = {r["label"]: r for r in result.rows}
    assert by["faces"]["fid"] == pytest.approx(ganeval.compute_fid(str(real), str(other), weights=inception_weights,
                                                                    device="cpu", on_warning=lambda m: None), rel=1e-9)
    for row in result.rows:
        assert row["fid_ci_low"] <= row["fid_ci_high"] and row["n"] == N and row["kid_std"] is not None
    for name in ("comparison.csv", "comparison.md", "comparison.json", "comparison.png"):
        assert (tmp_path / "cmp" / name).stat().st_size > 0
    assert json.loads((tmp_path / "cmp" / "comparison.json").read_text())["rows"][0]["label"] == "faces"


def test_generator_rows_use_the_metric_paths_noise(sets, inception_weights):
    real, _ = sets
    G = ganeval.load_generator(PKL, device="cpu")
    expected = ganeval.compute_metrics(str(real), ganeval.api.generator_side(G, range(N), 50, noise_mode="random"),
                                       metrics="fid", weights=inception_weights, device="cpu",
                                       on_warning=lambda m: None)["fid"]
    row = compare(str(real), [str(PKL)], metrics="fid", bootstrap=0, weights=inception_weights, device="cpu", n=N).rows[0]
    assert row["fid"] == pytest.approx(expected, rel=1e-9) and "fid_ci_low" not in row


def test_over_training_measures_each_snapshot_once(sets, tmp_path, inception_weights, capsys):
    real, _ = sets
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(PKL, run / "network-snapshot-000000.pkl")
    shutil.copy(PKL, run / "network-snapshot-000040.pkl")
    said: list[str] = []
    kw = dict(n=N, weights=inception_weights, device="cpu", say=said.append)
    rows = over_training(run, str(real), tmp_path / "curve", **kw)
    assert [r["kimg_or_step"] for r in rows] == [0.0, 40.0] and rows[0]["fid"] == pytest.approx(rows[1]["fid"])
    shutil.copy(PKL, run / "network-snapshot-000080.pkl")
    said.clear()
    rows = over_training(run, str(real), tmp_path / "curve", **kw)
    assert len(rows) == 3 and sum("cached" in s for s in said) == 2
    assert (tmp_path / "curve" / "over_training.png").is_file()
    argv = ["compare", str(real), "--over-training", str(run), "-o", str(tmp_path / "curve"), "-n", str(N),
            "--weights", inception_weights, "--device", "cpu"]
    assert main(argv) == 0 and "wrote FID of 3 snapshots" in capsys.readouterr().err
    assert main(argv + ["-n", "13"]) == 2  # other settings: refused, nothing lost
    assert "other settings" in capsys.readouterr().err


def test_compare_command_and_its_errors(sets, tmp_path, inception_weights, capsys):
    real, other = sets
    common = ["--weights", inception_weights, "--device", "cpu", "-n", str(N), "--bootstrap", "3"]
    assert main(["compare", str(real), str(other), "-o", str(tmp_path / "c")] + common) == 0
    assert "FID" in capsys.readouterr().out
    assert main(["compare", str(real), "-o", str(tmp_path / "d")] + common) == 2
    assert "at least one CANDIDATE" in capsys.readouterr().err
    assert main(["compare", str(real), str(tmp_path / "missing.pkl"), "-o", str(tmp_path / "e")] + common) == 2
    assert main(["compare", str(real), str(other), "-o", str(tmp_path / "c")] + common) == 2  # not empty
    assert "--overwrite" in capsys.readouterr().err


def test_over_training_reads_a_tensorflow_stylegan_run(sets, tmp_path, inception_weights):
    """A StyleGAN (v1) run folder of NVlabs' TensorFlow snapshots, one caught while growing."""
    real, _ = sets
    nvlabs = PKL.parent
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(nvlabs / "sg1_64_lod.pkl", run / "network-snapshot-000140.pkl")
    shutil.copy(nvlabs / "sg1_64.pkl", run / "network-snapshot-000280.pkl")
    rows = over_training(run, str(real), tmp_path / "curve", n=N, weights=inception_weights, device="cpu",
                         say=lambda m: None)
    assert [r["kimg_or_step"] for r in rows] == [140.0, 280.0] and rows[0]["fid"] != rows[1]["fid"]
