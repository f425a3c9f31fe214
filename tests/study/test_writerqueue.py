"""The line of SQLite writers: first come, first served across processes, and a writer that
dies never blocks the line."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from ganeval.study_app.writerqueue import writer_turn

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX byte-range locks")


def _writer(lock_path: str, log_path: str, name: str, hold_s: float, ready) -> None:
    ready.set()
    with writer_turn(lock_path):
        with open(log_path, "a") as log:
            log.write(f"{name}\n")
        time.sleep(hold_s)


def _wait_for_ticket(lock_path: str, count: int, timeout: float = 20.0) -> None:
    """Until ``count`` tickets have been drawn (the counter in the lock file)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        raw = Path(lock_path).read_bytes()[:8] if Path(lock_path).exists() else b""
        if len(raw) == 8 and int.from_bytes(raw, "little") >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"{count} tickets not drawn in {timeout} s")


@pytest.mark.slow
def test_writers_enter_in_the_order_they_arrived(tmp_path):
    lock, log = str(tmp_path / "study.db.lock"), str(tmp_path / "order.txt")
    ctx = mp.get_context("spawn")
    procs = []
    for i, name in enumerate(["first", "second", "third", "fourth"]):
        ready = ctx.Event()
        proc = ctx.Process(target=_writer, args=(lock, log, name, 0.5 if i == 0 else 0.0, ready))
        proc.start()
        ready.wait(20)
        _wait_for_ticket(lock, i + 1)  # this one stands in line before the next starts
        procs.append(proc)
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    assert Path(log).read_text().split() == ["first", "second", "third", "fourth"]


@pytest.mark.slow
def test_a_writer_killed_in_its_turn_lets_the_next_one_go(tmp_path):
    lock, log = str(tmp_path / "study.db.lock"), str(tmp_path / "order.txt")
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    stuck = ctx.Process(target=_writer, args=(lock, log, "killed", 600.0, ready))
    stuck.start()
    ready.wait(20)
    _wait_for_ticket(lock, 1)
    while not Path(log).exists():  # it holds its turn
        time.sleep(0.01)
    ready2 = ctx.Event()
    nxt = ctx.Process(target=_writer, args=(lock, log, "next", 0.0, ready2))
    nxt.start()
    _wait_for_ticket(lock, 2)
    time.sleep(0.2)
    assert Path(log).read_text().split() == ["killed"]  # still waiting behind the stuck writer
    os.kill(stuck.pid, signal.SIGKILL)
    stuck.join(10)
    nxt.join(20)
    assert nxt.exitcode == 0
    assert Path(log).read_text().split() == ["killed", "next"]


def test_no_lock_path_means_no_line(tmp_path):
    with writer_turn(None):
        pass
    assert list(tmp_path.iterdir()) == []
