"""Latent-space walks and style mixing for ``ganeval interpolate``/``style-mix``/``inspect`` and
the training grids. Every latent comes from the one sampler (:mod:`ganeval.sampler`: z of seed
``s`` is ``RandomState(s).randn(1, z_dim)``), and every image becomes pixels through
:func:`ganeval.images.to_uint8_nhwc`, so a seed's image here equals ``ganeval sample --seeds s``."""
from __future__ import annotations

import math

import torch

from ganeval.errors import BadInput
from ganeval.images import to_uint8_nhwc
from ganeval.sampler import latents_for_seeds


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


@torch.no_grad()
def render_latents(generator: torch.nn.Module, z: torch.Tensor, batch_size: int = 64,
                   truncation: float | None = None) -> torch.Tensor:
    """uint8 N×H×W×3 images for given latents (eval-mode generator, any device)."""
    device = next(generator.parameters()).device
    if truncation is not None:
        require_mapping(generator, "--truncation")
    kwargs = {} if truncation is None else {"truncation_psi": float(truncation)}
    parts = [to_uint8_nhwc(generator(z[i:i + batch_size].to(device), **kwargs)) for i in range(0, len(z), batch_size)]
    return torch.cat(parts) if parts else torch.empty(0, 0, 0, 3, dtype=torch.uint8)


def interpolation_latents(seeds: list[int], z_dim: int, frames_per_pair: int, loop: bool = True) -> torch.Tensor:
    """Latents along great-circle arcs through the seeds' latents (back to the first when ``loop``)."""
    if len(seeds) < 2:
        raise BadInput("give at least two seeds to interpolate between, e.g. --seeds 1,2,3")
    if frames_per_pair < 1:
        raise BadInput(f"--frames must be at least 1, got {frames_per_pair}")
    anchors = list(latents_for_seeds(seeds, z_dim))
    if loop:
        anchors.append(anchors[0])
    path = [slerp(a, b, i / frames_per_pair) for a, b in zip(anchors, anchors[1:]) for i in range(frames_per_pair)]
    if not loop:
        path.append(anchors[-1])
    return torch.stack(path)


# ---------------------------------------------------------------------- W space (stylegan2)

@torch.no_grad()
def seed_ws(generator: torch.nn.Module, seeds: list[int], truncation: float = 1.0) -> torch.Tensor:
    """w (N×w_dim) of each seed's z (the image of `ganeval sample --seeds s`), truncated by ψ."""
    require_mapping(generator, "W space")
    device = next(generator.parameters()).device
    z = latents_for_seeds(seeds, generator.z_dim).to(device)
    return generator.mapping(z, truncation)


@torch.no_grad()
def render_ws(generator: torch.nn.Module, ws: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """uint8 N×H×W×3 images for per-layer styles (N×num_ws×w_dim) or one w per image (N×w_dim)."""
    require_mapping(generator, "W space")
    device = next(generator.parameters()).device
    if ws.dim() == 2:
        ws = generator.broadcast(ws)
    parts = [to_uint8_nhwc(generator.synthesis(ws[i:i + batch_size].to(device), "const"))
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
