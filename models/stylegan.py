"""StyleGAN (v1; Karras et al. 2019, "A style-based generator architecture for generative
adversarial networks"), trained with progressive growing as in the paper, and NVlabs' TensorFlow
snapshots of it rebuilt as data.

G = mapping ∘ synthesis (paper Fig. 1b).
- Mapping: z normalised per pixel (PixelNorm), 8 dense layers with LeakyReLU(0.2) and a learning
  rate ×0.01 → w. A running mean of w (``w_avg``) serves the truncation trick, which moves only
  the first 8 styles (the coarse layers) towards it.
- Synthesis: a learned 4×4×512 constant; per resolution two 3×3 convolutions (the first doubles
  the size: nearest-neighbour upsampling, or from 128 px a transposed convolution whose kernel
  is the 3×3 one summed over 2×2 shifts, then a [1,2,1] blur). After every convolution: per-pixel
  noise with a learned per-channel strength, bias, LeakyReLU, instance normalisation and AdaIN
  with the style ``A(w)`` of that layer (y = x·(1 + s) + b, s and b from one dense layer). A 1×1
  toRGB per resolution; ``lod`` (levels of detail below the full resolution) fades between the
  toRGB of two resolutions while growing, as in Karras et al. 2018 (progressive growing).
- D (progressive-growing GAN's): fromRGB at each level, per resolution two 3×3 convolutions (the
  second blurs and halves), minibatch standard deviation, a 3×3 conv and two dense layers at 4×4.
Equalised learning rate everywhere (He's constant applied at run time).

Training (``StyleGANObjective``): non-saturating logistic loss, R1 (γ 10) on reals every step,
style mixing with p 0.9, Adam with β (0, 0.99) at lr 0.001, raised at 128 px and above as NVlabs'
configs do, G_ema with a half-life of 10 thousand images, and the level of detail falling by one every ``lod_kimg`` + ``fade_kimg`` thousand images
from ``start_resolution`` (reals are shown to D at the current level, faded the same way).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganeval.errors import BadInput
from ganeval.models.blocks import EqualConv2d, EqualLinear, doublings
from ganeval.models.objective import StepContext
from ganeval.models.options import fill_options
from ganeval.models.spec import Family, ModelConfig
from ganeval.models.stylegan2 import (NOISE_MODES, MinibatchStd, StyleGAN2Objective, _normalize_2nd_moment,
                                      random_noise)

SQRT2 = math.sqrt(2)


def nf(stage: int, base: int, cap: int, decay: float = 1.0) -> int:
    """Feature maps at stage ``stage`` (stage s works at 2^(s+1) px): base / 2^(s·decay), capped."""
    return min(int(base / (2.0 ** (stage * decay))), cap)


def lerp(a: torch.Tensor, b: torch.Tensor, t: Any) -> torch.Tensor:
    """a + (b − a)·t, in this order (torch.lerp rounds differently for t ≥ ½)."""
    return a + (b - a) * t


def blur(x: torch.Tensor) -> torch.Tensor:
    """The [1,2,1]⊗[1,2,1]/16 low-pass on each channel, zero padding, same size."""
    f = torch.tensor([1.0, 2.0, 1.0], device=x.device, dtype=x.dtype)
    k = torch.outer(f, f)
    k = (k / k.sum())[None, None].expand(x.shape[1], 1, 3, 3)
    return F.conv2d(x, k, padding=1, groups=x.shape[1])


def upscale(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Nearest-neighbour ×factor."""
    return x if factor == 1 else x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


def downscale(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Box-filter ÷factor."""
    return x if factor == 1 else F.avg_pool2d(x, factor)


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    x = x - x.mean(dim=(2, 3), keepdim=True)
    return x * (x.square().mean(dim=(2, 3), keepdim=True) + eps).rsqrt()


class UpConv(nn.Module):
    """×2 upsampling and a 3×3 convolution (equalised lr, no bias): nearest-neighbour then conv,
    or fused as one transposed convolution with the 3×3 kernel summed over 2×2 shifts (4×4)."""

    def __init__(self, cin: int, cout: int, fused: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3))
        self.weight_gain = SQRT2 / math.sqrt(cin * 9)
        self.fused = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        if not self.fused:
            return F.conv2d(upscale(x, 2), w, padding=1)
        w = F.pad(w.transpose(0, 1), [1, 1, 1, 1])
        w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
        return F.conv_transpose2d(x, w, stride=2, padding=1)


class DownConv(nn.Module):
    """Blur, a 3×3 convolution and ×½ downsampling: conv then 2×2 average, or fused as one stride-2
    convolution with the kernel summed over 2×2 shifts and quartered (the mirror of UpConv);
    bias and LeakyReLU."""

    def __init__(self, cin: int, cout: int, fused: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.weight_gain = SQRT2 / math.sqrt(cin * 9)
        self.fused = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        x = blur(x)
        if not self.fused:
            x = downscale(F.conv2d(x, w, padding=1), 2)
        else:
            w = F.pad(w, [1, 1, 1, 1])
            w = (w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]) * 0.25
            x = F.conv2d(F.pad(x, [1, 1, 1, 1]), w, stride=2)
        return F.leaky_relu(x + self.bias[None, :, None, None], 0.2)


class LayerEpilogue(nn.Module):
    """After each synthesis convolution: noise · strength, bias, LeakyReLU, instance norm, AdaIN."""

    def __init__(self, channels: int, w_dim: int, resolution: int):
        super().__init__()
        self.noise_strength = nn.Parameter(torch.zeros(channels))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.style = EqualLinear(w_dim, channels * 2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str,
                noise_generator: torch.Generator | list[torch.Generator] | None) -> torch.Tensor:
        scale, shift = self.style(w).unflatten(1, (2, -1)).unbind(1)
        if noise_mode == "random":
            noise = random_noise(x, noise_generator) * self.noise_strength[None, :, None, None]
        elif noise_mode == "const":
            noise = self.noise_const[None, None] * self.noise_strength[None, :, None, None]
        if not (torch.is_grad_enabled() and x.requires_grad):  # rendering: the same ops, in place
            if noise_mode != "none":
                x.add_(noise)
            x = F.leaky_relu_(x.add_(self.bias[None, :, None, None]), 0.2)
            x = x - x.mean(dim=(2, 3), keepdim=True)
            x.mul_((x.square().mean(dim=(2, 3), keepdim=True) + 1e-8).rsqrt())
            return x.mul_(scale[:, :, None, None] + 1).add_(shift[:, :, None, None])
        if noise_mode != "none":
            x = x + noise
        x = F.leaky_relu(x + self.bias[None, :, None, None], 0.2)
        x = instance_norm(x)
        return x * (scale[:, :, None, None] + 1) + shift[:, :, None, None]


class SynthesisBlock(nn.Module):
    """One resolution: (up-conv + blur or, at 4×4, the constant), epilogue, conv, epilogue."""

    def __init__(self, cin: int, cout: int, w_dim: int, resolution: int, fused: bool):
        super().__init__()
        self.first = resolution == 4
        if self.first:
            self.const = nn.Parameter(torch.ones(cout, 4, 4))
        else:
            self.conv0 = UpConv(cin, cout, fused)
        self.epilogue0 = LayerEpilogue(cout, w_dim, resolution)
        self.conv1 = EqualConv2d(cout, cout, 3, bias=False, gain=SQRT2)
        self.epilogue1 = LayerEpilogue(cout, w_dim, resolution)

    def forward(self, x: torch.Tensor | None, ws: torch.Tensor, noise_mode: str,
                noise_generator: Any = None) -> torch.Tensor:
        """``ws``: N×2×w_dim, the styles of this block's two layers."""
        if self.first:
            x = self.const[None].repeat(ws.shape[0], 1, 1, 1)  # a copy: the epilogue may work in place
        else:
            x = blur(self.conv0(x))
        x = self.epilogue0(x, ws[:, 0], noise_mode, noise_generator)
        return self.epilogue1(self.conv1(x), ws[:, 1], noise_mode, noise_generator)


class SynthesisNetwork(nn.Module):
    """w per layer → image; ``lod`` > 0 renders a lower resolution, faded and upscaled (growing)."""

    def __init__(self, w_dim: int, resolution: int, channels: int, fmap_base: int, fmap_max: int,
                 fmap_decay: float = 1.0, fused_scale: bool | str = "auto"):
        super().__init__()
        self.log2 = doublings(resolution, 1)
        self.resolutions = [2 ** r for r in range(2, self.log2 + 1)]
        self.fmap_base, self.fmap_max, self.fmap_decay = fmap_base, fmap_max, fmap_decay
        self.blocks, self.torgb = nn.ModuleDict(), nn.ModuleDict()
        for r in range(2, self.log2 + 1):
            res = 2 ** r
            fused = res >= 128 if fused_scale == "auto" else bool(fused_scale)
            cin, cout = nf(r - 2, fmap_base, fmap_max, fmap_decay), nf(r - 1, fmap_base, fmap_max, fmap_decay)
            self.blocks[f"b{res}"] = SynthesisBlock(cin, cout, w_dim, res, fused)
            self.torgb[f"b{res}"] = EqualConv2d(cout, channels, 1)
        self.num_ws = 2 * len(self.resolutions)
        self.register_buffer("lod", torch.zeros(()))

    def forward(self, ws: torch.Tensor, noise_mode: str = "random", noise_generator: Any = None) -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise BadInput(f"noise mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        lod = float(self.lod)
        top = min(self.log2, max(3, math.ceil(self.log2 - lod)))  # the finest level drawn
        x = prev = None
        for r in range(2, top + 1):
            prev = x
            x = self.blocks[f"b{2 ** r}"](x, ws[:, 2 * r - 4: 2 * r - 2], noise_mode, noise_generator)
        img = self.torgb[f"b{2 ** top}"](x)
        fade = lod - (self.log2 - top)
        if fade > 0:  # fading in level ``top``: blend with the upscaled level below
            img = lerp(img, upscale(self.torgb[f"b{2 ** (top - 1)}"](prev), 2), min(fade, 1.0))
        return upscale(img, 2 ** (self.log2 - top))


class MappingNetwork(nn.Module):
    """z (and a one-hot class c, embedded and concatenated) → PixelNorm → dense layers → w."""

    def __init__(self, z_dim: int, w_dim: int, layers: int = 8, fmaps: int | None = None, lr_mul: float = 0.01,
                 c_dim: int = 0, w_avg_beta: float = 0.995):
        super().__init__()
        self.c_dim = c_dim
        if c_dim:
            self.embed = nn.Parameter(torch.randn(c_dim, z_dim))
        fmaps = fmaps or w_dim
        dims = [z_dim * (2 if c_dim else 1)] + [fmaps] * (layers - 1) + [w_dim]
        self.net = nn.ModuleList([EqualLinear(a, b, lr_mul=lr_mul, gain=SQRT2) for a, b in zip(dims, dims[1:])])
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.w_avg_beta = w_avg_beta

    @torch.no_grad()
    def track_w_avg(self, w_mean: torch.Tensor) -> None:
        self.w_avg.copy_(lerp(w_mean.float(), self.w_avg, self.w_avg_beta))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, update_w_avg: bool = True,
                c: torch.Tensor | None = None) -> torch.Tensor:
        x = z
        if self.c_dim:
            if c is None or c.shape[-1] != self.c_dim:
                raise BadInput(f"this generator is conditional: give a class label (c of size {self.c_dim})")
            x = torch.cat([x, c.to(x.dtype) @ self.embed], dim=1)
        x = _normalize_2nd_moment(x)
        for layer in self.net:
            x = F.leaky_relu(layer(x), 0.2)
        if self.training and update_w_avg:
            self.track_w_avg(x.detach().mean(0))
        return x if truncation_psi == 1 else lerp(self.w_avg, x, truncation_psi)


class StyleGANGenerator(nn.Module):
    """``G(z, truncation_psi)`` → N×C×R×R in about [-1, 1]; the interface of the other style-based
    generators (``mapping``, ``synthesis``, ``ws``, ``num_ws``). Truncation moves the first
    ``truncation_cutoff`` styles (8: the coarse layers up to 32 px) unless told otherwise."""

    def __init__(self, z_dim: int, channels: int, resolution: int, fmap_base: int = 8192, fmap_max: int = 512,
                 fmap_decay: float = 1.0, w_dim: int | None = None, mapping_layers: int = 8,
                 mapping_fmaps: int | None = None, c_dim: int = 0, truncation_cutoff: int = 8,
                 fused_scale: bool | str = "auto"):
        super().__init__()
        self.z_dim, self.w_dim, self.c_dim = z_dim, w_dim or z_dim, c_dim
        self.img_resolution, self.img_channels = resolution, channels
        self.truncation_cutoff = truncation_cutoff
        self.mapping = MappingNetwork(z_dim, self.w_dim, mapping_layers, mapping_fmaps, c_dim=c_dim)
        self.synthesis = SynthesisNetwork(self.w_dim, resolution, channels, fmap_base, fmap_max, fmap_decay,
                                          fused_scale)
        self.num_ws = self.synthesis.num_ws

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        return w[:, None, :].expand(-1, self.num_ws, -1)

    def ws(self, z: torch.Tensor, truncation_psi: float = 1.0, c: torch.Tensor | None = None,
           truncation_cutoff: int | None = None) -> torch.Tensor:
        ws = self.broadcast(self.mapping(z, 1.0, c=c))
        if truncation_psi == 1:
            return ws
        cutoff = self.truncation_cutoff if truncation_cutoff is None else int(truncation_cutoff)
        psi = torch.ones(self.num_ws, 1, device=ws.device, dtype=ws.dtype)
        psi[:cutoff] = truncation_psi
        return lerp(self.mapping.w_avg.to(ws.dtype), ws, psi)

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str | None = None,
                noise_generator: Any = None, c: torch.Tensor | None = None,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        mode = noise_mode or ("random" if self.training else "const")
        return self.synthesis(self.ws(z, truncation_psi, c, truncation_cutoff), mode, noise_generator)

    def set_lod(self, lod: float) -> None:
        self.synthesis.lod.fill_(float(lod))


# ---------------------------------------------------------------------- discriminator

class StyleGANDiscriminator(nn.Module):
    """The progressive-growing discriminator; at ``lod`` > 0 it reads the image at the coarser
    level (box-downscaled) through that level's fromRGB, faded like the generator."""

    def __init__(self, channels: int, resolution: int, fmap_base: int = 8192, fmap_max: int = 512,
                 fmap_decay: float = 1.0, mbstd_group: int = 4):
        super().__init__()
        self.log2 = doublings(resolution, 1)
        self.fromrgb, self.blocks = nn.ModuleDict(), nn.ModuleDict()
        for r in range(2, self.log2 + 1):
            res = 2 ** r
            self.fromrgb[f"b{res}"] = EqualConv2d(channels, nf(r - 1, fmap_base, fmap_max, fmap_decay), 1, gain=SQRT2)
            if r > 2:
                cin, cout = nf(r - 1, fmap_base, fmap_max, fmap_decay), nf(r - 2, fmap_base, fmap_max, fmap_decay)
                self.blocks[f"b{res}"] = nn.ModuleDict({"conv0": EqualConv2d(cin, cin, 3, gain=SQRT2),
                                                        "conv1_down": DownConv(cin, cout, res >= 128)})
        c4 = nf(1, fmap_base, fmap_max, fmap_decay)
        self.mbstd = MinibatchStd(mbstd_group)
        self.conv = EqualConv2d(c4 + 1, c4, 3, gain=SQRT2)
        self.fc = EqualLinear(c4 * 16, nf(0, fmap_base, fmap_max, fmap_decay), gain=SQRT2)
        self.out = EqualLinear(nf(0, fmap_base, fmap_max, fmap_decay), 1)
        self.register_buffer("lod", torch.zeros(()))

    def _from(self, images: torch.Tensor, r: int) -> torch.Tensor:
        return F.leaky_relu(self.fromrgb[f"b{2 ** r}"](downscale(images, 2 ** (self.log2 - r))), 0.2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        lod = float(self.lod)
        top = min(self.log2, max(3, math.ceil(self.log2 - lod)))
        x = self._from(images, top)
        for r in range(top, 2, -1):
            block = self.blocks[f"b{2 ** r}"]
            x = block["conv1_down"](F.leaky_relu(block["conv0"](x), 0.2))
            fade = lod - (self.log2 - r)
            if r == top and fade > 0:
                x = lerp(x, self._from(images, r - 1), min(fade, 1.0))
        x = F.leaky_relu(self.conv(self.mbstd(x)), 0.2)
        return self.out(F.leaky_relu(self.fc(x.flatten(1)), 0.2)).view(-1)


# ---------------------------------------------------------------------- training

OPTIONS: dict[str, tuple[Any, type, str]] = {
    "fmap_base": (8192, int, "feature maps at stage s: min(fmap_base / 2^s, fmap_max) (NVlabs' default 8192)"),
    "fmap_max": (512, int, "most feature maps of any layer (--width is the same setting)"),
    "w_dim": (None, int, "size of w (default: --z-dim)"),
    "mapping_layers": (8, int, "dense layers of the mapping network"),
    "start_resolution": (8, int, "resolution progressive growing starts from (the final one: no growing)"),
    "lod_kimg": (600.0, float, "thousands of images shown at each resolution before fading in the next"),
    "fade_kimg": (600.0, float, "thousands of images over which a new resolution fades in"),
    "lr": (0.001, float, "Adam learning rate of G and D"),
    "lr_schedule": (True, bool, "NVlabs' faster rates at high resolution: 0.0015 at 128 px, 0.002 at 256, 0.003 at 512"),
    "r1_gamma": (10.0, float, "R1 weight γ on reals, every step"),
    "style_mixing": (0.9, float, "probability of style-mixing regularisation"),
    "ema_kimg": (10.0, float, "half-life of G_ema in thousands of images"),
    "mbstd_group": (4, int, "minibatch-stddev group size"),
}


# NVlabs' StyleGAN configs (G_lrate_dict = D_lrate_dict): the learning rate at the resolution
# being trained, where it differs from the base
LR_BY_RESOLUTION = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}


def stylegan_options(resolution: int, given: dict[str, Any]) -> dict[str, Any]:
    defaults = {key: default for key, (default, _kind, _text) in OPTIONS.items()}
    out = fill_options("stylegan", given, defaults, non_negative=tuple(OPTIONS),
                       types={key: kind for key, (_default, kind, _text) in OPTIONS.items()})
    for key in ("fmap_base", "fmap_max", "mapping_layers", "mbstd_group"):
        if out[key] < 1:
            raise BadInput(f"stylegan option {key} must be at least 1, got {out[key]}")
    start = out["start_resolution"]
    if start < 4 or start & (start - 1) or start > resolution:
        raise BadInput(f"stylegan option start_resolution must be a power of two from 4 to {resolution}, got {start}")
    if out["lr"] <= 0:
        raise BadInput(f"stylegan option lr must be positive, got {out['lr']}")
    if out["style_mixing"] > 1:
        raise BadInput(f"stylegan option style_mixing is a probability, got {out['style_mixing']}")
    return out


def lod_at(images_seen: float, resolution: int, start_resolution: int, lod_kimg: float, fade_kimg: float) -> float:
    """Levels of detail below full resolution after ``images_seen`` images (NVlabs' schedule:
    ``lod_kimg`` at each level, then ``fade_kimg`` fading in the next)."""
    kimg = images_seen / 1000
    lod = math.log2(resolution) - math.log2(start_resolution)
    phase = lod_kimg + fade_kimg
    if phase <= 0:
        return 0.0
    done = math.floor(kimg / phase)
    lod -= done
    if fade_kimg > 0:
        lod -= max(kimg - done * phase - lod_kimg, 0.0) / fade_kimg
    return max(lod, 0.0)


def reals_at_lod(images: torch.Tensor, lod: float) -> torch.Tensor:
    """Reals as D sees them at ``lod``: at the current level (box-downscaled), the finer level
    fading in, shown at full size (nearest-neighbour) like the generator's output."""
    if lod <= 0:
        return images
    level = math.floor(lod)
    x = downscale(images, 2 ** level)
    coarse = upscale(downscale(x, 2), 2)
    x = lerp(x, coarse, lod - level)
    return upscale(x, 2 ** level)


def build(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    o = cfg.options
    G = StyleGANGenerator(cfg.z_dim, cfg.channels, cfg.resolution, o["fmap_base"], o["fmap_max"],
                          w_dim=o["w_dim"] or cfg.z_dim, mapping_layers=o["mapping_layers"])
    D = StyleGANDiscriminator(cfg.channels, cfg.resolution, o["fmap_base"], o["fmap_max"], mbstd_group=o["mbstd_group"])
    return G, D


class StyleGANObjective(StyleGAN2Objective):
    """One StyleGAN step at the scheduled level of detail: D (logistic + R1 every step), then G."""

    stats = ("loss_d", "loss_g", "d_real", "d_fake", "r1", "lod")
    gauge_names = ()

    def __init__(self, spec, G: nn.Module, D: nn.Module):
        spec_options = dict(spec.model.options)
        spec_options.update(ada=False, ada_p=0.0, pl_weight=0.0, r1_interval=1, blur_sigma=0.0, ema_rampup=0.0,
                            ada_target=0.6, ada_interval=4, ada_kimg=0.0, pl_interval=4, blur_fade_kimg=None)
        self.options_v1 = spec.model.options
        super().__init__(_with_options(spec, spec_options), G, D)

    def make_optimizers(self, G: nn.Module, D: nn.Module):
        b1, b2 = self.spec.family.betas
        lr = self.options_v1.get("lr", self.spec.family.lr_g)
        return (torch.optim.Adam(G.parameters(), lr=lr, betas=(b1, b2), eps=1e-8),
                torch.optim.Adam(D.parameters(), lr=lr, betas=(b1, b2), eps=1e-8))

    def learning_rate(self, lod: float) -> float:
        """The rate at the level being trained (NVlabs: the resolution of ⌊lod⌋)."""
        o = self.options_v1
        lr = o.get("lr", self.spec.family.lr_g)
        if not o.get("lr_schedule", False):
            return lr
        resolution = self.spec.model.resolution // 2 ** math.floor(lod)
        return LR_BY_RESOLUTION.get(resolution, lr)

    def lod(self, step: int) -> float:
        o = self.options_v1
        return lod_at(step * self._images_per_step(), self.spec.model.resolution, o["start_resolution"],
                      o["lod_kimg"], o["fade_kimg"])

    def run_G(self, ctx: StepContext, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        G = ctx.G
        w = G.mapping(z, update_w_avg=False)
        G.mapping.track_w_avg(self.all_reduce_mean(w.detach().float().mean(0)))
        ws = G.broadcast(w)
        active = G.num_ws - 2 * math.floor(float(G.synthesis.lod))  # the layers drawn at this level
        r = torch.rand(2, device=ctx.device, generator=ctx.rng)
        if self.o["style_mixing"] > 0 and float(r[1]) < self.o["style_mixing"] and active > 1:
            cutoff = 1 + int(r[0] * (active - 1))
            ws = torch.cat([ws[:, :cutoff], G.broadcast(G.mapping(ctx.latents(len(z)), update_w_avg=False))[:, cutoff:]],
                           dim=1)
        return G.synthesis(ws, "random"), ws

    def step(self, ctx: StepContext) -> torch.Tensor:
        t = ctx
        lod = self.lod(t.step)
        for net in (t.G.synthesis, t.D):
            net.lod.fill_(lod)
        for opt in (t.opt_G, t.opt_D):
            for group in opt.param_groups:
                group["lr"] = self.learning_rate(lod)
        n = self.spec.train.batch_size
        real = reals_at_lod(t.real_batch(), lod)
        with torch.no_grad(), t.autocast():
            fake, _ = self.run_G(t, t.latents(n))
        with torch.autocast(t.device.type, enabled=False):
            x = real.detach().float().requires_grad_(self.r1_gamma > 0)
            s_real = t.D(x)
            s_fake = t.D(fake.float())
            loss_d = F.softplus(s_fake).mean() + F.softplus(-s_real).mean()
            r1 = torch.zeros((), device=t.device)
            if self.r1_gamma > 0:
                (grad,) = torch.autograd.grad(s_real.sum(), x, create_graph=True)
                r1 = grad.square().sum(dim=[1, 2, 3])
                loss_d = loss_d + (r1 * (self.r1_gamma / 2)).mean()
        self.optimise(loss_d, t.opt_D, t.scaler_D, params=t.D)
        t.D.requires_grad_(False)
        try:
            with t.autocast():
                fake, _ = self.run_G(t, t.latents(n))
                loss_g = F.softplus(-t.D(fake).float()).mean()
            self.optimise(loss_g, t.opt_G, t.scaler_G, params=t.G)
        finally:
            t.D.requires_grad_(True)
        self.last_r1 = r1.detach().mean()
        return torch.stack([loss_d.detach(), loss_g.detach(), s_real.detach().mean(), s_fake.detach().mean(),
                            self.last_r1.float(), torch.tensor(lod, device=t.device)])

    def ema_decay(self, step: int) -> float:
        return 0.5 ** (self._images_per_step() / (self.options_v1["ema_kimg"] * 1000))

    def gauges(self) -> dict[str, float]:
        return {}


def _with_options(spec, options: dict[str, Any]):
    """``spec`` with its model options replaced (the StyleGAN2 pieces read their own keys)."""
    import dataclasses

    return dataclasses.replace(spec, model=dataclasses.replace(spec.model, options=options))


STYLEGAN = Family(
    name="stylegan",
    summary="StyleGAN (v1): mapping net + AdaIN, noise, progressive growing, style mixing, truncation; "
            "R1 γ 10, Adam 0.001, β (0, 0.99)",
    build=build, lr_g=0.001, lr_d=0.001, betas=(0.0, 0.99), z_dim=512, width=None, width_option="fmap_max",
    batch_size=32, resolutions=(32, 64, 128, 256, 512), objective=StyleGANObjective, options=stylegan_options,
    reference="Karras et al. A style-based generator architecture for generative adversarial networks (2019); "
              "Progressive growing of GANs (2018)")


# ---------------------------------------------------------------------- NVlabs TensorFlow snapshots

# G_style / G_mapping / G_synthesis arguments this implementation follows, with NVlabs' defaults;
# a snapshot that sets any other value is refused by name.
FIXED_KWARGS = {
    "use_styles": True, "const_input_layer": True, "use_noise": True, "nonlinearity": "lrelu",
    "use_wscale": True, "use_pixel_norm": False, "use_instance_norm": True, "blur_filter": [1, 2, 1],
    "mapping_nonlinearity": "lrelu", "mapping_lrmul": 0.01, "normalize_latents": True, "dtype": "float32",
}


def from_tf(kwargs: dict[str, Any], variables: dict[str, np.ndarray]) -> StyleGANGenerator:
    """A StyleGAN generator from a TensorFlow snapshot's explicit keyword arguments (defaults are
    NVlabs' signatures') and its variables, named ``mapping/…``, ``synthesis/…`` and the top
    network's own (``dlatent_avg``, ``lod``)."""
    for key, expected in FIXED_KWARGS.items():
        value = kwargs.get(key, expected)
        if (list(value) if isinstance(value, (list, tuple)) else value) != expected:
            raise BadInput(f"a StyleGAN snapshot with {key}={value!r}: only NVlabs' default {expected!r} is supported")
    resolution, channels = int(kwargs.get("resolution", 1024)), int(kwargs.get("num_channels", 3))
    z_dim, w_dim = int(kwargs.get("latent_size", 512)), int(kwargs.get("dlatent_size", 512))
    c_dim = int(kwargs.get("label_size", 0))
    fused = kwargs.get("fused_scale", "auto")
    G = StyleGANGenerator(z_dim, channels, resolution, int(kwargs.get("fmap_base", 8192)),
                          int(kwargs.get("fmap_max", 512)), float(kwargs.get("fmap_decay", 1.0)), w_dim=w_dim,
                          mapping_layers=int(kwargs.get("mapping_layers", 8)),
                          mapping_fmaps=int(kwargs.get("mapping_fmaps", 512)), c_dim=c_dim,
                          truncation_cutoff=int(kwargs.get("truncation_cutoff") or 8), fused_scale=fused)
    state = _tf_state(G, variables)
    ours = G.state_dict()
    missing = sorted(set(ours) - set(state))
    if missing:
        raise BadInput(f"StyleGAN snapshot lacks {len(missing)} variables for its arguments, e.g. for {missing[0]}")
    for name, value in state.items():
        if tuple(value.shape) != tuple(ours[name].shape):
            raise BadInput(f"{name}: shape {tuple(value.shape)} in the file, {tuple(ours[name].shape)} for its arguments")
    G.load_state_dict(state, strict=True)
    return G.eval().requires_grad_(False)


def _tf_state(G: StyleGANGenerator, v: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    def take(name: str) -> np.ndarray:
        if name not in v:
            raise BadInput(f"StyleGAN snapshot has no variable {name}")
        return np.asarray(v[name], dtype=np.float32)

    def conv(name: str) -> torch.Tensor:  # [k, k, in, out] → [out, in, k, k]
        return torch.from_numpy(take(name).transpose(3, 2, 0, 1).copy())

    def dense(name: str) -> torch.Tensor:  # [in, out] → [out, in]
        return torch.from_numpy(take(name).T.copy())

    def vec(name: str) -> torch.Tensor:
        return torch.from_numpy(take(name).copy())

    out = {"mapping.w_avg": vec("dlatent_avg"), "synthesis.lod": torch.tensor(float(take("lod")))}
    for i in range(len(G.mapping.net)):
        out[f"mapping.net.{i}.weight"] = dense(f"mapping/Dense{i}/weight")
        out[f"mapping.net.{i}.bias"] = vec(f"mapping/Dense{i}/bias")
    if G.c_dim:
        out["mapping.embed"] = vec("mapping/LabelConcat/weight")
    syn = G.synthesis
    for r in range(2, syn.log2 + 1):
        res = 2 ** r
        ours, theirs = f"synthesis.blocks.b{res}", f"synthesis/{res}x{res}"
        layers = (("Const", "epilogue0"), ("Conv", "epilogue1")) if r == 2 else \
                 (("Conv0_up", "epilogue0"), ("Conv1", "epilogue1"))
        if r == 2:
            out[f"{ours}.const"] = vec(f"{theirs}/Const/const")[0]
            out[f"{ours}.conv1.weight"] = conv(f"{theirs}/Conv/weight")
        else:
            out[f"{ours}.conv0.weight"] = conv(f"{theirs}/Conv0_up/weight")
            out[f"{ours}.conv1.weight"] = conv(f"{theirs}/Conv1/weight")
        for k, (scope, epilogue) in enumerate(layers):
            e = f"{ours}.{epilogue}"
            out[f"{e}.noise_strength"] = vec(f"{theirs}/{scope}/Noise/weight")
            out[f"{e}.noise_const"] = vec(f"synthesis/noise{2 * r - 4 + k}")[0, 0]
            out[f"{e}.bias"] = vec(f"{theirs}/{scope}/bias")
            out[f"{e}.style.weight"] = dense(f"{theirs}/{scope}/StyleMod/weight")
            out[f"{e}.style.bias"] = vec(f"{theirs}/{scope}/StyleMod/bias")
        out[f"synthesis.torgb.b{res}.weight"] = conv(f"synthesis/ToRGB_lod{syn.log2 - r}/weight")
        out[f"synthesis.torgb.b{res}.bias"] = vec(f"synthesis/ToRGB_lod{syn.log2 - r}/bias")
    return out
