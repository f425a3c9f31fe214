"""Study judgments as one validated table, from an exported CSV or straight from a study folder.

Every statistic in ``analysis`` starts from the frame this module returns, so the checks live
here once: a malformed file, an empty study or unknown answers become one clear ``BadInput``
line instead of a pandas traceback deep inside a plot."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ganeval.errors import BadInput

# the export contract (study_app export / StudyStore.export_frame), in order
COLUMNS = ("participant", "participant_kind", "image_id", "truth", "model_label", "phase", "trial_number",
           "answer", "correct", "confidence", "reasons", "reason_other", "response_ms", "shown_at", "answered_at")
# appended by studies that time trials in the browser (HYPE-time and client response times);
# kept when present, blank otherwise
TIMING_COLUMNS = ("rt_client_ms", "shown_client_at", "protocol", "exposure_ms", "exposure_shown_ms")
# derived: the response time every statistic uses, the browser's (first paint to press) where the
# study measured it, else the server's (which also holds page build and transfer)
DERIVED_COLUMNS = ("rt_ms",)
# without these nothing can be computed; the rest get defaults (hand-built tables may omit them)
REQUIRED = ("participant", "image_id", "truth", "answer")
LABELS = ("real", "fake")  # row/column order of every confusion matrix
MAIN_PHASE = "main"
ATTENTION_PHASE = "attention"


def load_responses(source: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """Judgments from a responses CSV (``ganeval study export``) or a frame."""
    if isinstance(source, pd.DataFrame):
        return validate(source, "the given table")
    path = Path(source)
    if path.is_dir():
        raise BadInput(f"{path}: a folder; give the study's responses CSV (`ganeval study export {path} -o FILE`)")
    if not path.exists():
        raise BadInput(f"{path}: no such file or study folder")
    return validate(read_csv(path), str(path))


def read_csv(path: Path) -> pd.DataFrame:
    """The CSV as strings (ids must not become numbers); a file pandas cannot parse is BadInput."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise BadInput(f"{path}: empty file, no judgments") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise BadInput(f"{path}: not a responses CSV ({first})") from None


def validate(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Check the columns and values and fill the optional columns; returns a new frame with
    typed columns (``correct`` int, ``confidence``/``response_ms`` float with NaN when blank)."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise BadInput(f"{where}: not a responses table: missing column(s) {', '.join(missing)} "
                       f"(expected {', '.join(COLUMNS)})")
    if frame.empty:
        raise BadInput(f"{where}: no judgments yet (an empty study or file)")
    df = frame.copy()
    for col in ("participant", "image_id", "truth", "answer"):
        df[col] = df[col].astype(str).str.strip()
    for col in ("truth", "answer"):
        df[col] = df[col].str.lower()
        bad = ~df[col].isin(LABELS)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise BadInput(f"{where}: row {row + 1}: {col} must be 'real' or 'fake', got {df[col].iloc[row]!r}")
    if (df["participant"] == "").any() or (df["image_id"] == "").any():
        raise BadInput(f"{where}: blank participant or image_id")
    defaults = {"participant_kind": "human", "phase": MAIN_PHASE, "reasons": "", "reason_other": "",
                "shown_at": "", "answered_at": ""}
    for col, value in defaults.items():
        df[col] = df[col].fillna(value).astype(str) if col in df.columns else value
    if "model_label" not in df.columns:
        df["model_label"] = np.where(df["truth"] == "real", "real", "fake")
    df["model_label"] = df["model_label"].astype(str).replace("", np.nan).fillna(df["truth"])
    df["correct"] = (df["truth"] == df["answer"]).astype(int)  # derived, never trusted from the file
    for col in ("confidence", "response_ms", "trial_number", "rt_client_ms", "exposure_ms", "exposure_shown_ms"):
        values = df[col].astype(object) if col in df.columns else pd.Series(np.nan, index=df.index)
        df[col] = pd.to_numeric(values.replace("", np.nan), errors="coerce").astype(float)
    for col in ("shown_client_at", "protocol"):
        df[col] = df[col].fillna("").astype(str) if col in df.columns else ""
    df.loc[df["protocol"] == "", "protocol"] = "hype-infinity"
    df["rt_ms"] = df["rt_client_ms"].where(np.isfinite(df["rt_client_ms"]), df["response_ms"])
    return df[list(COLUMNS) + list(TIMING_COLUMNS) + list(DERIVED_COLUMNS)].reset_index(drop=True)


def main_trials(df: pd.DataFrame) -> pd.DataFrame:
    """The judgments the statistics use (phase 'main'); BadInput when there are none."""
    main = df[df["phase"] == MAIN_PHASE].reset_index(drop=True)
    if main.empty:
        phases = ", ".join(sorted(df["phase"].unique()))
        raise BadInput(f"no judgments in the main phase (phases present: {phases})")
    return main


def study_overview(df: pd.DataFrame) -> dict:
    """Counts for the report's first lines: participants by kind, judgments by phase, and the
    attention-check pass rate (share of attention trials answered correctly)."""
    people = df.drop_duplicates("participant")
    attention = df[df["phase"] == ATTENTION_PHASE]
    per_person = attention.groupby("participant")["correct"].min() if len(attention) else pd.Series(dtype=int)
    return {
        "participants": int(len(people)),
        "participants_by_kind": {str(k): int(v) for k, v in people["participant_kind"].value_counts().items()},
        "judgments_by_phase": {str(k): int(v) for k, v in df["phase"].value_counts().items()},
        "participants_with_main_judgments": int(df.loc[df["phase"] == MAIN_PHASE, "participant"].nunique()),
        "images": int(df.loc[df["phase"] == MAIN_PHASE, "image_id"].nunique()),
        "attention_trials": int(len(attention)),
        "attention_correct_share": float(attention["correct"].mean()) if len(attention) else None,
        "participants_passing_all_attention_checks": int(per_person.sum()) if len(per_person) else None,
        "simulated": bool((people["participant_kind"] == "simulated").any()),
    }
