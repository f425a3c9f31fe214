"""How well people tell real from fake, and how much they agree with each other.

Per participant: the confusion matrix (truth × answer), accuracy with a Wilson interval, an
exact binomial test against guessing (50%), and Cohen's kappa against the truth with its
asymptotic interval. Across participants: Fleiss' kappa with a bootstrap interval over images,
and the matrix of pairwise Cohen's kappas. The statistics themselves come from statsmodels,
scipy and scikit-learn, so the numbers are the ones people compare across papers; this module
only arranges the tables and handles the degenerate cases (a constant rater, no overlap)."""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest, norm
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

from ganeval.analysis.intervals import KAPPA_RANGE, PROPORTION_RANGE, clip_interval
from ganeval.analysis.responses import LABELS
from ganeval.errors import BadInput

ALPHA = 0.05


def confusion(df: pd.DataFrame) -> np.ndarray:
    """2×2 counts, rows = truth (real, fake), columns = answer (real, fake)."""
    t = df["truth"].map({lab: i for i, lab in enumerate(LABELS)}).to_numpy()
    a = df["answer"].map({lab: i for i, lab in enumerate(LABELS)}).to_numpy()
    table = np.zeros((len(LABELS), len(LABELS)), dtype=int)
    np.add.at(table, (t, a), 1)
    return table


def kappa_vs_truth(table: np.ndarray, alpha: float = ALPHA) -> tuple[float, float, float, float, str]:
    """Cohen's kappa of answers against truth from a confusion table: (kappa, se, low, high, note).

    When chance agreement is 1 (truth or answers of one class only on both sides) kappa is
    undefined: NaN with a note, not an exception. A rater who always gives the same answer
    gets kappa 0 (no better than chance) and its standard error is undefined."""
    table = np.asarray(table, dtype=float)
    n = table.sum()
    if n == 0:
        return (np.nan, np.nan, np.nan, np.nan, "no judgments")
    pe = float((table.sum(0) / n) @ (table.sum(1) / n))
    if pe >= 1 - 1e-12:
        return (np.nan, np.nan, np.nan, np.nan, "kappa undefined: truth and answers all of one class")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        res = cohens_kappa(table, return_results=True)
    note = ""
    if (table.sum(0) == 0).any():
        note = "constant rater: always answered " + LABELS[int(np.argmax(table.sum(0)))]
    elif (table.sum(1) == 0).any():
        note = "only " + LABELS[int(np.argmax(table.sum(1)))] + " images judged"
    se = float(res.std_kappa) if np.isfinite(res.std_kappa) else np.nan
    half = float(norm.isf(alpha / 2)) * se  # statsmodels' own kappa_low/kappa_upp at alpha=0.05
    low, high = clip_interval(float(res.kappa) - half, float(res.kappa) + half, KAPPA_RANGE)
    return (float(res.kappa), se, low, high, note)


def participant_table(df: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """One row per participant (in order of first appearance) with the confusion counts,
    accuracy, its Wilson CI, the two-sided exact binomial p-value against 0.5, and kappa."""
    rows = []
    for token, part in df.groupby("participant", sort=False):
        table = confusion(part)
        n, k = int(table.sum()), int(np.trace(table))
        low, high = clip_interval(*proportion_confint(k, n, alpha=alpha, method="wilson"), PROPORTION_RANGE)
        kappa, se, k_low, k_high, note = kappa_vs_truth(table, alpha)
        rows.append({
            "participant": token, "label": f"P{len(rows) + 1}", "kind": part["participant_kind"].iloc[0], "n": n, "correct": k,
            "real_as_real": int(table[0, 0]), "real_as_fake": int(table[0, 1]),
            "fake_as_real": int(table[1, 0]), "fake_as_fake": int(table[1, 1]),
            "accuracy": k / n, "accuracy_low": float(low), "accuracy_high": float(high),
            "binom_p": float(binomtest(k, n, 0.5, alternative="two-sided").pvalue),
            "kappa": kappa, "kappa_se": se, "kappa_low": k_low, "kappa_high": k_high, "note": note,
        })
    return pd.DataFrame(rows)


def rating_matrix(df: pd.DataFrame) -> pd.DataFrame:
    """images × participants of answer codes (0 real, 1 fake; NaN where not judged). A repeated
    judgment of the same image by the same person keeps the first one."""
    codes = df.assign(code=df["answer"].map({lab: i for i, lab in enumerate(LABELS)}))
    codes = codes.drop_duplicates(["image_id", "participant"], keep="first")
    return codes.pivot(index="image_id", columns="participant", values="code").reindex(
        columns=list(dict.fromkeys(df["participant"])))


@dataclass
class FleissResult:
    kappa: float
    ci_low: float
    ci_high: float
    raters: int
    images: int
    images_total: int
    ratings_per_image: int
    subset: str  # which images were used, in words
    resamples: int
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)


def fleiss_table(df: pd.DataFrame) -> tuple[np.ndarray, int, str]:
    """The images × categories count table Fleiss' kappa needs (equal ratings per image).

    Fleiss' kappa assumes every image got the same number of ratings (not necessarily from the
    same people). With partial overlap we use the images judged by every participant; when
    fewer than two are, the largest group of images that share one number (≥ 2) of ratings;
    when there is none, an empty table (kappa NaN, and ``subset`` says why)."""
    mat = rating_matrix(df)
    raters = mat.shape[1]
    if raters < 2:
        raise BadInput(f"Fleiss' kappa needs at least 2 participants; the responses have {raters}")
    counts = mat.notna().sum(axis=1)
    full = mat[counts == raters]
    if len(full) >= 2:
        subset, rows = f"the {len(full)} images judged by all {raters} participants", full
        m = raters
    else:
        sizes = counts[counts >= 2].value_counts()
        if sizes.empty or sizes.max() < 2:  # e.g. every image judged once: agreement cannot be measured
            return np.zeros((0, len(LABELS)), dtype=int), 0, "none: fewer than 2 images were judged by 2 or more participants"
        m = int(sizes.sort_index(ascending=False).idxmax())  # most images; ties → more ratings
        rows = mat[counts == m]
        subset = f"the {len(rows)} images with exactly {m} ratings (no image was judged by all {raters})"
    data = rows.to_numpy()
    table = np.stack([(data == c).sum(1) for c in range(len(LABELS))], axis=1)
    return table, m, subset


def fleiss_counts(answers: np.ndarray) -> np.ndarray:
    """statsmodels' own subjects × categories table from an images × raters code array."""
    table, _ = aggregate_raters(answers, n_cat=len(LABELS))
    return table


def _fleiss_batch(table: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Fleiss' kappa of each resample (rows of ``idx`` index images), vectorised."""
    table = table.astype(float)
    n = table[0].sum()
    p_item = ((table * table).sum(1) - n) / (n * (n - 1))
    p_mean = p_item[idx].mean(1)
    shares = np.stack([table[:, j][idx].mean(1) / n for j in range(table.shape[1])], axis=1)
    p_exp = (shares * shares).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (p_mean - p_exp) / (1 - p_exp)


def fleiss(df: pd.DataFrame, resamples: int = 10_000, seed: int = 0, alpha: float = ALPHA) -> FleissResult:
    """Fleiss' kappa (statsmodels) with a seeded percentile bootstrap CI over images."""
    table, m, subset = fleiss_table(df)
    low = high = kappa = np.nan
    if len(table):
        with np.errstate(divide="ignore", invalid="ignore"):
            kappa = float(fleiss_kappa(table, method="fleiss"))
    if resamples > 0 and len(table):
        boots = bootstrap_fleiss(table, resamples, seed)
        boots = boots[np.isfinite(boots)]
        if len(boots):
            low, high = clip_interval(*np.percentile(boots, [100 * alpha / 2, 100 * (1 - alpha / 2)]), KAPPA_RANGE)
    return FleissResult(kappa, low, high, int(df["participant"].nunique()), len(table),
                        int(df["image_id"].nunique()), m, subset, resamples, seed)


def bootstrap_fleiss(table: np.ndarray, resamples: int, seed: int, chunk: int = 2000) -> np.ndarray:
    """Fleiss' kappa over ``resamples`` resamples of the images (rows), seeded."""
    rng = np.random.default_rng(seed)
    n_items = len(table)
    out = []
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n_items, size=(min(chunk, resamples - start), n_items))
        out.append(_fleiss_batch(table, idx))
    return np.concatenate(out) if out else np.empty(0)


def pairwise_kappa(df: pd.DataFrame, min_shared: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cohen's kappa (scikit-learn) between every two participants on the images both judged,
    and the number of shared images. NaN where fewer than ``min_shared`` images are shared or
    kappa is undefined (both gave one answer only); the diagonal is 1."""
    mat = rating_matrix(df)
    names = list(mat.columns)
    kappa = pd.DataFrame(np.nan, index=names, columns=names)
    shared = pd.DataFrame(0, index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[i:]:
            both = mat[[a, b]].dropna()
            shared.loc[a, b] = shared.loc[b, a] = len(both)
            if a == b:
                kappa.loc[a, a] = 1.0
                continue
            if len(both) < min_shared:
                continue
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # undefined kappa (both constant) is NaN, said in the docstring
                value = cohen_kappa_score(both[a].astype(int), both[b].astype(int), labels=[0, 1])
            kappa.loc[a, b] = kappa.loc[b, a] = float(value)
    return kappa, shared
