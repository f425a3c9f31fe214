"""StudyStore: the one save path of the study. The Streamlit app, the load benchmark and the
demo's simulated participants all read and write through it, so every judgment is committed
the moment it is given, a double submission is stored once (UNIQUE(participant, trial)),
and response times are measured on the server from the time a trial was first shown.

Thread- and process-safe: every method uses its own short statements or transactions; on
SQLite writers queue for the write lock (WAL, BEGIN IMMEDIATE, a first-come first-served line of writers (writerqueue.py), busy_timeout),
on PostgreSQL single statements run in autocommit; the unique key, not a lock, makes a double
click racing itself store once, so concurrent participants lose nothing."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ganeval.atomic import write_text
from ganeval.errors import BadInput, GanevalError
from ganeval.study_app import db
from ganeval.study_app.assign import PoolImage, assign
from ganeval.study_app.db import images, judgments, participants, study_state, trials
from ganeval.study_app.export import EXPORT_COLUMNS, pseudonym  # noqa: F401 - re-exported
from ganeval.study_app.protocol import (ANSWERS, CONFIDENCE_MAX, CONFIDENCE_MIN, PARTICIPANT_KINDS, REAL_LABEL, REASONS,
                                qualification_passed)

SETTINGS_FILE = "study.json"
IMAGES_DIR = "images"
# the environment `ganeval study run` hands the app (one definition for the CLI and the app)
STUDY_DIR_ENV = "GANEVAL_STUDY_DIR"
DB_URL_ENV = "GANEVAL_STUDY_DB_URL"
ADMIN_PASSWORD_ENV = "GANEVAL_STUDY_ADMIN_PASSWORD"
MAX_PARTICIPANTS_ENV = "GANEVAL_STUDY_MAX_PARTICIPANTS"
ABANDON_AFTER_ENV = "GANEVAL_STUDY_ABANDON_AFTER_S"
# an answer counts only once its picture has been on screen this long (in the browser, from the
# picture's first paint; a page without the timing script falls back to the server's draw time)
MIN_DISPLAY_ENV = "GANEVAL_STUDY_MIN_DISPLAY_MS"
DEFAULT_MIN_DISPLAY_MS = 300
MAX_OTHER_TEXT = 2000
MAX_EXTERNAL_ID = 256  # bytes of UTF-8: ids are stored whole, never cut into collisions
DEFAULT_ABANDON_AFTER_S = 30 * 60
ACTIVE_STATUSES = ("consent", "qualification", "trials")   # not finished
ADMIN_MAX_FAILURES = 5
ADMIN_WINDOW = dt.timedelta(minutes=10)
ADMIN_LOCKOUT = dt.timedelta(minutes=10)
# beyond this many failed logins a minute from everywhere together (a guess from many addresses),
# only addresses that have logged in before get their attempts checked
ADMIN_GLOBAL_MAX_FAILURES = 20
ADMIN_GLOBAL_WINDOW = dt.timedelta(minutes=1)
ADMIN_TRUSTED_FOR = dt.timedelta(days=30)
ADMIN_SESSION_TTL = dt.timedelta(hours=12)

log = logging.getLogger("ganeval.study_app")
_IMAGE_ID = re.compile(r"^[0-9a-f]{16}$")



class StudyClosed(GanevalError):
    """The study is closed: no new participants and no new judgments."""


class _Retry(Exception):
    """The participant's status moved on between deciding an answer and storing it."""


class StudyFull(GanevalError):
    """--max-participants have signed up: no new participants."""


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
    completion_url: str | None = None  # crowdsourcing: where participants go after the last trial
    screened_out_url: str | None = None  # crowdsourcing: where those who end early go (e.g. Prolific's screened-out code)
    max_participants: int | None = None
    link_secret: str | None = None     # set by --signed-links: entry links must carry sig=link_signature(id)
    protocol: str = "hype-infinity"    # or "hype-time": each picture shown for a staircase-adapted exposure
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


MIN_ADMIN_PASSWORD = 8


def check_admin_password(password: str) -> str:
    """The admin password must have at least MIN_ADMIN_PASSWORD characters and not be blank (BadInput)."""
    if not password.strip():
        raise BadInput(f"the admin password (${ADMIN_PASSWORD_ENV}) is blank; choose one of at least "
                       f"{MIN_ADMIN_PASSWORD} characters")
    if len(password) < MIN_ADMIN_PASSWORD:
        raise BadInput(f"the admin password (${ADMIN_PASSWORD_ENV}) must have at least {MIN_ADMIN_PASSWORD} "
                       f"characters, it has {len(password)}")
    return password


def check_completion_url(url: str | None) -> str | None:
    """A crowdsourcing completion URL must be an absolute http(s) address (BadInput otherwise)."""
    if url is None:
        return None
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or any(c in url for c in "\"'<> \n\r\t"):
        raise BadInput(f"--completion-url must be an http:// or https:// address, got {url!r}")
    return url


PROTOCOLS = ("hype-infinity", "hype-time")
# HYPE-time's staircase (Zhou et al. 2019: exposures between 100 and 1000 ms, shorter after right
# answers, longer after wrong ones; the threshold is the modal exposure). ganeval's rule: start at
# 500 ms, 30 ms shorter after 3 right answers in a row, 30 ms longer after each wrong one.
STAIRCASE_START_MS, STAIRCASE_STEP_MS, STAIRCASE_DOWN_AFTER = 500, 30, 3
STAIRCASE_RANGE_MS = (100, 1000)


def staircase_exposure(history: Sequence[bool]) -> int:
    """The next exposure (ms) after a participant's main-trial answers, right (True) or wrong,
    in the order given."""
    exposure, streak = STAIRCASE_START_MS, 0
    low, high = STAIRCASE_RANGE_MS
    for correct in history:
        if correct:
            streak += 1
            if streak == STAIRCASE_DOWN_AFTER:
                exposure, streak = max(low, exposure - STAIRCASE_STEP_MS), 0
        else:
            exposure, streak = min(high, exposure + STAIRCASE_STEP_MS), 0
    return exposure


LINK_ID_PARAM = "pid"   # the participant id in a personal (signed) link
LINK_SIG_PARAM = "sig"


def new_link_secret() -> str:
    return secrets.token_hex(32)


def link_signature(secret: str, external_id: str) -> str:
    """The ``sig`` of a personal link: HMAC-SHA256 of the id under the study's secret (24 hex
    digits), so nobody who only knows or guesses an id can answer as that person."""
    return hmac.new(bytes.fromhex(secret), check_external_id(external_id).encode("utf-8", "surrogatepass"),
                    hashlib.sha256).hexdigest()[:24]


def link_is_signed(secret: str, external_id: str, sig: str | None) -> bool:
    return bool(sig) and hmac.compare_digest(link_signature(secret, external_id), str(sig).strip().lower())


def personal_links(secret: str, base_url: str, ids: Sequence[str]) -> list[tuple[str, str]]:
    """(id, link) for each participant id: ``BASE/?pid=ID&sig=SIG``."""
    from urllib.parse import urlencode

    base = base_url.rstrip("/") + "/"
    return [(i, base + "?" + urlencode({LINK_ID_PARAM: i, LINK_SIG_PARAM: link_signature(secret, i)}))
            for i in (check_external_id(x) for x in ids)]


def update_settings(study_dir: str | os.PathLike, **changes) -> StudySettings:
    """Change fields of STUDY_DIR/study.json (atomically); unknown names are BadInput."""
    path = Path(study_dir).expanduser() / SETTINGS_FILE
    settings = StudySettings.load(path)
    for name, value in changes.items():
        if not hasattr(settings, name):
            raise BadInput(f"unknown study setting {name!r}")
        setattr(settings, name, value)
    settings.save(path)
    return settings


def resolve_db_url(study_dir: Path, settings: StudySettings, db_url: str | None = None) -> str:
    """``db_url``, else $GANEVAL_STUDY_DB_URL, else study.json's, else STUDY_DIR/study.db."""
    return db_url or os.environ.get(DB_URL_ENV) or settings.db_url or db.sqlite_url(study_dir)


def _phases_for(status: str) -> tuple[str, ...]:
    if status == "qualification":
        return ("qualification",)
    if status == "trials":
        return ("main", "attention")
    return ()


def _judged():
    """The trial (``trials`` row in the outer query) has a judgment."""
    return select(judgments.c.id).where(judgments.c.trial_id == trials.c.id).exists()


def _abandoned(cutoff: str):
    """The participant has not finished and has done nothing since ``cutoff`` (ISO time)."""
    return and_(participants.c.status.in_(ACTIVE_STATUSES),
                func.coalesce(participants.c.active_at, participants.c.created_at) < cutoff)


# The statements of the answer path, built once. Building a Core statement (coercions,
# aliases, the cache key) costs several times more Python than running it; under many
# concurrent participants that CPU is what a save waits for (benchmarks/study_load.py).

def _first_open_trial_query():
    """The participant's first unanswered trial of their current phase, with their trial count."""
    others = trials.alias("others")
    total = (select(func.count()).select_from(others)
             .where(others.c.participant_id == participants.c.id).scalar_subquery())
    in_phase = or_(and_(participants.c.status == "qualification", trials.c.phase == "qualification"),
                   and_(participants.c.status == "trials", trials.c.phase.in_(("main", "attention"))))
    return (select(trials.c.id, trials.c.position, trials.c.phase, trials.c.image_id, trials.c.shown_at,
                   total.label("total"))
            .join(participants, participants.c.id == trials.c.participant_id)
            .where(participants.c.token == bindparam("token"), in_phase, ~_judged())
            .order_by(trials.c.position).limit(1))


def _plan_query():
    """Everything an answer to trial :trial_id by :token changes, in one row: the participant,
    whether the study is open, the trial and its truth, any judgment already stored, how
    many trials of the same phase remain unanswered, and the next one not yet shown."""
    others = trials.alias("others")
    group = case((trials.c.phase == "qualification", "q"), else_="m")
    other_group = case((others.c.phase == "qualification", "q"), else_="m")
    unanswered = ~select(judgments.c.id).where(judgments.c.trial_id == others.c.id).exists()
    same_phase = and_(others.c.participant_id == participants.c.id, other_group == group,
                      others.c.id != trials.c.id, unanswered)
    left = select(func.count()).select_from(others).where(same_phase).scalar_subquery()
    nxt = (select(others.c.id).where(same_phase, others.c.shown_at.is_(None))
           .order_by(others.c.position).limit(1).scalar_subquery())
    return (select(participants.c.id.label("pid"), participants.c.status, study_state.c.is_open,
                   trials.c.id.label("trial"), trials.c.phase, trials.c.shown_at, images.c.truth,
                   judgments.c.id.label("judgment"), left.label("left"), nxt.label("next"))
            .select_from(participants.join(study_state, study_state.c.id == 1)
                         .outerjoin(trials, and_(trials.c.participant_id == participants.c.id,
                                                 trials.c.id == bindparam("trial_id")))
                         .outerjoin(images, images.c.id == trials.c.image_id)
                         .outerjoin(judgments, judgments.c.trial_id == trials.c.id))
            .where(participants.c.token == bindparam("token")))


FIRST_OPEN_TRIAL = _first_open_trial_query()
PLAN_ANSWER = _plan_query()
PHASE_TRIALS = (select(trials.c.id, trials.c.position, trials.c.phase, trials.c.shown_at, images.c.truth,
                       judgments.c.id.label("judgment"), judgments.c.correct)
                .select_from(trials.join(images, images.c.id == trials.c.image_id)
                             .outerjoin(judgments, judgments.c.trial_id == trials.c.id))
                .where(trials.c.participant_id == bindparam("pid")).order_by(trials.c.position))
INSERT_JUDGMENT = insert(judgments)
# SET columns come from the parameters' keys; the WHERE parameters are prefixed so they never
# collide with a column name
MOVE_PARTICIPANT = update(participants).where(participants.c.id == bindparam("where_pid"),
                                              participants.c.status == bindparam("where_status"))
STAMP_SHOWN = (update(trials).where(trials.c.id == bindparam("where_trial"), trials.c.shown_at.is_(None))
               .values(shown_at=bindparam("shown_at")))
TOUCH_PARTICIPANT = update(participants).where(participants.c.token == bindparam("where_token"))


def check_external_id(external_id: str) -> str:
    """A platform's participant id as given (surrounding blanks removed): printable, no NUL or
    other control characters, 1..MAX_EXTERNAL_ID bytes of UTF-8. Never shortened: two long ids
    that share a prefix stay two participants."""
    text = str(external_id).strip()
    if not text or len(text.encode("utf-8", "surrogatepass")) > MAX_EXTERNAL_ID:
        raise BadInput(f"external participant id must be 1..{MAX_EXTERNAL_ID} bytes")
    if not text.isprintable():
        raise BadInput("external participant id holds control characters")
    return text


_external = check_external_id

MAX_CLIENT_RT_MS = 3_600_000  # an hour: anything longer from a browser is not a response time


@dataclass(frozen=True)
class ClientTiming:
    """The browser's timing of one trial: from the picture's first paint to the press."""

    rt_ms: int
    shown_at: str | None  # the browser's clock at the first paint (UTC ISO), as the browser says
    exposure_shown_ms: int | None = None  # HYPE-time: first paint to mask


def parse_client_timing(text: str | None) -> ClientTiming | None:
    """What the page's script sent (``{"rt": ms, "shown": epoch ms}``), or None when it sent
    nothing usable: the browser is untrusted, so anything malformed is dropped, never an error."""
    try:
        data = json.loads(text) if text else None
        rt = data.get("rt") if isinstance(data, dict) else None
        if isinstance(rt, bool) or not isinstance(rt, (int, float)) or not 0 <= rt <= MAX_CLIENT_RT_MS:
            return None
        shown = data.get("shown")
        shown_at = None
        if isinstance(shown, (int, float)) and not isinstance(shown, bool) and 0 < shown < 1e14:
            shown_at = db.iso(dt.datetime.fromtimestamp(shown / 1000, dt.timezone.utc))
        exposure = data.get("exposure")
        exposure_ms = (int(round(exposure)) if isinstance(exposure, (int, float)) and not isinstance(exposure, bool)
                       and 0 <= exposure <= MAX_CLIENT_RT_MS else None)
        return ClientTiming(int(round(rt)), shown_at, exposure_ms)
    except (ValueError, TypeError, OverflowError, OSError):
        return None


def locked_until(failures: Sequence[dt.datetime]) -> dt.datetime:
    """When one address's admin lockout ends, given its failed attempts' times (sorted):
    ADMIN_LOCKOUT after the latest failure that completed ADMIN_MAX_FAILURES within ADMIN_WINDOW."""
    end = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    for i in range(ADMIN_MAX_FAILURES - 1, len(failures)):
        if failures[i] - failures[i - ADMIN_MAX_FAILURES + 1] <= ADMIN_WINDOW:
            end = max(end, failures[i] + ADMIN_LOCKOUT)
    return end


def _hash(token: str) -> str:
    return hashlib.sha256(str(token).encode()).hexdigest()


def source_key(address: str | None) -> str:
    """What the lockout stores of a client address: a hash, so the table holds no addresses."""
    return _hash(f"ganeval-admin-source:{address or 'unknown'}")[:32]


class StudyStore:
    """Access to one study (its settings, images folder and database).

    ``max_participants`` (None: the study's setting) caps sign-ups; a participant who has not
    finished and did nothing for ``abandon_after_s`` is abandoned: their unanswered images no
    longer count as shown (so others get them) and their place is free again."""

    def __init__(self, study_dir: Path, settings: StudySettings, engine, max_participants: int | None = None,
                 abandon_after_s: float = DEFAULT_ABANDON_AFTER_S) -> None:
        self.study_dir = Path(study_dir)
        self.settings = settings
        self.engine = engine
        self.max_participants = max_participants if max_participants is not None else settings.max_participants
        self.abandon_after_s = float(abandon_after_s)

    @classmethod
    def open(cls, study_dir: str | os.PathLike, db_url: str | None = None, max_participants: int | None = None,
             abandon_after_s: float = DEFAULT_ABANDON_AFTER_S, existing: bool = False) -> "StudyStore":
        """Open an existing study; BadInput when STUDY_DIR holds no study.json.
        The database URL: ``db_url``, else $GANEVAL_STUDY_DB_URL, else study.json's, else
        the SQLite file STUDY_DIR/study.db. Missing tables are created, unless ``existing``
        (status, export): then a missing or empty SQLite file is BadInput and nothing is made."""
        study_dir = Path(study_dir).expanduser()
        path = study_dir / SETTINGS_FILE
        if not path.is_file():
            raise BadInput(f"{study_dir}: not a study (no {SETTINGS_FILE}); create one with `ganeval study init`")
        settings = StudySettings.load(path)
        url = resolve_db_url(study_dir, settings, db_url)
        if existing and url.startswith("sqlite:///"):
            file = Path(url[len("sqlite:///"):])
            if not file.is_file() or file.stat().st_size == 0:
                state = "is empty (0 bytes)" if file.is_file() else "is missing"
                raise BadInput(f"{file}: the study database {state}; nothing was read or created "
                               "(restore it from a backup, or build the study again)")
        engine = db.make_engine(url)
        try:
            db.create_schema(engine)
        except Exception as err:  # noqa: BLE001 - an unreachable server etc.: one line
            engine.dispose()
            raise GanevalError(f"cannot open the study database {db.display_url(url)}: "
                               f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None
        return cls(study_dir, settings, engine, max_participants=max_participants, abandon_after_s=abandon_after_s)

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
    def participant_for(self, external_id: str) -> str | None:
        """The token of the participant a crowdsourcing id (Prolific PID, MTurk workerId)
        belongs to, or None: the same person always comes back to their own participant."""
        with db.one_statement(self.engine) as conn:
            return conn.execute(select(participants.c.token)
                                .where(participants.c.external_id == _external(external_id))).scalar()

    @db.retry_on_disconnect
    def start_participant(self, kind: str = "human", external_id: str | None = None) -> str:
        """A new participant token (secrets.token_urlsafe) with its balanced randomised trials;
        with an ``external_id`` already known, that participant's token instead (one person,
        one participant). Raises StudyClosed when the study is closed, StudyFull when
        max_participants have signed up (abandoned ones not counted)."""
        if kind not in PARTICIPANT_KINDS:
            raise BadInput(f"participant kind must be one of {', '.join(PARTICIPANT_KINDS)}, got {kind!r}")
        external = _external(external_id) if external_id is not None else None
        s = self.settings
        token = secrets.token_urlsafe(16)
        now_t = db.utcnow()
        with db.write_tx(self.engine) as conn:
            # the lock on the state row serialises participant creation across processes and
            # servers (PostgreSQL: row lock; SQLite: BEGIN IMMEDIATE), so exposure counts are exact
            is_open = conn.execute(select(study_state.c.is_open).where(study_state.c.id == 1)
                                   .with_for_update()).scalar()
            if external is not None:
                known = conn.execute(select(participants.c.token)
                                     .where(participants.c.external_id == external)).scalar()
                if known is not None:
                    return known
            if not is_open:
                raise StudyClosed("the study is closed")
            cutoff = db.iso(now_t - dt.timedelta(seconds=self.abandon_after_s))
            if self.max_participants:
                signed_up = conn.execute(select(func.count()).select_from(participants)
                                         .where(~_abandoned(cutoff))).scalar()
                if signed_up >= self.max_participants:
                    raise StudyFull(f"the study is full ({self.max_participants} participants)")
            ordinal = int(conn.execute(select(func.count()).select_from(participants)).scalar() or 0) + 1
            exposure = self._exposure(conn, cutoff)
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
            now = db.iso(now_t)
            pid = conn.execute(insert(participants).values(
                token=token, kind=kind, status="consent", ordinal=ordinal, created_at=now, active_at=now,
                external_id=external)).inserted_primary_key[0]
            conn.execute(insert(trials), [
                {"participant_id": pid, "position": pos, "phase": phase, "image_id": image_id}
                for pos, (phase, image_id) in enumerate(plan)])
        return token

    def exposure(self) -> dict[str, int]:
        """Per image id: how often it is assigned and still counts (judged, or assigned to a
        participant who has not abandoned). Assignment balances this number."""
        cutoff = db.iso(db.utcnow() - dt.timedelta(seconds=self.abandon_after_s))
        with db.read_tx(self.engine) as conn:
            return self._exposure(conn, cutoff)

    @staticmethod
    def _exposure(conn, cutoff: str) -> dict[str, int]:
        return {k: int(v) for k, v in conn.execute(
            select(trials.c.image_id, func.count())
            .select_from(trials.join(participants, participants.c.id == trials.c.participant_id))
            .where(or_(_judged(), ~_abandoned(cutoff))).group_by(trials.c.image_id)).all()}

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
            now = db.iso(db.utcnow())
            has_qual = conn.execute(select(func.count()).select_from(trials).where(
                and_(trials.c.participant_id == row.id, trials.c.phase == "qualification"))).scalar()
            conn.execute(update(participants).where(participants.c.id == row.id).values(
                status="qualification" if has_qual else "trials", consent_at=now, active_at=now))

    @db.retry_on_disconnect
    def current_trial(self, token: str) -> Trial | None:
        """First unanswered trial of the participant's current phase (None when there is none:
        consent not given, failed, done or unknown token). Records shown_at the first time.
        Derived from what is stored only, so any crash or retry resumes at the right trial; a
        participant whose phase is complete but whose status did not move on (a database
        written by an earlier version, which saved the two separately) is moved on here."""
        trial = self._first_open_trial(token)
        if trial is None:
            state = self.state(token)
            if state is None or state.status not in ("qualification", "trials"):
                return None
            with db.write_tx(self.engine) as conn:
                row = self._participant(conn, token, lock=True)
                if row is not None and row.status in ("qualification", "trials"):
                    self._settle(conn, row.id, row.status, db.utcnow())
            trial = self._first_open_trial(token)
            if trial is None:
                return None
        if trial.shown_at is None:
            now = db.iso(db.utcnow())
            with db.write_tx(self.engine) as conn:
                db.run_prepared(conn, STAMP_SHOWN, {"where_trial": trial.id, "shown_at": now})
                db.run_prepared(conn, TOUCH_PARTICIPANT, {"where_token": str(token), "active_at": now})
        return Trial(int(trial.id), int(trial.position), trial.phase, trial.image_id,
                     int(trial.position) + 1, int(trial.total))

    @db.retry_on_disconnect
    def keep_place(self, token: str) -> bool:
        """Whether a participant in the middle of the study still holds a place, and mark them
        active. One who was away longer than ``abandon_after_s`` lost it when others took the
        places; they come back only while a place is free, so ``max_participants`` holds at every
        moment (checked and claimed under the same lock as sign-ups)."""
        now_t = db.utcnow()
        with db.write_tx(self.engine) as conn:
            conn.execute(select(study_state.c.is_open).where(study_state.c.id == 1).with_for_update())
            row = conn.execute(select(participants.c.id, participants.c.status, participants.c.created_at,
                                      participants.c.active_at).where(participants.c.token == str(token))).first()
            if row is None:
                return False
            cutoff = db.iso(now_t - dt.timedelta(seconds=self.abandon_after_s))
            away = row.status in ACTIVE_STATUSES and (row.active_at or row.created_at) < cutoff
            if away and self.max_participants:
                others = conn.execute(select(func.count()).select_from(participants)
                                      .where(~_abandoned(cutoff), participants.c.id != row.id)).scalar()
                if others >= self.max_participants:
                    return False
            db.run_prepared(conn, TOUCH_PARTICIPANT, {"where_token": str(token), "active_at": db.iso(now_t)})
        return True

    def _first_open_trial(self, token: str):
        with db.one_statement(self.engine) as conn:
            return conn.execute(FIRST_OPEN_TRIAL, {"token": str(token)}).first()

    def image_path(self, image_id: str) -> Path:
        """STUDY_DIR/images/<id>.png; BadInput for an id that is not one of ours."""
        if not isinstance(image_id, str) or not _IMAGE_ID.match(image_id):
            raise BadInput(f"not an image id: {image_id!r}")
        path = self.study_dir / IMAGES_DIR / f"{image_id}.png"
        if not path.is_file():
            raise BadInput(f"no image {image_id} in {self.study_dir / IMAGES_DIR}")
        return path

    @db.retry_on_disconnect
    def replace_trial_image(self, token: str, trial_id: int, broken: Sequence[str] = ()) -> str | None:
        """Give an unanswered trial whose picture cannot be shown (file lost or unreadable)
        another picture of the same class: same truth and model label (an attention check,
        another attention image), not yet given to this participant, not in ``broken``, its file
        present; the least exposed first. Returns the new image id; when there is none the
        trial is dropped, so the participant goes on with one trial fewer. Either way the
        participant never sees a broken picture."""
        mine = participants.c.id == trials.c.participant_id
        with db.write_tx(self.engine) as conn:
            row = conn.execute(
                select(trials.c.participant_id, images.c.truth, images.c.model_label, images.c.role,
                       judgments.c.id.label("judgment"))
                .select_from(trials.join(participants, mine).join(images, images.c.id == trials.c.image_id)
                             .outerjoin(judgments, judgments.c.trial_id == trials.c.id))
                .where(participants.c.token == str(token), trials.c.id == int(trial_id))).first()
            if row is None:
                raise BadInput(f"trial {trial_id} is not this participant's")
            if row.judgment is not None:
                return None  # answered meanwhile: nothing to replace
            given = select(trials.c.image_id).where(trials.c.participant_id == row.participant_id)
            candidates = conn.execute(
                select(images.c.id).where(images.c.truth == row.truth, images.c.model_label == row.model_label,
                                          images.c.role == row.role, images.c.id.not_in(given))
                .order_by(images.c.sort_key)).scalars().all()
            cutoff = db.iso(db.utcnow() - dt.timedelta(seconds=self.abandon_after_s))
            exposure = self._exposure(conn, cutoff)
            for image_id in sorted(candidates, key=lambda i: exposure.get(i, 0)):  # stable: sort_key breaks ties
                if image_id not in broken and (self.study_dir / IMAGES_DIR / f"{image_id}.png").is_file():
                    conn.execute(update(trials).where(trials.c.id == int(trial_id))
                                 .values(image_id=image_id, shown_at=None))
                    return image_id
            return None

    def exposure_for(self, token: str, phase: str) -> int | None:
        """HYPE-time: the exposure (ms) of this participant's next trial in ``phase``, from the
        staircase over their main-trial answers so far; None when the trial is not timed (the
        study is HYPE-infinity, or a warm-up trial)."""
        if self.settings.protocol != "hype-time" or phase == "qualification":
            return None
        with db.one_statement(self.engine) as conn:
            history = conn.execute(
                select(judgments.c.correct)
                .select_from(judgments.join(trials, trials.c.id == judgments.c.trial_id)
                             .join(participants, participants.c.id == judgments.c.participant_id))
                .where(participants.c.token == str(token), trials.c.phase == "main")
                .order_by(trials.c.position)).scalars().all()
        return staircase_exposure([bool(c) for c in history])

    def record(self, token: str, trial_id: int, answer: str, confidence: int | None = None,
               reasons: Sequence[str] = (), other_text: str | None = None,
               client: "ClientTiming | None" = None, exposure_ms: int | None = None) -> bool:
        """Store one judgment, committed at once. False (and nothing stored) when that trial was
        already answered. Reasons and other_text are kept only for 'fake' answers; ``client``
        is the browser's timing of the trial, stored next to the server's; ``exposure_ms`` the
        HYPE-time exposure the trial was shown with. Raises
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
        values = {"answer": answer, "confidence": confidence, "reasons": reason_text, "reason_other": other,
                  "rt_client_ms": client.rt_ms if client else None,
                  "shown_client_at": client.shown_at if client else None,
                  "exposure_ms": exposure_ms,
                  "exposure_shown_ms": client.exposure_shown_ms if client and exposure_ms is not None else None}
        try:
            return self._record(str(token), trial_id, values, received)
        except IntegrityError:
            return False  # the same trial answered by a racing request: stored once

    @db.retry_on_disconnect
    def _record(self, token: str, trial_id: int, values: dict, received) -> bool:
        """ONE write transaction: the judgment, the participant's new phase or status with
        their activity time, and the stamp of the next trial shown commit together or not at
        all, so a crash at any point leaves either the trial unanswered (it is shown again)
        or everything done. Everything that decides those values is read first, outside the
        write lock (which on SQLite every writer queues for): the transaction itself is three
        short writes. The UNIQUE(participant, trial) key stores a racing double click once,
        and the participant update is guarded by the status it was decided from; should that
        status have moved on meanwhile, the whole answer is rolled back and decided again."""
        for _ in range(3):
            plan = self._plan_answer(token, trial_id, values["answer"], received)
            if plan is None:
                return False  # already answered
            try:
                with db.write_tx(self.engine) as conn:
                    db.run_prepared(conn, INSERT_JUDGMENT, {**plan["judgment"], **values})
                    moved = db.run_prepared(conn, MOVE_PARTICIPANT, {"where_pid": plan["pid"],
                                                                     "where_status": plan["status"],
                                                                     **plan["participant"]})
                    if moved != 1:
                        raise _Retry()
                    if plan["next"] is not None:
                        db.run_prepared(conn, STAMP_SHOWN, {"where_trial": plan["next"],
                                                            "shown_at": db.iso(db.utcnow())})
                return True
            except _Retry:
                continue
        raise GanevalError(f"could not save the answer to trial {trial_id}: the participant kept changing")

    def _plan_answer(self, token: str, trial_id: int, answer: str, received) -> dict | None:
        """Read what the answer changes: None when the trial is already answered; BadInput or
        StudyClosed when it cannot be answered. One statement in the usual case; the rows of
        the participant's trials only when this answer may end a phase."""
        with db.one_statement(self.engine) as conn:
            row = conn.execute(PLAN_ANSWER, {"token": token, "trial_id": trial_id}).first()
        if row is None:
            raise BadInput("unknown participant token")
        if not row.is_open:
            raise StudyClosed("the study is closed")
        if row.trial is None:
            raise BadInput(f"trial {trial_id} is not this participant's")
        if row.judgment is not None:
            return None
        if row.phase not in _phases_for(row.status):
            raise BadInput(f"trial {trial_id} cannot be answered now (participant status {row.status})")
        correct = answer == row.truth
        response_ms = None
        if row.shown_at is not None:
            response_ms = max(0, round((received - db.parse_iso(row.shown_at)).total_seconds() * 1000))
        plan = {"pid": row.pid, "status": row.status, "participant": {"active_at": db.iso(received)},
                "next": row.next,
                "judgment": {"participant_id": row.pid, "trial_id": trial_id, "correct": correct,
                             "response_ms": response_ms, "answered_at": db.iso(received)}}
        if row.left == 0:  # this answer ends a phase: decide the new status from all the trials
            with db.one_statement(self.engine) as conn:
                rows = conn.execute(PHASE_TRIALS, {"pid": row.pid}).all()
            answered = {r.id: (bool(r.correct) if r.id != trial_id else correct) for r in rows
                        if r.judgment is not None or r.id == trial_id}
            status, plan["participant"] = self._next_status(row.status, rows, answered, received)
            phases = _phases_for(status)
            following = next((r for r in rows if r.phase in phases and r.id not in answered), None)
            plan["next"] = following.id if following is not None and following.shown_at is None else None
        return plan

    @staticmethod
    def _next_status(status: str, rows, answered: dict, now) -> tuple[str, dict]:
        """The participant's status after the answers in ``answered`` (trial id -> correct):
        qualification decided when its last trial is answered; done after the last trial."""
        changes: dict = {"active_at": db.iso(now)}
        if status == "qualification":
            qual = [r for r in rows if r.phase == "qualification"]
            if all(r.id in answered for r in qual):
                real = [answered[r.id] for r in qual if r.truth == "real"]
                fake = [answered[r.id] for r in qual if r.truth == "fake"]
                if qualification_passed(sum(real), len(real), sum(fake), len(fake)):
                    status = "trials"
                    changes.update(status=status, qualified_at=db.iso(now))
                else:
                    return "failed", {**changes, "status": "failed", "finished_at": db.iso(now)}
        if status == "trials" and all(r.id in answered for r in rows if r.phase in ("main", "attention")):
            return "done", {**changes, "status": "done", "finished_at": db.iso(now)}
        return status, changes

    def _settle(self, conn, pid: int, status: str, now) -> None:
        """Move a participant on from what is stored (used to repair one whose phase is
        complete but whose status is not: databases written by earlier versions)."""
        rows = conn.execute(
            select(trials.c.id, trials.c.phase, images.c.truth, judgments.c.id.label("judgment"), judgments.c.correct)
            .select_from(trials.join(images, images.c.id == trials.c.image_id)
                         .outerjoin(judgments, judgments.c.trial_id == trials.c.id))
            .where(trials.c.participant_id == pid)).all()
        answered = {r.id: bool(r.correct) for r in rows if r.judgment is not None}
        _, changes = self._next_status(status, rows, answered, now)
        conn.execute(update(participants).where(participants.c.id == pid, participants.c.status == status)
                     .values(**changes))

    # ---- admin access ------------------------------------------------------------------
    def admin_login(self, given: str, password: str, source: str | None = None) -> tuple[str, str | None]:
        """Check an admin password against the lockout kept in the database (shared by every
        session and server). Per address (``source``, the client's address; only a hash is
        kept): after ADMIN_MAX_FAILURES failures within ADMIN_WINDOW that address is locked for
        ADMIN_LOCKOUT, the right password included, so a guesser cannot keep the admin out from
        elsewhere. Everywhere together: beyond ADMIN_GLOBAL_MAX_FAILURES failures within
        ADMIN_GLOBAL_WINDOW, only addresses that logged in within ADMIN_TRUSTED_FOR are checked,
        which bounds guessing from many addresses. Every attempt is stored. Returns (outcome,
        session token): 'ok' with a new session token, 'failed' or 'locked'."""
        now = db.utcnow()
        key = source_key(source)
        attempts = db.admin_attempts
        with db.write_tx(self.engine) as conn:
            # serialise attempts (PostgreSQL: the state row lock), so parallel guesses count exactly
            conn.execute(select(study_state.c.id).where(study_state.c.id == 1).with_for_update())
            since = db.iso(now - ADMIN_WINDOW - ADMIN_LOCKOUT)
            mine = [db.parse_iso(t) for t in conn.execute(
                select(attempts.c.at).where(attempts.c.outcome == "failed", attempts.c.at >= since,
                                            attempts.c.source == key).order_by(attempts.c.at)).scalars()]
            everywhere = conn.execute(select(func.count()).select_from(attempts).where(
                attempts.c.outcome == "failed", attempts.c.at >= db.iso(now - ADMIN_GLOBAL_WINDOW))).scalar()
            trusted = conn.execute(select(func.count()).select_from(attempts).where(
                attempts.c.outcome == "ok", attempts.c.source == key,
                attempts.c.at >= db.iso(now - ADMIN_TRUSTED_FOR))).scalar()
            if locked_until(mine) > now or (everywhere >= ADMIN_GLOBAL_MAX_FAILURES and not trusted):
                outcome = "locked"
            elif hmac.compare_digest(str(given).encode(), str(password).encode()):
                outcome = "ok"
            else:
                outcome = "failed"
            conn.execute(insert(attempts).values(at=db.iso(now), outcome=outcome, source=key))
            session = None
            if outcome == "ok":
                session = secrets.token_urlsafe(24)
                conn.execute(insert(db.admin_sessions).values(
                    token_hash=_hash(session), created_at=db.iso(now), expires_at=db.iso(now + ADMIN_SESSION_TTL)))
        log.warning("admin login %s at %s from source %s", outcome, db.iso(now), key[:8])
        return outcome, session

    def admin_session_valid(self, session: str | None) -> bool:
        """True for an admin session token given at login that has not expired or been ended."""
        if not session:
            return False
        with db.one_statement(self.engine) as conn:
            expires = conn.execute(select(db.admin_sessions.c.expires_at)
                                   .where(db.admin_sessions.c.token_hash == _hash(session))).scalar()
        return expires is not None and db.parse_iso(expires) > db.utcnow()

    def admin_logout(self, session: str) -> None:
        with db.one_statement(self.engine, write=True) as conn:
            conn.execute(db.admin_sessions.delete().where(db.admin_sessions.c.token_hash == _hash(session)))

    def admin_attempts(self) -> pd.DataFrame:
        """Every admin login attempt: time and outcome."""
        with db.read_tx(self.engine) as conn:
            rows = conn.execute(select(db.admin_attempts.c.at, db.admin_attempts.c.outcome)
                                .order_by(db.admin_attempts.c.id)).all()
        return pd.DataFrame([tuple(r) for r in rows], columns=["at", "outcome"])

    # ---- reading -----------------------------------------------------------------------
    def export_frame(self) -> pd.DataFrame:
        """One row per judgment, columns EXPORT_COLUMNS in that order."""
        from ganeval.study_app.export import export_frame

        return export_frame(self.engine, self.settings.protocol)

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


def export_study_images(study_dir: str | os.PathLike, db_url: str | None = None) -> pd.DataFrame:
    """A study's images: id, truth, model label, role, the key of the file it was made from,
    and its judgment counts (the admin's images table)."""
    store = StudyStore.open(study_dir, db_url=db_url)
    try:
        return store.images_progress()
    finally:
        store.dispose()


def export_study(study_dir: str | os.PathLike, db_url: str | None = None) -> pd.DataFrame:
    """A study's judgments, one row per judgment (the columns of ``ganeval study export``)."""
    store = StudyStore.open(study_dir, db_url=db_url)
    try:
        return store.export_frame()
    finally:
        store.dispose()
