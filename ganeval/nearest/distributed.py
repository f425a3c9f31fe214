"""``torchrun --nproc_per_node N -m ganeval nearest …``: queries sharded across processes.

Every rank opens the same cached training index (rank 0 builds it first, the others wait
for its verdict and then read it, or stop with its error), searches a contiguous share of the queries, and the
neighbours are gathered on every rank in query order. Only rank 0 speaks and writes.
The search of one query does not depend on the others, so the gathered neighbours equal
a single process's exactly. The process group itself is the project's one helper,
:mod:`ganeval.distributed`; this module adds only what sharding queries needs."""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist

from ganeval.distributed import World, gather_objects, gather_rows, launched_by_torchrun, setup
from ganeval.errors import BadInput

__all__ = ["World", "gather_rows", "is_main_process", "join", "leave", "main_verdict", "shard"]


def join(device: torch.device) -> tuple[World, torch.device]:
    """Join torchrun's process group (NCCL on CUDA, gloo on CPU); one GPU per local rank."""
    if not launched_by_torchrun():
        return World(), device
    return setup(str(device))


def leave(world: World, clean: bool = True) -> None:
    """Leave the group we started (never a group a user's script holds). On a clean finish wait
    for every rank first (a gloo peer that leaves early aborts the others); after an error no
    barrier, the peers may be elsewhere."""
    if world.size > 1 and world.owns_group and dist.is_initialized():
        try:
            if clean:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def main_verdict(world: World, error: str | None = None) -> None:
    """A barrier that carries rank 0's outcome: every rank waits here until rank 0 arrives,
    and when rank 0 arrives with an error (a corrupt training image under --strict) the
    others raise it too, instead of waiting for ever for an index that will not come."""
    verdict = gather_objects(error if world.is_main else None, world)[0]
    if verdict and not world.is_main:
        raise BadInput(verdict)


def is_main_process() -> bool:
    """False on torchrun ranks other than 0."""
    return not launched_by_torchrun() or int(os.environ["RANK"]) == 0


def shard(n: int, world: World) -> slice:
    """This rank's contiguous share of ``n`` queries (sizes differ by at most one)."""
    bounds = np.linspace(0, n, world.size + 1).round().astype(int)
    return slice(int(bounds[world.rank]), int(bounds[world.rank + 1]))
