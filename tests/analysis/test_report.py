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
    # image ids are random, so which simulated participant misses the attention check varies by run
    analysed = 4 - len(stats["study"]["excluded"])
    assert analysed >= 2 and stats["study"]["fleiss"]["raters"] <= analysed
    assert stats["study"]["fleiss"]["resamples"] == 500
    participants = pd.read_csv(out / "tables" / "participants.csv")
    assert (participants["kind"] == "simulated").all() and (participants["n"] == 10).all()


@pytest.mark.slow
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


def test_a_run_with_one_logged_row_still_shows_its_point():
    """A short run (the demo with few steps) logs one row: a line through one point is invisible."""
    from ganeval.analysis import plots

    runs = pd.DataFrame({"run": ["r"], "step": [20], "loss_d": [1.2], "loss_g": [0.7]})
    lines = plots.training_curves(runs).axes[0].get_lines()
    assert len(lines) == 2 and all(line.get_marker() == "o" for line in lines)


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


# ---------------------------------------------------------------- caveats, every metric, who is analysed

def _responses_csv(path, people: int = 4, bots: int = 0, failed_attention: tuple[str, ...] = ()):
    rng = np.random.default_rng(1)
    rows = []
    for kind, names in (("human", [f"p{i}" for i in range(people)]), ("simulated", [f"bot{i}" for i in range(bots)])):
        for p in names:
            for i in range(12):
                truth = "real" if i % 2 else "fake"
                answer = truth if rng.random() < 0.7 else ("fake" if truth == "real" else "real")
                rows.append({"participant": p, "participant_kind": kind, "image_id": f"i{i}", "truth": truth,
                             "model_label": "real" if truth == "real" else "dcgan", "phase": "main",
                             "answer": answer})
            rows.append({"participant": p, "participant_kind": kind, "image_id": "att", "truth": "fake",
                         "model_label": "attention", "phase": "attention",
                         "answer": "real" if p in failed_attention else "fake"})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_report_excludes_failed_attention_and_says_so(tmp_path, capsys):
    csv = _responses_csv(tmp_path / "r.csv", people=4, bots=2, failed_attention=("p1",))
    out = tmp_path / "report"
    assert main(["report", "--responses", str(csv), "-o", str(out), "--no-execute", "--bootstrap", "50"]) == 0
    err = capsys.readouterr().err
    assert "3 human participant(s) analysed; 3 excluded (2 simulated (not mixed with human participants), " \
           "1 missed an attention check)" in err
    stats = json.loads((out / "stats.json").read_text())
    assert stats["study"]["screening"]["participants_analysed"] == 3
    assert {r["participant"]: r["reason"] for r in stats["study"]["excluded"]} == {
        "bot0": "simulated (not mixed with human participants)", "bot1": "simulated (not mixed with human participants)",
        "p1": "missed an attention check"}
    participants = pd.read_csv(out / "tables" / "participants.csv")
    assert sorted(participants["participant"]) == ["p0", "p2", "p3"] and (participants["kind"] == "human").all()
    assert len(pd.read_csv(out / "tables" / "excluded.csv")) == 3
    assert any("fewer than the ~30" in c for c in stats["caveats"])
    mixed = pd.read_csv(out / "tables" / "mixed_model.csv")
    assert list(mixed["model_label"]) == ["real", "dcgan"] and mixed["p_judged_real"].between(0, 1).all()
    nb = nbformat.read(out / "report.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert "Who is analysed:** 3 human participant(s)" in text and "INCLUDE_ALL = False" in text
    assert "mixed.judged_real_model(main)" in text and "Caveats" in text

    everyone = tmp_path / "everyone"
    assert main(["report", "--responses", str(csv), "-o", str(everyone), "--no-execute", "--bootstrap", "50",
                 "--include-all"]) == 0
    stats = json.loads((everyone / "stats.json").read_text())
    assert stats["study"]["screening"]["participants_analysed"] == 4  # p1 back in; the bots still apart
    assert any("--include-all: 1 participant(s)" in c for c in stats["caveats"])


@pytest.mark.slow
def test_only_simulated_participants_are_analysed_with_a_caveat(tmp_path, capsys):
    csv = _responses_csv(tmp_path / "r.csv", people=0, bots=3)
    out = tmp_path / "report"
    assert main(["report", "--responses", str(csv), "-o", str(out), "--no-execute", "--bootstrap", "0"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["study"]["screening"]["analysed_kind"] == "simulated"
    assert any("are simulated" in c for c in stats["caveats"])
    assert "caveat: the 3 participants analysed are simulated" in capsys.readouterr().err


def test_fid_caveats_and_every_metric_are_reported(tmp_path, capsys):
    results = {
        "dcgan": {"fid": 80.0, "kid_mean": 0.08, "kid_std": 0.01, "is_mean": 2.1, "is_std": 0.1, "precision": 0.5,
                  "recall": 0.2, "density": 0.4, "coverage": 0.3, "features": "inception", "standard_weights": False,
                  "a": {"path": "real", "n": 5000}, "b": {"path": "dcgan", "n": 500}},
        "stylegan2": {"fid": 20.0, "kid_mean": 0.02, "kid_std": 0.005, "is_mean": 2.5, "is_std": 0.2,
                      "precision": 0.7, "recall": 0.5, "density": 0.9, "coverage": 0.7, "features": "inception",
                      "standard_weights": True, "a": {"path": "real", "n": 5000}, "b": {"path": "sg2", "n": 5000}},
    }
    fid_file = tmp_path / "fid.json"
    fid_file.write_text(json.dumps(results))
    out = tmp_path / "report"
    assert main(["report", "--fid", str(fid_file), "-o", str(out), "--no-execute", "--json"]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert "caveat: dcgan: computed with non-standard inception weights" in captured.err
    caveats = printed["caveats"]
    assert any("non-standard inception weights" in c for c in caveats)
    assert any("dcgan: 500 samples (B) < 2048 feature dimensions" in c for c in caveats)
    assert not any(c.startswith("stylegan2") for c in caveats)
    table = pd.read_csv(out / "tables" / "fid.csv")
    for key in ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall", "density", "coverage"):
        assert list(table[key]) == [results["dcgan"][key], results["stylegan2"][key]], key
    assert list(table["standard_weights"]) == [False, True]
    for metric in ("fid", "kid_mean", "is_mean", "precision", "recall", "density", "coverage"):
        assert (out / "figures" / f"{metric}.png").stat().st_size > 1000, metric
    nb = nbformat.read(out / "report.ipynb", as_version=4)
    assert "non-standard inception weights" in nb.cells[0].source


def test_a_result_without_fid_but_other_metrics_is_read(tmp_path):
    from ganeval.analysis.inputs import fid_caveats, load_fid, present_metrics

    (tmp_path / "p.json").write_text(json.dumps({"precision": 0.6, "recall": 0.4, "features": "illust2vec",
                                                 "a": {"n": 100}, "b": {"n": 8000}}))
    table = load_fid([tmp_path / "p.json"])
    assert present_metrics(table) == ["precision", "recall"] and np.isnan(table.loc[0, "fid"])
    assert table.loc[0, "standard_weights"] is None
    assert fid_caveats(table) == ["p: 100 samples (A) < 4096 feature dimensions; FID is biased upwards and "
                                  "comparable only at equal sample counts"]


@pytest.mark.slow
def test_report_says_which_per_image_score_agrees_with_people(tmp_path, study, capsys):
    """`report --per-image LABEL=CSV`: the study's fool rate of each fake image against its
    per-image scores, joined by the image's key in its source file; ρ equals scipy's."""
    from scipy.stats import spearmanr

    from ganeval.study_app.store import export_study, export_study_images

    folder = study(6)
    judged = export_study(folder)
    fakes = judged[(judged["truth"] == "fake") & (judged["phase"] == "main")]
    fool = fakes.assign(r=(fakes["answer"] == "real").astype(float)).groupby("image_id")["r"].mean()
    images = export_study_images(folder).set_index("image_id")
    keys = images.loc[fool.index, "source_key"]
    rng = np.random.default_rng(1)
    scores = pd.DataFrame({"name": keys.to_numpy(), "index": range(len(keys)),
                           "realism": fool.to_numpy() * 2 + rng.normal(0, 0.3, len(keys)),
                           "rarity": rng.random(len(keys)), "nearest_real": 0,
                           "nearest_real_distance": rng.random(len(keys)), "gaussian_loglik": -fool.to_numpy()})
    scores.to_csv(tmp_path / "scores.csv", index=False)
    out = tmp_path / "report"
    assert main(["report", "--study", str(folder), "--per-image", f"dcgan={tmp_path / 'scores.csv'}",
                 "-o", str(out), "--bootstrap", "200"]) == 0
    html = (out / "report.html").read_text()
    assert "Which per-image metric agrees with people" in html and "agrees best with people" in html
    table = pd.read_csv(out / "tables" / "per_image_vs_humans.csv")
    overall = table[table["scope"] == "all"].set_index("score")
    joined = pd.read_csv(out / "tables" / "per_image_scores_judged.csv", dtype={"source_key": str})
    per_image = pd.read_csv(out / "tables" / "images.csv").set_index("image_id")  # the analysed judgments
    assert np.allclose(joined["fool_rate"], per_image.loc[joined["image_id"], "fool_rate"])
    assert set(joined["source_key"]) <= set(keys) and len(joined) >= 5
    assert overall.loc["realism", "spearman_rho"] == pytest.approx(
        spearmanr(joined["realism"], joined["fool_rate"]).statistic)
    assert overall.loc["realism", "spearman_rho"] > 0.5  # built to agree with people
    assert overall.loc["realism", "ci_low"] <= overall.loc["realism", "spearman_rho"] <= overall.loc["realism", "ci_high"]
    assert (out / "figures" / "per_image_vs_humans.png").stat().st_size > 5000
    stats = json.loads((out / "stats.json").read_text())
    assert stats["per_image_vs_humans"]["best"].split(" agrees best")[0] in ("realism", "gaussian_loglik")
    nb = nbformat.read(out / "report.ipynb", as_version=4)
    assert any("human_metrics.agreement_table" in c.source for c in nb.cells)
    capsys.readouterr()
    assert main(["report", "--responses", str(out / "tables" / "study_responses.csv"), "--per-image",
                 f"dcgan={tmp_path / 'scores.csv'}", "-o", str(tmp_path / "r2")]) == 2
    assert "--per-image needs --study" in capsys.readouterr().err
    assert main(["report", "--study", str(folder), "--per-image", f"dcgan={tmp_path / 'nope.csv'}",
                 "-o", str(tmp_path / "r4")]) == 2
    assert "no such file" in capsys.readouterr().err and not (tmp_path / "r4").exists()  # refused before writing
    assert not (tmp_path / "r2").exists()
    with pytest.raises(SystemExit) as stop:
        main(["report", "--study", str(folder), "--per-image", "dcgan", "-o", str(tmp_path / "r3")])
    assert stop.value.code == 2 and "expected LABEL=PATH" in capsys.readouterr().err
