"""Images from a checkpoint: the one path used by ``ganeval sample``, ``ganeval fid
--generator``, the training grids and interpolations, so their pixels always agree.

Latent ``i`` of seed ``s`` depends only on ``(s, i)``: latents are drawn from a CPU
generator seeded with ``s`` in fixed chunks of 1024, whatever the batch size. The
generator runs in eval mode (batch norm uses its running statistics), so an image does
not depend on which other images share its batch either.

Style-based generators (stylegan2) also take per-pixel noise. ``noise_mode="random"`` (the
default of ``generate_uint8_batches``, so of ``fid --generator`` and FID during training) is
the reference's metric path: fresh noise, drawn for image i from a stream seeded by (seed, i).
``"const"`` uses the noise stored in the checkpoint, as the reference's image script and
``ganeval sample`` (default) do. Either way image i's inputs depend on (seed, i) only."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import torch

from ganeval.device import resolve_device
from ganeval.errors import BadInput
from ganeval.images import signed_to_uint8
from ganeval.models.checkpoint import load_checkpoint, load_generator

if TYPE_CHECKING:
    from ganeval.api import Batches

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
    out = signed_to_uint8(images)
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


def require_latent_model(model: str, what: str) -> None:
    """BadInput for image-to-image families, whose G takes an image instead of z."""
    from ganeval.models.registry import get_family

    if get_family(model).image_input:
        raise BadInput(f"{what} draws images from latents z, but {model} turns images into images; "
                       f"use its own command (e.g. `ganeval upscale` / `ganeval translate`)")


def has_mapping(generator: torch.nn.Module) -> bool:
    """Style-based generators (stylegan2) have a mapping network z → w and a w_avg."""
    return hasattr(generator, "mapping") and hasattr(generator, "synthesis")


def require_mapping(generator: torch.nn.Module, what: str, model: str = "this model") -> None:
    if not has_mapping(generator):
        raise BadInput(f"{what} needs a style-based generator with a mapping network (stylegan2); "
                       f"{model} has none")


NOISE_MODES = ("random", "const")


def noise_generators(seed: int, first: int, count: int, device: torch.device) -> list[torch.Generator]:
    """The per-pixel noise streams of ``noise_mode="random"``, one per image: image i's is
    seeded by (seed, i) alone, apart from the latents' stream, so its noise does not depend on
    the batch size or on which process of a sharded FID draws it."""
    return [torch.Generator(device).manual_seed((int(seed) * 0x9E3779B1 + (first + i) * 0x85EBCA77 + 0x5851F42D) % 2**63)
            for i in range(count)]


def run_generator(generator: torch.nn.Module, z: torch.Tensor, truncation: float | None = None,
                  model: str = "this model", noise_mode: str | None = None,
                  noise: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
    """G(z), or G(z) with truncation ψ (w = w_avg + ψ·(w − w_avg)) for style-based generators.
    ``noise_mode``/``noise``: the per-pixel noise of style-based generators (others have none);
    None keeps the generator's own default (const in eval mode)."""
    if truncation is not None:
        require_mapping(generator, "--truncation", model)
    if not has_mapping(generator):
        return generator(z)
    kwargs = {} if truncation is None else {"truncation_psi": float(truncation)}
    if noise_mode is not None:
        kwargs.update(noise_mode=noise_mode, noise_generator=noise)
    return generator(z, **kwargs)


@torch.no_grad()
def generate_uint8_batches(checkpoint: str | os.PathLike | dict[str, Any], n: int, batch_size: int, seed: int,
                           device: str | torch.device = "auto", use_ema: bool = True,
                           truncation: float | None = None, noise_mode: str = "random",
                           start: int = 0) -> Iterator[torch.Tensor]:
    """Yield ``n`` generated images as uint8 N×H×W×3 RGB CPU tensors, ``batch_size`` at a time
    (the last batch may be smaller). Same (checkpoint, seed, batch size) → same images, in the
    same order; a smaller ``n`` gives a prefix of a larger one. Image i's latent and noise depend
    on (seed, i) alone, so a shard (``start``) draws exactly its images' inputs. ``truncation`` ψ: stylegan2 only.
    ``noise_mode`` (stylegan2; ignored by generators without noise): "random", the reference's
    metric path and the default here, or "const", the checkpoint's stored noise (``sample``).
    ``start`` skips that many latents first (a process's share of a sharded FID)."""
    if noise_mode not in NOISE_MODES:
        raise BadInput(f"--noise-mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
    if n < 0:
        raise BadInput(f"number of images must be 0 or more, got {n}")
    if batch_size < 1:
        raise BadInput(f"batch size must be at least 1, got {batch_size}")
    device = resolve_device(device)
    data = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    require_latent_model(str(data.get("model", "")), "sampling")
    generator, cfg = load_generator(data, device, use_ema=use_ema)
    if truncation is not None:
        require_mapping(generator, "--truncation", cfg.model)
    latents = LatentStream(seed, cfg.z_dim)
    latents.take(start)
    done = 0
    while done < n:
        k = min(batch_size, n - done)
        z = latents.take(k).to(device)
        noise = noise_generators(seed, start + done, k, device) if noise_mode == "random" else None
        yield to_uint8(run_generator(generator, z, truncation, cfg.model, noise_mode, noise))
        done += k


def checkpoint_batches(checkpoint: str | os.PathLike, n: int, batch_size: int, seed: int,
                       device: str | torch.device = "auto", truncation: float | None = None) -> Batches:
    """A checkpoint's ``n`` samples as one side of ``ganeval.api.compute_metrics`` (what
    ``ganeval fid --generator`` measures); under torchrun each process draws only its share."""
    from ganeval.api import Batches  # the FID API: loaded when FID is measured, not by sample or train

    def share(start: int, count: int) -> Iterator[torch.Tensor]:
        return generate_uint8_batches(checkpoint, count, batch_size, seed, device, truncation=truncation, start=start)

    return Batches(lambda: share(0, n), f"generator {Path(checkpoint).name}", n, make_share=share)


@torch.no_grad()
def render_latents(generator: torch.nn.Module, z: torch.Tensor, batch_size: int = 64,
                   truncation: float | None = None) -> torch.Tensor:
    """uint8 N×H×W×3 images for given latents (eval-mode generator, any device)."""
    device = next(generator.parameters()).device
    parts = [to_uint8(run_generator(generator, z[i:i + batch_size].to(device), truncation))
             for i in range(0, len(z), batch_size)]
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


# ---------------------------------------------------------------------- W space (stylegan2)

@torch.no_grad()
def seed_ws(generator: torch.nn.Module, seeds: list[int], truncation: float = 1.0) -> torch.Tensor:
    """w (N×w_dim) of each seed's z (image 0 of `ganeval sample --seed s`), truncated by ψ."""
    require_mapping(generator, "W space")
    device = next(generator.parameters()).device
    z = torch.stack([latent_for_seed(s, generator.z_dim) for s in seeds]).to(device)
    return generator.mapping(z, truncation)


@torch.no_grad()
def render_ws(generator: torch.nn.Module, ws: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """uint8 N×H×W×3 images for per-layer styles (N×num_ws×w_dim) or one w per image (N×w_dim)."""
    require_mapping(generator, "W space")
    device = next(generator.parameters()).device
    if ws.dim() == 2:
        ws = generator.broadcast(ws)
    parts = [to_uint8(generator.synthesis(ws[i:i + batch_size].to(device), "const"))
             for i in range(0, len(ws), batch_size)]
    return torch.cat(parts)


def w_interpolation(generator: torch.nn.Module, seeds: list[int], frames_per_pair: int, loop: bool = True,
                    truncation: float = 1.0) -> torch.Tensor:
    """ws along straight lines in W through the seeds' w (W is where StyleGAN's paths are
    short and perceptually even, so linear interpolation is the natural walk there)."""
    if len(seeds) < 2:
        raise BadInput("give at least two seeds to interpolate between, e.g. --seeds 1,2,3")
    if frames_per_pair < 1:
        raise BadInput(f"--frames must be at least 1, got {frames_per_pair}")
    anchors = list(seed_ws(generator, seeds, truncation))
    if loop:
        anchors.append(anchors[0])
    path = [torch.lerp(a, b, i / frames_per_pair) for a, b in zip(anchors, anchors[1:]) for i in range(frames_per_pair)]
    if not loop:
        path.append(anchors[-1])
    return torch.stack(path)


def parse_styles(text: str | None, num_ws: int) -> list[int]:
    """'4-7' / '0,1,2' / None (the upper half: fine styles) → layer indices in [0, num_ws)."""
    if text is None:
        return list(range(num_ws // 2, num_ws))
    layers: list[int] = []
    try:
        for part in text.replace(" ", "").split(","):
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            layers += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    except ValueError:
        raise BadInput(f"--styles takes layer indices like 4-7 or 0,1,2; got {text!r}") from None
    bad = [i for i in layers if not 0 <= i < num_ws]
    if bad or not layers:
        raise BadInput(f"--styles must name layers 0-{num_ws - 1} of this generator; got {text!r}")
    return sorted(set(layers))


@torch.no_grad()
def style_mix_grid(generator: torch.nn.Module, row_seeds: list[int], col_seeds: list[int], styles: list[int],
                   truncation: float = 1.0) -> torch.Tensor:
    """(rows+1)×(cols+1) images, row-major: a blank corner, the column seeds' images along
    the top, the row seeds' images down the left, and in cell (r, c) row r's w with the
    layers in ``styles`` taken from column c's w."""
    w_rows = seed_ws(generator, row_seeds, truncation)
    w_cols = seed_ws(generator, col_seeds, truncation)
    ws = []
    for wr in w_rows:
        for wc in w_cols:
            mixed = generator.broadcast(wr[None]).clone()
            mixed[:, styles] = wc
            ws.append(mixed[0])
    cells = render_ws(generator, torch.stack(ws))
    cells = cells.view(len(row_seeds), len(col_seeds), *cells.shape[1:])
    tops, lefts = render_ws(generator, w_cols), render_ws(generator, w_rows)
    blank = torch.full_like(tops[0], 255)
    out = [blank, *tops]
    for r in range(len(row_seeds)):
        out += [lefts[r], *cells[r]]
    return torch.stack(out)
