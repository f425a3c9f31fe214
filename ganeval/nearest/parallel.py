"""Parallelism that survives shared CPUs: threads over work items, one torch thread each.

The SSIM and embedding work is many small tensor ops. Torch parallelises each op over its
thread pool, and every op ends at a barrier; when other processes share the cores, a
descheduled thread stalls every barrier (measured: the same search 2–5× slower). Running
independent items in parallel Python threads with single-threaded ops avoids barriers
altogether, and is also a little faster on an idle machine. GPUs keep one thread."""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import numpy as np
import torch


def cpu_workers(device: torch.device | str) -> int:
    """Worker threads for ``device``: torch's thread count on CPU, 1 elsewhere."""
    return torch.get_num_threads() if torch.device(device).type == "cpu" else 1


@contextlib.contextmanager
def single_threaded_ops() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_parallel(fn: Callable[[int], None], n: int, workers: int) -> None:
    """Call ``fn(i)`` for i in 0..n-1, in ``workers`` threads over contiguous ranges."""
    workers = min(workers, n)
    if workers <= 1:
        for i in range(n):
            fn(i)
        return
    with single_threaded_ops(), ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(lambda part: [fn(int(i)) for i in part], np.array_split(np.arange(n), workers)):
            pass
