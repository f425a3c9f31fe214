"""The report's figures. Each function returns a matplotlib Figure (so a notebook shows it
inline) and ``save`` writes one atomically as PNG. The Agg backend is chosen only when no
backend was picked yet, so the notebook's inline backend keeps working."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ganeval.analysis.responses import LABELS
from ganeval.atomic import atomic_path


def _plt():
    import matplotlib

    if "matplotlib.pyplot" not in __import__("sys").modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _sns():
    import seaborn as sns

    return sns


def save(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write the figure as PNG atomically, close it, and return the path."""
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    _plt().close(fig)
    return path


def _names(ptable: pd.DataFrame) -> dict[str, str]:
    return dict(zip(ptable["participant"], ptable["label"]))


# ------------------------------------------------------------------ study

def confusion_grid(df: pd.DataFrame, ptable: pd.DataFrame, cols: int = 5):
    """One truth × answer heatmap per participant (counts), titled with accuracy and kind."""
    from ganeval.analysis.agreement import confusion

    # plain imshow: seaborn's heatmap redraws the whole figure per panel (slow for many people)
    plt = _plt()
    n = len(ptable)
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.5 * cols, 2.4 * rows), squeeze=False)
    vmax = max(1, int(ptable[["real_as_real", "real_as_fake", "fake_as_real", "fake_as_fake"]].to_numpy().max()))
    for ax, (_, row) in zip(axes.flat, ptable.iterrows()):
        table = confusion(df[df["participant"] == row["participant"]])
        ax.imshow(table, cmap="Blues", vmin=0, vmax=vmax)
        for (i, j), count in np.ndenumerate(table):
            ax.text(j, i, str(count), ha="center", va="center", color="white" if count > vmax / 2 else "black")
        ax.set_xticks(range(len(LABELS)), LABELS, fontsize=8)
        ax.set_yticks(range(len(LABELS)), LABELS, fontsize=8)
        kind = " (simulated)" if row["kind"] == "simulated" else ""
        ax.set_title(f"{row['label']}{kind}\nacc {row['accuracy']:.0%}", fontsize=9)
        ax.set_xlabel("answer", fontsize=8)
        ax.set_ylabel("truth", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def accuracy_kappa_bars(ptable: pd.DataFrame, fleiss_kappa: float | None = None):
    """Accuracy (Wilson CI, chance at 50%) and Cohen's kappa vs truth (asymptotic CI) per
    participant; Fleiss' kappa across participants as a dashed line."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(7, 0.7 * len(ptable) + 4), 3.4))
    x = np.arange(len(ptable))
    colours = ["#8c8c8c" if k == "simulated" else "#4c72b0" for k in ptable["kind"]]
    acc = ptable["accuracy"].to_numpy()
    err = np.vstack([acc - ptable["accuracy_low"], ptable["accuracy_high"] - acc])
    ax1.bar(x, acc, yerr=err, color=colours, capsize=3)
    ax1.axhline(0.5, color="crimson", linestyle="--", linewidth=1, label="chance")
    ax1.set_ylim(0, 1.05)
    ax1.set_ylabel("accuracy (95% Wilson CI)")
    kappa = ptable["kappa"].to_numpy(dtype=float)
    kerr = np.vstack([kappa - ptable["kappa_low"].to_numpy(dtype=float), ptable["kappa_high"].to_numpy(dtype=float) - kappa])
    ax2.bar(x, np.nan_to_num(kappa), yerr=np.nan_to_num(kerr), color=colours, capsize=3)
    ax2.axhline(0, color="black", linewidth=0.8)
    if fleiss_kappa is not None and np.isfinite(fleiss_kappa):
        ax2.axhline(fleiss_kappa, color="darkorange", linestyle="--", linewidth=1.2,
                    label=f"Fleiss' κ between participants = {fleiss_kappa:.2f}")
        ax2.legend(fontsize=7, loc="lower right")
    ax2.set_ylabel("Cohen's κ vs truth (95% CI)")
    ax2.set_ylim(min(-0.2, np.nanmin(ptable["kappa_low"].to_numpy(dtype=float), initial=0) - 0.05), 1.05)
    for ax in (ax1, ax2):
        ax.set_xticks(x, ptable["label"], rotation=45 if len(x) > 10 else 0, fontsize=8)
    ax1.legend(fontsize=7, loc="lower right")
    title = "participants" + (" (grey: simulated)" if (ptable["kind"] == "simulated").any() else "")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def pairwise_heatmap(kappa: pd.DataFrame, ptable: pd.DataFrame):
    """Cohen's kappa between every two participants (blank where undefined)."""
    plt, sns = _plt(), _sns()
    names = _names(ptable)
    k = kappa.rename(index=names, columns=names)
    size = max(3.5, 0.45 * len(k) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    sns.heatmap(k.astype(float), annot=len(k) <= 12, fmt=".2f", cmap="vlag", vmin=-1, vmax=1, square=True,
                ax=ax, cbar_kws={"label": "Cohen's κ"}, annot_kws={"fontsize": 7})
    ax.set_title("pairwise agreement between participants", fontsize=10)
    fig.tight_layout()
    return fig


def hype_bars(hype: pd.DataFrame):
    """HYPE∞ error rates with their bootstrap CIs; 50% is the "cannot tell" line."""
    plt = _plt()
    names = [f"{m.replace('_', ' ')}" if s == "all" else f"fakes '{s}'" for s, m in zip(hype["scope"], hype["metric"])]
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(hype) + 2), 3.2))
    v = hype["value"].to_numpy(dtype=float)
    err = np.vstack([v - hype["ci_low"].to_numpy(dtype=float), hype["ci_high"].to_numpy(dtype=float) - v])
    ax.bar(np.arange(len(v)), v, yerr=np.nan_to_num(err), capsize=4,
           color=["#dd8452" if m == "hype_inf" else "#55a868" for m in hype["metric"]])
    ax.axhline(0.5, color="crimson", linestyle="--", linewidth=1, label="50%: cannot tell")
    ax.set_xticks(np.arange(len(v)), names, fontsize=8, rotation=20)
    ax.set_ylim(0, 1)
    ax.set_ylabel("error rate (95% bootstrap CI)")
    ax.legend(fontsize=7)
    ax.set_title("HYPE∞: how often people were wrong", fontsize=10)
    fig.tight_layout()
    return fig


def gallery(groups: dict[str, pd.DataFrame], images_dir: str | os.PathLike, thumb: int = 96):
    """Rows of images (one row per group, e.g. the most convincing fakes), each captioned with
    how many of its judgments were wrong. Images come from the study's images/ folder by id;
    each row is one montage (one axes), which draws far faster than an axes per image."""
    from ganeval.images import CorruptImage, decode_image
    from ganeval.resample import resize_rgb

    plt = _plt()
    images_dir = Path(images_dir)
    width = max((len(g) for g in groups.values()), default=1) or 1
    gap = 6
    fig, axes = plt.subplots(len(groups), 1, figsize=(1.3 * width + 0.6, 1.65 * len(groups)), squeeze=False)
    for ax, (title, table) in zip(axes[:, 0], groups.items()):
        montage = np.full((thumb, width * (thumb + gap) - gap, 3), 255, np.uint8)
        for c, (_, row) in enumerate(table.iterrows()):
            try:
                img = resize_rgb(decode_image(images_dir / f"{row['image_id']}.png"), thumb)
            except (CorruptImage, FileNotFoundError):
                img = np.full((thumb, thumb, 3), 220, np.uint8)
            x = c * (thumb + gap)
            montage[:, x:x + thumb] = img
            wrong = int(round(row["fool_rate"] * row["judgments"]))
            ax.text(x + thumb / 2, -4, f"{wrong}/{int(row['judgments'])} wrong", ha="center", va="bottom", fontsize=7)
        ax.imshow(montage)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_ylabel(title, fontsize=8)
    fig.tight_layout()
    return fig


def reasons_bars(reasons: pd.DataFrame):
    """Reason codes given with 'fake' answers, for fakes and for reals."""
    plt, sns = _plt(), _sns()
    fig, ax = plt.subplots(figsize=(6, 3))
    sns.barplot(reasons, x="count", y="reason", hue="truth", ax=ax, hue_order=[t for t in ("fake", "real") if t in set(reasons["truth"])])
    ax.set_title("why people said 'fake' (by the image's truth)", fontsize=10)
    fig.tight_layout()
    return fig


def response_time_hist(df: pd.DataFrame):
    """Response times of right and wrong answers (seconds, the browser's where measured; the
    slowest 1% are clipped so one participant who left the tab open does not squash the rest)."""
    plt, sns = _plt(), _sns()
    rt = df[np.isfinite(df["rt_ms"].astype(float))]
    seconds = rt["rt_ms"].astype(float).to_numpy() / 1000
    top = float(np.quantile(seconds, 0.99)) if len(seconds) else 1.0
    frame = pd.DataFrame({"seconds": np.minimum(seconds, top),
                          "answer": np.where(rt["correct"] == 1, "correct", "wrong")})
    fig, ax = plt.subplots(figsize=(6, 3))
    sns.histplot(frame, x="seconds", hue="answer", bins=20, ax=ax, element="step", hue_order=["correct", "wrong"])
    clipped = int((seconds > top).sum())
    ax.set_title("response times" + (f" ({clipped} above {top:.3g} s shown at {top:.3g} s)" if clipped else ""),
                 fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ metrics

def nearest_histograms(neighbours: pd.DataFrame, copy_threshold: float | None = None):
    """Histograms of the top-1 … top-k SSIM of each generated image's nearest training images."""
    plt, sns = _plt(), _sns()
    ranks = sorted(neighbours["rank"].dropna().unique())
    cols = min(4, len(ranks))
    rows = math.ceil(len(ranks) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols, 2.4 * rows), squeeze=False, sharex=True, sharey=True)
    for ax, rank in zip(axes.flat, ranks):
        sns.histplot(neighbours.loc[neighbours["rank"] == rank, "ssim"], bins=20, ax=ax)
        ax.set_title(f"top-{int(rank)}", fontsize=9)
        if copy_threshold is not None:
            ax.axvline(copy_threshold, color="crimson", linestyle="--", linewidth=1)
    for ax in list(axes.flat)[len(ranks):]:
        ax.axis("off")
    fig.suptitle("SSIM to the nearest training images", fontsize=10)
    fig.tight_layout()
    return fig


def nearest_curve(neighbours: pd.DataFrame, mean_ssim: pd.DataFrame | None = None):
    """The mean-SSIM curve: with ``--mean-all`` output, each generated image's mean SSIM over
    the whole training set (sorted) with its top-1; otherwise the mean SSIM at each rank."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    if mean_ssim is not None and len(mean_ssim):
        order = np.argsort(mean_ssim["mean_ssim_all_train"].to_numpy())
        x = np.arange(1, len(order) + 1)
        ax.plot(x, mean_ssim["mean_ssim_all_train"].to_numpy()[order], label="mean SSIM over all training images")
        ax.scatter(x, mean_ssim["top1_ssim"].to_numpy()[order], s=8, color="darkorange", label="top-1 SSIM")
        ax.set_xlabel("generated images, sorted by mean SSIM")
    else:
        g = neighbours.groupby("rank")["ssim"]
        mean, q25, q75 = g.mean(), g.quantile(0.25), g.quantile(0.75)
        ax.plot(mean.index, mean.to_numpy(), marker="o", label="mean SSIM")
        ax.fill_between(mean.index, q25.to_numpy(), q75.to_numpy(), alpha=0.25, label="interquartile range")
        ax.set_xlabel("neighbour rank")
        ax.set_xticks(mean.index)
    ax.set_ylabel("SSIM")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


METRIC_TITLES = {"fid": "FID (lower is closer)", "kid_mean": "KID (lower is closer; ± std)",
                 "is_mean": "Inception Score of B (± std over splits)", "precision": "precision (fidelity)",
                 "recall": "recall (diversity)", "density": "density (fidelity)", "coverage": "coverage (diversity)"}


def metric_bars(table: pd.DataFrame, metric: str = "fid"):
    """One metric of each result in the given ``ganeval fid --json`` files (error bars from its
    ``*_std`` column when there is one); results with non-standard weights are hatched."""
    from ganeval.analysis.inputs import PLOTTED_METRICS, nonstandard

    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(table) + 2), 3))
    labels = [f"{n}\n({f})" if f else n for n, f in zip(table["name"], table["features"].fillna(""))]
    spread = PLOTTED_METRICS.get(metric)
    err = table[spread].to_numpy(dtype=float) if spread and spread in table.columns else None
    bars = ax.bar(np.arange(len(table)), table[metric].to_numpy(dtype=float),
                  yerr=None if err is None else np.nan_to_num(err), capsize=4, color="#4c72b0")
    for bar, standard in zip(bars, table.get("standard_weights", pd.Series([None] * len(table)))):
        if nonstandard(standard):
            bar.set_hatch("//")
            bar.set_label("non-standard weights")
    ax.set_xticks(np.arange(len(table)), labels, fontsize=7)
    ax.set_ylabel(METRIC_TITLES.get(metric, metric), fontsize=8)
    if any(b.get_label() == "non-standard weights" for b in bars):
        handles = [b for b in bars if b.get_label() == "non-standard weights"][:1]
        ax.legend(handles=handles, fontsize=7)
    fig.tight_layout()
    return fig


def fid_bars(fid: pd.DataFrame):
    """FID of each comparison (``metric_bars`` for ``fid``)."""
    return metric_bars(fid, "fid")


def mixed_model_bars(effects: pd.DataFrame):
    """Implied P(judged real) per model label from the mixed model, with 95% intervals."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(effects) + 2), 3))
    p = effects["p_judged_real"].to_numpy(dtype=float)
    err = np.vstack([p - effects["p_low"].to_numpy(dtype=float), effects["p_high"].to_numpy(dtype=float) - p])
    ax.bar(np.arange(len(p)), p, yerr=np.nan_to_num(err), capsize=4,
           color=["#55a868" if lab == "real" else "#c44e52" for lab in effects["model_label"]])
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(np.arange(len(p)), list(effects["model_label"]), fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("P(judged real)", fontsize=8)
    ax.set_title("mixed model: a typical participant and image", fontsize=10)
    fig.tight_layout()
    return fig


def training_curves(runs: pd.DataFrame):
    """FID against training step when the runs' metrics have a ``fid`` column; the losses
    otherwise (the title says which)."""
    plt = _plt()
    has_fid = "fid" in runs.columns and runs["fid"].notna().any()
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    for run, part in runs.groupby("run", sort=False):
        if has_fid:
            part = part[part["fid"].notna()]
            ax.plot(part["step"], part["fid"], marker="o", label=run)
        else:
            for col in ("loss_d", "loss_g"):
                if col in part.columns:
                    # a short run logs a row or two: markers, or a lone point would draw nothing
                    ax.plot(part["step"], part[col], marker="o" if len(part) < 20 else None, label=f"{run}: {col}")
    ax.set_xlabel("training step")
    ax.set_ylabel("FID" if has_fid else "loss")
    ax.set_title("FID during training" if has_fid else "losses during training (the runs logged no FID)", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def per_image_vs_humans(joined: pd.DataFrame, table: pd.DataFrame):
    """Each fake image's fool rate against each per-image score (one panel per score, one
    colour per model), titled with Spearman's ρ over all images."""
    from ganeval.analysis.human_metrics import SCORES

    plt, sns = _plt(), _sns()
    fig, axes = plt.subplots(1, len(SCORES), figsize=(3.2 * len(SCORES), 3), sharey=True)
    for ax, score in zip(axes, SCORES):
        sns.scatterplot(joined, x=score, y="fool_rate", hue="model_label", ax=ax, s=18, legend=ax is axes[-1])
        rho = table[(table["scope"] == "all") & (table["score"] == score)]["spearman_rho"]
        ax.set_title(f"{score}\nρ = {rho.iloc[0]:.2f}" if len(rho) and np.isfinite(rho.iloc[0]) else score,
                     fontsize=9)
    axes[0].set_ylabel("fool rate (judged real)")
    fig.tight_layout()
    return fig
