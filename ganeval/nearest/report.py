"""Everything ``ganeval nearest`` writes into OUTDIR: the neighbour table, the summary,
histograms, contact sheets and the mean-SSIM curve. Each file is written atomically."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy.stats import skew

from ganeval.atomic import atomic_path, write_bytes, write_text

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _csv_text(header: Sequence[str], rows) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_neighbours_csv(path: Path, query_keys: Sequence[str], train_keys: Sequence[str],
                         ids: np.ndarray, scores: np.ndarray) -> None:
    """One row per (query, rank): query, rank (1 = most similar), training image, SSIM."""
    rows = ((query_keys[q], r + 1, train_keys[ids[q, r]], f"{scores[q, r]:.6f}")
            for q in range(len(ids)) for r in range(ids.shape[1]) if ids[q, r] >= 0)
    write_text(path, _csv_text(("query", "rank", "train", "ssim"), rows))


def write_mean_csv(path: Path, query_keys: Sequence[str], mean_all: np.ndarray, top1: np.ndarray) -> None:
    rows = ((k, f"{m:.6f}", f"{t:.6f}") for k, m, t in zip(query_keys, mean_all, top1))
    write_text(path, _csv_text(("query", "mean_ssim_all_train", "top1_ssim"), rows))


def describe(values: np.ndarray) -> dict:
    """Mean, median, quantiles, min and max of a score column."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return {"n": 0}
    out = {"n": int(len(v)), "mean": float(v.mean()), "median": float(np.median(v)),
           "std": float(v.std()), "min": float(v.min()), "max": float(v.max())}
    out.update({f"q{int(q * 100):02d}": float(np.quantile(v, q)) for q in QUANTILES})
    return out


def rank_statistics(scores: np.ndarray) -> list[dict]:
    return [{"rank": r + 1, **describe(scores[:, r])} for r in range(scores.shape[1])]


def copy_shares(top1: np.ndarray, threshold: float) -> dict:
    """Copies: top-1 SSIM at or above the threshold; everything else counts as original."""
    copies = int(np.sum(top1 >= threshold))
    n = len(top1)
    return {"copy_threshold": threshold, "copies": copies, "copy_share": copies / n if n else float("nan"),
            "original": n - copies, "original_share": (n - copies) / n if n else float("nan")}


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


# ------------------------------------------------------------------ plots

def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def plot_rank_histograms(path: Path, scores: np.ndarray, threshold: float | None = None) -> None:
    """Seaborn histograms of the top-1 … top-k SSIM, one panel per rank."""
    import pandas as pd
    import seaborn as sns

    plt = _pyplot()
    k = scores.shape[1]
    frame = pd.DataFrame({"SSIM": scores.reshape(-1), "rank": np.tile(np.arange(1, k + 1), len(scores))})
    frame = frame[np.isfinite(frame["SSIM"])]
    cols = min(k, 4)
    grid = sns.displot(frame, x="SSIM", col="rank", col_wrap=cols if k > cols else None, bins=30,
                       height=2.6, aspect=1.1, facet_kws={"sharey": True})
    grid.set_titles("top-{col_name}")
    if threshold is not None:
        for ax in grid.axes.flat:
            ax.axvline(threshold, color="crimson", linestyle="--", linewidth=1)
    grid.figure.suptitle("SSIM of each generated image's nearest training images", y=1.03)
    _save_figure(grid.figure, path)
    plt.close(grid.figure)


def plot_mean_curve(path: Path, mean_all: np.ndarray, top1: np.ndarray) -> None:
    """Each generated image's mean SSIM over the whole training set, sorted, with its top-1."""
    import seaborn as sns

    plt = _pyplot()
    order = np.argsort(mean_all)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    x = np.arange(1, len(order) + 1)
    sns.lineplot(x=x, y=mean_all[order], ax=ax, label="mean SSIM over all training images")
    sns.scatterplot(x=x, y=top1[order], ax=ax, s=8, color="darkorange", label="top-1 SSIM", linewidth=0)
    ax.set_xlabel("generated images, sorted by mean SSIM")
    ax.set_ylabel("SSIM")
    ax.legend(loc="best", fontsize=8)
    _save_figure(fig, path)
    plt.close(fig)


# ------------------------------------------------------------------ contact sheets

def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def contact_sheet(queries: np.ndarray, neighbours: np.ndarray, scores: np.ndarray, labels: Sequence[str],
                  scale: int = 1) -> Image.Image:
    """Rows of [query | its k neighbours], each neighbour captioned with its SSIM.

    ``queries`` N×H×W×3, ``neighbours`` N×k×H×W×3 uint8."""
    n, k = neighbours.shape[:2]
    h, w = queries.shape[1] * scale, queries.shape[2] * scale
    cap = max(12, h // 6)
    pad = 4
    sep = 10
    sheet = Image.new("RGB", (pad + (w + pad) * (k + 1) + sep, pad + (h + cap + pad) * n), "white")
    draw = ImageDraw.Draw(sheet)
    font = _font(max(9, cap - 3))

    def paste(img: np.ndarray, x: int, y: int) -> None:
        tile = Image.fromarray(img)
        if scale != 1:
            tile = tile.resize((w, h), Image.Resampling.NEAREST)
        sheet.paste(tile, (x, y))

    for i in range(n):
        y = pad + i * (h + cap + pad)
        paste(queries[i], pad, y)
        draw.text((pad, y + h), labels[i][: max(4, w // 6)], fill="black", font=font)
        for j in range(k):
            x = pad + sep + (j + 1) * (w + pad)
            if not np.isfinite(scores[i, j]):
                continue
            paste(neighbours[i, j], x, y)
            draw.text((x, y + h), f"{scores[i, j]:.3f}", fill="black", font=font)
        draw.line([(pad + w + sep // 2 + 2, y), (pad + w + sep // 2 + 2, y + h)], fill="gray", width=1)
    return sheet


def write_contact_sheets(outdir: Path, order: np.ndarray, queries: np.ndarray, train_images, ids: np.ndarray,
                         scores: np.ndarray, labels: Sequence[str], rows_per_sheet: int = 16) -> list[Path]:
    """Sheets for the queries in ``order`` (most similar first); ``train_images(ids)`` fetches pixels."""
    outdir.mkdir(parents=True, exist_ok=True)
    h = queries.shape[1]
    scale = max(1, math.ceil(64 / h)) if h < 64 else 1
    paths = []
    for s in range(0, len(order), rows_per_sheet):
        rows = order[s : s + rows_per_sheet]
        nb_ids = ids[rows]
        flat = np.where(nb_ids >= 0, nb_ids, 0).reshape(-1)
        nb = train_images(flat).reshape(len(rows), ids.shape[1], *queries.shape[1:])
        sheet = contact_sheet(queries[rows], nb, scores[rows], [labels[r] for r in rows], scale)
        path = outdir / f"sheet_{s // rows_per_sheet + 1:03d}.png"
        buf = io.BytesIO()
        sheet.save(buf, format="PNG")
        write_bytes(path, buf.getvalue())
        paths.append(path)
    return paths


# ------------------------------------------------------------------ hubness

HUB_WARNING_SHARE = 0.05  # one training image as top-1 of more than this share of queries: a hub
HUBNESS_K = (1, 5, 10)    # k-occurrence skewness S_Nk is reported for these k (Radovanović et al. 2010)
HUB_WARNING_SKEW = 1.2    # S_Nk this far above a hub-free choice's: a few training images take many queries


def k_occurrence(neighbour_ids: np.ndarray, n_train: int, k: int) -> np.ndarray:
    """N_k(x) for every training image x: how many queries hold x among their k nearest
    neighbours. Training images no query picks count as zeros (they are part of the law)."""
    ids = np.asarray(neighbour_ids)[:, :k].ravel()
    return np.bincount(ids[ids >= 0], minlength=n_train)


def occurrence_skewness(counts: np.ndarray) -> float | None:
    """S_Nk = E[(N_k − μ)³] / σ³ over all training images (Radovanović, Nanopoulos and
    Ivanović 2010, "Hubs in Space", JMLR 11): 0 for an even spread, large and positive when
    a few training images are the neighbours of many queries."""
    counts = np.asarray(counts, dtype=np.float64)
    if len(counts) < 2 or counts.std() == 0:
        return None
    return float(skew(counts, bias=True))


def hubness(neighbour_ids: np.ndarray, train_keys: Sequence[str], n_hubs: int = 10) -> dict:
    """How concentrated the neighbours are on a few training images.

    A blurry or low-contrast generator can make one pale training face every query's SSIM
    top-1 (SSIM favours low contrast): a hub, not a copy. ``skewness`` holds the
    k-occurrence skewness S_Nk for k = 1, 5, 10 (those the neighbour lists are long enough
    for), the standard measure of hubness; ``top1_share`` is the share of queries whose top-1
    is the single most frequent training image; ``hubs`` the ``n_hubs`` most frequent top-1
    images; ``warning`` a sentence when one image takes more than 5%, or when S_Nk at the
    largest k exceeds by 1.2 what neighbours chosen at random would give (1/√(kQ/T) for Q
    queries and T training images: ``skewness_hub_free``)."""
    ids = np.asarray(neighbour_ids)
    if ids.ndim == 1:
        ids = ids[:, None]
    ids = ids[ids[:, 0] >= 0]
    n = len(ids)
    n_train = len(train_keys)
    if not n:
        return {"queries": 0, "distinct_top1": 0, "top1_share": None, "hubs": [], "skewness": {},
                "warning": None}
    ks = [k for k in HUBNESS_K if k <= ids.shape[1] and k <= n_train]
    skewness = {f"S_N{k}": occurrence_skewness(k_occurrence(ids, n_train, k)) for k in ks}
    # neighbours drawn uniformly at random give N_k ≈ Poisson(kQ/T), whose skewness 1/√(kQ/T)
    # is not hubness (large when there are few queries per training image): the warning
    # measures S_Nk above it, at the largest k the lists hold
    baseline = {f"S_N{k}": float(1 / np.sqrt(k * n / n_train)) for k in ks}
    uniq, counts = np.unique(ids[:, 0], return_counts=True)
    order = np.lexsort((uniq, -counts))[:n_hubs]
    hubs = [{"train": train_keys[int(uniq[i])], "index": int(uniq[i]), "top1_count": int(counts[i]),
             "top1_share": float(counts[i] / n)} for i in order]
    share = hubs[0]["top1_share"]
    warnings = []
    if share > HUB_WARNING_SHARE and hubs[0]["top1_count"] > 1:
        warnings.append(f"hub: training image {hubs[0]['train']} is the top-1 neighbour of {hubs[0]['top1_count']} "
                        f"of {n} queries ({100 * share:.1f}%); a hub (e.g. a low-contrast image), not necessarily "
                        "a copy")
    if ks and ks[-1] > 1:
        name = f"S_N{ks[-1]}"
        value = skewness[name]
        if value is not None and value - baseline[name] > HUB_WARNING_SKEW:
            warnings.append(f"hubness: k-occurrence skewness {name} = {value:.2f} (a hub-free choice gives "
                            f"{baseline[name]:.2f}): a few training images are the neighbours of many queries")
    return {"queries": n, "distinct_top1": int(len(uniq)), "top1_share": share, "hubs": hubs,
            "skewness": skewness, "skewness_hub_free": baseline, "warning": "; ".join(warnings) or None}


def hub_sheet(hub_images: np.ndarray, counts: Sequence[int], n_queries: int, scale: int = 1) -> Image.Image:
    """One row of the most frequent top-1 training images, each captioned with how many queries."""
    n, h, w = len(hub_images), hub_images.shape[1] * scale, hub_images.shape[2] * scale
    cap, pad = max(12, h // 6), 4
    sheet = Image.new("RGB", (pad + (w + pad) * max(1, n), pad + h + cap + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = _font(max(9, cap - 3))
    for j in range(n):
        tile = Image.fromarray(hub_images[j])
        if scale != 1:
            tile = tile.resize((w, h), Image.Resampling.NEAREST)
        x = pad + j * (w + pad)
        sheet.paste(tile, (x, pad))
        draw.text((x, pad + h), f"{counts[j]}/{n_queries}", fill="black", font=font)
    return sheet


def write_hub_sheet(path: Path, hubs: dict, train_images) -> None:
    """``contact_sheets/hubs.png``: the top hubs of :func:`hubness` (``train_images(ids)`` fetches pixels)."""
    if not hubs["hubs"]:
        return
    ids = np.array([h["index"] for h in hubs["hubs"]])
    images = train_images(ids)
    h = images.shape[1]
    scale = max(1, math.ceil(64 / h)) if h < 64 else 1
    sheet = hub_sheet(images, [x["top1_count"] for x in hubs["hubs"]], hubs["queries"], scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    write_bytes(path, buf.getvalue())
