"""`ganeval report`: tables, figures, an executed notebook and HTML; sections follow the inputs;
bad input is one clear line and a non-zero exit. One test starts a kernel (seconds)."""
from __future__ import annotations

import json
import os

import nbformat
import numpy as np
import pandas as pd
import pytest

from ganeval import atomic
from ganeval.cli.main import main
from ganeval.synth import make_faces


@pytest.fixture
def study(tmp_path):
    """A real study folder (study_app) answered by simulated participants through StudyStore."""
    from ganeval.study_app.simulate import simulate_participants
    from ganeval.study_app.build import build_study
    from ganeval.study_app.store import StudyStore

    atomic.save_npz(tmp_path / "real.npz", images=make_faces(16, 32, seed=0))
    atomic.save_npz(tmp_path / "fake.npz", images=make_faces(16, 32, seed=9))
    build_study(tmp_path / "study", str(tmp_path / "real.npz"), [str(tmp_path / "fake.npz")], labels=["dcgan"],
                trials=10, attention=1, seed=0)

    def answer(n: int):
        store = StudyStore.open(tmp_path / "study")
        try:
            simulate_participants(store, n, seed=0)
        finally:
            store.dispose()
        return tmp_path / "study"
    return answer


def nearest_dir(path):
    rng = np.random.default_rng(0)
    rows = [(f"q{q}", r, f"t{rng.integers(100)}", f"{0.9 - 0.1 * r + rng.normal(0, 0.02):.6f}")
            for q in range(20) for r in range(1, 5)]
    path.mkdir()
    pd.DataFrame(rows, columns=["query", "rank", "train", "ssim"]).to_csv(path / "neighbours.csv", index=False)
    (path / "summary.json").write_text(json.dumps({"copies": {"copy_threshold": 0.8, "copies": 3, "copy_share": 0.15}}))
    return path


def run_dir(path, fid: bool):
    path.mkdir()
    steps = np.arange(0, 100, 10)
    table = pd.DataFrame({"step": steps, "loss_d": 1 / (1 + steps), "loss_g": 2 / (1 + steps)})
    if fid:
        table["fid"] = np.where(steps % 20 == 0, 300 - steps, np.nan)
    table.to_csv(path / "metrics.csv", index=False)
    return path


@pytest.mark.slow
def test_report_executes_into_notebook_and_html_with_figures(tmp_path, study, capsys):
    fid_file = tmp_path / "fid.json"
    fid_file.write_text(json.dumps({"faces_b": {"fid": 12.5, "kid_mean": 0.01, "features": "inception"},
                                    "blur": {"fid": 30.0, "kid_mean": 0.03, "features": "inception"}}))
    out = tmp_path / "report"
    code = main(["report", "--study", str(study(4)), "--nearest", str(nearest_dir(tmp_path / "nn")),
                 "--fid", str(fid_file), "--runs", str(run_dir(tmp_path / "run", fid=True)),
                 "-o", str(out), "--bootstrap", "500"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert str((out / "report.html").resolve()) in captured.out
    nb = nbformat.read(out / "report.ipynb", as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code_cells)
    outputs = [o for c in code_cells for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    n_png = sum("image/png" in o.get("data", {}) for o in outputs)
    assert n_png >= 10  # confusion, pairwise, accuracy, HYPE, gallery, reasons, times, 2 nearest, FID, training
    text = "\n".join(c.source for c in nb.cells)
    assert "Simulated participants" in text and "## FID" in text and "## Training" in text
    html = (out / "report.html").read_text()
    # every figure is embedded in the one HTML file (nbconvert puts alt/class before src)
    assert html.count('src="data:image/png;base64,') >= n_png and html.count("<img ") >= n_png
    for name in ("confusion_matrices", "accuracy_kappa", "pairwise_kappa", "hype", "gallery", "nearest_ssim_hist",
                 "nearest_ssim_curve", "fid", "training"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
    stats = json.loads((out / "stats.json").read_text())
    assert stats["study"]["overview"]["participants_by_kind"] == {"simulated": 4}
    assert stats["study"]["fleiss"]["raters"] == 4 and stats["study"]["fleiss"]["resamples"] == 500
    participants = pd.read_csv(out / "tables" / "participants.csv")
    assert (participants["kind"] == "simulated").all() and (participants["n"] == 10).all()


def test_no_execute_writes_tables_figures_and_only_given_sections(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = [{"participant": f"p{p}", "image_id": f"i{i}", "truth": "real" if i % 2 else "fake",
             "answer": "real" if rng.random() < 0.5 else "fake"} for p in range(3) for i in range(10)]
    csv = tmp_path / "responses.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    out = tmp_path / "r"
    assert main(["report", "--responses", str(csv), "--runs", str(run_dir(tmp_path / "run", fid=False)),
                 "-o", str(out), "--no-execute", "--bootstrap", "100"]) == 0
    assert not (out / "report.html").exists()
    nb = nbformat.read(out / "report.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert "## The human study" in text and "## Training" in text
    assert "## FID" not in text and "NEAREST" not in text and "Simulated" not in text
    assert "gallery" not in text  # a CSV has no images folder
    assert nb.metadata.kernelspec.name == "python3"
    assert (out / "figures" / "training.png").is_file() and (out / "tables" / "hype.csv").is_file()
    assert not (out / "figures" / "gallery.png").exists()
    hype = pd.read_csv(out / "tables" / "hype.csv")
    assert list(hype["metric"][:3]) == ["hype_inf", "fake_error", "real_error"]


def test_training_curves_use_fid_when_logged(tmp_path):
    from ganeval.analysis import inputs, plots

    with_fid = plots.training_curves(inputs.load_runs([run_dir(tmp_path / "a", fid=True)]))
    without = plots.training_curves(inputs.load_runs([run_dir(tmp_path / "b", fid=False)]))
    assert with_fid.axes[0].get_ylabel() == "FID" and "no FID" in without.axes[0].get_title()


def test_fid_files_single_result_or_mapping(tmp_path):
    from ganeval.analysis.inputs import load_fid

    (tmp_path / "one.json").write_text(json.dumps({"fid": 4.0, "kid_mean": None, "features": "inception",
                                                   "a": {"path": "x", "n": 5}, "b": {"path": "y", "n": 6}}))
    (tmp_path / "many.json").write_text(json.dumps({"s1": {"fid": 1.0}, "s2": {"fid": 2.0}}))
    table = load_fid([tmp_path / "one.json", tmp_path / "many.json"])
    assert list(table["name"]) == ["one", "s1", "s2"] and list(table["fid"]) == [4.0, 1.0, 2.0]
    assert table.loc[0, "n_b"] == 6


def _one_line_error(capsys, code: int, expected: str) -> None:
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and expected in err, err


def test_empty_study_is_a_clear_error(tmp_path, study, capsys):
    _one_line_error(capsys, main(["report", "--study", str(study(0)), "-o", str(tmp_path / "r")]), "no judgments yet")


def test_one_participant_is_a_clear_error(tmp_path, study, capsys):
    _one_line_error(capsys, main(["report", "--study", str(study(1)), "-o", str(tmp_path / "r")]),
                    "at least 2 participants")


@pytest.mark.parametrize("args, expected", [
    ([], "nothing to report"),
    (["--responses", "missing.csv"], "no such file"),
    (["--nearest", os.path.dirname(__file__)], "not a `ganeval nearest` output folder"),  # -o out: not inside it
    (["--study", os.path.dirname(__file__)], "not a study"),
    (["--responses", "x.csv", "--fid", "missing.json"], "no such file"),
])
def test_bad_arguments_are_clear_errors(tmp_path, monkeypatch, capsys, args, expected):
    monkeypatch.chdir(tmp_path)
    _one_line_error(capsys, main(["report", *args, "-o", "out"]), expected)


def test_malformed_csv_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("who,what\n1,2\n")
    _one_line_error(capsys, main(["report", "--responses", str(bad), "-o", str(tmp_path / "r")]), "missing column(s)")
    assert not (tmp_path / "r" / "report.ipynb").exists()
