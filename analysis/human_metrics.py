"""Which per-image metric agrees with people.

Each fake image's human fool rate (the share of its main-trial judgments that said *real*) is
set against its scores from ``ganeval fid --per-image`` (realism, rarity, distance to the
nearest real image, Gaussian log-density of its features): the Spearman rank correlation over
images, with a percentile bootstrap CI over images, per model label and over all. A metric
that tracks human judgment correlates positively (realism, log-density) or negatively
(distance to the nearest real image); the table says which does best on this study."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ganeval.errors import BadInput

SCORES = ("realism", "rarity", "nearest_real_distance", "nearest_real_ssim", "gaussian_loglik")
MIN_IMAGES = 5  # fewer judged images give no rank correlation worth a number


def load_scores(per_image: dict[str, str | os.PathLike]) -> pd.DataFrame:
    """The per-image CSVs (model label → ``fid --per-image`` output) as one frame with
    ``model_label``, ``name`` (the image's key in its source) and the score columns."""
    parts = []
    for label, path in per_image.items():
        try:
            frame = pd.read_csv(path, dtype={"name": str})
        except (OSError, ValueError, pd.errors.ParserError) as err:
            raise BadInput(f"{path}: not a per-image scores CSV ({str(err).splitlines()[0]})") from None
        if "nearest_real_ssim" not in frame.columns:  # a generator's samples: no pixels to compare
            frame["nearest_real_ssim"] = np.nan
        missing = [c for c in ("name", *SCORES) if c not in frame.columns]
        if missing:
            raise BadInput(f"{path}: not a per-image scores CSV of `ganeval fid --per-image` "
                           f"(missing {', '.join(missing)})")
        parts.append(frame.assign(model_label=str(label))[["model_label", "name", *SCORES]])
    return pd.concat(parts, ignore_index=True)


def join_with_humans(main: pd.DataFrame, images: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """One row per judged fake image that has scores: image_id, model_label, judgments,
    fool_rate and the scores. ``images`` maps image_id to model_label and source_key."""
    fakes = main[main["truth"] == "fake"]
    human = (fakes.assign(judged_real=(fakes["answer"] == "real").astype(float)).groupby("image_id")
             .agg(judgments=("judged_real", "size"), fool_rate=("judged_real", "mean")).reset_index())
    keyed = images[["image_id", "model_label", "source_key"]].astype(str)
    joined = human.merge(keyed, on="image_id").merge(
        scores, left_on=["model_label", "source_key"], right_on=["model_label", "name"])
    return joined[["image_id", "model_label", "source_key", "judgments", "fool_rate", *SCORES]]


def agreement_table(joined: pd.DataFrame, resamples: int = 2000, seed: int = 0,
                    alpha: float = 0.05) -> pd.DataFrame:
    """Per scope ('all' and each model label) and score: images, Spearman ρ with the fool
    rate, its bootstrap CI over images and the p-value (scipy)."""
    rng = np.random.default_rng(seed)
    scopes = {"all": joined} | {label: part for label, part in joined.groupby("model_label")}
    rows = []
    for scope, part in scopes.items():
        for score in SCORES:
            ok = part[[score, "fool_rate"]].dropna()
            x, y = ok[score].to_numpy(float), ok["fool_rate"].to_numpy(float)
            row = {"scope": scope, "score": score, "images": len(ok), "spearman_rho": np.nan, "ci_low": np.nan,
                   "ci_high": np.nan, "p_value": np.nan}
            if len(ok) >= MIN_IMAGES and np.ptp(x) > 0 and np.ptp(y) > 0:
                res = spearmanr(x, y)
                row.update(spearman_rho=float(res.statistic), p_value=float(res.pvalue))
                boots = []
                for _ in range(resamples):
                    pick = rng.integers(0, len(x), len(x))
                    if np.ptp(x[pick]) > 0 and np.ptp(y[pick]) > 0:
                        boots.append(spearmanr(x[pick], y[pick]).statistic)
                if boots:
                    row["ci_low"], row["ci_high"] = np.percentile(boots, [100 * alpha / 2, 100 * (1 - alpha / 2)])
            rows.append(row)
    return pd.DataFrame(rows)


def best_predictor(table: pd.DataFrame) -> str | None:
    """The score whose |ρ| over all images is largest, in words; None without any."""
    overall = table[(table["scope"] == "all") & table["spearman_rho"].notna()]
    if overall.empty:
        return None
    top = overall.loc[overall["spearman_rho"].abs().idxmax()]
    return (f"{top['score']} agrees best with people: Spearman ρ = {top['spearman_rho']:.2f} "
            f"[{top['ci_low']:.2f}, {top['ci_high']:.2f}] with the fool rate over {int(top['images'])} images")


def read_study_images(path: str | os.PathLike) -> pd.DataFrame:
    frame = pd.read_csv(Path(path), dtype=str, keep_default_na=False)
    missing = [c for c in ("image_id", "model_label", "source_key") if c not in frame.columns]
    if missing:
        raise BadInput(f"{path}: not a study images table (missing {', '.join(missing)})")
    return frame
