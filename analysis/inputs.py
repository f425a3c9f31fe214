"""Read the outputs of other ganeval commands for the report: a ``ganeval nearest`` folder,
``ganeval fid --json`` files and training runs' ``metrics.csv``. Each reader checks what it
needs and raises one ``BadInput`` line naming the file otherwise."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ganeval.errors import BadInput

NEIGHBOURS = "neighbours.csv"   # query, rank, train, ssim   (ganeval/nearest/report.py)
MEAN_SSIM = "mean_ssim.csv"     # query, mean_ssim_all_train, top1_ssim   (--mean-all only)
SUMMARY = "summary.json"
METRICS = "metrics.csv"         # RUN/metrics.csv (models/trainer.py MetricsLog)
FID_LOG = "fid.csv"             # RUN/fid.csv (models/fid_monitor.py, `ganeval train --fid-every`)


@dataclass
class NearestOutput:
    folder: Path
    neighbours: pd.DataFrame
    summary: dict
    mean_ssim: pd.DataFrame | None


def load_nearest(folder: str | os.PathLike) -> NearestOutput:
    """The neighbour table, summary and (when written) the mean-SSIM table of a nearest run."""
    folder = Path(folder)
    path = folder / NEIGHBOURS
    if not path.is_file():
        raise BadInput(f"{folder}: not a `ganeval nearest` output folder (no {NEIGHBOURS})")
    table = _read_table(path, ("query", "rank", "train", "ssim"))
    table["rank"] = pd.to_numeric(table["rank"], errors="coerce")
    table["ssim"] = pd.to_numeric(table["ssim"], errors="coerce")
    summary = {}
    if (folder / SUMMARY).is_file():
        summary = _read_json(folder / SUMMARY)
    mean = None
    if (folder / MEAN_SSIM).is_file():
        mean = _read_table(folder / MEAN_SSIM, ("query", "mean_ssim_all_train", "top1_ssim"))
        for col in ("mean_ssim_all_train", "top1_ssim"):
            mean[col] = pd.to_numeric(mean[col], errors="coerce")
    return NearestOutput(folder, table, summary, mean)


def nearest_rank_table(nearest: NearestOutput) -> pd.DataFrame:
    """Mean, median and quartiles of the SSIM at each neighbour rank."""
    g = nearest.neighbours.groupby("rank")["ssim"]
    return pd.DataFrame({"n": g.size(), "mean": g.mean(), "q25": g.quantile(0.25), "median": g.median(),
                         "q75": g.quantile(0.75), "max": g.max()}).reset_index()


# every metric `ganeval fid --json` may hold, in table order; ``*_std`` are the spreads of ``*_mean``
METRIC_KEYS = ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall", "density", "coverage")
PLOTTED_METRICS = {"fid": None, "kid_mean": "kid_std", "is_mean": "is_std", "precision": None, "recall": None,
                   "density": None, "coverage": None}  # metric -> its error-bar column
# feature dimensions of the extractors `ganeval fid --features` knows (when the JSON does not say)
FEATURE_DIMS = {"inception": 2048, "illust2vec": 4096, "dinov2": 1024, "clip": 768}


def _is_result(obj) -> bool:
    return isinstance(obj, dict) and any(k in obj for k in METRIC_KEYS)


def load_fid(paths: list[str | os.PathLike]) -> pd.DataFrame:
    """One row per result. A file is either one ``ganeval fid --json`` object or a mapping of
    names to such objects (as the demo writes); the row name is the key or the file stem.
    Every known metric key present is kept (a missing one is NaN), with ``standard_weights``
    (None when the file does not say) and the sample counts, for the caveats."""
    rows = []
    for path in map(Path, paths):
        data = _read_json(path)
        items = [(path.stem, data)] if _is_result(data) else (list(data.items()) if isinstance(data, dict) else [])
        items = [(name, obj) for name, obj in items if _is_result(obj)]
        if not items:
            raise BadInput(f"{path}: no FID result in it (expected the output of `ganeval fid --json`)")
        for name, obj in items:
            a, b = obj.get("a") or {}, obj.get("b") or {}
            standard = obj.get("standard_weights")
            row = {"file": path.name, "name": name}
            row.update({key: _num(obj.get(key)) for key in METRIC_KEYS})
            row.update({"features": obj.get("features"), "standard_weights": None if standard is None else bool(standard),
                        "feature_dim": obj.get("dim") or obj.get("feature_dim") or FEATURE_DIMS.get(str(obj.get("features"))),
                        "a": a.get("path"), "b": b.get("path"), "n_a": a.get("n"), "n_b": b.get("n")})
            rows.append(row)
    return pd.DataFrame(rows)


def present_metrics(table: pd.DataFrame) -> list[str]:
    """The plotted metrics that have at least one value in ``table``."""
    return [m for m in PLOTTED_METRICS if m in table.columns and table[m].notna().any()]


def nonstandard(flag) -> bool:
    """True only for an explicit ``standard_weights: false`` (unknown is not a caveat)."""
    return flag is not None and not (isinstance(flag, float) and flag != flag) and not bool(flag)


def fid_caveats(table: pd.DataFrame) -> list[str]:
    """What a reader must know before comparing these numbers: weights that are not the
    published ones, and fewer samples than feature dimensions (FID biased upwards)."""
    out = []
    for _, row in table.iterrows():
        if nonstandard(row.get("standard_weights")):
            out.append(f"{row['name']}: computed with non-standard {row['features'] or 'feature'} weights; not "
                       "comparable with published numbers")
        dim = row.get("feature_dim")
        for side in ("n_a", "n_b"):
            n = row.get(side)
            if dim and n is not None and not pd.isna(n) and int(n) < int(dim):
                out.append(f"{row['name']}: {int(n)} samples ({side[-1].upper()}) < {int(dim)} feature dimensions; "
                           "FID is biased upwards and comparable only at equal sample counts")
    return out


def load_runs(runs: list[str | os.PathLike]) -> pd.DataFrame:
    """The training runs' metrics.csv rows stacked, with a ``run`` column (the folder name)."""
    frames = []
    for run in map(Path, runs):
        path = run / METRICS if run.is_dir() else run
        if not path.is_file():
            raise BadInput(f"{run}: not a training run (no {METRICS})")
        table = _read_table(path, ("step",))
        table = table.apply(pd.to_numeric, errors="coerce")
        fid_log = path.parent / FID_LOG
        if fid_log.is_file():  # written by `ganeval train --fid-every`: one row per measurement
            fid = _read_table(fid_log, ("step", "fid"))[["step", "fid"]].apply(pd.to_numeric, errors="coerce")
            table = table.drop(columns=["fid"], errors="ignore").merge(fid, on="step", how="outer").sort_values("step")
        table.insert(0, "run", run.name if run.is_dir() else run.parent.name)
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def _read_table(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as err:
        raise BadInput(f"{path}: unreadable CSV ({str(err).strip().splitlines()[0] if str(err).strip() else 'empty'})") from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise BadInput(f"{path}: missing column(s) {', '.join(missing)}")
    return table


def _read_json(path: Path):
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadInput(f"{path}: not valid JSON ({err})") from None


def _num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
