"""HYPE (Zhou et al. 2019, "HYPE: A Benchmark for Human eYe Perceptual Evaluation of
Generative Models", NeurIPS): human error rates, per model, with bootstrap CIs.

**HYPE∞** is an evaluator's error rate on a balanced set of real and fake images (fakes
judged real plus reals judged fake); the score is the mean over evaluators, so an evaluator
who answered more trials does not weigh more. 50% means people cannot tell. Next to it: the
fake error (share of fakes judged real, "how often the GAN fools people") and the real error.
With several models in one study, the reals are shared: a model's HYPE∞ for one evaluator is
½·(their fake error on that model + their real error), the error rate they would have on a
balanced set of that model's fakes and the reals.

**HYPE-time** is the exposure an image needs before people can tell: each evaluator's
exposure follows an adaptive staircase (shorter after correct answers, longer after errors),
and their threshold is the modal exposure of their trials; the score is the mean threshold
over evaluators (higher: the model's images survive longer looks). A model's threshold for an
evaluator is the modal exposure of that evaluator's trials on the model's fakes.

The 95% intervals resample evaluators *and* images with replacement (both are samples from
larger populations); ``unit="evaluators"`` resamples evaluators only. Resamples are counts,
so each block of resamples is one matrix product."""
from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from ganeval.analysis.intervals import PROPORTION_RANGE, clip_interval

ALPHA = 0.05
HYPE_TIME = "hype-time"
BLOCK = 500  # resamples per matrix product (bounds memory: BLOCK × images floats)


def bootstrap_weights(n: int, resamples: int, seed: int | np.random.Generator) -> np.ndarray:
    """resamples × n: how often each of n units is drawn in each resample."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(resamples, n))
    offsets = np.arange(resamples)[:, None] * n
    return np.bincount((draws + offsets).ravel(), minlength=resamples * n).reshape(resamples, n).astype(float)


def _counts(df: pd.DataFrame, mask: pd.Series, people: pd.Index, images: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """(wrong, total) judgments per image × evaluator for the rows in ``mask``."""
    sub = df[mask]
    rows, cols = images.get_indexer(sub["image_id"]), people.get_indexer(sub["participant"])
    wrong, total = np.zeros((len(images), len(people))), np.zeros((len(images), len(people)))
    np.add.at(total, (rows, cols), 1.0)
    np.add.at(wrong, (rows, cols), (sub["correct"] == 0).to_numpy(float))
    return wrong, total


def _rates(wrong: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Per-evaluator error rates (last axis: evaluators); NaN where an evaluator has no trial."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, wrong / np.where(total > 0, total, 1), np.nan)


def _mean_over_evaluators(rates: np.ndarray, evaluator_weights: np.ndarray | None = None) -> np.ndarray:
    valid = np.isfinite(rates)
    w = np.ones_like(rates) if evaluator_weights is None else evaluator_weights
    w = np.where(valid, w, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(w.sum(-1) > 0, (np.nan_to_num(rates) * w).sum(-1) / w.sum(-1), np.nan)


def hype_table(df: pd.DataFrame, resamples: int = 10_000, seed: int = 0, alpha: float = ALPHA,
               unit: Literal["evaluators+images", "evaluators"] = "evaluators+images") -> pd.DataFrame:
    """Rows: scope ('all' or a model label), metric (hype_inf, fake_error, real_error), value
    (mean over evaluators, 0..1), CI, judgments, evaluators."""
    people = pd.Index(list(dict.fromkeys(df["participant"])))
    images = pd.Index(list(dict.fromkeys(df["image_id"])))
    fake = df["truth"] == "fake"
    every = pd.Series(True, index=df.index)
    parts = {"all": _counts(df, every, people, images), "fake": _counts(df, fake, people, images),
             "real": _counts(df, ~fake, people, images)}
    labels = sorted(df.loc[fake, "model_label"].unique())
    for label in labels:
        parts[f"fake:{label}"] = _counts(df, fake & (df["model_label"] == label), people, images)

    # each metric: (scope, name, how to get per-evaluator rates from the per-part rates, parts it counts)
    metrics: list[tuple[str, str, callable, tuple[str, ...]]] = [
        ("all", "hype_inf", lambda r: r["all"], ("all",)),
        ("all", "fake_error", lambda r: r["fake"], ("fake",)),
        ("all", "real_error", lambda r: r["real"], ("real",)),
    ]
    for label in labels:
        key = f"fake:{label}"
        metrics.append((label, "hype_inf", lambda r, key=key: 0.5 * (r[key] + r["real"]), (key, "real")))
        metrics.append((label, "fake_error", lambda r, key=key: r[key], (key,)))

    def evaluate(image_weights: np.ndarray | None, evaluator_weights: np.ndarray | None) -> np.ndarray:
        rates = {}
        for name, (wrong, total) in parts.items():
            if image_weights is None:
                rates[name] = _rates(wrong.sum(0), total.sum(0))
            else:
                rates[name] = _rates(image_weights @ wrong, image_weights @ total)
        return np.stack([_mean_over_evaluators(how(rates), evaluator_weights) for _, _, how, _ in metrics], -1)

    value = evaluate(None, None)
    low = np.full(len(metrics), np.nan)
    high = np.full(len(metrics), np.nan)
    if resamples > 0:
        rng = np.random.default_rng(seed)
        ew = bootstrap_weights(len(people), resamples, rng)
        boots = []
        for start in range(0, resamples, BLOCK):
            n = min(BLOCK, resamples - start)
            iw = bootstrap_weights(len(images), n, rng) if unit == "evaluators+images" else np.ones((n, len(images)))
            boots.append(evaluate(iw, ew[start : start + n]))
        boots = np.concatenate(boots)
        for g in range(len(metrics)):
            col = boots[:, g][np.isfinite(boots[:, g])]
            if len(col):
                low[g], high[g] = clip_interval(*np.percentile(col, [100 * alpha / 2, 100 * (1 - alpha / 2)]),
                                                PROPORTION_RANGE)
    rows = []
    for g, (scope, metric, _, counted) in enumerate(metrics):
        total = sum(parts[p][1] for p in counted)
        seen = np.all([parts[p][1].sum(0) > 0 for p in counted], axis=0)
        rows.append({"scope": scope, "metric": metric, "value": float(value[g]), "ci_low": float(low[g]),
                     "ci_high": float(high[g]), "judgments": int(total.sum()), "evaluators": int(seen.sum()),
                     "resamples": resamples, "unit": unit, "seed": seed})
    return pd.DataFrame(rows)


def staircase_threshold(exposures: pd.Series) -> float:
    """An evaluator's perceptual threshold: the modal exposure of their trials (the median
    of the modes when several exposures are equally frequent)."""
    counts = exposures.dropna().round().value_counts()
    if counts.empty:
        return float("nan")
    return float(np.median(counts.index[counts == counts.max()].to_numpy(float)))


def hype_time_table(df: pd.DataFrame, resamples: int = 10_000, seed: int = 0,
                    alpha: float = ALPHA) -> pd.DataFrame | None:
    """HYPE-time per model ('all': every trial of the evaluator) in ms, with a bootstrap CI
    over evaluators; None when the study has no HYPE-time trials."""
    if "protocol" not in df.columns or "exposure_ms" not in df.columns:
        return None
    timed = df[(df["protocol"] == HYPE_TIME) & pd.to_numeric(df["exposure_ms"], errors="coerce").notna()].copy()
    if timed.empty:
        return None
    timed["exposure_ms"] = pd.to_numeric(timed["exposure_ms"], errors="coerce")
    scopes = {"all": timed}
    fakes = timed[timed["truth"] == "fake"]
    for label in sorted(fakes["model_label"].unique()):
        scopes[label] = fakes[fakes["model_label"] == label]
    rng = np.random.default_rng(seed)
    rows = []
    for scope, sub in scopes.items():
        thresholds = sub.groupby("participant")["exposure_ms"].apply(staircase_threshold).dropna().to_numpy()
        low = high = float("nan")
        if resamples > 0 and len(thresholds):
            w = bootstrap_weights(len(thresholds), resamples, rng)
            boots = (w @ thresholds) / w.sum(1)
            low, high = np.percentile(boots, [100 * alpha / 2, 100 * (1 - alpha / 2)])
        measured = pd.to_numeric(sub.get("exposure_shown_ms", pd.Series(dtype=float)), errors="coerce")
        rows.append({"scope": scope, "metric": "hype_time_ms",
                     "value": float(thresholds.mean()) if len(thresholds) else float("nan"),
                     "ci_low": float(low), "ci_high": float(high), "judgments": int(len(sub)),
                     "evaluators": int(len(thresholds)), "error": float((sub["correct"] == 0).mean()),
                     "median_shown_minus_requested_ms": float((measured - sub["exposure_ms"]).median())
                     if measured.notna().any() else float("nan"),
                     "resamples": resamples, "seed": seed})
    return pd.DataFrame(rows)
