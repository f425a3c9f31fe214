"""The one way ganeval draws a generator's inputs: z per seed, as NVlabs' gen_images.py does.

Image ``i`` of a run is the image of one integer seed ``s``: ``z = RandomState(s).randn(1,
z_dim)`` and, for ``noise_mode="random"``, per-pixel noise from a stream seeded by ``s`` alone.
An image therefore depends on its seed only, never on the batch size, the command, the process
of a sharded run, or which other images share its batch. ``-n N --seed S`` means the seeds
``S, S+1, …, S+N−1``; ``--seeds 0-3,10`` names them."""
from __future__ import annotations

import re
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from ganeval.errors import BadInput

NOISE_MODES = ("const", "random", "none")
MAX_SEED = 2**32 - 1  # numpy's RandomState takes seeds in [0, 2**32)
# Matrix kernels pick their algorithm by shape, so an image rendered in a batch of 5 can differ in
# the last bit from the same image in a batch of 2. Every forward pass therefore has one shape:
# one image on the CPU (as NVlabs' gen_images.py renders, and no slower there), a padded batch of
# 16 on CUDA. An image's pixels then depend on its seed alone, whatever batch_size asks for.
RENDER_BATCH = {"cpu": 1, "cuda": 16}


def parse_seeds(text: str | Iterable[int], flag: str = "--seeds") -> list[int]:
    """``"0-3,10"`` → [0, 1, 2, 3, 10] (gen_images.py's syntax); a list of ints passes through."""
    if not isinstance(text, str):
        seeds = [int(s) for s in text]
    else:
        seeds = []
        for part in (p.strip() for p in text.split(",")):
            m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
            if not m:
                raise BadInput(f"{flag}: {part!r} is not a seed or a range like 0-3 (e.g. --seeds 0-3,10)")
            first, last = int(m.group(1)), int(m.group(2) or m.group(1))
            if last < first:
                raise BadInput(f"{flag}: range {part} runs backwards")
            seeds.extend(range(first, last + 1))
    if not seeds:
        raise BadInput(f"{flag}: no seeds given")
    bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
    if bad:
        raise BadInput(f"{flag}: {bad[0]} is outside 0..{MAX_SEED}")
    return seeds


def seed_list(seeds: str | Sequence[int] | None = None, n: int | None = None, seed: int = 0) -> list[int]:
    """The seeds of a run: explicit ``seeds``, or ``n`` consecutive seeds from ``seed``."""
    if seeds is not None:
        if n is not None and n != len(parse_seeds(seeds)):
            raise BadInput("give either --seeds or -n/--num-samples, not both")
        return parse_seeds(seeds)
    if n is None:
        raise BadInput("say which images: --seeds (e.g. 0-99) or -n N")
    if n < 0:
        raise BadInput(f"number of images must be 0 or more, got {n}")
    if not 0 <= seed <= MAX_SEED - max(n - 1, 0):
        raise BadInput(f"--seed {seed} with -n {n} runs outside 0..{MAX_SEED}")
    return list(range(seed, seed + n))


def latents_for_seeds(seeds: Sequence[int], z_dim: int) -> torch.Tensor:
    """float32 len(seeds)×z_dim: row i is ``RandomState(seeds[i]).randn(1, z_dim)``."""
    if z_dim < 1:
        raise BadInput(f"z_dim must be at least 1, got {z_dim}")
    if not len(seeds):
        return torch.empty(0, z_dim)
    rows = [np.random.RandomState(int(s)).randn(1, z_dim) for s in seeds]
    return torch.from_numpy(np.concatenate(rows)).float()


def noise_streams(seeds: Sequence[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """The per-pixel noise of ``noise_mode="random"``: one stream per image, seeded by its seed."""
    return [torch.Generator(device).manual_seed((int(s) * 0x9E3779B1 + 0x5851F42D) % 2**63) for s in seeds]


def check_noise_mode(mode: str) -> str:
    if mode not in NOISE_MODES:
        raise BadInput(f"--noise-mode must be one of {', '.join(NOISE_MODES)}, got {mode!r}")
    return mode


def check_batch_size(batch_size: int) -> int:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise BadInput(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


def batches_of(seeds: Sequence[int], batch_size: int) -> Iterable[list[int]]:
    for i in range(0, len(seeds), batch_size):
        yield list(seeds[i:i + batch_size])


def is_style_based(net: object) -> bool:
    """StyleGAN-type networks (mapping + synthesis) take truncation, labels and a noise mode."""
    return hasattr(net, "mapping") and hasattr(net, "synthesis")


def render_style(net: Callable[..., torch.Tensor], z: torch.Tensor, seeds: Sequence[int], truncation: float = 1.0,
                 noise_mode: str = "const", c: torch.Tensor | None = None,
                 truncation_cutoff: int | None = None) -> torch.Tensor:
    """A style-based network's float output for latents ``z`` of ``seeds``; random noise comes
    from each image's own stream, so it too depends on the seed alone."""
    noise = noise_streams(seeds, z.device) if noise_mode == "random" else None
    return net(z, truncation_psi=float(truncation), noise_mode=noise_mode, noise_generator=noise, c=c,
               truncation_cutoff=truncation_cutoff)


def renderer(net: Callable[..., torch.Tensor], truncation: float = 1.0, noise_mode: str = "const",
             label: torch.Tensor | None = None, truncation_cutoff: int | None = None,
             name: str = "the generator") -> Callable[[torch.Tensor, list[int]], torch.Tensor]:
    """``render(z, seeds)`` for :func:`sample_batches`: a plain ``G(z)``, or a style-based network
    with truncation ψ, a class label (one-hot vector, the same for every image) and a noise mode."""
    check_noise_mode(noise_mode)
    if not is_style_based(net):
        if truncation != 1.0:
            raise BadInput(f"--truncation needs a style-based generator with a mapping network (stylegan2); "
                           f"{name} has none")
        return lambda z, seeds: net(z)

    def render(z: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        c = None if label is None else label.to(z.device)[None].expand(len(z), -1)
        return render_style(net, z, seeds, truncation, noise_mode, c, truncation_cutoff)

    return render


def sample_batches(render: Callable[[torch.Tensor, list[int]], torch.Tensor], z_dim: int, seeds: Sequence[int],
                   batch_size: int, device: torch.device | str = "cpu", label: str = "the generator",
                   show_progress: bool = False) -> Iterator[torch.Tensor]:
    """uint8 N×H×W×3 CPU batches of ``render(z, seeds)`` over ``seeds``, ``batch_size`` at a time.
    The one sampling loop: NaN/Inf outputs and a z the network does not take are one-line errors."""
    from ganeval.progress import progress

    check_batch_size(batch_size)
    micro = RENDER_BATCH.get(torch.device(device).type, RENDER_BATCH["cuda"])
    bar = progress(total=len(seeds), desc="sampling", unit="img") if show_progress else None
    try:
        for chunk in batches_of(seeds, batch_size):
            parts = [_render_padded(render, part, z_dim, micro, device, label) for part in batches_of(chunk, micro)]
            out = torch.cat(parts)
            if bar is not None:
                bar.update(len(chunk))
            yield out
    finally:
        if bar is not None:
            bar.close()


def _render_padded(render: Callable[[torch.Tensor, list[int]], torch.Tensor], seeds: list[int], z_dim: int,
                   micro: int, device: torch.device | str, label: str) -> torch.Tensor:
    from ganeval.images import to_uint8_nhwc

    padded = seeds + [seeds[-1]] * (micro - len(seeds))  # the same shape for every pass
    z = latents_for_seeds(padded, z_dim).to(device)
    try:
        with torch.no_grad():
            out = render(z, padded)[:len(seeds)]
    except RuntimeError as exc:
        if "shape" in str(exc) or "size" in str(exc):
            raise BadInput(f"{label} does not take z of size {z_dim} ({str(exc).splitlines()[0][:120]}); "
                           "check z_dim") from None
        raise
    if torch.is_tensor(out) and out.dtype != torch.uint8 and not torch.isfinite(out).all():
        which = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}..{seeds[-1]}"
        raise BadInput(f"{label} returned NaN or Inf for {which}; nothing was measured or written from it")
    return to_uint8_nhwc(out)
