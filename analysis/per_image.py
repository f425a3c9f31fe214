"""Per image: how often it fooled people; plus why people said "fake" and how long they took.

The fool rate of an image is the share of its judgments that got it wrong: for a fake, the
share who called it real (the most convincing fakes rank first); for a real, the share who
called it fake (the most "fake-looking" reals)."""
from __future__ import annotations

import numpy as np
import pandas as pd

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def image_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per image: truth, model label, judgments, judged real, fool rate, mean confidence,
    median response time; sorted by truth then fool rate (highest first)."""
    g = df.assign(judged_real=(df["answer"] == "real").astype(int), wrong=1 - df["correct"]).groupby("image_id")
    table = pd.DataFrame({
        "truth": g["truth"].first(), "model_label": g["model_label"].first(), "judgments": g.size(),
        "judged_real": g["judged_real"].sum(), "fool_rate": g["wrong"].mean(),
        "mean_confidence": g["confidence"].mean(), "median_response_ms": g["rt_ms"].median(),
    }).reset_index()
    return table.sort_values(["truth", "fool_rate", "judgments", "image_id"],
                             ascending=[True, False, False, True]).reset_index(drop=True)


def most_convincing_fakes(table: pd.DataFrame, n: int = 8) -> pd.DataFrame:
    """Fakes most often judged real (ties: more judgments first)."""
    fakes = table[table["truth"] == "fake"]
    return fakes.sort_values(["fool_rate", "judgments", "image_id"], ascending=[False, False, True]).head(n)


def least_convincing_fakes(table: pd.DataFrame, n: int = 8) -> pd.DataFrame:
    fakes = table[table["truth"] == "fake"]
    return fakes.sort_values(["fool_rate", "judgments", "image_id"], ascending=[True, False, True]).head(n)


def most_fake_looking_reals(table: pd.DataFrame, n: int = 8) -> pd.DataFrame:
    """Reals most often judged fake."""
    reals = table[table["truth"] == "real"]
    return reals.sort_values(["fool_rate", "judgments", "image_id"], ascending=[False, False, True]).head(n)


def reason_counts(df: pd.DataFrame) -> pd.DataFrame:
    """How often each reason was ticked with a 'fake' answer, split by the image's truth;
    ``share`` is over all 'fake' answers of that truth (several reasons may be ticked)."""
    fake_answers = df[df["answer"] == "fake"]
    codes = fake_answers.assign(reason=fake_answers["reasons"].fillna("").str.split(";")).explode("reason")
    codes["reason"] = codes["reason"].str.strip().replace("", "(none given)")
    counts = codes.groupby(["truth", "reason"]).size().rename("count").reset_index()
    totals = fake_answers.groupby("truth").size()
    counts["share"] = counts["count"] / counts["truth"].map(totals)
    return counts.sort_values(["truth", "count", "reason"], ascending=[True, False, True]).reset_index(drop=True)


def other_reasons(df: pd.DataFrame) -> list[str]:
    """The free-text 'other' reasons, as given (non-empty)."""
    text = df["reason_other"].fillna("").astype(str).str.strip()
    return [t for t in text if t]


def response_times(df: pd.DataFrame) -> pd.DataFrame:
    """Response-time distribution (ms; the browser's where the study measured it, else the
    server's) overall and by truth × correct: n, mean, quantiles."""
    rt = df[np.isfinite(df["rt_ms"].astype(float))]
    groups = [("all", "all", rt)]
    for (truth, correct), part in rt.groupby(["truth", "correct"]):
        groups.append((truth, "correct" if correct else "wrong", part))
    rows = []
    for truth, outcome, part in groups:
        v = part["rt_ms"].to_numpy(dtype=float)
        row = {"truth": truth, "outcome": outcome, "n": len(v), "mean_ms": float(v.mean()) if len(v) else np.nan}
        row.update({f"q{int(q * 100):02d}_ms": float(np.quantile(v, q)) if len(v) else np.nan for q in QUANTILES})
        rows.append(row)
    return pd.DataFrame(rows)
