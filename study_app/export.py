"""Reading the study database into tables: the judgments export (one row per judgment, the
columns of the shared contract, in order) and the admin page's progress tables. The CSV is
written atomically, so an interrupted export never leaves half a file."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, case, func, literal, select

from ganeval.atomic import atomic_path
from ganeval.study_app import db
from ganeval.study_app.db import images, judgments, participants, trials


def pseudonym(participant_id: int) -> str:
    """The participant as admins and exports see them: never the token, which is a bearer
    credential (whoever has it answers as that participant)."""
    return f"P{int(participant_id):05d}"

EXPORT_COLUMNS = (
    "participant", "participant_kind", "image_id", "truth", "model_label", "phase", "trial_number",
    "answer", "correct", "confidence", "reasons", "reason_other", "response_ms", "shown_at", "answered_at",
    "external_id", "rt_client_ms", "shown_client_at", "protocol", "exposure_ms", "exposure_shown_ms",
)
# a spreadsheet runs a cell starting with one of these as a formula (CSV injection): such
# cells get a leading apostrophe, which spreadsheets show as text and hide
# what spreadsheets read as the start of a formula, full-width forms and the DDE pipe included
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20", "|")


def export_frame(engine: Engine, protocol: str = "hype-infinity") -> pd.DataFrame:
    """One row per judgment, in participant creation order then trial order; ``protocol`` is
    the study's ("hype-infinity" or "hype-time")."""
    query = (
        select(participants.c.id.label("participant"), participants.c.kind.label("participant_kind"),
               images.c.id.label("image_id"), images.c.truth, images.c.model_label, trials.c.phase,
               (trials.c.position + 1).label("trial_number"), judgments.c.answer, judgments.c.correct,
               judgments.c.confidence, judgments.c.reasons, judgments.c.reason_other, judgments.c.response_ms,
               trials.c.shown_at, judgments.c.answered_at, participants.c.external_id,
               judgments.c.rt_client_ms, judgments.c.shown_client_at, literal(protocol).label("protocol"),
               judgments.c.exposure_ms, judgments.c.exposure_shown_ms)
        .select_from(judgments.join(trials, trials.c.id == judgments.c.trial_id)
                     .join(participants, participants.c.id == judgments.c.participant_id)
                     .join(images, images.c.id == trials.c.image_id))
        .order_by(participants.c.ordinal, participants.c.id, trials.c.position)
    )
    with db.read_tx(engine) as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(EXPORT_COLUMNS))
    frame["participant"] = frame["participant"].map(pseudonym).astype(object)
    frame["trial_number"] = frame["trial_number"].astype("int64")
    frame["correct"] = frame["correct"].astype(bool).astype("int64")
    for col in ("confidence", "response_ms", "rt_client_ms", "exposure_ms", "exposure_shown_ms"):
        frame[col] = pd.array(frame[col].tolist(), dtype="Int64")
    for col in ("reasons", "reason_other", "shown_at", "external_id", "shown_client_at"):
        frame[col] = frame[col].fillna("").astype(str)
    return frame


def formula_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as spreadsheet formulas: those starting with
    = + - @ tab or CR get a leading apostrophe (numbers are left alone)."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_object_dtype(out[col]) or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v)
    return out


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The export as CSV (formula-safe), as the admin page offers it for download."""
    return formula_safe(frame).to_csv(index=False).encode()


def write_csv(frame: pd.DataFrame, out: str | os.PathLike) -> Path:
    """Write atomically (formula-safe); empty cells for missing confidence/reasons/response time."""
    out = Path(out).expanduser()
    with atomic_path(out, suffix=".csv") as tmp:
        Path(tmp).write_bytes(csv_bytes(frame))
    return out


def participants_progress(engine: Engine) -> pd.DataFrame:
    """Per participant: status, answered of total, main-phase accuracy, times."""
    answered = (select(judgments.c.participant_id, func.count().label("answered"),
                       func.max(judgments.c.answered_at).label("last_answer_at"))
                .group_by(judgments.c.participant_id).subquery())
    assigned = (select(trials.c.participant_id, func.count().label("total"))
                .group_by(trials.c.participant_id).subquery())
    main = (select(judgments.c.participant_id,
                   func.count().label("main_answered"),
                   func.sum(case((judgments.c.correct, 1), else_=0)).label("main_correct"))
            .join(trials, trials.c.id == judgments.c.trial_id).where(trials.c.phase == "main")
            .group_by(judgments.c.participant_id).subquery())
    query = (
        select(participants.c.id.label("participant"), participants.c.external_id, participants.c.kind,
               participants.c.status,
               func.coalesce(answered.c.answered, 0).label("answered"), func.coalesce(assigned.c.total, 0).label("total"),
               func.coalesce(main.c.main_answered, 0).label("main_answered"),
               func.coalesce(main.c.main_correct, 0).label("main_correct"),
               participants.c.created_at, participants.c.consent_at, answered.c.last_answer_at,
               participants.c.finished_at)
        .select_from(participants.outerjoin(answered, answered.c.participant_id == participants.c.id)
                     .outerjoin(assigned, assigned.c.participant_id == participants.c.id)
                     .outerjoin(main, main.c.participant_id == participants.c.id))
        .order_by(participants.c.ordinal, participants.c.id)
    )
    with db.read_tx(engine) as conn:
        rows = conn.execute(query).all()
    cols = ["participant", "external_id", "kind", "status", "answered", "total", "main_answered", "main_correct",
            "created_at", "consent_at", "last_answer_at", "finished_at"]
    frame = pd.DataFrame([tuple(r) for r in rows], columns=cols)
    frame["participant"] = frame["participant"].map(pseudonym).astype(object)
    for col in ("answered", "total", "main_answered", "main_correct"):
        frame[col] = frame[col].astype("int64")
    frame.insert(8, "main_accuracy",
                 (frame["main_correct"] / frame["main_answered"].where(frame["main_answered"] > 0)).astype(float))
    return frame


def images_progress(engine: Engine) -> pd.DataFrame:
    """Per image: truth, model label, source key (admin only), assigned, judged, share judged fake."""
    assigned = select(trials.c.image_id, func.count().label("assigned")).group_by(trials.c.image_id).subquery()
    judged = (select(trials.c.image_id, func.count().label("judged"),
                     func.sum(case((judgments.c.answer == "fake", 1), else_=0)).label("judged_fake"),
                     func.sum(case((judgments.c.correct, 1), else_=0)).label("correct"))
              .join(trials, trials.c.id == judgments.c.trial_id).group_by(trials.c.image_id).subquery())
    query = (
        select(images.c.id.label("image_id"), images.c.truth, images.c.model_label, images.c.role,
               images.c.source_key, func.coalesce(assigned.c.assigned, 0).label("assigned"),
               func.coalesce(judged.c.judged, 0).label("judged"),
               func.coalesce(judged.c.judged_fake, 0).label("judged_fake"),
               func.coalesce(judged.c.correct, 0).label("correct"))
        .select_from(images.outerjoin(assigned, assigned.c.image_id == images.c.id)
                     .outerjoin(judged, judged.c.image_id == images.c.id))
        .order_by(images.c.sort_key)
    )
    with db.read_tx(engine) as conn:
        rows = conn.execute(query).all()
    cols = ["image_id", "truth", "model_label", "role", "source_key", "assigned", "judged", "judged_fake", "correct"]
    frame = pd.DataFrame([tuple(r) for r in rows], columns=cols)
    for col in ("assigned", "judged", "judged_fake", "correct"):
        frame[col] = frame[col].astype("int64")
    frame["share_judged_fake"] = (frame["judged_fake"] / frame["judged"].where(frame["judged"] > 0)).astype(float)
    return frame
