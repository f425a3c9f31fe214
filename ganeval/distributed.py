"""Multi-process work under ``torchrun``: the one process-group helper of the project.

Training (models/) and FID extraction (stats) both use it: ``setup`` joins the group that
torchrun describes in the environment (NCCL on CUDA, gloo on CPU) or stays single-process;
the collectives below are no-ops in a single process, so callers never branch on it."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ganeval.device import resolve_device
from ganeval.errors import BadInput


@dataclass(frozen=True)
class World:
    rank: int = 0
    local_rank: int = 0
    size: int = 1
    owns_group: bool = False  # True when we started the group (a user's training script may hold its own)

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
    world = World(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ["WORLD_SIZE"]),
                  owns_group=not dist.is_initialized())
    device = resolve_device(device_spec)
    if device.type == "cuda":
        if torch.cuda.device_count() < 1:
            raise BadInput("CUDA asked for under torchrun, but no GPU is visible")
        device = torch.device("cuda", world.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return world, device


def teardown(clean: bool = True, world: World | None = None) -> None:
    """Leave the process group (given ``world``: only a group :func:`setup` started, never one a
    user's script holds). On a clean finish, first wait for every rank (rank 0 may still be
    writing its output): a rank that destroys its gloo group while a peer still talks to it
    aborts. After an error no barrier: the peers may be inside another collective."""
    if world is not None and not (world.size > 1 and world.owns_group):
        return
    if dist.is_available() and dist.is_initialized():
        try:
            if clean:
                dist.barrier()
        finally:
            dist.destroy_process_group()


def _collective_device(device: torch.device | None) -> torch.device:
    """NCCL moves only CUDA tensors; gloo only CPU ones."""
    if dist.get_backend() == "nccl":
        return device if device is not None and device.type == "cuda" else torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def any_flag(flag: bool, world: World, device: torch.device | None = None) -> bool:
    """True on every process when it is True on any (e.g. one of them got SIGTERM)."""
    if not world.distributed:
        return flag
    t = torch.tensor([int(flag)], device=_collective_device(device))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def all_flags(flag: bool, world: World, device: torch.device | None = None) -> bool:
    """True on every process only when it is True on all of them."""
    return not any_flag(not flag, world, device)


def gather_objects(obj: Any, world: World) -> list[Any]:
    """Every process's ``obj``, in rank order (all processes get the list)."""
    if not world.distributed:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def gather_rows(rows: np.ndarray, world: World, device: torch.device | None = None) -> np.ndarray:
    """Every process's rows (N_r × D), concatenated in rank order on every process.

    Exact (the bytes travel unchanged), whatever the dtype; ranks may hold different N_r,
    including none."""
    if not world.distributed:
        return rows
    on = _collective_device(device)
    rows = np.ascontiguousarray(rows)
    counts = [int(c) for c in gather_objects(int(rows.shape[0]), world)]
    width = int(np.prod(rows.shape[1:], dtype=np.int64))
    longest = max(counts)
    padded = torch.zeros((longest, width), dtype=torch.from_numpy(rows[:0]).dtype, device=on)
    if rows.shape[0]:
        padded[: rows.shape[0]] = torch.from_numpy(rows.reshape(rows.shape[0], width)).to(on)
    parts = [torch.empty_like(padded) for _ in range(world.size)]
    dist.all_gather(parts, padded)
    gathered = torch.cat([part[:count] for part, count in zip(parts, counts)]).cpu().numpy()
    return gathered.reshape((sum(counts), *rows.shape[1:]))


def shard_range(n_items: int, batch_size: int, world: World) -> range:
    """This process's contiguous share of ``n_items``, cut at multiples of ``batch_size``.

    Whole batches only, so every process runs exactly the batches a single process would
    (same images in the same batch: bit-identical features), and concatenating the shards
    in rank order restores the single-process order."""
    if not world.distributed:
        return range(n_items)
    batches = (n_items + batch_size - 1) // batch_size
    first = world.rank * batches // world.size
    last = (world.rank + 1) * batches // world.size
    return range(min(first * batch_size, n_items), min(last * batch_size, n_items))


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def main_verdict(world: World, error: str | None = None) -> None:
    """A barrier that carries rank 0's outcome: every rank waits here until rank 0 arrives,
    and when rank 0 arrives with an error (a corrupt input under --strict) the others raise it
    too, instead of waiting for ever for a result that will not come."""
    verdict = gather_objects(error if world.is_main else None, world)[0]
    if verdict and not world.is_main:
        raise BadInput(verdict)


def is_main_process() -> bool:
    """False on torchrun ranks other than 0 (where only rank 0 prints and writes)."""
    return not launched_by_torchrun() or int(os.environ["RANK"]) == 0


def shard(n: int, world: World) -> slice:
    """This rank's contiguous share of ``n`` independent items (sizes differ by at most one)."""
    bounds = np.linspace(0, n, world.size + 1).round().astype(int)
    return slice(int(bounds[world.rank]), int(bounds[world.rank + 1]))
