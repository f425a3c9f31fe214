"""A throwaway PostgreSQL cluster for tests and benchmarks.

``pg_url`` (pytest fixture, session scope) finds initdb/pg_ctl under
/usr/lib/postgresql/*/bin (or $PATH), runs ``initdb`` with trust auth in a temporary
directory (owned by the ``postgres`` user when we are root: initdb refuses to run as root),
starts the server on 127.0.0.1 on a free port with its unix socket in that directory,
creates a database and yields a ``postgresql+psycopg://`` URL; at the end it stops the
server and removes the directory. Without server binaries, or when the start fails, the
tests that use it are skipped with the reason; they never pass silently.

tests/conftest.py registers it as a plugin, so one cluster serves the whole session.
``fresh_pg_url`` (function scope) gives each test an empty database of its own."""
from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest


class PostgresUnavailable(RuntimeError):
    pass


def _find_bin() -> Path:
    for pattern in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [
            int(x) if x.isdigit() else x for x in Path(p).parent.name.split(".")], reverse=True):
        if (Path(pattern) / "initdb").is_file() and (Path(pattern) / "pg_ctl").is_file():
            return Path(pattern)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    raise PostgresUnavailable("no initdb/pg_ctl under /usr/lib/postgresql/*/bin or on PATH "
                              "(install Debian's postgresql package)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """One initdb'd, running cluster; ``url(dbname)`` gives SQLAlchemy URLs for it."""

    user = "postgres"

    def __init__(self) -> None:
        self.bin = _find_bin()
        self.root = Path(tempfile.mkdtemp(prefix="ganeval-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_root = hasattr(os, "geteuid") and os.geteuid() == 0
        self.started = False

    def _cmd(self, *args: str) -> list[str]:
        if self.as_root:
            runuser = shutil.which("runuser")
            if not runuser:
                raise PostgresUnavailable("running as root and runuser is missing (initdb refuses root)")
            return [runuser, "-u", self.user, "--", *args]
        return list(args)

    def _run(self, *args: str, timeout: float = 60) -> None:
        try:
            proc = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise PostgresUnavailable(f"{Path(args[0]).name} failed: {err}") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
            raise PostgresUnavailable(f"{Path(args[0]).name} exited {proc.returncode}: {tail[0]}")

    def start(self) -> None:
        if self.as_root:
            import pwd

            try:
                entry = pwd.getpwnam(self.user)
            except KeyError:
                raise PostgresUnavailable(f"running as root and there is no {self.user!r} user") from None
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        else:
            self.user = os.environ.get("USER") or "postgres"
        os.chmod(self.root, 0o700)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-locale", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
                   f"-c max_connections=200 -c fsync=on -c shared_buffers=32MB")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log.txt"),
                  "-o", options, "-w", "-t", "60", "start", timeout=90)
        self.started = True
        self._wait()

    def _wait(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=3):
                    return
            except psycopg.OperationalError as err:
                if time.monotonic() > deadline:
                    raise PostgresUnavailable(f"server did not accept connections: {err}") from None
                time.sleep(0.2)

    def dsn(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = name or f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(PostgresUnavailable):
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """Start a cluster for the duration of the block (raises PostgresUnavailable)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise PostgresUnavailable("the psycopg driver is not installed") from None
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    try:
        with throwaway_cluster() as cluster:
            yield cluster
    except PostgresUnavailable as err:
        pytest.skip(f"PostgreSQL server (Debian package 'postgresql') not available: {err}")


@pytest.fixture(scope="session")
def pg_url(pg_cluster: Cluster) -> str:
    """URL of a database in the session's throwaway cluster."""
    return pg_cluster.create_database("ganeval")


@pytest.fixture
def fresh_pg_url(pg_cluster: Cluster) -> str:
    """An empty database of its own for one test."""
    return pg_cluster.create_database()
