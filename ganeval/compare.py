"""``ganeval compare``: several generators (or image sets) measured against one real set, as the
tables of GAN papers do, and FID over a run's snapshots, as their FID-vs-kimg curves do.

The real features are extracted once; each candidate is a generator (drawn through the one
sampler: seeds ``seed … seed+n−1``) or an image source. FID gets a bootstrap interval over the
candidate's samples (the real statistics fixed), KID its subset standard deviation."""
from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ganeval import atomic
from ganeval.api import (_as_side, _features_of, generator_side, metrics_from_features, parse_metrics)
from ganeval.device import resolve_device
from ganeval.errors import BadInput
from ganeval.features.registry import build_extractor
from ganeval.generators import is_generator_file, load_generator
from ganeval.metrics.fid import frechet_distance
from ganeval.features.featureset import FeatureSet

TABLE_FILES = ("comparison.csv", "comparison.md", "comparison.json", "comparison.png")
CURVE_FILES = ("over_training.csv", "over_training.png")
SNAPSHOT = re.compile(r"network-snapshot-(\d+)\.pkl$")


@dataclass
class Comparison:
    rows: list[dict[str, Any]]
    metrics: tuple[str, ...]
    features: str
    n: int
    real: str
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"real": self.real, "features": self.features, "n": self.n, "metrics": list(self.metrics),
                "rows": self.rows}


class _Measurer:
    """One extractor and the real features, shared by every candidate."""

    def __init__(self, real: Any, metrics: Sequence[str] | str | None, features: str, weights: Any, device: Any,
                 batch_size: int, num_workers: int, n: int, seed: int, noise_mode: str, truncation: float,
                 on_warning: Callable[[str], None]):
        self.metrics = parse_metrics(metrics)
        self.device = resolve_device(device)
        self.batch_size, self.num_workers, self.n, self.seed = batch_size, num_workers, n, seed
        self.options = {"noise_mode": noise_mode, "truncation": truncation}
        self.on_warning = on_warning
        self.extractor = build_extractor(features, weights, self.device)
        side = _as_side(real, "real", None, n, batch_size, seed, self.device)
        self.real = self.features(side)

    def features(self, side: Any) -> FeatureSet:
        return _features_of(side, self.extractor, self.device, self.batch_size, self.num_workers, False, True,
                            self.on_warning)

    def side(self, candidate: Any, label: str) -> Any:
        if isinstance(candidate, (str, os.PathLike)) and not is_generator_file(candidate) and ":" not in str(candidate):
            return _as_side(str(candidate), label, None, self.n, self.batch_size, self.seed, self.device)
        G = load_generator(candidate, device=self.device)
        return generator_side(G, range(self.seed, self.seed + self.n), self.batch_size, **self.options)

    def measure(self, candidate: Any, label: str, bootstrap: int) -> dict[str, Any]:
        fs = self.features(self.side(candidate, label))
        values = metrics_from_features(self.real, fs, self.metrics, self.extractor, seed=self.seed,
                                       device=self.device, on_warning=self.on_warning)
        row: dict[str, Any] = {"label": label, "source": str(candidate), "n": fs.n}
        row.update({k: v for k, v in values.items() if isinstance(v, (int, float)) or v is None})
        if "fid" in self.metrics and bootstrap and fs.features is not None:
            low, high = fid_interval(self.real, fs.features, bootstrap, self.seed)
            row.update(fid_ci_low=low, fid_ci_high=high)
        return row


def fid_interval(real: FeatureSet, fake: np.ndarray, resamples: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of FID over the candidate's samples (rows drawn with
    replacement), the real statistics held fixed."""
    rng = np.random.default_rng(seed)
    fake = np.asarray(fake, dtype=np.float64)
    values = []
    for _ in range(resamples):
        rows = fake[rng.integers(0, len(fake), len(fake))]
        values.append(frechet_distance(real.mu, real.sigma, rows.mean(0), np.cov(rows, rowvar=False)))
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def _labels(candidates: Sequence[Any], labels: Sequence[str | None] | None) -> list[str]:
    out = []
    for i, cand in enumerate(candidates):
        given = labels[i] if labels and i < len(labels) else None
        name = given or (Path(str(cand)).stem if isinstance(cand, (str, os.PathLike)) else f"candidate {i + 1}")
        if name in out:
            name = f"{name} ({i + 1})"
        out.append(name)
    return out


def compare(real: Any, candidates: Sequence[Any], labels: Sequence[str | None] | None = None, *,
            metrics: str | Sequence[str] | None = ("fid", "kid"), n: int = 10_000, seed: int = 0,
            bootstrap: int = 20, features: str = "inception", weights: str | os.PathLike | None = None,
            device: str | torch.device = "auto", batch_size: int = 50, num_workers: int = 0,
            noise_mode: str = "random", truncation: float = 1.0, outdir: str | os.PathLike | None = None,
            overwrite: bool = False, on_warning: Callable[[str], None] = lambda m: None) -> Comparison:
    """The chosen metrics of every candidate against ``real`` (features extracted once)."""
    if not candidates:
        raise BadInput("give at least one generator or image set to compare")
    if bootstrap < 0:
        raise BadInput(f"--bootstrap must be 0 or more, got {bootstrap}")
    out = _prepare(outdir, [real, *candidates], TABLE_FILES, overwrite)
    measurer = _Measurer(real, metrics, features, weights, device, batch_size, num_workers, n, seed, noise_mode,
                         truncation, on_warning)
    rows = [measurer.measure(c, label, bootstrap) for c, label in zip(candidates, _labels(candidates, labels))]
    result = Comparison(rows, measurer.metrics, measurer.extractor.info.name, n, str(real))
    if out is not None:
        _write_table(out, result)
    return result


def _prepare(outdir: str | os.PathLike | None, inputs: Sequence[Any], names: Sequence[str], overwrite: bool,
             resume: bool = False, settings: dict[str, Any] | None = None):
    if outdir is None:
        return None
    from ganeval.outputs import prepare_output_dir

    paths = [x for x in inputs if isinstance(x, (str, os.PathLike)) and Path(x).exists()]
    return prepare_output_dir(outdir, "compare", paths, overwrite, resume=resume, settings=settings,
                              reserve=tuple(names), can_resume=resume)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for row in rows:
        cols += [k for k in row if k not in cols]
    return cols


def _write_table(out: Any, result: Comparison) -> None:
    folder = Path(out.path) if hasattr(out, "path") else Path(out)
    cols = _columns(result.rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.rows)
    atomic.write_text(folder / "comparison.csv", buf.getvalue())
    shown = [c for c in cols if c != "source"]
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for row in result.rows:
        lines.append("| " + " | ".join(_fmt(row.get(c)) for c in shown) + " |")
    atomic.write_text(folder / "comparison.md", "\n".join(lines) + "\n")
    atomic.write_text(folder / "comparison.json", json.dumps(result.as_dict(), indent=2, default=float) + "\n")
    _bar_plot(folder / "comparison.png", result)
    if hasattr(out, "record_new"):
        out.record_new()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _bar_plot(path: Path, result: Comparison) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = "fid" if "fid" in result.metrics else next((k for k in ("kid_mean", "is_mean", "precision")
                                                       if k in result.rows[0]), None)
    if key is None:
        return
    labels = [r["label"] for r in result.rows]
    values = [r.get(key) or 0.0 for r in result.rows]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(labels) + 2), 3.6))
    err = None
    if key == "fid" and all("fid_ci_low" in r for r in result.rows):
        err = np.array([[r["fid"] - r["fid_ci_low"] for r in result.rows], [r["fid_ci_high"] - r["fid"] for r in result.rows]])
    elif key == "kid_mean":
        err = [r.get("kid_std") or 0.0 for r in result.rows]
    ax.bar(labels, values, yerr=err, capsize=4, color="#4c72b0")
    ax.set_ylabel(f"{key.upper() if key == 'fid' else key} ({result.features}, n={result.n})")
    ax.set_title("lower is better" if key in ("fid", "kid_mean") else "")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())


# ------------------------------------------------------------------ FID over training

def snapshots(run: str | os.PathLike) -> list[tuple[float, Path]]:
    """(kimg or step, file) of a run folder's snapshots: NVlabs ``network-snapshot-KIMG.pkl`` and
    ganeval checkpoints (``*.pt``; their number is the step in the name, 0 if none)."""
    folder = Path(run).expanduser()
    if not folder.is_dir():
        raise BadInput(f"{folder}: not a run folder")
    found = []
    for path in sorted(folder.iterdir()):
        m = SNAPSHOT.search(path.name)
        if m:
            found.append((float(m.group(1)), path))
        elif path.suffix == ".pt" and path.is_file():
            digits = re.findall(r"\d+", path.stem)
            found.append((float(digits[-1]) if digits else 0.0, path))
    if not found:
        raise BadInput(f"{folder}: no snapshots (network-snapshot-*.pkl or ganeval *.pt checkpoints)")
    return sorted(found)


def over_training(run: str | os.PathLike, real: Any, outdir: str | os.PathLike, *, n: int = 10_000, seed: int = 0,
                  features: str = "inception", weights: str | os.PathLike | None = None,
                  device: str | torch.device = "auto", batch_size: int = 50, num_workers: int = 0,
                  overwrite: bool = False, on_warning: Callable[[str], None] = lambda m: None,
                  say: Callable[[str], None] = lambda m: None) -> list[dict[str, Any]]:
    """FID of every snapshot of ``run`` against ``real``, into ``over_training.csv`` and a curve.
    Resumable: a snapshot already in the CSV with the same size and time is not measured again."""
    found = snapshots(run)
    folder = Path(outdir)
    csv_path = folder / "over_training.csv"
    done: dict[str, dict[str, str]] = {}
    if csv_path.is_file():
        with open(csv_path, newline="") as fh:
            done = {r["file"]: r for r in csv.DictReader(fh)}
    settings = {"real": str(real), "n": n, "seed": seed, "features": features}
    out = _prepare(outdir, [run, real], CURVE_FILES, overwrite, resume=bool(done) and not overwrite, settings=settings)
    if overwrite:
        done = {}
    measurer = None
    rows: list[dict[str, Any]] = []
    for step, path in found:
        stamp = f"{path.stat().st_size}:{path.stat().st_mtime_ns}"
        previous = done.get(path.name)
        if previous and previous.get("stamp") == stamp and previous.get("n") == str(n):
            rows.append(previous)
            say(f"{path.name}: FID {float(previous['fid']):.3f} (cached)")
            continue
        if measurer is None:
            measurer = _Measurer(real, ("fid",), features, weights, device, batch_size, num_workers, n, seed,
                                 "random", 1.0, on_warning)
        row = measurer.measure(path, path.stem, bootstrap=0)
        rows.append({"file": path.name, "kimg_or_step": step, "fid": row["fid"], "n": n, "stamp": stamp})
        say(f"{path.name}: FID {row['fid']:.3f}")
        _write_curve(folder, rows)  # after every snapshot: an interrupted run keeps what it measured
    if out is not None and hasattr(out, "record_new"):
        out.record_new()
    return rows


def _write_curve(folder: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["file", "kimg_or_step", "fid", "n", "stamp"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(folder / "over_training.csv", buf.getvalue())
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot([float(r["kimg_or_step"]) for r in rows], [float(r["fid"]) for r in rows], marker="o")
    ax.set_xlabel("kimg (NVlabs snapshots) or step")
    ax.set_ylabel("FID")
    fig.tight_layout()
    buf2 = io.BytesIO()
    fig.savefig(buf2, format="png", dpi=120)
    plt.close(fig)
    atomic.write_bytes(folder / "over_training.png", buf2.getvalue())
