"""Images of a generator in tests: the one sampler (``load_generator(...).sample``) with the
metric path's random noise unless a test asks for another mode."""
from __future__ import annotations

from typing import Any, Iterator

import torch

from ganeval.generators import load_generator


def draw(source: Any, n: int, batch_size: int, seed: int, device: str = "cpu", use_ema: bool = True,
         start: int = 0, noise_mode: str = "random", **options: Any) -> Iterator[torch.Tensor]:
    """Images ``start … start+n−1`` of the run of seeds ``seed, seed+1, …``, in batches."""
    G = load_generator(source, device=device, use_ema=use_ema)
    return G.sample(n=n, seed=seed + start, batch_size=batch_size, noise_mode=noise_mode, **options)
