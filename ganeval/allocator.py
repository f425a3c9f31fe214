"""Reuse freed large blocks while a network runs on CPU (glibc's malloc).

PyTorch's CPU tensors come straight from malloc. glibc serves every block above its mmap
threshold (32 MB at most) with a fresh mmap and unmaps it again on free, so each large
activation of every batch is new memory that the kernel zero-fills page by page on first
touch. The FID Inception at batch 50 takes about 1.6 million page faults per batch that
way, a third of its CPU time (benchmarks/fid_bench.py). With mmap switched off for the
duration, freed activations go back to the heap and the next batch reuses them; at the
end the unused heap is handed back to the system. Only where memory comes from changes,
never what is computed: features stay bit-identical.

Elsewhere (macOS, musl, Windows) this does nothing."""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import platform
import threading
from typing import Iterator

# mallopt parameters and glibc's defaults (malloc.h, malloc.c)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536
KEEP_FREED = 2**31 - 1   # trim threshold while active: keep what is freed (mallopt takes an int)

_lock = threading.Lock()
_depth = 0
_libc: ctypes.CDLL | None | bool = False  # False: not looked up yet


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is False:
        _libc = None
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            try:
                lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                lib.mallopt.argtypes, lib.mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
                lib.malloc_trim.argtypes, lib.malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int
                _libc = lib
            except (OSError, AttributeError):
                _libc = None
    return _libc


def _set(libc: ctypes.CDLL, mmap_max: int, trim_threshold: int) -> None:
    libc.mallopt(M_MMAP_MAX, mmap_max)
    libc.mallopt(M_TRIM_THRESHOLD, trim_threshold)


@contextlib.contextmanager
def reuse_freed_blocks() -> Iterator[None]:
    """While active (nesting and threads allowed), large blocks come from the heap and stay
    there when freed; afterwards glibc's defaults return and the free heap is trimmed."""
    global _depth
    libc = _glibc()
    if libc is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _set(libc, 0, KEEP_FREED)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _set(libc, DEFAULT_MMAP_MAX, DEFAULT_TRIM_THRESHOLD)
                libc.malloc_trim(0)
