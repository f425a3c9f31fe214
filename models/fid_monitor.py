"""FID during training: every ``--fid-every`` steps, samples of the EMA generator against a
reference set, appended to ``RUN/fid.csv`` (step, kimg, fid, n, features, and the other
``--fid-metrics``: kid_mean, is_mean, precision, …) — the curve the report plots. The reference
features are computed once (and cached, like ``ganeval fid``); the numbers come from the same
``ganeval.api.metrics_from_features`` that ``ganeval fid`` uses."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import torch

from ganeval.atomic import write_text
from ganeval.errors import BadInput
from ganeval.features.registry import build_extractor
from ganeval.api import metrics_from_features, parse_metrics
from ganeval.features.extract import generator_features
from ganeval.stats import path_features
from ganeval.features.featureset import FeatureSet
from ganeval.models.checkpoint import load_generator
from ganeval.sampler import renderer, sample_batches

FID_LOG = "fid.csv"
COLUMNS = ("step", "kimg", "fid", "n", "features")
EXTRA_COLUMNS = {"kid": ("kid_mean", "kid_std"), "is": ("is_mean", "is_std"),
                 "prdc": ("precision", "recall", "density", "coverage")}


class FIDMonitor:
    """Built before the first step, so a missing reference or missing weights stop the run
    before any training time is spent."""

    def __init__(self, run_dir: str | Path, reference: str, n: int, features: str, weights: str | None,
                 device: torch.device, batch_size: int = 50, seed: int = 0, metrics: str = "fid"):
        if n < 2:
            raise BadInput(f"--fid-n must be at least 2, got {n}")
        self.metrics = tuple(dict.fromkeys(("fid",) + parse_metrics(metrics)))  # FID always: the curve
        self.columns = COLUMNS + tuple(c for m in self.metrics for c in EXTRA_COLUMNS.get(m, ()))
        self.path = Path(run_dir) / FID_LOG
        self.n, self.batch_size, self.seed, self.device = n, batch_size, seed, device
        self.extractor = build_extractor(features, weights, device)
        self.reference: FeatureSet = path_features(reference, self.extractor, device, batch_size)
        self.features = features
        if self.reference.features is None and set(self.metrics) & {"kid", "prdc"}:
            raise BadInput(f"--fid-metrics {','.join(self.metrics)}: kid and prdc need reference images, "
                           f"not a statistics file ({reference})")
        if "is" in self.metrics:
            self.extractor.logits(torch.zeros(1, self.extractor.info.dim))  # no classifier: fail before training

    def rows(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as fh:
            return list(csv.DictReader(fh))

    def measure(self, checkpoint: dict[str, Any], step: int, kimg: float) -> float:
        """FID of ``n`` EMA samples (seed 0, as `ganeval fid --generator`, so steps are comparable); rows of later steps
        (from a run resumed at an earlier checkpoint) are dropped, then the file is rewritten."""
        G, cfg = load_generator(checkpoint, self.device)
        batches = sample_batches(renderer(G, noise_mode="random"), cfg.z_dim, range(self.seed, self.seed + self.n),
                                 self.batch_size, self.device)
        fake = generator_features(batches, self.extractor, self.device, self.n, f"generator step {checkpoint.get('step')}")
        values = metrics_from_features(self.reference, fake, self.metrics, self.extractor, seed=self.seed,
                                       device=self.device, on_warning=lambda msg: None)
        fid = float(values["fid"])
        rows = [r for r in self.rows() if int(r["step"]) < step]
        row = {"step": step, "kimg": f"{kimg:.3f}", "fid": f"{fid:.6f}", "n": self.n, "features": self.features}
        for column in self.columns[len(COLUMNS):]:
            value = values.get(column)
            row[column] = "" if value is None else f"{float(value):.6f}"
        rows.append(row)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n", extrasaction="ignore", restval="")
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.path, buf.getvalue())
        return fid
