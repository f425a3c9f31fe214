"""HYPE∞ and HYPE-time as Zhou et al. (NeurIPS 2019) define them: per-evaluator scores
averaged over evaluators, per model, with a bootstrap over evaluators and images."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ganeval.analysis import hype
from ganeval.analysis.responses import load_responses


def _rows(participant, image, truth, answer, label, **extra):
    return {"participant": participant, "image_id": image, "truth": truth, "answer": answer,
            "model_label": label if truth == "fake" else "real", **extra}


def _frame(rows) -> pd.DataFrame:
    return load_responses(pd.DataFrame(rows))


def test_hype_inf_is_the_mean_of_evaluator_error_rates():
    # evaluator A: 4 trials, 1 wrong (0.25); evaluator B: 16 trials, 8 wrong (0.5)
    rows = [_rows("A", f"i{i}", "fake" if i % 2 else "real", "real" if i == 1 else ("fake" if i % 2 else "real"),
                  "m") for i in range(4)]
    flip = {"real": "fake", "fake": "real"}
    truths = ["fake" if i % 2 else "real" for i in range(16)]
    rows += [_rows("B", f"i{i}", t, flip[t] if i < 8 else t, "m") for i, t in enumerate(truths)]
    df = _frame(rows)
    table = hype.hype_table(df, resamples=0).set_index(["scope", "metric"])
    assert table.loc[("all", "hype_inf"), "value"] == pytest.approx((0.25 + 0.5) / 2)   # pooled would be 9/20
    assert (df["correct"] == 0).mean() == pytest.approx(9 / 20)


def test_per_model_hype_inf_shares_the_reals():
    rows = []
    for p in ("A", "B"):
        rows += [_rows(p, f"r{i}", "real", "fake" if i < 1 else "real", "") for i in range(4)]     # real error 1/4
        rows += [_rows(p, f"a{i}", "fake", "real" if i < 3 else "fake", "gan-a") for i in range(4)]  # 3/4 fooled
        rows += [_rows(p, f"b{i}", "fake", "real" if i < 1 else "fake", "gan-b") for i in range(4)]  # 1/4 fooled
    table = hype.hype_table(_frame(rows), resamples=200).set_index(["scope", "metric"])
    assert table.loc[("gan-a", "hype_inf"), "value"] == pytest.approx(0.5 * (0.75 + 0.25))
    assert table.loc[("gan-b", "hype_inf"), "value"] == pytest.approx(0.5 * (0.25 + 0.25))
    assert table.loc[("gan-a", "fake_error"), "value"] == pytest.approx(0.75)
    assert table.loc[("gan-a", "hype_inf"), "judgments"] == 16 and table.loc[("gan-a", "hype_inf"), "evaluators"] == 2


def test_two_way_bootstrap_equals_resampling_evaluators_and_images_by_hand():
    rng = np.random.default_rng(3)
    people, images = [f"p{i}" for i in range(6)], [f"img{i}" for i in range(10)]
    truth = {im: ("fake" if i % 2 else "real") for i, im in enumerate(images)}
    rows = [_rows(p, im, truth[im], rng.choice(["real", "fake"]), "m") for p in people for im in images
            if rng.random() < 0.8]
    df = _frame(rows)
    resamples = 40
    got = hype.hype_table(df, resamples=resamples, seed=7).set_index(["scope", "metric"])

    # the same draws, applied one resample at a time to the rows themselves
    draw = np.random.default_rng(7)
    order_p = list(dict.fromkeys(df["participant"]))
    order_i = list(dict.fromkeys(df["image_id"]))
    ew = hype.bootstrap_weights(len(order_p), resamples, draw)
    iw = hype.bootstrap_weights(len(order_i), resamples, draw)
    naive = []
    for b in range(resamples):
        w_img = dict(zip(order_i, iw[b]))
        per = []
        for p, wp in zip(order_p, ew[b]):
            sub = df[df["participant"] == p]
            w = sub["image_id"].map(w_img).to_numpy()
            if wp and w.sum():
                per += [((sub["correct"] == 0).to_numpy() * w).sum() / w.sum()] * int(wp)
        naive.append(np.mean(per))
    want = np.percentile(naive, [2.5, 97.5])
    assert got.loc[("all", "hype_inf"), ["ci_low", "ci_high"]].to_numpy(float) == pytest.approx(want, abs=1e-12)


def test_hype_time_is_the_mean_modal_exposure():
    rows = []
    # A's staircase settles at 300 ms, B's at 500 ms (on gan-a's fakes: 300 and 600)
    for p, settle, fake_settle in (("A", 300, 300), ("B", 500, 600)):
        for i, ms in enumerate([700, 500, settle, settle, settle, 400]):
            rows.append(_rows(p, f"r{i}", "real", "real", "", protocol="hype-time", exposure_ms=ms,
                              exposure_shown_ms=ms + 16))
        for i, ms in enumerate([fake_settle, fake_settle, 900]):
            rows.append(_rows(p, f"a{i}", "fake", "fake", "gan-a", protocol="hype-time", exposure_ms=ms,
                              exposure_shown_ms=ms + 16))
    table = hype.hype_time_table(_frame(rows), resamples=500).set_index("scope")
    assert table.loc["gan-a", "value"] == pytest.approx((300 + 600) / 2)
    assert table.loc["all", "value"] == pytest.approx((300 + 500) / 2)
    assert table.loc["all", "median_shown_minus_requested_ms"] == pytest.approx(16)
    assert 300 <= table.loc["gan-a", "ci_low"] <= table.loc["gan-a", "ci_high"] <= 600
    assert hype.staircase_threshold(pd.Series([100, 200, 100, 200, 900])) == 150  # tied modes: their median


def test_hype_time_absent_for_hype_infinity_studies():
    df = _frame([_rows("A", "x", "real", "real", "")])
    assert hype.hype_time_table(df) is None
    assert df.loc[0, "protocol"] == "hype-infinity"


def test_the_report_carries_hype_time_per_model():
    from ganeval.analysis.report import study_results

    rng = np.random.default_rng(0)
    rows = []
    for p in range(4):
        for i in range(12):
            truth = "fake" if i % 2 else "real"
            rows.append(_rows(f"p{p}", f"img{i}", truth, rng.choice(["real", "fake"]), "gan-a",
                              protocol="hype-time", exposure_ms=int(rng.choice([200, 300, 300, 400]))))
    res = study_results(_frame(rows), seed=0, resamples=200)
    table = res["hype_time"].set_index("scope")
    assert set(table.index) == {"all", "gan-a"} and table.loc["gan-a", "evaluators"] == 4
    assert 200 <= table.loc["gan-a", "value"] <= 400
