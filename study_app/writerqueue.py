"""A first-come, first-served line of writers to one SQLite file, across processes.

SQLite lets one writer in at a time; how the others wait decides the slowest saves. Its
busy handler sleeps and polls (1, 2, 5, … 100 ms) and a plain file lock (flock) wakes every
waiter at each release: either way a writer that has waited long loses the lock to one
that has just arrived, and under load a few saves wait hundreds of milliseconds while most
take one. This line hands the turn to the writer that has waited longest, and a waiter
sleeps in the kernel until its turn, so it takes no CPU from the writer it waits for.

It is the CLH queue lock built from POSIX byte-range locks on STUDY.db.lock: each writer
draws a ticket (a counter in the file, under a short lock on byte 0), locks the byte of its
own ticket, and waits for the byte of the ticket before it. The kernel drops every lock of
a process that dies, so a crash never blocks the line. The line only orders writers:
SQLite's own lock still guarantees one writer at a time (should a waiter die, the two
around it may meet there and SQLite's busy timeout sorts them out).

POSIX locks belong to the process, not the thread: the caller lets one thread of a process
at a time into the line (``db._process_writer``)."""
from __future__ import annotations

import contextlib
import os
import struct
from typing import Iterator

try:
    import fcntl
except ImportError:  # Windows: SQLite's busy timeout alone
    fcntl = None  # type: ignore[assignment]

SLOTS = 1 << 16          # tickets wrap around; far more than writers ever waiting at once
_COUNTER = struct.Struct("<Q")
_SLOT_BASE = 64          # bytes 0..7 hold the counter (guarded by the lock on byte 0)


def _lock(fd: int, offset: int, wait: bool = True) -> None:
    fcntl.lockf(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)


def _unlock(fd: int, offset: int) -> None:
    fcntl.lockf(fd, fcntl.LOCK_UN, 1, offset)


def _slot(ticket: int) -> int:
    return _SLOT_BASE + ticket % SLOTS


def _draw_ticket(fd: int) -> int:
    """The next ticket, with its slot locked before anyone can draw the one after it."""
    _lock(fd, 0)
    try:
        raw = os.pread(fd, _COUNTER.size, 0)
        ticket = _COUNTER.unpack(raw)[0] if len(raw) == _COUNTER.size else 0
        os.pwrite(fd, _COUNTER.pack(ticket + 1), 0)
        _lock(fd, _slot(ticket))
    finally:
        _unlock(fd, 0)
    return ticket


@contextlib.contextmanager
def writer_turn(lock_path: str | None) -> Iterator[None]:
    """Wait for this writer's turn in the line for ``lock_path`` (no line without a path or on
    Windows)."""
    if lock_path is None or fcntl is None:
        yield
        return
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        ticket = _draw_ticket(fd)
        before = _slot(ticket - 1)
        _lock(fd, before)        # granted when the writer before us releases its slot (or has)
        _unlock(fd, before)
        yield
    finally:
        os.close(fd)             # releases our slot: the writer after us goes
