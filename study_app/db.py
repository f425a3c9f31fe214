"""The study database: SQLAlchemy Core schema and engines.

The default is the SQLite file STUDY_DIR/study.db in WAL mode (readers never block the
writer), with a busy timeout and foreign keys on; any SQLAlchemy URL works, e.g.
``postgresql+psycopg://user@host/db`` for an online deployment. Write transactions go
through :func:`write_tx`, which on SQLite takes the write lock at BEGIN (BEGIN IMMEDIATE):
a deferred transaction that reads and then writes can fail at once with "database is
locked" when two processes upgrade together, whatever the busy timeout."""
from __future__ import annotations

import contextlib
import functools
import threading
import datetime as dt
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import (Boolean, Column, Connection, Engine, ForeignKey, Index, Integer, MetaData, String,
                        Table, Text, UniqueConstraint, create_engine, event)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from ganeval.errors import BadInput
from ganeval.study_app.writerqueue import writer_turn

DB_FILE = "study.db"
_WRITER_INIT = threading.Lock()
SQLITE_BUSY_TIMEOUT_MS = 30_000

metadata = MetaData()

# one row (id=1): whether the study accepts participants and judgments
study_state = Table(
    "study_state", metadata,
    Column("id", Integer, primary_key=True),
    Column("is_open", Boolean, nullable=False, default=True),
    Column("updated_at", String(40), nullable=False),
)

# the copied images; truth and source key stay here (admin only), never in file names
images = Table(
    "images", metadata,
    Column("id", String(32), primary_key=True),
    Column("truth", String(8), nullable=False),           # 'real' | 'fake'
    Column("model_label", String(200), nullable=False),   # 'real', the --label, or 'attention'
    Column("role", String(16), nullable=False),           # 'pool' | 'attention'
    Column("source", Text, nullable=False),
    Column("source_key", Text, nullable=False),
    Column("pixel_hash", String(64), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("sort_key", Integer, nullable=False),          # canonical order for seeded assignment
)

participants = Table(
    "participants", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),           # 'human' | 'simulated'
    Column("status", String(16), nullable=False),
    Column("ordinal", Integer, nullable=False),           # 1-based creation order (seeds the assignment)
    Column("created_at", String(40), nullable=False),
    Column("consent_at", String(40)),
    Column("qualified_at", String(40)),
    Column("finished_at", String(40)),
    # added later (migrated in at open, see migrate): the crowdsourcing platform's participant id
    # (Prolific PID, MTurk workerId): one person, one participant; and the last activity, after
    # which an unfinished participant counts as abandoned and releases their images
    Column("external_id", String(256), unique=True),
    Column("active_at", String(40)),
)

trials = Table(
    "trials", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("participant_id", Integer, ForeignKey("participants.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("phase", String(16), nullable=False),          # 'qualification' | 'main' | 'attention'
    Column("image_id", String(32), ForeignKey("images.id"), nullable=False),
    Column("shown_at", String(40)),
    UniqueConstraint("participant_id", "position", name="uq_trial_position"),
)

judgments = Table(
    "judgments", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("participant_id", Integer, ForeignKey("participants.id", ondelete="CASCADE"), nullable=False),
    Column("trial_id", Integer, ForeignKey("trials.id", ondelete="CASCADE"), nullable=False),
    Column("answer", String(8), nullable=False),
    Column("correct", Boolean, nullable=False),
    Column("confidence", Integer),
    Column("reasons", Text, nullable=False, default=""),
    Column("reason_other", Text),
    Column("response_ms", Integer),
    Column("answered_at", String(40), nullable=False),
    # added later (migrated in at open): the browser's own timing of the trial, when it sent one
    Column("rt_client_ms", Integer),        # first paint of the picture → the press, in the browser
    Column("shown_client_at", String(40)),  # the browser's clock at that first paint (UTC ISO)
    Column("exposure_ms", Integer),         # HYPE-time: how long the picture was to be shown
    Column("exposure_shown_ms", Integer),   # HYPE-time: first paint to mask, measured in the browser
    UniqueConstraint("participant_id", "trial_id", name="uq_judgment_participant_trial"),
)

# every admin login attempt (all servers): the lockout counts failures here, not per session
admin_attempts = Table(
    "admin_attempts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False),
    Column("outcome", String(16), nullable=False),        # 'ok' | 'failed' | 'locked'
    # added later (migrated in at open): a keyed hash of the client's address, never the address
    Column("source", String(64)),
)

# admin sessions: the browser keeps a random token in its URL; the server keeps only its hash
admin_sessions = Table(
    "admin_sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("created_at", String(40), nullable=False),
    Column("expires_at", String(40), nullable=False),
)

Index("ix_trials_image", trials.c.image_id)
Index("ix_judgments_trial", judgments.c.trial_id)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(t: dt.datetime) -> str:
    """ISO 8601 UTC with microseconds, e.g. 2026-01-02T03:04:05.123456+00:00."""
    return t.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def sqlite_url(study_dir: str | Path) -> str:
    return f"sqlite:///{Path(study_dir).resolve() / DB_FILE}"


def normalise_url(url: str) -> str:
    """postgres:// and postgresql:// use psycopg 3 (the driver installed), not psycopg2."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def display_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


def make_engine(url: str) -> Engine:
    """An engine for the study database; BadInput for a URL SQLAlchemy cannot use."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise BadInput(f"not a database URL: {display_url(url)} ({err})") from None
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                                         "check_same_thread": False},
                                   pool_size=32, max_overflow=32)
            _configure_sqlite(engine)
            if parsed.database and parsed.database != ":memory:":
                engine.ganeval_lock_path = parsed.database + ".lock"  # type: ignore[attr-defined]
        else:
            # no pre-ping (a round trip per transaction): dead connections are retried instead
            engine = create_engine(parsed, pool_size=10, max_overflow=30, pool_recycle=1800)
    except Exception as err:  # noqa: BLE001 - missing driver etc.: one line
        raise BadInput(f"cannot use database {display_url(url)}: {type(err).__name__}: {err}") from None
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        # WAL + NORMAL: a commit survives any crash of the app or process (never corrupts); only an
        # OS crash or power cut can lose the last commits. FULL fsyncs every commit (~3 ms here),
        # which under 30 writers at once queues saves past 100 ms.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("ganeval_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


_PROCESS_WRITERS: dict[str, threading.Lock] = {}


def _process_writer(engine: Engine) -> threading.Lock:
    """One writer at a time per process and SQLite file: threads (a server's sessions) queue
    here, cheaply, and one of them at a time stands in the line between processes
    (:mod:`writerqueue`, whose locks belong to the process, not the thread)."""
    key = getattr(engine, "ganeval_lock_path", None) or str(id(engine))
    with _WRITER_INIT:
        return _PROCESS_WRITERS.setdefault(key, threading.Lock())


@contextlib.contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: commits on success, rolls back on error."""
    if not is_sqlite(engine):
        with engine.connect() as conn:
            with conn.begin():
                yield conn
        return
    with engine.connect() as conn, _process_writer(engine), writer_turn(getattr(engine, "ganeval_lock_path", None)):
        conn.execution_options(ganeval_write=True)
        with conn.begin():
            yield conn


_PREPARED: dict[tuple, tuple[str, tuple[str, ...] | None]] = {}
_PREPARED_LOCK = threading.Lock()


def run_prepared(conn: Connection, statement, params: dict) -> int:
    """Run a Core statement compiled once (per dialect and set of parameter names) straight
    on the driver, and return its row count. Inside a write transaction every bit of Python
    is time that every other writer queues for: ``conn.execute`` spends ~100 µs a statement
    on the cache key and result set-up, this ~25 µs. For the few statements of the answer
    path; everything else uses ``conn.execute``."""
    key = (id(statement), conn.dialect.name, tuple(sorted(params)))
    prepared = _PREPARED.get(key)
    if prepared is None:
        compiled = statement.compile(dialect=conn.dialect, column_keys=sorted(params))
        order = tuple(compiled.positiontup) if compiled.positional else None
        with _PREPARED_LOCK:
            prepared = _PREPARED.setdefault(key, (str(compiled), order))
    sql, order = prepared
    args = tuple(params[name] for name in order) if order is not None else params
    return conn.exec_driver_sql(sql, args).rowcount


@contextlib.contextmanager
def one_statement(engine: Engine, write: bool = False) -> Iterator[Connection]:
    """For a single statement, which is atomic on its own: on a server database it runs in
    autocommit mode, saving the BEGIN and COMMIT round trips; on SQLite it is a transaction
    as usual (writes queue for the lock)."""
    if is_sqlite(engine):
        with (write_tx(engine) if write else read_tx(engine)) as conn:
            yield conn
        return
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


@contextlib.contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction (a consistent snapshot)."""
    with engine.connect() as conn:
        with conn.begin():
            yield conn


def retry_on_disconnect(method: Callable) -> Callable:
    """Run a database method once more when its connection turned out dead (a restarted
    server, a dropped idle connection): the pool is refreshed after the first failure. The
    methods are idempotent (a repeated judgment is refused by the unique key)."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except DBAPIError as err:
            if not err.connection_invalidated:
                raise
            return method(*args, **kwargs)

    return wrapper


# columns added to existing tables since the first release: (table, column, SQL type)
ADDED_COLUMNS = (("participants", "external_id", "VARCHAR(256)"), ("participants", "active_at", "VARCHAR(40)"),
                 ("judgments", "rt_client_ms", "INTEGER"), ("judgments", "shown_client_at", "VARCHAR(40)"),
                 ("admin_attempts", "source", "VARCHAR(64)"), ("judgments", "exposure_ms", "INTEGER"),
                 ("judgments", "exposure_shown_ms", "INTEGER"))


def migrate(engine: Engine) -> None:
    """Bring a study made by an earlier version up to date: add the missing columns (nullable,
    so existing rows stay valid) and a unique index on external_id."""
    from sqlalchemy import inspect

    present = {table: {c["name"]: c for c in inspect(engine).get_columns(table)}
               for table in {t for t, _, _ in ADDED_COLUMNS}}
    columns = present["participants"]
    missing = [(t, c, ty) for t, c, ty in ADDED_COLUMNS if c not in present[t]]
    narrow = getattr(columns.get("external_id", {}).get("type"), "length", None)
    if engine.dialect.name == "postgresql" and narrow is not None and narrow < 256:
        with write_tx(engine) as conn:  # ids were once cut to 200 characters; now stored whole
            conn.exec_driver_sql("ALTER TABLE participants ALTER COLUMN external_id TYPE VARCHAR(256)")
    if not missing:
        return
    with write_tx(engine) as conn:
        for table, column, sql_type in missing:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
        if "external_id" in {c for _, c, _ in missing}:
            conn.exec_driver_sql("CREATE UNIQUE INDEX IF NOT EXISTS uq_participants_external_id "
                                 "ON participants (external_id)")


def create_schema(engine: Engine) -> None:
    """Create the tables that are missing (and columns, see migrate), and the study_state row."""
    from sqlalchemy import insert, select

    metadata.create_all(engine)
    migrate(engine)
    with write_tx(engine) as conn:
        if conn.execute(select(study_state.c.id)).first() is None:
            conn.execute(insert(study_state).values(id=1, is_open=True, updated_at=iso(utcnow())))
