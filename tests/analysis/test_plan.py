"""``ganeval study plan``: simulated precision and power agree with closed forms where they
exist, and a pilot's fitted parameters drive the simulation."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from ganeval.analysis import plan
from ganeval.analysis.responses import load_responses
from ganeval.cli.main import main


def test_without_person_or_image_variance_the_half_width_is_binomial():
    model = plan.default_model(fool_rate=0.3, real_error=0.2, sd_person=0.0, sd_image=0.0, images_per_label=1000)
    result = plan.plan_table(model, "fool-rate", 0.05, participants=(40,), trials=(50,), studies=2000, seed=1)
    row = result.table.iloc[0]
    per = 50 // 2  # trials split between reals and the one model
    want = 1.96 * np.sqrt(0.3 * 0.7 / (40 * per))
    assert row["estimate"] == pytest.approx(0.3, abs=0.005)
    assert row["half_width"] == pytest.approx(want, rel=0.08)


def test_beta_for_rate_is_the_population_average():
    beta = plan.beta_for_rate(0.3, 0.6, 1.0)
    draws = expit(beta + np.random.default_rng(0).normal(0, np.hypot(0.6, 1.0), 400_000))
    assert draws.mean() == pytest.approx(0.3, abs=0.002)


def test_power_is_the_test_size_without_a_difference_and_grows_with_it():
    model = plan.default_model(models=2, difference=0.0)
    none = plan.plan_table(model, participants=(30,), trials=(60,), difference=1e-9, studies=600, seed=2)
    assert none.table.loc[0, "power"] == pytest.approx(0.05, abs=0.035)
    big = plan.plan_table(plan.default_model(models=2, difference=0.25), participants=(30,), trials=(60,),
                          difference=0.25, studies=300, seed=2)
    assert big.table.loc[0, "power"] > 0.9


def test_more_participants_never_need_more_precision_budget():
    result = plan.plan_table(plan.default_model(), "hype-inf", 0.04, participants=(10, 40, 160), trials=(40,),
                             studies=300, seed=3)
    widths = result.table["half_width"].to_numpy()
    assert widths[0] > widths[1] > widths[2]
    kappa = plan.plan_table(plan.default_model(fool_rate=0.5, real_error=0.5), "kappa", 0.1,
                            participants=(30,), trials=(40,), studies=200, seed=3)
    assert abs(kappa.table.loc[0, "estimate"]) < 0.03  # people who cannot tell: kappa 0


def test_pilot_parameters_are_fitted_and_used(tmp_path):
    rng = np.random.default_rng(4)
    rows = []
    for p in range(12):
        u = rng.normal(0, 0.5)
        for i in range(30):
            truth = "fake" if i % 2 else "real"
            beta = 1.4 if truth == "real" else -0.8
            answer = "real" if rng.random() < expit(beta + u) else "fake"
            rows.append({"participant": f"p{p}", "image_id": f"{truth}{i % 10}", "truth": truth,
                         "answer": answer, "model_label": "gan" if truth == "fake" else "real"})
    csv = tmp_path / "pilot.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    model = plan.model_from_pilot(load_responses(csv))
    assert model.beta_real > 0 > model.beta_models[0] and model.source.startswith("pilot (12 participants")
    assert model.images_per_label == 5
    assert main(["study", "plan", "--pilot", str(csv), "--participants", "10,20", "--trials", "20",
                 "--simulations", "50", "--json"]) == 0


def test_cli_prints_the_table_and_refuses_bad_numbers(capsys):
    assert main(["study", "plan", "--participants", "10,30", "--trials", "40", "--simulations", "100"]) == 0
    out = capsys.readouterr().out
    assert "participants  trials" in out and "model: defaults" in out
    assert main(["study", "plan", "--json", "--participants", "200", "--trials", "200", "--simulations", "50"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["recommended"]["participants"] == 200 and res["model"]["source"] == "defaults"
    with pytest.raises(SystemExit) as err:
        main(["study", "plan", "--half-width", "0"])
    assert err.value.code == 2
    assert main(["study", "plan", "--pilot", "/nonexistent.csv"]) == 2
