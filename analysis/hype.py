"""HYPE∞ (Zhou et al. 2019): human error rates with a bootstrap CI over evaluators.

HYPE∞ is the share of all judgments that are wrong (fakes judged real plus reals judged
fake); 50% means people cannot tell. Next to it: the fake error (share of fakes judged real,
"how often the GAN fools people"), the real error, and the fake error of each model label.
The 95% interval resamples *evaluators* with replacement (the paper's unit of variation), and
pools their judgments in each resample. Resamples are counts of each evaluator, so all
10,000 of them are one matrix product."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ganeval.analysis.intervals import PROPORTION_RANGE, clip_interval

ALPHA = 0.05


def _per_evaluator(df: pd.DataFrame, groups: dict[str, pd.Series]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(participants, errors P×G, totals P×G) for each named boolean row group."""
    people = list(dict.fromkeys(df["participant"]))
    wrong = (df["correct"] == 0).astype(int)
    errors, totals = [], []
    for mask in groups.values():
        sub = df[mask]
        errors.append(wrong[mask].groupby(sub["participant"]).sum().reindex(people, fill_value=0).to_numpy())
        totals.append(sub.groupby("participant").size().reindex(people, fill_value=0).to_numpy())
    return people, np.stack(errors, axis=1).astype(float), np.stack(totals, axis=1).astype(float)


def bootstrap_weights(n_evaluators: int, resamples: int, seed: int) -> np.ndarray:
    """resamples × evaluators: how often each evaluator is drawn in each resample."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_evaluators, size=(resamples, n_evaluators))
    offsets = np.arange(resamples)[:, None] * n_evaluators
    return np.bincount((draws + offsets).ravel(), minlength=resamples * n_evaluators).reshape(
        resamples, n_evaluators).astype(float)


def hype_table(df: pd.DataFrame, resamples: int = 10_000, seed: int = 0, alpha: float = ALPHA) -> pd.DataFrame:
    """Rows: scope ('all' or a model label), metric, value (0..1), CI, judgments, evaluators."""
    fake = df["truth"] == "fake"
    groups: dict[str, pd.Series] = {"all|hype_inf": pd.Series(True, index=df.index),
                                    "all|fake_error": fake, "all|real_error": ~fake}
    labels = sorted(df.loc[fake, "model_label"].unique())
    for label in labels:
        groups[f"{label}|fake_error"] = fake & (df["model_label"] == label)
    people, errors, totals = _per_evaluator(df, groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = errors.sum(0) / totals.sum(0)
    low = np.full(len(groups), np.nan)
    high = np.full(len(groups), np.nan)
    if resamples > 0:
        weights = bootstrap_weights(len(people), resamples, seed)
        with np.errstate(divide="ignore", invalid="ignore"):
            boots = (weights @ errors) / (weights @ totals)  # resamples × groups
        for g in range(len(groups)):
            col = boots[:, g][np.isfinite(boots[:, g])]
            if len(col):
                low[g], high[g] = clip_interval(*np.percentile(col, [100 * alpha / 2, 100 * (1 - alpha / 2)]),
                                                PROPORTION_RANGE)
    rows = []
    for g, key in enumerate(groups):
        scope, metric = key.split("|")
        rows.append({"scope": scope, "metric": metric, "value": float(value[g]), "ci_low": float(low[g]),
                     "ci_high": float(high[g]), "judgments": int(totals[:, g].sum()),
                     "evaluators": int((totals[:, g] > 0).sum()), "resamples": resamples, "seed": seed})
    return pd.DataFrame(rows)
