"""StudyStore: the one save path of the study. The Streamlit app, the load benchmark and the
demo's simulated participants all read and write through it, so every judgment is committed
the moment it is given, a double submission is stored once (UNIQUE(participant, trial)),
and response times are measured on the server from the time a trial was first shown.

Thread- and process-safe: every method uses its own short statements or transactions; on
SQLite writers queue for the write lock (WAL, BEGIN IMMEDIATE, a flock queue, busy_timeout),
on PostgreSQL single statements run in autocommit; the unique key, not a lock, makes a double
click racing itself store once, so concurrent participants lose nothing."""
from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ganeval.atomic import write_text
from ganeval.errors import BadInput, GanevalError
from ganeval.study_app import db
from ganeval.study_app.assign import PoolImage, assign
from ganeval.study_app.db import images, judgments, participants, study_state, trials
from ganeval.study_app.export import EXPORT_COLUMNS  # noqa: F401 - re-exported
from ganeval.study_app.protocol import (ANSWERS, CONFIDENCE_MAX, CONFIDENCE_MIN, PARTICIPANT_KINDS, REAL_LABEL, REASONS,
                                qualification_passed)

SETTINGS_FILE = "study.json"
IMAGES_DIR = "images"
DB_URL_ENV = "GANEVAL_STUDY_DB_URL"
MAX_OTHER_TEXT = 2000
_IMAGE_ID = re.compile(r"^[0-9a-f]{16}$")



class StudyClosed(GanevalError):
    """The study is closed: no new participants and no new judgments."""


@dataclass
class StudySettings:
    """Mirror of STUDY_DIR/study.json (written once by ``ganeval study init``)."""

    title: str = "Real or fake?"
    trials: int = 24
    qualification: int = 0
    attention: int = 0
    seed: int = 0
    display_size: int = 512
    upscaler: str | None = None       # None = Lanczos; "srgan:/path/ckpt" = a model
    db_url: str | None = None         # None = sqlite file STUDY_DIR/study.db
    labels: list[str] = field(default_factory=list)   # the fake sources' model labels
    created_at: str | None = None
    version: int = 1

    @classmethod
    def load(cls, path: Path) -> "StudySettings":
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise BadInput(f"{path}: cannot read study settings ({err})") from None
        if not isinstance(raw, dict):
            raise BadInput(f"{path}: study settings must be a JSON object")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def save(self, path: Path) -> None:
        write_text(path, json.dumps(asdict(self), indent=2) + "\n")

    @property
    def total_trials(self) -> int:
        return self.qualification + self.trials + self.attention


@dataclass(frozen=True)
class ParticipantState:
    token: str
    status: str                 # 'consent' | 'qualification' | 'trials' | 'failed' | 'done'
    answered: int               # judgments given so far (all phases)
    total: int                  # all trials of this participant (qualification + main + attention)
    qualification_total: int    # of which qualification trials


@dataclass(frozen=True)
class Trial:
    trial_id: int
    position: int               # 0-based position in the participant's sequence
    phase: str                  # 'qualification' | 'main' | 'attention' (never show 'attention' to people)
    image_id: str
    number: int                 # 1-based within the participant's whole sequence
    total: int


def resolve_db_url(study_dir: Path, settings: StudySettings, db_url: str | None = None) -> str:
    """``db_url``, else $GANEVAL_STUDY_DB_URL, else study.json's, else STUDY_DIR/study.db."""
    return db_url or os.environ.get(DB_URL_ENV) or settings.db_url or db.sqlite_url(study_dir)


def _phases_for(status: str) -> tuple[str, ...]:
    if status == "qualification":
        return ("qualification",)
    if status == "trials":
        return ("main", "attention")
    return ()


class StudyStore:
    """Access to one study (its settings, images folder and database)."""

    def __init__(self, study_dir: Path, settings: StudySettings, engine) -> None:
        self.study_dir = Path(study_dir)
        self.settings = settings
        self.engine = engine

    @classmethod
    def open(cls, study_dir: str | os.PathLike, db_url: str | None = None) -> "StudyStore":
        """Open an existing study; BadInput when STUDY_DIR holds no study.json.
        The database URL: ``db_url``, else $GANEVAL_STUDY_DB_URL, else study.json's, else
        the SQLite file STUDY_DIR/study.db. Missing tables are created."""
        study_dir = Path(study_dir).expanduser()
        path = study_dir / SETTINGS_FILE
        if not path.is_file():
            raise BadInput(f"{study_dir}: not a study (no {SETTINGS_FILE}); create one with `ganeval study init`")
        settings = StudySettings.load(path)
        url = resolve_db_url(study_dir, settings, db_url)
        engine = db.make_engine(url)
        try:
            db.create_schema(engine)
        except Exception as err:  # noqa: BLE001 - an unreachable server etc.: one line
            engine.dispose()
            raise GanevalError(f"cannot open the study database {db.display_url(url)}: "
                               f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None
        return cls(study_dir, settings, engine)

    # ---- study state -------------------------------------------------------------------
    @property
    @db.retry_on_disconnect
    def is_open(self) -> bool:
        """Read from the database each time, so closing in the admin page reaches every process."""
        with db.one_statement(self.engine) as conn:
            return bool(conn.execute(select(study_state.c.is_open).where(study_state.c.id == 1)).scalar())

    @db.retry_on_disconnect
    def set_open(self, is_open: bool) -> None:
        with db.one_statement(self.engine, write=True) as conn:
            conn.execute(update(study_state).where(study_state.c.id == 1)
                         .values(is_open=bool(is_open), updated_at=db.iso(db.utcnow())))

    # ---- participants ------------------------------------------------------------------
    @db.retry_on_disconnect
    def start_participant(self, kind: str = "human") -> str:
        """A new participant token (secrets.token_urlsafe) with its balanced randomised trials.
        Raises StudyClosed when the study is closed."""
        if kind not in PARTICIPANT_KINDS:
            raise BadInput(f"participant kind must be one of {', '.join(PARTICIPANT_KINDS)}, got {kind!r}")
        s = self.settings
        token = secrets.token_urlsafe(16)
        with db.write_tx(self.engine) as conn:
            # the lock on the state row serialises participant creation (PostgreSQL; SQLite: BEGIN IMMEDIATE)
            is_open = conn.execute(select(study_state.c.is_open).where(study_state.c.id == 1)
                                   .with_for_update()).scalar()
            if not is_open:
                raise StudyClosed("the study is closed")
            ordinal = int(conn.execute(select(func.count()).select_from(participants)).scalar() or 0) + 1
            exposure = dict(conn.execute(select(trials.c.image_id, func.count()).group_by(trials.c.image_id)).all())
            pools: dict[str, list[PoolImage]] = {}
            attention_pool: list[PoolImage] = []
            for image_id, truth, label, role in conn.execute(
                    select(images.c.id, images.c.truth, images.c.model_label, images.c.role)
                    .order_by(images.c.sort_key)):
                item = PoolImage(image_id, int(exposure.get(image_id, 0)))
                if role == "attention":
                    attention_pool.append(item)
                else:
                    pools.setdefault(REAL_LABEL if truth == "real" else label, []).append(item)
            labels = s.labels or sorted(k for k in pools if k != REAL_LABEL)
            if REAL_LABEL not in pools or any(label not in pools for label in labels) or (
                    s.attention and not attention_pool):
                raise GanevalError(f"{self.study_dir}: the study database holds no images; run `ganeval study init`")
            rng = np.random.default_rng([int(s.seed), ordinal])
            try:
                plan = assign(pools, labels, attention_pool, s.trials, s.qualification, s.attention, rng)
            except ValueError as err:
                raise GanevalError(f"{self.study_dir}: cannot assign trials: {err}") from None
            now = db.iso(db.utcnow())
            pid = conn.execute(insert(participants).values(
                token=token, kind=kind, status="consent", ordinal=ordinal, created_at=now)).inserted_primary_key[0]
            conn.execute(insert(trials), [
                {"participant_id": pid, "position": pos, "phase": phase, "image_id": image_id}
                for pos, (phase, image_id) in enumerate(plan)])
        return token

    def _participant(self, conn, token: str, lock: bool = False):
        query = select(participants.c.id, participants.c.status, participants.c.kind).where(
            participants.c.token == str(token))
        if lock:
            query = query.with_for_update()
        return conn.execute(query).first()

    @db.retry_on_disconnect
    def state(self, token: str) -> ParticipantState | None:
        """None for an unknown token."""
        mine = trials.c.participant_id == participants.c.id
        total = select(func.count()).select_from(trials).where(mine).scalar_subquery()
        qual = select(func.count()).select_from(trials).where(mine, trials.c.phase == "qualification").scalar_subquery()
        answered = (select(func.count()).select_from(judgments)
                    .where(judgments.c.participant_id == participants.c.id).scalar_subquery())
        with db.one_statement(self.engine) as conn:
            row = conn.execute(select(participants.c.status, answered, total, qual)
                               .where(participants.c.token == str(token))).first()
        if row is None:
            return None
        return ParticipantState(str(token), row[0], int(row[1]), int(row[2]), int(row[3]))

    @db.retry_on_disconnect
    def give_consent(self, token: str) -> None:
        """consent -> qualification (or trials when the study has no qualification). Idempotent;
        BadInput for an unknown token."""
        with db.write_tx(self.engine) as conn:
            row = self._participant(conn, token, lock=True)
            if row is None:
                raise BadInput("unknown participant token")
            if row.status != "consent":
                return
            has_qual = conn.execute(select(func.count()).select_from(trials).where(
                and_(trials.c.participant_id == row.id, trials.c.phase == "qualification"))).scalar()
            conn.execute(update(participants).where(participants.c.id == row.id).values(
                status="qualification" if has_qual else "trials", consent_at=db.iso(db.utcnow())))

    @db.retry_on_disconnect
    def current_trial(self, token: str) -> Trial | None:
        """First unanswered trial of the participant's current phase (None when there is none:
        consent not given, failed, done or unknown token). Records shown_at the first time."""
        answered = select(judgments.c.id).where(judgments.c.trial_id == trials.c.id).exists()
        others = trials.alias("others")
        total = (select(func.count()).select_from(others)
                 .where(others.c.participant_id == participants.c.id).scalar_subquery())
        in_phase = or_(and_(participants.c.status == "qualification", trials.c.phase == "qualification"),
                       and_(participants.c.status == "trials", trials.c.phase.in_(("main", "attention"))))
        query = (select(trials.c.id, trials.c.position, trials.c.phase, trials.c.image_id, trials.c.shown_at,
                        total.label("total"))
                 .join(participants, participants.c.id == trials.c.participant_id)
                 .where(participants.c.token == str(token), in_phase, ~answered)
                 .order_by(trials.c.position).limit(1))
        with db.one_statement(self.engine) as conn:
            trial = conn.execute(query).first()
        if trial is None:
            return None
        if trial.shown_at is None:
            with db.one_statement(self.engine, write=True) as conn:
                conn.execute(update(trials).where(trials.c.id == trial.id, trials.c.shown_at.is_(None))
                             .values(shown_at=db.iso(db.utcnow())))
        return Trial(int(trial.id), int(trial.position), trial.phase, trial.image_id,
                     int(trial.position) + 1, int(trial.total))

    def image_path(self, image_id: str) -> Path:
        """STUDY_DIR/images/<id>.png; BadInput for an id that is not one of ours."""
        if not isinstance(image_id, str) or not _IMAGE_ID.match(image_id):
            raise BadInput(f"not an image id: {image_id!r}")
        path = self.study_dir / IMAGES_DIR / f"{image_id}.png"
        if not path.is_file():
            raise BadInput(f"no image {image_id} in {self.study_dir / IMAGES_DIR}")
        return path

    def record(self, token: str, trial_id: int, answer: str, confidence: int | None = None,
               reasons: Sequence[str] = (), other_text: str | None = None) -> bool:
        """Store one judgment, committed at once. False (and nothing stored) when that trial was
        already answered. Reasons and other_text are kept only for 'fake' answers. Raises
        BadInput for an invalid answer/confidence/reason, an unknown token or a trial that is
        not this participant's to answer now, StudyClosed when the study is closed."""
        received = db.utcnow()  # server time of the answer, before any lock wait
        answer = str(answer).lower()
        if answer not in ANSWERS:
            raise BadInput(f"answer must be 'real' or 'fake', got {answer!r}")
        if confidence is not None:
            if isinstance(confidence, bool) or int(confidence) != confidence or not (
                    CONFIDENCE_MIN <= int(confidence) <= CONFIDENCE_MAX):
                raise BadInput(f"confidence must be {CONFIDENCE_MIN}..{CONFIDENCE_MAX} or empty, got {confidence!r}")
            confidence = int(confidence)
        if isinstance(reasons, str):
            reasons = [r for r in reasons.split(";") if r]
        bad = [r for r in reasons if r not in REASONS]
        if bad:
            raise BadInput(f"unknown reason(s) {', '.join(map(repr, bad))}; known: {', '.join(REASONS)}")
        if answer == "fake":
            reason_text = ";".join(r for r in REASONS if r in set(reasons))
            other = (other_text or "").strip()[:MAX_OTHER_TEXT] or None
        else:
            reason_text, other = "", None
        try:
            trial_id = int(trial_id)
        except (TypeError, ValueError):
            raise BadInput(f"not a trial id: {trial_id!r}") from None
        values = {"answer": answer, "confidence": confidence, "reasons": reason_text, "reason_other": other}
        try:
            return self._record(str(token), trial_id, values, received)
        except IntegrityError:
            return False  # the same trial answered by a racing request: stored once

    @db.retry_on_disconnect
    def _record(self, token: str, trial_id: int, values: dict, received) -> bool:
        """Three short statements, no lock held while checking: read (participant, whether the
        study is open, the trial if it is theirs, its truth, any judgment already given), insert
        (the UNIQUE(participant, trial) key stores a racing double click once), then advance the
        participant's status. On SQLite only the insert (and a rare status change) queues for
        the write lock, which keeps the lock short under many writers."""
        is_open = select(study_state.c.is_open).where(study_state.c.id == 1).scalar_subquery()
        with db.one_statement(self.engine) as conn:
            row = conn.execute(
                select(participants.c.id, participants.c.status, is_open.label("is_open"), trials.c.id.label("trial"),
                       trials.c.phase, trials.c.shown_at, images.c.truth, judgments.c.id.label("judgment"))
                .select_from(participants
                             .outerjoin(trials, and_(trials.c.participant_id == participants.c.id,
                                                     trials.c.id == trial_id))
                             .outerjoin(images, images.c.id == trials.c.image_id)
                             .outerjoin(judgments, judgments.c.trial_id == trials.c.id))
                .where(participants.c.token == token)).first()
        if row is not None and not row.is_open:
            raise StudyClosed("the study is closed")
        if row is None:
            raise BadInput("unknown participant token")
        if row.trial is None:
            raise BadInput(f"trial {trial_id} is not this participant's")
        if row.judgment is not None:
            return False
        if row.phase not in _phases_for(row.status):
            raise BadInput(f"trial {trial_id} cannot be answered now (participant status {row.status})")
        response_ms = None
        if row.shown_at is not None:
            response_ms = max(0, round((received - db.parse_iso(row.shown_at)).total_seconds() * 1000))
        with db.one_statement(self.engine, write=True) as conn:
            conn.execute(insert(judgments).values(
                participant_id=row.id, trial_id=trial_id, correct=values["answer"] == row.truth,
                response_ms=response_ms, answered_at=db.iso(received), **values))
        self._advance(row.id, row.status, row.phase, received)
        return True

    def _advance(self, pid: int, status: str, phase: str, now) -> None:
        """After a judgment (committed): decide qualification when its last trial is answered;
        mark done after the last trial. Runs after every commit, so whichever of two racing
        answers commits last sees the phase complete; the status changes once (guarded)."""
        answered = select(judgments.c.id).where(judgments.c.trial_id == trials.c.id).exists()
        if phase == "qualification":
            with db.one_statement(self.engine) as conn:
                rows = conn.execute(
                    select(images.c.truth, judgments.c.correct)
                    .select_from(trials.join(images, images.c.id == trials.c.image_id)
                                 .outerjoin(judgments, judgments.c.trial_id == trials.c.id))
                    .where(trials.c.participant_id == pid, trials.c.phase == "qualification")).all()
            if any(correct is None for _, correct in rows):
                return
            real = [bool(c) for t, c in rows if t == "real"]
            fake = [bool(c) for t, c in rows if t == "fake"]
            passed = qualification_passed(sum(real), len(real), sum(fake), len(fake))
            values = {"status": "trials", "qualified_at": db.iso(now)} if passed else {
                "status": "failed", "finished_at": db.iso(now)}
        else:
            with db.one_statement(self.engine) as conn:
                left = conn.execute(select(func.count()).select_from(trials).where(
                    trials.c.participant_id == pid, trials.c.phase.in_(("main", "attention")), ~answered)).scalar()
            if left:
                return
            values = {"status": "done", "finished_at": db.iso(now)}
        with db.one_statement(self.engine, write=True) as conn:
            conn.execute(update(participants).where(participants.c.id == pid, participants.c.status == status)
                         .values(**values))

    # ---- reading -----------------------------------------------------------------------
    def export_frame(self) -> pd.DataFrame:
        """One row per judgment, columns EXPORT_COLUMNS in that order."""
        from ganeval.study_app.export import export_frame

        return export_frame(self.engine)

    def participants_progress(self) -> pd.DataFrame:
        """One row per participant: token, kind, status, answered/total, main accuracy, times."""
        from ganeval.study_app.export import participants_progress

        return participants_progress(self.engine)

    def images_progress(self) -> pd.DataFrame:
        """One row per image: truth, label, source key, times assigned/judged, share judged fake."""
        from ganeval.study_app.export import images_progress

        return images_progress(self.engine)

    def counts(self) -> dict:
        """Counts for ``ganeval study status``."""
        with db.read_tx(self.engine) as conn:
            is_open = bool(conn.execute(select(study_state.c.is_open).where(study_state.c.id == 1)).scalar())
            by_status = dict(conn.execute(select(participants.c.status, func.count())
                                          .group_by(participants.c.status)).all())
            by_kind = dict(conn.execute(select(participants.c.kind, func.count())
                                        .group_by(participants.c.kind)).all())
            by_phase = dict(conn.execute(select(trials.c.phase, func.count())
                                         .select_from(judgments.join(trials, trials.c.id == judgments.c.trial_id))
                                         .group_by(trials.c.phase)).all())
            by_label = dict(conn.execute(select(images.c.model_label, func.count())
                                         .group_by(images.c.model_label)).all())
        return {
            "open": is_open,
            "participants": int(sum(by_status.values())),
            "participants_by_status": {k: int(v) for k, v in sorted(by_status.items())},
            "participants_by_kind": {k: int(v) for k, v in sorted(by_kind.items())},
            "judgments": int(sum(by_phase.values())),
            "judgments_by_phase": {k: int(v) for k, v in sorted(by_phase.items())},
            "images_by_label": {k: int(v) for k, v in sorted(by_label.items())},
        }

    def dispose(self) -> None:
        """Close the database connections."""
        self.engine.dispose()

    def __enter__(self) -> "StudyStore":
        return self

    def __exit__(self, *exc) -> None:
        self.dispose()
