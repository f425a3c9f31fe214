"""Look inside a generator: every layer's activations for one input, as pictures.

Forward hooks on the generator's layers record the first image's activation map
(C×H×W) of every layer with a spatial output; trivial layers (activations,
normalisations, dropout, plain resampling, reshapes) are skipped, and an output seen
before (a block returning its last conv's tensor) is kept once, under the innermost
name. For each layer the channels are sorted by energy (mean square), highest first,
capped at ``max_channels``; each channel is scaled to its own min–max range for display
and the channels are tiled into one PNG. ``index.html`` lists the layers in forward
order with their shapes, energies and pictures (relative links), next to the output.

Works for every family: the input is the seed's latent (image 0 of ``ganeval sample
--seed``) unless the generator has an ``inspect_input(seed)`` method (image-to-image
generators), whose tensor is used instead."""
from __future__ import annotations

import html
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganeval.atomic import write_bytes, write_text
from ganeval.errors import BadInput
from ganeval.images import encode_png
from ganeval.images import to_uint8_nhwc
from ganeval.sampler import latents_for_seeds, renderer
from ganeval.models.visualise import tile

TRIVIAL = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.PReLU, nn.ELU,
           nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d,
           nn.Dropout, nn.Dropout2d, nn.Identity, nn.Upsample, nn.Flatten, nn.AvgPool2d, nn.MaxPool2d,
           nn.ReflectionPad2d, nn.ZeroPad2d, nn.ReplicationPad2d, nn.PixelShuffle)
MIN_CELL = 32  # small maps are enlarged (nearest) to at least this many pixels


@dataclass
class LayerView:
    name: str
    kind: str  # module class name
    shape: tuple[int, int, int]  # C×H×W
    shown: int  # channels in the picture
    energy: float  # mean square over the whole activation
    file: str  # PNG name inside the output folder


def _first_map(output) -> torch.Tensor | None:
    """The (first) N×C×H×W tensor of a module output, if any."""
    if isinstance(output, torch.Tensor):
        return output if output.dim() == 4 else None
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, torch.Tensor) and item.dim() == 4:
                return item
    return None


def record_activations(generator: nn.Module, run) -> tuple[list[tuple[str, str, torch.Tensor]], object]:
    """Run ``run()`` with hooks on ``generator``'s non-trivial layers; returns the recorded
    (name, class, C×H×W float CPU activation of image 0) in forward order, and run's result."""
    recorded: list[tuple[str, str, torch.Tensor]] = []
    seen: list[torch.Tensor] = []  # outputs already recorded (kept alive, so identities stay unique)

    def hook(name: str):
        def fn(module, inputs, output):
            act = _first_map(output)
            if act is None or any(act is s for s in seen):
                return
            seen.append(act)
            recorded.append((name, type(module).__name__, act[0].detach().float().cpu().clone()))
        return fn

    handles = [m.register_forward_hook(hook(name)) for name, m in generator.named_modules()
               if name and not isinstance(m, TRIVIAL) and not isinstance(m, (nn.ModuleList, nn.ModuleDict))]
    try:
        with torch.no_grad():
            result = run()
    finally:
        for h in handles:
            h.remove()
    return recorded, result


def channel_grid(act: torch.Tensor, max_channels: int = 64) -> tuple[np.ndarray, int]:
    """C×H×W → (an RGB uint8 tile of the highest-energy channels, each min–max scaled; count shown)."""
    energy = act.square().mean(dim=(1, 2))
    order = torch.argsort(energy, descending=True, stable=True)[:max_channels]
    maps = act[order]
    lo = maps.amin(dim=(1, 2), keepdim=True)
    hi = maps.amax(dim=(1, 2), keepdim=True)
    span = hi - lo
    scaled = torch.where(span > 1e-12, (maps - lo) / span.clamp_min(1e-12), torch.full_like(maps, 0.5))
    h = maps.shape[1]
    if h < MIN_CELL:
        scaled = F.interpolate(scaled[:, None], scale_factor=math.ceil(MIN_CELL / h), mode="nearest")[:, 0]
    gray = (scaled * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    rgb = np.repeat(gray[..., None], 3, axis=3)
    return tile(rgb, columns=math.ceil(math.sqrt(len(rgb))), pad=1, fill=255), len(rgb)


def _file_name(index: int, name: str) -> str:
    return f"{index:03d}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"


def inspect_generator(generator: nn.Module, seed: int, out_dir: str | os.PathLike, max_channels: int = 64,
                      truncation: float | None = None, title: str = "generator") -> list[LayerView]:
    """Write one activation grid per layer plus ``index.html`` (and ``output.png``) into
    ``out_dir``; returns the layers in forward order."""
    if max_channels < 1:
        raise BadInput(f"--max-channels must be at least 1, got {max_channels}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out}: exists and is not a folder")
    device = next(generator.parameters()).device
    if hasattr(generator, "inspect_input"):
        x = generator.inspect_input(seed).to(device)
        run = lambda: generator(x)  # noqa: E731
    else:
        z = latents_for_seeds([seed], generator.z_dim if hasattr(generator, "z_dim") else _z_dim(generator)).to(device)
        render = renderer(generator, 1.0 if truncation is None else truncation, name=title)
        run = lambda: render(z, [seed])  # noqa: E731
    recorded, image = record_activations(generator, run)
    if not recorded:
        raise BadInput(f"{title}: no layer with a spatial output to show")
    layers: list[LayerView] = []
    for i, (name, kind, act) in enumerate(recorded):
        picture, shown = channel_grid(act, max_channels)
        file = _file_name(i, name)
        write_bytes(out / file, encode_png(picture))
        layers.append(LayerView(name, kind, tuple(act.shape), shown, float(act.square().mean()), file))
    final = to_uint8_nhwc(image if isinstance(image, torch.Tensor) else _first_map(image))[0].numpy()
    scale = max(1, math.ceil(128 / final.shape[0]))
    write_bytes(out / "output.png", encode_png(final.repeat(scale, axis=0).repeat(scale, axis=1)))
    write_text(out / "index.html", _index_html(layers, title, seed, truncation))
    return layers


def _z_dim(generator: nn.Module) -> int:
    """Latent size of a z → image generator without a ``z_dim`` attribute: its first layer's input."""
    for m in generator.modules():
        if isinstance(m, nn.Linear):
            return m.in_features
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            return m.in_channels
    raise BadInput("cannot tell this generator's latent size")


def _index_html(layers: list[LayerView], title: str, seed: int, truncation: float | None) -> str:
    rows = "\n".join(
        f"<tr><td>{i}</td><td><code>{html.escape(v.name)}</code><br><small>{html.escape(v.kind)}</small></td>"
        f"<td>{v.shape[0]}×{v.shape[1]}×{v.shape[2]}</td><td>{v.shown}</td><td>{v.energy:.4g}</td>"
        f"<td><a href=\"{v.file}\"><img src=\"{v.file}\" alt=\"{html.escape(v.name)}\"></a></td></tr>"
        for i, v in enumerate(layers))
    psi = "" if truncation is None else f", truncation ψ={truncation}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}: layer activations</title>
<style>body{{font-family:sans-serif;margin:1em}} td{{vertical-align:top;padding:4px 8px;border-bottom:1px solid #ddd}}
img{{image-rendering:pixelated;max-width:640px}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Seed {seed}{psi}. Output: <img src="output.png" alt="output" style="vertical-align:middle"></p>
<p>Each picture shows one layer's channels for this input, highest energy (mean square) first,
each channel scaled to its own range (black = min, white = max).</p>
<table><tr><th>#</th><th>layer</th><th>C×H×W</th><th>shown</th><th>energy</th><th>channels</th></tr>
{rows}
</table></body></html>
"""
