"""``torchrun --nproc_per_node N -m ganeval nearest …``: queries sharded across processes.

Every rank opens the same cached training index (rank 0 builds it first, the others wait
at a barrier and then read it), searches a contiguous share of the queries, and the
neighbours are gathered on every rank in query order. Only rank 0 speaks and writes.
The search of one query does not depend on the others, so the gathered neighbours equal
a single process's exactly.

Why a copy of ``models/distributed.py``'s few lines: the measuring core may not import
``ganeval.models``."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from ganeval.errors import BadInput


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1
    owns_group: bool = False  # True when join() started the group (a training script may hold its own)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device: torch.device) -> tuple[World, torch.device]:
    """Join torchrun's process group (NCCL on CUDA, gloo on CPU); one GPU per local rank."""
    if not launched_by_torchrun():
        return World(), device
    owns = not dist.is_initialized()
    world = World(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ["WORLD_SIZE"]), owns)
    if device.type == "cuda":
        if torch.cuda.device_count() < 1:
            raise BadInput("CUDA asked for under torchrun, but no GPU is visible")
        device = torch.device("cuda", world.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if owns:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return world, device


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def leave(world: World, clean: bool = True) -> None:
    """Leave the group we started. On a clean finish wait for every rank first (a gloo peer
    that leaves early aborts the others); after an error no barrier, the peers may be elsewhere."""
    if world.size > 1 and world.owns_group and dist.is_initialized():
        try:
            if clean:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def is_main_process() -> bool:
    """False on torchrun ranks other than 0."""
    return not launched_by_torchrun() or int(os.environ["RANK"]) == 0


def shard(n: int, world: World) -> slice:
    """This rank's contiguous share of ``n`` queries (sizes differ by at most one)."""
    bounds = np.linspace(0, n, world.size + 1).round().astype(int)
    return slice(int(bounds[world.rank]), int(bounds[world.rank + 1]))


def gather_rows(part: np.ndarray, world: World) -> np.ndarray:
    """Concatenate every rank's rows in rank order (on every rank)."""
    if world.size == 1:
        return part
    parts: list = [None] * world.size
    dist.all_gather_object(parts, part)
    return np.concatenate(parts)
