"""Images from a checkpoint: the one path used by ``ganeval sample``, ``ganeval fid
--generator``, the training grids and interpolations, so their pixels always agree.

Latent ``i`` of seed ``s`` depends only on ``(s, i)``: latents are drawn from a CPU
generator seeded with ``s`` in fixed chunks of 1024, whatever the batch size. The
generator runs in eval mode (batch norm uses its running statistics), so an image does
not depend on which other images share its batch either."""
from __future__ import annotations

import math
import os
from typing import Any, Iterator

import torch

from ganeval.device import resolve_device
from ganeval.errors import BadInput
from models.checkpoint import load_checkpoint, load_generator

LATENT_CHUNK = 1024


class LatentStream:
    """Standard-normal latents, the i-th one a function of (seed, i) only."""

    def __init__(self, seed: int, z_dim: int):
        self.generator = torch.Generator().manual_seed(int(seed))
        self.z_dim = z_dim
        self._buffer = torch.empty(0, z_dim)

    def take(self, k: int) -> torch.Tensor:
        parts = []
        while k > 0:
            if len(self._buffer) == 0:
                self._buffer = torch.randn(LATENT_CHUNK, self.z_dim, generator=self.generator)
            part, self._buffer = self._buffer[:k], self._buffer[k:]
            parts.append(part)
            k -= len(part)
        return torch.cat(parts) if parts else torch.empty(0, self.z_dim)


def latent_for_seed(seed: int, z_dim: int) -> torch.Tensor:
    """The latent of image 0 of ``ganeval sample --seed SEED``."""
    return LatentStream(seed, z_dim).take(1)[0]


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output N×C×H×W in [-1, 1] → uint8 N×H×W×3 RGB on the CPU (gray repeated)."""
    out = images.float().add(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
    if out.shape[1] == 1:
        out = out.expand(-1, 3, -1, -1)
    return out.permute(0, 2, 3, 1).contiguous().cpu()


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for GAN latents); linear when the
    two latents are (anti)parallel enough that the sphere formula is ill-conditioned."""
    cos = torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4 or (math.pi - omega.abs()) < 1e-4:
        return (1 - t) * z0 + t * z1
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * z0 + torch.sin(t * omega) / so * z1


@torch.no_grad()
def generate_uint8_batches(checkpoint: str | os.PathLike | dict[str, Any], n: int, batch_size: int, seed: int,
                           device: str | torch.device = "auto", use_ema: bool = True) -> Iterator[torch.Tensor]:
    """Yield ``n`` generated images as uint8 N×H×W×3 RGB CPU tensors, ``batch_size`` at a time
    (the last batch may be smaller). Same (checkpoint, seed) → same images, in the same order;
    a smaller ``n`` gives a prefix of a larger one."""
    if n < 0:
        raise BadInput(f"number of images must be 0 or more, got {n}")
    if batch_size < 1:
        raise BadInput(f"batch size must be at least 1, got {batch_size}")
    device = resolve_device(device)
    data = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    generator, cfg = load_generator(data, device, use_ema=use_ema)
    latents = LatentStream(seed, cfg.z_dim)
    done = 0
    while done < n:
        k = min(batch_size, n - done)
        z = latents.take(k).to(device)
        yield to_uint8(generator(z))
        done += k


@torch.no_grad()
def render_latents(generator: torch.nn.Module, z: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """uint8 N×H×W×3 images for given latents (eval-mode generator, any device)."""
    device = next(generator.parameters()).device
    parts = [to_uint8(generator(z[i:i + batch_size].to(device))) for i in range(0, len(z), batch_size)]
    return torch.cat(parts) if parts else torch.empty(0, 0, 0, 3, dtype=torch.uint8)


def interpolation_latents(seeds: list[int], z_dim: int, frames_per_pair: int, loop: bool = True) -> torch.Tensor:
    """Latents along great-circle arcs through the seeds' latents (back to the first when ``loop``)."""
    if len(seeds) < 2:
        raise BadInput("give at least two seeds to interpolate between, e.g. --seeds 1,2,3")
    if frames_per_pair < 1:
        raise BadInput(f"--frames must be at least 1, got {frames_per_pair}")
    anchors = [latent_for_seed(s, z_dim) for s in seeds]
    if loop:
        anchors.append(anchors[0])
    path = [slerp(a, b, i / frames_per_pair) for a, b in zip(anchors, anchors[1:]) for i in range(frames_per_pair)]
    if not loop:
        path.append(anchors[-1])
    return torch.stack(path)
