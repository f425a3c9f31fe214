"""FID during training: every ``--fid-every`` steps, samples of the EMA generator against a
reference set, appended to ``RUN/fid.csv`` (step, kimg, fid, n, features) — the curve the
report plots. The reference features are computed once (and cached, like ``ganeval fid``)."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import torch

from ganeval.atomic import write_text
from ganeval.errors import BadInput
from ganeval.features.registry import build_extractor
from ganeval.metrics.fid import frechet_distance
from ganeval.stats import FeatureSet, generator_features, path_features
from ganeval.models.sampling import generate_uint8_batches

FID_LOG = "fid.csv"
COLUMNS = ("step", "kimg", "fid", "n", "features")


class FIDMonitor:
    """Built before the first step, so a missing reference or missing weights stop the run
    before any training time is spent."""

    def __init__(self, run_dir: str | Path, reference: str, n: int, features: str, weights: str | None,
                 device: torch.device, batch_size: int = 50, seed: int = 0):
        if n < 2:
            raise BadInput(f"--fid-n must be at least 2, got {n}")
        self.path = Path(run_dir) / FID_LOG
        self.n, self.batch_size, self.seed, self.device = n, batch_size, seed, device
        self.extractor = build_extractor(features, weights, device)
        self.reference: FeatureSet = path_features(reference, self.extractor, device, batch_size)
        self.features = features

    def rows(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as fh:
            return list(csv.DictReader(fh))

    def measure(self, checkpoint: dict[str, Any], step: int, kimg: float) -> float:
        """FID of ``n`` EMA samples (seed 0, as `ganeval fid --generator`, so steps are comparable); rows of later steps
        (from a run resumed at an earlier checkpoint) are dropped, then the file is rewritten."""
        batches = generate_uint8_batches(checkpoint, self.n, self.batch_size, self.seed, self.device)
        fake = generator_features(batches, self.extractor, self.device, self.n, f"step {checkpoint.get('step')}")
        ref = self.reference
        fid = frechet_distance(ref.mu, ref.sigma, fake.mu, fake.sigma)
        rows = [r for r in self.rows() if int(r["step"]) < step]
        rows.append({"step": step, "kimg": f"{kimg:.3f}", "fid": f"{fid:.6f}", "n": self.n, "features": self.features})
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.path, buf.getvalue())
        return fid
