"""Leak audit: can a classifier tell real from fake from the study's image *files*, without
looking at what the generator drew?

A study is only as good as its images are comparable: real anime-face sets are JPEGs and
generator samples clean PNGs, so JPEG's 8×8-grid blockiness, file size, metadata, dimensions
or grayscale-vs-colour can give the truth away to a participant who never judges the face.
This module measures, for every image as served (the files in STUDY_DIR/images), two groups
of statistics:

- **pipeline cues**, which say nothing about the generator: 8×8-grid blockiness, file bytes,
  metadata chunks (EXIF, ICC, text), width, height, grayscale content, Pillow mode;
- **generator cues**, which people are meant to judge: sharpness (variance of the Laplacian),
  high-frequency energy, colour statistics.

For each group a logistic regression (scikit-learn, standardised features) is scored by
out-of-fold predictions of a stratified k-fold split; the AUC comes with a percentile
bootstrap interval over images (seeded). A pipeline AUC above ``WARN_AUC`` is a leak: the
audit names the strongest single cue (its own AUC, direction-free) and suggests
``study init --equalize jpeg:Q``."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ganeval.errors import BadInput
from ganeval.images import CorruptImage, decode_image

WARN_AUC = 0.6
BLOCK = 8
PIPELINE_CUES = ("blockiness", "file_bytes", "metadata_chunks", "width", "height", "grayscale", "mode_channels")
GENERATOR_CUES = ("laplacian_var", "high_freq_energy", "mean_r", "mean_g", "mean_b", "std_luma", "saturation")
_METADATA_KEYS = ("exif", "icc_profile", "xmp", "comment", "photoshop", "dpi")


@dataclass
class GroupResult:
    auc: float
    ci_low: float
    ci_high: float
    cues: dict[str, float]           # each cue's own AUC, folded to >= 0.5 (direction does not matter)
    strongest: str | None


@dataclass
class AuditResult:
    real: int
    fake: int
    folds: int
    resamples: int
    seed: int
    pipeline: GroupResult
    generator: GroupResult
    warning: str | None = None
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-safe (an undefined interval is null, not NaN)."""
        def clean(obj):
            if isinstance(obj, dict):
                return {k: clean(v) for k, v in obj.items()}
            if isinstance(obj, list):
                return [clean(v) for v in obj]
            if isinstance(obj, float) and obj != obj:
                return None
            return obj
        return clean(asdict(self))

    def summary(self) -> str:
        """Two lines for the terminal."""
        p, g = self.pipeline, self.generator
        return (f"leak audit ({self.real} real, {self.fake} fake images as served, {self.folds}-fold CV): "
                f"pipeline cues AUC {p.auc:.2f} [{p.ci_low:.2f}, {p.ci_high:.2f}] (strongest: {p.strongest} "
                f"{p.cues.get(p.strongest, float('nan')):.2f})\n"
                f"generator cues AUC {g.auc:.2f} [{g.ci_low:.2f}, {g.ci_high:.2f}] (for information: people are "
                f"meant to judge these; strongest: {g.strongest})")


# ------------------------------------------------------------------ statistics of one image

def luma(arr: np.ndarray) -> np.ndarray:
    return arr[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def blockiness(y: np.ndarray, block: int = BLOCK) -> float:
    """Mean absolute step across 8×8-grid boundaries over the mean step elsewhere (1 = no grid).

    JPEG quantises each 8×8 block on its own, so steps between blocks are larger than steps
    inside them; a clean PNG has no such grid."""
    ratios = []
    for d in (np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0)).T):
        if d.shape[1] < 2 * block:
            continue
        at_edge = (np.arange(d.shape[1]) + 1) % block == 0
        inside = d[:, ~at_edge].mean()
        ratios.append((d[:, at_edge].mean() + 1e-3) / (inside + 1e-3))
    return float(np.mean(ratios)) if ratios else 1.0


def laplacian_var(y: np.ndarray) -> float:
    lap = -4 * y[1:-1, 1:-1] + y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:]
    return float(lap.var())


def high_freq_energy(y: np.ndarray) -> float:
    """Share of spectral energy (DC removed) beyond half the Nyquist radius."""
    spec = np.abs(np.fft.fftshift(np.fft.fft2(y - y.mean()))) ** 2
    h, w = y.shape
    fy, fx = np.meshgrid(np.linspace(-1, 1, h, endpoint=False), np.linspace(-1, 1, w, endpoint=False), indexing="ij")
    total = spec.sum()
    return float(spec[np.hypot(fy, fx) > 0.5].sum() / total) if total > 0 else 0.0


def image_cues(path: str | os.PathLike) -> dict[str, float]:
    """Every pipeline and generator cue of one image file; CorruptImage when it cannot be read."""
    from ganeval.study_app.build import is_grayscale

    path = Path(path)
    arr = decode_image(path)  # the one decoder: what a participant's browser would show
    try:
        with Image.open(path) as img:
            info, mode = dict(img.info), img.mode
            text = getattr(img, "text", None) or {}
    except OSError as err:
        raise CorruptImage(str(err)) from err
    metadata = sum(1 for k in _METADATA_KEYS if info.get(k)) + len(text)
    rgb = arr.astype(np.float64)
    y = luma(arr)
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    return {
        "blockiness": blockiness(y), "file_bytes": float(path.stat().st_size), "metadata_chunks": float(metadata),
        "width": float(arr.shape[1]), "height": float(arr.shape[0]), "grayscale": float(is_grayscale(arr)),
        "mode_channels": float(len(mode)),
        "laplacian_var": laplacian_var(y), "high_freq_energy": high_freq_energy(y),
        "mean_r": float(rgb[..., 0].mean()), "mean_g": float(rgb[..., 1].mean()), "mean_b": float(rgb[..., 2].mean()),
        "std_luma": float(y.std()), "saturation": float((chroma / (rgb.max(axis=2) + 1e-6)).mean()),
    }


# ------------------------------------------------------------------ the classifier

def rank_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann–Whitney statistic (ties count half): scikit-learn's value, without
    its per-call validation, so thousands of bootstrap resamples take milliseconds."""
    from scipy.stats import rankdata

    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _folded_auc(y: np.ndarray, score: np.ndarray) -> float:
    if np.ptp(score) == 0:
        return 0.5
    auc = rank_auc(y, score)
    return max(auc, 1 - auc)


def group_auc(x: np.ndarray, y: np.ndarray, names: tuple[str, ...], folds: int, resamples: int,
              seed: int) -> GroupResult:
    """Cross-validated AUC of a logistic regression on the cues ``x`` (n × k), its bootstrap CI,
    and each cue's own AUC."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cues = {name: _folded_auc(y, x[:, j]) for j, name in enumerate(names)}
    strongest = max(cues, key=lambda k: cues[k]) if cues else None
    varying = np.ptp(x, axis=0) > 0
    if not varying.any():  # every cue identical in every image: nothing to learn from
        return GroupResult(0.5, 0.5, 0.5, cues, strongest)
    xv = np.log1p(np.abs(x[:, varying])) * np.sign(x[:, varying])  # byte counts and variances span decades
    oof = np.zeros(len(y))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(xv, y):
        if len(np.unique(y[train])) < 2:
            oof[test] = 0.5
            continue
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(xv[train], y[train])
        oof[test] = model.predict_proba(xv[test])[:, 1]
    auc = float(roc_auc_score(y, oof))
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(resamples):
        idx = rng.integers(0, len(y), len(y))
        if 0 < y[idx].sum() < len(idx):
            boots.append(rank_auc(y[idx], oof[idx]))
    low, high = (float(v) for v in np.percentile(boots, [2.5, 97.5])) if boots else (np.nan, np.nan)
    return GroupResult(auc, low, high, cues, strongest)


def audit_images(paths: list[str | os.PathLike], truths: list[str], seed: int = 0, resamples: int = 1000,
                 folds: int = 5) -> AuditResult:
    """Audit image files with known truths ('real' / 'fake'); BadInput when a class has fewer
    than 2 readable images."""
    rows, labels, skipped = [], [], []
    for path, truth in zip(paths, truths):
        try:
            rows.append(image_cues(path))
        except CorruptImage as err:
            skipped.append(f"{Path(path).name} ({err})")
            continue
        labels.append(1 if truth == "real" else 0)
    y = np.array(labels)
    n_real, n_fake = int(y.sum()), int(len(y) - y.sum())
    if min(n_real, n_fake) < 2:
        raise BadInput(f"the leak audit needs at least 2 real and 2 fake images; found {n_real} real, {n_fake} fake")
    folds = min(folds, n_real, n_fake)
    groups = {}
    for name, cues in (("pipeline", PIPELINE_CUES), ("generator", GENERATOR_CUES)):
        x = np.array([[row[c] for c in cues] for row in rows], dtype=float)
        groups[name] = group_auc(x, y, cues, folds, resamples, seed)
    result = AuditResult(n_real, n_fake, folds, resamples, seed, groups["pipeline"], groups["generator"],
                         skipped=skipped)
    p = result.pipeline
    if p.auc > WARN_AUC:
        result.warning = (f"the image files give the truth away: pipeline cues tell real from fake at AUC {p.auc:.2f} "
                          f"[{p.ci_low:.2f}, {p.ci_high:.2f}], strongest {p.strongest} (AUC {p.cues[p.strongest]:.2f}); "
                          "rebuild with `ganeval study init … --equalize jpeg:90` (and one colour mode for all)")
    return result


def audit_study(study_dir: str | os.PathLike, db_url: str | None = None, seed: int = 0,
                resamples: int = 1000) -> AuditResult:
    """Audit the pool images of a study folder (attention checks left out) as served."""
    from sqlalchemy import select

    from ganeval.study_app import db
    from ganeval.study_app.store import IMAGES_DIR, StudyStore

    store = StudyStore.open(study_dir, db_url=db_url)
    try:
        with db.read_tx(store.engine) as conn:
            rows = conn.execute(select(db.images.c.id, db.images.c.truth, db.images.c.role)
                                .order_by(db.images.c.sort_key)).all()
        paths, truths = [], []
        for image_id, truth, role in rows:
            if role == "attention":
                continue
            paths.append(store.study_dir / IMAGES_DIR / f"{image_id}.png")
            truths.append(truth)
    finally:
        store.dispose()
    return audit_images(paths, truths, seed=seed, resamples=resamples)
