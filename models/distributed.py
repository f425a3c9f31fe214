"""Multi-process training under ``torchrun``: process-group setup and the few collectives
the trainer needs (agreeing to stop, gathering RNG states for the checkpoint)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ganeval.device import resolve_device
from ganeval.errors import BadInput


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def setup(device_spec: str) -> tuple[World, torch.device]:
    """Join the torchrun process group (NCCL on CUDA, gloo on CPU) or stay single-process."""
    if not launched_by_torchrun():
        return World(), resolve_device(device_spec)
    world = World(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ["WORLD_SIZE"]))
    device = resolve_device(device_spec)
    if device.type == "cuda":
        if torch.cuda.device_count() < 1:
            raise BadInput("CUDA asked for under torchrun, but no GPU is visible")
        device = torch.device("cuda", world.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return world, device


def teardown(clean: bool = True) -> None:
    """Leave the process group. On a clean finish, first wait for every rank (rank 0 may
    still be writing the checkpoint): a rank that destroys its gloo group while a peer still
    talks to it aborts. After an error no barrier: the peers may be inside another collective."""
    if dist.is_available() and dist.is_initialized():
        try:
            if clean:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def any_flag(flag: bool, world: World, device: torch.device) -> bool:
    """True on every process when it is True on any (e.g. one of them got SIGTERM)."""
    if not world.distributed:
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather_objects(obj: Any, world: World) -> list[Any]:
    """Every process's ``obj``, in rank order (all processes get the list)."""
    if not world.distributed:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()
