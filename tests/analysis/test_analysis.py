"""Study statistics: parity with scikit-learn / statsmodels / scipy on hand-built tables, the
known cases (perfect agreement, a constant rater, chance), bootstrap determinism, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

from ganeval.analysis import agreement, hype, per_image
from ganeval.analysis.responses import COLUMNS, TIMING_COLUMNS, load_responses, main_trials, study_overview
from ganeval.errors import BadInput


def judgments(answers: np.ndarray, truth: np.ndarray, labels: list[str] | None = None,
              kind: str = "human") -> pd.DataFrame:
    """A responses table in the export's format: ``answers`` participants × images of 0/1
    (real/fake; -1 = not judged), ``truth`` per image."""
    names = ("real", "fake")
    rows = []
    for p, row in enumerate(answers):
        for i, a in enumerate(row):
            if a < 0:
                continue
            t = names[truth[i]]
            rows.append({"participant": f"tok-{p}", "participant_kind": kind, "image_id": f"img{i:03d}", "truth": t,
                         "model_label": "real" if t == "real" else (labels[i] if labels else "dcgan"), "phase": "main",
                         "trial_number": i + 1, "answer": names[a], "correct": int(a == truth[i]), "confidence": 3,
                         "reasons": "deformation;artefacts" if a == 1 else "", "reason_other": "",
                         "response_ms": 1000 + 37 * i, "shown_at": "", "answered_at": ""})
    return load_responses(pd.DataFrame(rows, columns=list(COLUMNS)))


@pytest.fixture
def original_layout() -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """The original study: 5 people × 24 images (12 real, 12 fake), answers better than chance."""
    rng = np.random.default_rng(7)
    truth = np.array([0, 1] * 12)
    right = rng.random((5, 24)) < np.array([0.9, 0.75, 0.6, 0.7, 0.55])[:, None]
    answers = np.where(right, truth, 1 - truth)
    return answers, truth, judgments(answers, truth)


# ---------------------------------------------------------------- parity

def test_participant_statistics_match_references(original_layout):
    answers, truth, df = original_layout
    table = agreement.participant_table(df)
    assert len(table) == 5 and list(table["label"]) == [f"P{i}" for i in range(1, 6)]
    for p, row in table.iterrows():
        a = answers[p]
        k, n = int((a == truth).sum()), len(a)
        assert row["correct"] == k and row["n"] == n
        low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert row["accuracy_low"] == pytest.approx(low, abs=1e-12) and row["accuracy_high"] == pytest.approx(high, abs=1e-12)
        assert row["binom_p"] == pytest.approx(binomtest(k, n, 0.5).pvalue, abs=1e-12)
        assert row["kappa"] == pytest.approx(cohen_kappa_score(truth, a), abs=1e-12)
        confusion = np.array([[np.sum((truth == t) & (a == j)) for j in (0, 1)] for t in (0, 1)])
        assert np.array_equal(agreement.confusion(df[df["participant"] == f"tok-{p}"]), confusion)
        ref = cohens_kappa(confusion, return_results=True)
        assert row["kappa"] == pytest.approx(ref.kappa, abs=1e-12)
        assert row["kappa_se"] == pytest.approx(ref.std_kappa, abs=1e-12)
        # statsmodels' interval, clipped to kappa's range [-1, 1]
        assert row["kappa_low"] == pytest.approx(max(ref.kappa_low, -1.0), abs=1e-12)
        assert row["kappa_high"] == pytest.approx(min(ref.kappa_upp, 1.0), abs=1e-12)


def test_fleiss_and_pairwise_match_references(original_layout):
    answers, truth, df = original_layout
    res = agreement.fleiss(df, resamples=500, seed=0)
    ref_table, _ = aggregate_raters(answers.T)
    assert res.kappa == pytest.approx(fleiss_kappa(ref_table, method="fleiss"), abs=1e-12)
    assert (res.raters, res.images, res.ratings_per_image) == (5, 24, 5)
    assert res.ci_low < res.kappa < res.ci_high
    kappa, shared = agreement.pairwise_kappa(df)
    for i in range(5):
        for j in range(5):
            want = 1.0 if i == j else cohen_kappa_score(answers[i], answers[j])
            assert kappa.iloc[i, j] == pytest.approx(want, abs=1e-12)
            assert shared.iloc[i, j] == 24


def test_vectorised_fleiss_bootstrap_equals_statsmodels_per_resample(original_layout):
    answers, _, df = original_layout
    table, m, _ = agreement.fleiss_table(df)
    boots = agreement.bootstrap_fleiss(table, resamples=40, seed=3, chunk=16)
    rng = np.random.default_rng(3)
    want = []
    for size in (16, 16, 8):  # the same draws, chunk by chunk
        for idx in rng.integers(0, len(table), size=(size, len(table))):
            want.append(fleiss_kappa(table[idx], method="fleiss"))
    assert np.allclose(boots, want, atol=1e-12)


def test_partial_overlap_uses_images_every_rater_judged():
    rng = np.random.default_rng(0)
    truth = np.array([0, 1] * 10)
    answers = rng.integers(0, 2, size=(3, 20))
    answers[2, 15:] = -1  # the third person skipped the last five images
    res = agreement.fleiss(judgments(answers, truth), resamples=0)
    ref, _ = aggregate_raters(answers[:, :15].T)
    assert res.kappa == pytest.approx(fleiss_kappa(ref), abs=1e-12)
    assert res.images == 15 and res.images_total == 20 and "all 3" in res.subset
    kappa, shared = agreement.pairwise_kappa(judgments(answers, truth))
    assert shared.iloc[0, 2] == 15 and shared.iloc[0, 1] == 20
    assert kappa.iloc[0, 2] == pytest.approx(cohen_kappa_score(answers[0, :15], answers[2, :15]), abs=1e-12)


def test_no_common_image_falls_back_to_equal_rating_counts():
    truth = np.array([0, 1, 0, 1, 0, 1])
    answers = np.array([[0, 1, 0, -1, -1, 1], [0, 0, -1, 1, 0, -1], [-1, -1, 1, 1, 0, 1]])
    res = agreement.fleiss(judgments(answers, truth), resamples=0)
    assert res.ratings_per_image == 2 and res.images == 6 and "exactly 2" in res.subset
    codes = np.array([[a for a in col if a >= 0] for col in answers.T])
    assert res.kappa == pytest.approx(fleiss_kappa(aggregate_raters(codes)[0]), abs=1e-12)


# ---------------------------------------------------------------- known cases

def test_perfect_agreement_gives_kappa_one():
    truth = np.array([0, 1] * 6)
    df = judgments(np.tile(truth, (4, 1)), truth)
    table = agreement.participant_table(df)
    assert np.allclose(table["kappa"], 1.0) and np.allclose(table["accuracy"], 1.0)
    assert agreement.fleiss(df, resamples=200).kappa == pytest.approx(1.0)
    kappa, _ = agreement.pairwise_kappa(df)
    assert np.allclose(kappa.to_numpy(), 1.0)
    scores = hype.hype_table(df, resamples=200)
    assert np.allclose(scores["value"], 0.0)


def test_constant_rater_is_handled_with_a_note():
    truth = np.array([0, 1] * 6)
    answers = np.array([truth, np.zeros(12, int), np.zeros(12, int)])  # two people always say "real"
    df = judgments(answers, truth)
    table = agreement.participant_table(df)
    assert table.loc[1, "kappa"] == pytest.approx(0.0) and "constant rater" in table.loc[1, "note"]
    assert table.loc[1, "accuracy"] == pytest.approx(0.5)
    kappa, _ = agreement.pairwise_kappa(df)
    assert kappa.iloc[0, 1] == pytest.approx(0.0)
    assert np.isnan(kappa.iloc[1, 2])  # both constant: chance agreement is 1, kappa undefined
    assert np.isfinite(agreement.fleiss(df, resamples=100).kappa)
    # only one class of truth and answers: undefined, not an exception
    k = agreement.kappa_vs_truth(np.array([[6, 0], [0, 0]]))
    assert np.isnan(k[0]) and "undefined" in k[4]


def test_random_answers_give_kappa_near_zero():
    rng = np.random.default_rng(1)
    truth = np.tile([0, 1], 150)
    df = judgments(rng.integers(0, 2, size=(20, 300)), truth)
    res = agreement.fleiss(df, resamples=300, seed=0)
    assert abs(res.kappa) < 0.03 and res.ci_low < 0 < res.ci_high
    table = agreement.participant_table(df)
    assert abs(table["kappa"].mean()) < 0.03
    assert hype.hype_table(df, resamples=300)["value"].iloc[0] == pytest.approx(0.5, abs=0.02)


# ---------------------------------------------------------------- HYPE∞ and bootstrap

def test_hype_values_and_labels(original_layout):
    answers, truth, _ = original_layout
    labels = ["gan-a" if i % 4 == 1 else "gan-b" for i in range(24)]
    df = judgments(answers, truth, labels)
    scores = hype.hype_table(df, resamples=1000, seed=0).set_index(["scope", "metric"])
    wrong = answers != truth
    assert scores.loc[("all", "hype_inf"), "value"] == pytest.approx(wrong.mean())
    assert scores.loc[("all", "fake_error"), "value"] == pytest.approx(wrong[:, truth == 1].mean())
    assert scores.loc[("all", "real_error"), "value"] == pytest.approx(wrong[:, truth == 0].mean())
    a_cols = [i for i in range(24) if labels[i] == "gan-a" and truth[i] == 1]
    assert scores.loc[("gan-a", "fake_error"), "value"] == pytest.approx(wrong[:, a_cols].mean())
    assert scores.loc[("gan-a", "fake_error"), "judgments"] == 5 * len(a_cols)
    for _, row in scores.iterrows():
        assert row["ci_low"] <= row["value"] <= row["ci_high"]


def test_hype_bootstrap_is_resampling_evaluators(original_layout):
    _, _, df = original_layout
    weights = hype.bootstrap_weights(5, 50, seed=2)
    assert weights.shape == (50, 5) and np.all(weights.sum(1) == 5)
    rng = np.random.default_rng(2)
    people = [f"tok-{i}" for i in range(5)]
    draws = rng.integers(0, 5, size=(50, 5))
    naive = [pd.concat([df[df["participant"] == people[i]] for i in row])["correct"].rsub(1).mean() for row in draws]
    scores = hype.hype_table(df, resamples=50, seed=2, unit="evaluators")
    want = np.percentile(naive, [2.5, 97.5])
    assert scores.loc[0, ["ci_low", "ci_high"]].to_numpy(dtype=float) == pytest.approx(want, abs=1e-12)


def test_bootstrap_is_deterministic_with_a_seed(original_layout):
    _, _, df = original_layout
    a = hype.hype_table(df, resamples=10_000, seed=5)
    b = hype.hype_table(df, resamples=10_000, seed=5)
    c = hype.hype_table(df, resamples=10_000, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["ci_low"].to_numpy(), c["ci_low"].to_numpy()) or \
        not np.allclose(a["ci_high"].to_numpy(), c["ci_high"].to_numpy())
    f1, f2 = agreement.fleiss(df, 2000, seed=1), agreement.fleiss(df, 2000, seed=1)
    assert (f1.ci_low, f1.ci_high) == (f2.ci_low, f2.ci_high)


# ---------------------------------------------------------------- per image

def test_per_image_fool_rates_and_rankings(original_layout):
    answers, truth, df = original_layout
    images = per_image.image_table(df)
    assert len(images) == 24
    wrong = (answers != truth).mean(0)
    for _, row in images.iterrows():
        assert row["fool_rate"] == pytest.approx(wrong[int(row["image_id"][3:])])
    top = per_image.most_convincing_fakes(images, 3)
    assert (top["truth"] == "fake").all() and top["fool_rate"].is_monotonic_decreasing
    assert top["fool_rate"].iloc[0] == pytest.approx(wrong[truth == 1].max())
    reals = per_image.most_fake_looking_reals(images, 3)
    assert (reals["truth"] == "real").all() and reals["fool_rate"].iloc[0] == pytest.approx(wrong[truth == 0].max())
    reasons = per_image.reason_counts(df).set_index(["truth", "reason"])
    n_fake_answers_on_fakes = int((answers[:, truth == 1] == 1).sum())
    assert reasons.loc[("fake", "deformation"), "count"] == n_fake_answers_on_fakes
    assert reasons.loc[("fake", "artefacts"), "share"] == pytest.approx(1.0)
    rt = per_image.response_times(df)
    assert rt.loc[0, "n"] == 120 and rt.loc[0, "q50_ms"] == pytest.approx(np.median(df["response_ms"]))


def test_statistics_use_the_browsers_response_time_where_measured(original_layout):
    from ganeval.analysis.per_image import response_times

    _, _, df = original_layout
    timed = df.assign(rt_client_ms=[800 if i % 2 else "" for i in range(len(df))])
    loaded = load_responses(timed)
    browser = loaded["rt_client_ms"].notna()
    assert browser.sum() == len(df) // 2
    assert (loaded.loc[browser, "rt_ms"] == 800).all()
    assert (loaded.loc[~browser, "rt_ms"] == loaded.loc[~browser, "response_ms"]).all()
    rt = response_times(loaded)
    assert rt.loc[0, "q50_ms"] == pytest.approx(np.median(loaded["rt_ms"]))


# ---------------------------------------------------------------- inputs and bad input

def test_load_csv_and_overview(tmp_path, original_layout):
    _, _, df = original_layout
    extra = df.iloc[:2].assign(phase="attention", model_label="attention", truth="fake", answer="fake")
    path = tmp_path / "responses.csv"
    pd.concat([df, extra]).to_csv(path, index=False)
    loaded = load_responses(path)
    assert len(loaded) == 122 and list(loaded.columns) == list(COLUMNS) + list(TIMING_COLUMNS) + ["rt_ms"]
    assert len(main_trials(loaded)) == 120
    ov = study_overview(loaded)
    assert ov["participants"] == 5 and ov["attention_trials"] == 2 and ov["attention_correct_share"] == 1.0
    assert not ov["simulated"]


@pytest.mark.parametrize("text, message", [
    ("", "empty file"),
    ("participant,image_id,truth\nA,1,real\n", "missing column(s) answer"),
    ("participant,image_id,truth,answer\n", "no judgments"),
    ("participant,image_id,truth,answer\nA,1,real,maybe\n", "row 1: answer must be 'real' or 'fake'"),
    ('participant,image_id,truth,answer\nA,1,"real,fake\n', "not a responses CSV"),
])
def test_malformed_csv_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(BadInput, match=__import__("re").escape(message)):
        load_responses(path)


def test_no_overlap_gives_nan_with_a_reason():
    truth = np.array([0, 1] * 4)
    answers = np.full((2, 8), -1)
    answers[0, :4], answers[1, 4:] = truth[:4], truth[4:]
    res = agreement.fleiss(judgments(answers, truth), resamples=100)
    assert np.isnan(res.kappa) and np.isnan(res.ci_low) and res.images == 0 and "fewer than 2 images" in res.subset
    kappa, shared = agreement.pairwise_kappa(judgments(answers, truth))
    assert np.isnan(kappa.iloc[0, 1]) and shared.iloc[0, 1] == 0


def test_one_participant_is_an_error_for_fleiss():
    truth = np.array([0, 1] * 4)
    with pytest.raises(BadInput, match="at least 2 participants"):
        agreement.fleiss(judgments(truth[None, :], truth))


def test_only_qualification_judgments_is_an_error():
    df = judgments(np.array([[0, 1]]), np.array([0, 1])).assign(phase="qualification")
    with pytest.raises(BadInput, match="no judgments in the main phase"):
        main_trials(df)


# ---------------------------------------------------------------- intervals stay in range

def test_kappa_interval_is_clipped_to_its_range():
    """A near-perfect rater on few images: the normal interval reached 1.14 before clipping."""
    kappa, se, low, high, _ = agreement.kappa_vs_truth(np.array([[5, 0], [1, 4]]))
    assert kappa == pytest.approx(0.8) and se > 0
    assert high == 1.0 and -1.0 <= low < kappa
    truth = np.array([0, 1] * 5)
    answers = np.array([truth, np.where(np.arange(10) == 1, 0, truth)])
    table = agreement.participant_table(judgments(answers, truth))
    assert (table["kappa_high"] <= 1.0).all() and (table["kappa_low"] >= -1.0).all()
    assert (table["accuracy_high"] <= 1.0).all() and (table["accuracy_low"] >= 0.0).all()
    assert table.loc[1, "kappa_high"] == 1.0


# ---------------------------------------------------------------- who is analysed

def _with_checks(df: pd.DataFrame, person: str, qual_right: tuple[int, int] | None = None,
                 attention_right: list[bool] | None = None) -> pd.DataFrame:
    """Add qualification judgments (right answers out of 4 real, 4 fake) and attention checks."""
    rows = []
    if qual_right:
        for truth, right in zip(("real", "fake"), qual_right):
            for i in range(4):
                answer = truth if i < right else ("fake" if truth == "real" else "real")
                rows.append({"participant": person, "image_id": f"q-{truth}{i}", "truth": truth, "answer": answer,
                             "model_label": "real" if truth == "real" else "dcgan", "phase": "qualification"})
    for i, ok in enumerate(attention_right or []):
        rows.append({"participant": person, "image_id": f"att{i}", "truth": "fake", "answer": "fake" if ok else "real",
                     "model_label": "attention", "phase": "attention"})
    extra = pd.DataFrame(rows).assign(participant_kind=df.loc[df["participant"] == person, "participant_kind"].iloc[0])
    return load_responses(pd.concat([df, extra], ignore_index=True))


def test_screening_excludes_failed_qualification_and_attention_by_default(original_layout):
    from ganeval.analysis.screening import screen

    _, _, df = original_layout
    df = _with_checks(df, "tok-0", qual_right=(4, 2))            # 50% on fakes: failed
    df = _with_checks(df, "tok-1", qual_right=(3, 3), attention_right=[True, False])
    df = _with_checks(df, "tok-2", qual_right=(4, 3), attention_right=[True, True])
    s = screen(df)
    assert sorted(s.excluded["participant"]) == ["tok-0", "tok-1"]
    assert dict(zip(s.excluded["participant"], s.excluded["reason"])) == {
        "tok-0": "failed qualification", "tok-1": "missed an attention check"}
    assert sorted(s.kept["participant"].unique()) == ["tok-2", "tok-3", "tok-4"]
    summary = s.summary()
    assert summary["participants_analysed"] == 3 and summary["participants_excluded"] == 2
    assert summary["excluded_by_reason"] == {"failed qualification": 1, "missed an attention check": 1}
    assert "2 excluded (1 failed qualification, 1 missed an attention check)" in s.sentence()
    everyone = screen(df, include_all=True)
    assert everyone.kept["participant"].nunique() == 5 and everyone.excluded.empty
    assert everyone.flagged_kept == 2 and "--include-all kept 2" in everyone.sentence()


def test_everyone_excluded_is_a_clear_error(original_layout):
    from ganeval.analysis.screening import screen

    _, _, df = original_layout
    for p in range(5):
        df = _with_checks(df, f"tok-{p}", attention_right=[False])
    with pytest.raises(BadInput, match="no participant is left.*--include-all"):
        screen(df)


def test_simulated_participants_are_never_mixed_with_people(original_layout):
    from ganeval.analysis.screening import screen

    answers, truth, people = original_layout
    bots = judgments(answers[:2], truth, kind="simulated").assign(participant=lambda d: "bot-" + d["participant"])
    mixed = load_responses(pd.concat([people, bots], ignore_index=True))
    for include_all in (False, True):
        s = screen(mixed, include_all=include_all)
        assert s.analysed_kind == "human" and set(s.kept["participant_kind"]) == {"human"}
        assert list(s.excluded["reason"]) == ["simulated (not mixed with human participants)"] * 2
    only_bots = screen(bots)
    assert only_bots.analysed_kind == "simulated" and only_bots.excluded.empty


# ---------------------------------------------------------------- mixed-effects model

@pytest.mark.slow
def test_mixed_model_recovers_known_label_effects():
    """Judgments simulated from logit P(real) = beta[label] + u[person] + v[image]: the posterior
    means recover beta (the log-odds for a typical person and image) and the random-effect SDs."""
    from scipy.special import expit

    from ganeval.analysis.mixed import judged_real_model

    rng = np.random.default_rng(2)
    beta = {"real": 1.0, "dcgan": -1.0, "stylegan2": 0.0}
    images = [(f"{label}{k}", label) for label in beta for k in range(30)]
    v = rng.normal(0, 0.5, len(images))
    rows = []
    for p in range(24):
        u = rng.normal(0, 0.8)
        for i in rng.choice(len(images), 45, replace=False):
            image, label = images[i]
            answer = "real" if rng.random() < expit(beta[label] + u + v[i]) else "fake"
            rows.append({"participant": f"p{p}", "image_id": image, "model_label": label, "answer": answer,
                         "truth": "real" if label == "real" else "fake"})
    res = judged_real_model(load_responses(pd.DataFrame(rows)))
    effects = res.effects.set_index("model_label")
    assert list(effects.index) == ["real", "dcgan", "stylegan2"]
    for label, value in beta.items():
        assert effects.loc[label, "posterior_mean"] == pytest.approx(value, abs=0.3), label
        assert effects.loc[label, "posterior_sd"] > 0
        assert effects.loc[label, "p_low"] < effects.loc[label, "p_judged_real"] < effects.loc[label, "p_high"]
    assert effects.loc["dcgan", "p_judged_real"] == pytest.approx(expit(effects.loc["dcgan", "posterior_mean"]))
    sd = res.random_sd.set_index("effect")["sd"]
    assert sd["participant"] == pytest.approx(0.8, abs=0.3) and sd["image"] == pytest.approx(0.5, abs=0.25)
    assert res.participants == 24 and res.judgments == 24 * 45 and res.note == ""


def test_mixed_model_with_one_participant_still_reports():
    from ganeval.analysis.mixed import judged_real_model

    truth = np.array([0, 1] * 6)
    res = judged_real_model(judgments(truth[None, :], truth))
    assert "without a random effect for participants" in res.note and len(res.effects) == 2
