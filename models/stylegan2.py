"""StyleGAN2-ADA (Karras et al. 2020a, "Analyzing and improving the image quality of
StyleGAN"; 2020b, "Training generative adversarial networks with limited data"), in plain
PyTorch: no custom CUDA ops (modulation is a grouped conv, FIR resampling a depthwise conv).

G = mapping ∘ synthesis.
- Mapping: z normalised to unit second moment, 8 equalised-lr dense layers (lr ×0.01,
  LeakyReLU), w; ``w_avg`` tracks the mean w during training (for truncation ψ).
- Synthesis ("skip" architecture): a learned 4×4 constant, then per resolution two 3×3
  modulated/demodulated convs (the first upsamples ×2 with the [1,3,3,1] filter), each
  followed by per-pixel noise (learned strength) and bias + LeakyReLU; every resolution
  has a toRGB (1×1 modulated conv without demodulation) whose output is added to the
  upsampled image so far. Each conv and toRGB gets its own w (``num_ws`` of them), which is
  what style mixing swaps.
- D ("resnet"): fromRGB, then per resolution two 3×3 convs (the second blurs and strides)
  plus a 1×1 downsampling skip, each path scaled by √½; at 4×4 the minibatch standard
  deviation (groups of 4), a 3×3 conv, a dense layer and the logit.
Equalised learning rate everywhere (``models.blocks.EqualLinear/EqualConv2d``).

Training (``StyleGAN2Objective``): non-saturating logistic loss; lazy R1 on reals every 16
D steps with γ from the resolution preset; style-mixing regularisation with p = 0.9; an
EMA of G with a half-life of ``ema_kimg`` thousand images, ramped up over the first
images; optional path-length regularisation every 4 G steps (``--pl-weight``, off by
default); ADA augmentations (``models/augment.py``) on every image D sees, with p
steered towards r_t = 0.6. Adam lr 0.0025, β = (0, 0.99), ε = 1e-8, with the lazy-regulariser
correction of lr and β (c = 16/17 for D).

Options are named as in stylegan2-ada-pytorch: ``z_dim`` (``--z-dim``), ``w_dim`` (default:
z_dim), ``channel_max`` (``--width`` sets it too), ``channel_base``, ``mapping_layers``, ...

Defaults are NVlabs' ``--cfg auto`` (``-O cfg=`` / ``--cfg`` picks ``stylegan2``, ``paper256``,
``paper512`` or ``paper1024`` by the same names): channel_base 16384 below 512 px and 32768 from
512 px (channels = min(channel_base / res, channel_max)), 2 mapping layers, Adam lr 0.0025 (0.002
from 1024 px), R1 γ = 0.0002·res²/batch of all processes, EMA half-life batch·10/32 kimg with a
0.05 ramp-up, path-length weight 2 with G's Adam lazily corrected, minibatch-stddev groups of 4,
every G layer clamped to ±256, ADA p bounded below by 0 only. Any option given explicitly
(``-O key=value``, ``--pl-weight``, ``--r1-gamma``) overrides the preset.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganeval.errors import BadInput
from ganeval.models.augment import AdaController, AugmentPipe
from ganeval.models.blocks import EqualConv2d, EqualLinear, doublings, fir_filter2d, fir_upsample2d, lrelu_gain
from ganeval.models.objective import Objective, StepContext
from ganeval.models.options import fill_options
from ganeval.models.spec import Family, ModelConfig

RESOLUTIONS = (32, 64, 128, 256, 512)
NOISE_MODES = ("random", "const", "none")


def r1_gamma_auto(resolution: int, total_batch: int) -> float:
    """stylegan2-ada-pytorch's ``--gamma`` "auto": 0.0002·res²/batch (batch over all processes)."""
    return 0.0002 * resolution * resolution / max(1, total_batch)


R1_GAMMA = {r: round(r1_gamma_auto(r, 32), 6) for r in RESOLUTIONS}  # the rule at batch 32

# NVlabs' train.py --cfg presets (stylegan2-ada-pytorch): fmaps × 32768 = channel_base, the Adam
# learning rate, R1 γ, the EMA half-life (kimg), its ramp-up, mapping layers and the minibatch-stddev
# group. "auto" derives them from the resolution and batch (see ``cfg_defaults``).
CFG_SPECS: dict[str, dict[str, Any]] = {
    "stylegan2": dict(fmaps=1, lr=0.002, gamma=10.0, ema=10.0, ramp=0.0, map=8, mbstd=4),
    "paper256": dict(fmaps=0.5, lr=0.0025, gamma=1.0, ema=20.0, ramp=0.0, map=8, mbstd=8),
    "paper512": dict(fmaps=1, lr=0.0025, gamma=0.5, ema=20.0, ramp=0.0, map=8, mbstd=8),
    "paper1024": dict(fmaps=2, lr=0.002, gamma=2.0, ema=10.0, ramp=0.0, map=8, mbstd=4),
}
CFGS = ("auto", *CFG_SPECS)

# option → (default (None: from --cfg, see cfg_defaults), type, description); names as in stylegan2-ada-pytorch
OPTIONS: dict[str, tuple[Any, type, str]] = {
    "cfg": ("auto", str, "NVlabs' --cfg preset: auto, stylegan2, paper256, paper512, paper1024"),
    "channel_base": (None, int, "channels at resolution r: min(channel_base / r, channel_max) (default: the cfg's)"),
    "channel_max": (512, int, "most feature maps of any layer (--width is the same setting)"),
    "w_dim": (None, int, "size of w, the mapping network's output (default: --z-dim)"),
    "mapping_layers": (None, int, "dense layers of the mapping network (default: the cfg's; auto 2)"),
    "r1_gamma": (None, float, "R1 weight γ (default: the cfg's; auto 0.0002·res²/batch of all processes)"),
    "r1_interval": (16, int, "D steps between lazy R1 steps (0: no R1)"),
    "pl_weight": (2.0, float, "path-length regularisation weight (0: off)"),
    "pl_interval": (4, int, "G steps between lazy path-length steps"),
    "style_mixing": (0.9, float, "probability of style-mixing regularisation"),
    "ema_kimg": (None, float, "half-life of G_ema in thousands of images (default: the cfg's; auto batch·10/32)"),
    "ema_rampup": (None, float, "ramp-up: half-life ≤ images seen × this (0: none; default: the cfg's; auto 0.05)"),
    "ada": (True, bool, "adaptive discriminator augmentation on"),
    "ada_target": (0.6, float, "target r_t for E[sign(D(real))]"),
    "ada_kimg": (500.0, float, "thousands of images for p to move from 0 to 1"),
    "ada_interval": (4, int, "D steps between p adjustments"),
    "ada_p": (0.0, float, "initial augmentation probability (fixed when ada_kimg is 0)"),
    "mbstd_group": (None, int, "minibatch-stddev group size (default: the cfg's; auto 4)"),
    "lr": (None, float, "Adam learning rate of G and D (default: the cfg's; auto 0.0025, 0.002 from 1024 px)"),
    "conv_clamp": (256.0, float, "clamp every G layer's output to ±this (0: off), as NVlabs' configs"),
    "blur_sigma": (0.0, float, "σ in pixels of a Gaussian blur of every image D sees, fading to 0 "
                               "(StyleGAN3 config R: 10; 0: off)"),
    "blur_fade_kimg": (None, float, "thousands of images over which the D-input blur fades out (default batch·200/32)"),
}


def cfg_defaults(cfg: str, resolution: int) -> dict[str, Any]:
    """The options a --cfg preset fixes; "auto" as NVlabs computes it (γ and the EMA half-life
    depend on the batch, so they stay None here and are derived when training starts)."""
    if cfg == "auto":
        return {"channel_base": int((1 if resolution >= 512 else 0.5) * 32768), "mapping_layers": 2,
                "lr": 0.002 if resolution >= 1024 else 0.0025, "r1_gamma": None, "ema_kimg": None,
                "ema_rampup": 0.05, "mbstd_group": 4}
    if cfg not in CFG_SPECS:
        raise BadInput(f"stylegan2 option cfg must be one of {', '.join(CFGS)}, got {cfg!r}")
    s = CFG_SPECS[cfg]
    return {"channel_base": int(s["fmaps"] * 32768), "mapping_layers": s["map"], "lr": s["lr"],
            "r1_gamma": s["gamma"], "ema_kimg": s["ema"], "ema_rampup": s["ramp"], "mbstd_group": s["mbstd"]}


def stylegan2_options(resolution: int, given: dict[str, Any]) -> dict[str, Any]:
    """The complete option dict for a resolution preset, with ``given`` values checked
    (``models.options.fill_options``, the one validator, plus StyleGAN2's ranges)."""
    defaults = {key: default for key, (default, _kind, _text) in OPTIONS.items()}
    out = fill_options("stylegan2", given, defaults, non_negative=tuple(k for k in OPTIONS if k != "cfg"),
                       types={key: kind for key, (_default, kind, _text) in OPTIONS.items()})
    for key, value in cfg_defaults(out["cfg"], resolution).items():
        if given.get(key) is None:
            out[key] = value
    for key in ("mapping_layers", "channel_base", "channel_max", "mbstd_group", "w_dim"):
        if out[key] is not None and out[key] < 1:
            raise BadInput(f"stylegan2 option {key} must be at least 1, got {out[key]}")
    if out["lr"] <= 0:
        raise BadInput(f"stylegan2 option lr must be positive, got {out['lr']}")
    for key in ("style_mixing", "ada_p", "ada_target"):
        if out[key] > 1:
            raise BadInput(f"stylegan2 option {key} is a probability, got {out[key]}")
    if out["pl_weight"] > 0 and out["pl_interval"] < 1:
        raise BadInput("stylegan2 option pl_interval must be at least 1 when pl_weight > 0")
    if out["ada_interval"] < 1:
        raise BadInput("stylegan2 option ada_interval must be at least 1")
    return out


def channels_at(res: int, base: int, cap: int) -> int:
    return max(1, min(base // res, cap))


# ---------------------------------------------------------------------- generator

class MappingNetwork(nn.Module):
    """z (and a class label c) → w: normalise, ``layers`` dense layers with lr multiplier 0.01;
    tracks w_avg. A conditional network embeds c (a dense layer), normalises it like z and
    concatenates the two before the first layer."""

    def __init__(self, z_dim: int, w_dim: int, layers: int = 8, lr_mul: float = 0.01, w_avg_beta: float = 0.995,
                 c_dim: int = 0):
        super().__init__()
        self.c_dim = c_dim
        if c_dim:
            self.embed = EqualLinear(c_dim, w_dim)
        dims = [z_dim + (w_dim if c_dim else 0)] + [w_dim] * layers
        self.net = nn.Sequential(*[EqualLinear(a, b, lr_mul=lr_mul, act="lrelu") for a, b in zip(dims, dims[1:])])
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.w_avg_beta = w_avg_beta

    @torch.no_grad()
    def track_w_avg(self, w_mean: torch.Tensor) -> None:
        """w_avg ← lerp(batch mean of w, w_avg, β). Under DDP the objective passes the mean over
        all processes, so every rank holds the same w_avg."""
        self.w_avg.copy_(w_mean.float().lerp(self.w_avg, self.w_avg_beta))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, update_w_avg: bool = True,
                c: torch.Tensor | None = None) -> torch.Tensor:
        x = _normalize_2nd_moment(z)
        if self.c_dim:
            if c is None or c.shape[-1] != self.c_dim:
                raise BadInput(f"this generator is conditional: give a class label (c of size {self.c_dim})")
            x = torch.cat([x, _normalize_2nd_moment(self.embed(c.to(x.dtype)))], dim=1)
        w = self.net(x)
        if self.training and update_w_avg:  # training forwards move the average (as the reference)
            self.track_w_avg(w.detach().float().mean(0))
        if truncation_psi != 1:
            w = self.w_avg.to(w.dtype).lerp(w, truncation_psi)
        return w


def _normalize_2nd_moment(x: torch.Tensor) -> torch.Tensor:
    return x * (x.float().square().mean(dim=1, keepdim=True) + 1e-8).rsqrt().to(x.dtype)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool,
                     fused: bool, up: bool = False) -> torch.Tensor:
    """Conv whose input channels are scaled per sample by ``styles`` (N×I) and, with
    ``demodulate``, whose outputs are rescaled to unit expected variance. ``up``: a stride-2
    transposed conv followed by the [1,3,3,1] blur (×2 upsampling at the low-resolution
    conv's cost, as the reference does).

    ``fused``: one grouped conv with per-sample weights (each sample its own group; an
    image then does not depend on its batch-mates' arithmetic). Otherwise scale the
    activations, run one shared conv and rescale — the same maths, faster to train."""
    n, cin, h, w_ = x.shape
    cout, _, k, _ = weight.shape
    if fused:
        wts = weight[None] * styles[:, None, :, None, None]  # N×O×I×k×k
        if demodulate:
            wts = wts * (wts.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
        x = x.reshape(1, n * cin, h, w_)
        if up:
            out = F.conv_transpose2d(x, wts.transpose(1, 2).reshape(n * cin, cout, k, k), stride=2, groups=n)
        else:
            out = F.conv2d(x, wts.reshape(n * cout, cin, k, k), padding=k // 2, groups=n)
        out = out.reshape(n, cout, *out.shape[2:])
    else:
        x = x * styles[:, :, None, None]
        if up:
            out = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
        else:
            out = F.conv2d(x, weight, padding=k // 2)
        if demodulate:
            dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # N×O
            out = out * dcoefs[:, :, None, None]
    if up:  # 3×3 kernels: 2H + 1 → 2H, the blur (gain 4) centred as in the reference
        out = fir_filter2d(out, pad=1, gain=4)  # ×4 on the taps: exact, a power of two
    return out


def random_noise(x: torch.Tensor, noise_generator: torch.Generator | list[torch.Generator] | None) -> torch.Tensor:
    """N×1×H×W per-pixel noise for ``x``; with one generator per image, an image's noise
    depends on its own stream alone (not on the batch it is drawn in)."""
    shape = (1, x.shape[2], x.shape[3])
    if isinstance(noise_generator, (list, tuple)):
        return torch.stack([torch.randn(shape, device=x.device, dtype=x.dtype, generator=g) for g in noise_generator])
    return torch.randn((x.shape[0], *shape), device=x.device, dtype=x.dtype, generator=noise_generator)


class StyleConv(nn.Module):
    """Modulated 3×3 conv (optionally ×2 upsampling first) + noise + bias + LeakyReLU."""

    def __init__(self, cin: int, cout: int, w_dim: int, resolution: int, up: bool = False,
                 conv_clamp: float | None = None):
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.up, self.resolution, self.conv_clamp = up, resolution, conv_clamp

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random",
                noise_generator: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
        styles = self.affine(w)
        x = modulated_conv2d(x, self.weight, styles, demodulate=True, fused=not self.training, up=self.up)
        if not (torch.is_grad_enabled() and x.requires_grad):  # rendering: the same ops, in place
            return self._epilogue_inplace(x, noise_mode, noise_generator)
        if noise_mode == "random":
            x = x + random_noise(x, noise_generator) * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength
        x = lrelu_gain(x + self.bias.to(x.dtype)[None, :, None, None])
        return x if self.conv_clamp is None else x.clamp(-self.conv_clamp, self.conv_clamp)

    def _epilogue_inplace(self, x: torch.Tensor, noise_mode: str, noise_generator: Any) -> torch.Tensor:
        """Noise, bias, LeakyReLU·√2 and clamp without new full-size tensors (large CPU renders
        spend much of their time allocating them)."""
        if noise_mode == "random":
            x.add_(random_noise(x, noise_generator) * self.noise_strength)
        elif noise_mode == "const":
            x.add_(self.noise_const.to(x.dtype) * self.noise_strength)
        x.add_(self.bias.to(x.dtype)[None, :, None, None])
        F.leaky_relu_(x, 0.2).mul_(math.sqrt(2))
        return x if self.conv_clamp is None else x.clamp_(-self.conv_clamp, self.conv_clamp)


class ToRGB(nn.Module):
    """Modulated 1×1 conv to image channels, no demodulation, linear."""

    def __init__(self, cin: int, channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(channels, cin, 1, 1))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.weight_gain = 1 / math.sqrt(cin)
        self.conv_clamp = conv_clamp

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=not self.training)
        x = x + self.bias.to(x.dtype)[None, :, None, None]
        return x if self.conv_clamp is None else x.clamp(-self.conv_clamp, self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: (up-conv,) conv, toRGB."""

    def __init__(self, cin: int, cout: int, w_dim: int, resolution: int, channels: int,
                 conv_clamp: float | None = None):
        super().__init__()
        self.first = resolution == 4
        if self.first:
            self.const = nn.Parameter(torch.randn(cout, 4, 4))
        else:
            self.conv0 = StyleConv(cin, cout, w_dim, resolution, up=True, conv_clamp=conv_clamp)
        self.conv1 = StyleConv(cout, cout, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGB(cout, channels, w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if self.first else 2

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: str,
                noise_generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``ws``: N×(num_conv + 1)×w_dim — this block's convs, then its toRGB."""
        if self.first:
            x = self.const.to(ws.dtype)[None].expand(ws.shape[0], -1, -1, -1)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode, noise_generator)
        x = self.conv1(x, ws[:, self.num_conv - 1], noise_mode, noise_generator)
        y = self.torgb(x, ws[:, self.num_conv])
        img = y if img is None else fir_upsample2d(img) + y
        return x, img


class SynthesisNetwork(nn.Module):
    def __init__(self, w_dim: int, resolution: int, channels: int, channel_base: int, channel_max: int,
                 conv_clamp: float | None = None):
        super().__init__()
        self.channel_base, self.channel_max, self.conv_clamp = channel_base, channel_max, conv_clamp
        n = doublings(resolution, 4)
        self.resolutions = [4 * 2**i for i in range(n + 1)]
        self.blocks = nn.ModuleDict()
        for res in self.resolutions:
            cin = channels_at(res // 2, channel_base, channel_max) if res > 4 else 0
            cout = channels_at(res, channel_base, channel_max)
            self.blocks[f"b{res}"] = SynthesisBlock(cin, cout, w_dim, res, channels, conv_clamp)
        # each block's convs take one w each; the toRGB shares the next block's first w
        self.num_ws = sum(b.num_conv for b in self.blocks.values()) + 1

    def forward(self, ws: torch.Tensor, noise_mode: str = "random",
                noise_generator: torch.Generator | None = None) -> torch.Tensor:
        """``noise_mode``: "random" (fresh per-pixel noise, from ``noise_generator`` when given),
        "const" (the stored noise) or "none"; ``noise_generator`` may be one generator per image."""
        if noise_mode not in NOISE_MODES:
            raise BadInput(f"noise mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        x = img = None
        i = 0
        for block in self.blocks.values():
            x, img = block(x, img, ws[:, i:i + block.num_conv + 1], noise_mode, noise_generator)
            i += block.num_conv
        return img


class StyleGAN2Generator(nn.Module):
    """``G(z, truncation_psi=1)`` → N×C×R×R images (roughly [-1, 1], not clamped).

    Noise is random in train mode and the stored constant noise in eval mode (so samples
    depend only on z); ``mapping``/``synthesis`` are usable on their own (style mixing).
    ``c_dim`` > 0 makes it conditional (a one-hot class label ``c``); ``conv_clamp`` clamps
    every layer's output to ±conv_clamp (NVlabs' networks are trained with 256)."""

    def __init__(self, z_dim: int, channels: int, resolution: int, channel_base: int, channel_max: int,
                 mapping_layers: int = 8, w_dim: int | None = None, c_dim: int = 0,
                 conv_clamp: float | None = None):
        super().__init__()
        self.z_dim, self.w_dim, self.c_dim = z_dim, w_dim or z_dim, c_dim
        self.img_resolution, self.img_channels = resolution, channels
        self.mapping = MappingNetwork(z_dim, self.w_dim, mapping_layers, c_dim=c_dim)
        self.synthesis = SynthesisNetwork(self.w_dim, resolution, channels, channel_base, channel_max, conv_clamp)
        self.num_ws = self.synthesis.num_ws

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """N×w_dim → N×num_ws×w_dim (the same style for every layer)."""
        return w[:, None, :].expand(-1, self.num_ws, -1)

    def ws(self, z: torch.Tensor, truncation_psi: float = 1.0, c: torch.Tensor | None = None,
           truncation_cutoff: int | None = None) -> torch.Tensor:
        """N×num_ws×w_dim styles of z (and c); ``truncation_cutoff``: truncate only the first
        that many ws (coarse layers), as NVlabs' mapping does."""
        if truncation_cutoff is None:
            return self.broadcast(self.mapping(z, truncation_psi, c=c))
        ws = self.broadcast(self.mapping(z, 1.0, c=c)).clone()
        cut = slice(0, int(truncation_cutoff))
        ws[:, cut] = self.mapping.w_avg.to(ws.dtype).lerp(ws[:, cut], truncation_psi)
        return ws

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str | None = None,
                noise_generator: torch.Generator | None = None, c: torch.Tensor | None = None,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        mode = noise_mode or ("random" if self.training else "const")
        return self.synthesis(self.ws(z, truncation_psi, c, truncation_cutoff), mode, noise_generator)


# ---------------------------------------------------------------------- NVlabs snapshots

def _nvlabs_keys(num_mapping_layers: int, c_dim: int, resolutions: list[int]) -> dict[str, str]:
    """NVlabs G_ema state_dict name → this module's name (same shapes, same parametrisation:
    weights stored as N(0, 1)/lr_mul with the equalised-lr gain applied at run time)."""
    names = {"mapping.w_avg": "mapping.w_avg"}
    for i in range(num_mapping_layers):
        for p in ("weight", "bias"):
            names[f"mapping.fc{i}.{p}"] = f"mapping.net.{i}.{p}"
    if c_dim:
        names.update({f"mapping.embed.{p}": f"mapping.embed.{p}" for p in ("weight", "bias")})
    for res in resolutions:
        ours, theirs = f"synthesis.blocks.b{res}", f"synthesis.b{res}"
        convs = ["conv1"] if res == 4 else ["conv0", "conv1"]
        if res == 4:
            names[f"{theirs}.const"] = f"{ours}.const"
        for conv in convs:
            for p in ("weight", "bias", "noise_strength", "noise_const", "affine.weight", "affine.bias"):
                names[f"{theirs}.{conv}.{p}"] = f"{ours}.{conv}.{p}"
        for p in ("weight", "bias", "affine.weight", "affine.bias"):
            names[f"{theirs}.torgb.{p}"] = f"{ours}.torgb.{p}"
    return names


_GENERATOR_ARGS = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs"}


def from_nvlabs(init_kwargs: dict[str, Any], state: dict[str, torch.Tensor]) -> StyleGAN2Generator:
    """A StyleGAN2 ``Generator`` of stylegan2-ada-pytorch (or stylegan3's ``--cfg stylegan2``),
    rebuilt from its stored constructor arguments with its tensors. Every layer runs in float32
    (NVlabs runs the top ``num_fp16_res`` resolutions in float16 on CUDA)."""
    kw = dict(init_kwargs)
    mapping = dict(kw.get("mapping_kwargs") or {})
    # stylegan2-ada-pytorch nests the synthesis arguments; stylegan3's StyleGAN2 passes them flat
    syn = dict(kw.get("synthesis_kwargs") or {k: v for k, v in kw.items() if k not in _GENERATOR_ARGS})
    try:
        z_dim, c_dim, w_dim = int(kw["z_dim"]), int(kw["c_dim"]), int(kw["w_dim"])
        resolution, channels = int(kw["img_resolution"]), int(kw["img_channels"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"a StyleGAN2 generator without its constructor arguments ({exc})") from None
    if syn.get("architecture", "skip") != "skip":
        raise BadInput(f"StyleGAN2 architecture {syn['architecture']!r}: only 'skip' (NVlabs' default for G) is supported")
    if list(syn.get("resample_filter", [1, 3, 3, 1])) != [1, 3, 3, 1]:
        raise BadInput(f"resample filter {syn['resample_filter']}: only [1, 3, 3, 1] is supported")
    layers = int(mapping.get("num_layers", 8))
    for name, default in (("layer_features", None), ("embed_features", None)):
        if mapping.get(name, default) not in (None, w_dim):
            raise BadInput(f"mapping {name}={mapping[name]} differs from w_dim={w_dim}: not supported")
    if mapping.get("activation", "lrelu") != "lrelu" or float(mapping.get("lr_multiplier", 0.01)) != 0.01:
        raise BadInput("a mapping network other than NVlabs' default (lrelu, lr_multiplier 0.01)")
    if z_dim < 1:
        raise BadInput("a generator without a latent z (z_dim 0) is not supported")
    conv_clamp = syn.get("conv_clamp")
    G = StyleGAN2Generator(z_dim, channels, resolution, int(syn.get("channel_base", 32768)),
                           int(syn.get("channel_max", 512)), mapping_layers=layers, w_dim=w_dim, c_dim=c_dim,
                           conv_clamp=None if conv_clamp is None else float(conv_clamp))
    names = _nvlabs_keys(layers, c_dim, G.synthesis.resolutions)
    ours = {}
    for theirs, value in state.items():
        if theirs in names:
            ours[names[theirs]] = value
        elif not theirs.endswith("resample_filter"):  # the [1,3,3,1] filter: ours is built in
            raise BadInput(f"unexpected tensor {theirs} in a StyleGAN2 generator")
    missing = sorted(set(G.state_dict()) - set(ours))
    if missing:
        raise BadInput(f"StyleGAN2 generator lacks {len(missing)} tensors, e.g. {missing[0]}")
    for name, value in ours.items():
        expected = G.state_dict()[name].shape
        if tuple(value.shape) != tuple(expected):
            raise BadInput(f"{name}: shape {tuple(value.shape)} in the file, {tuple(expected)} for its arguments")
    G.load_state_dict({k: v.float() for k, v in ours.items()}, strict=True)
    return G.eval().requires_grad_(False)


# ---------------------------------------------------------------------- discriminator

class DiscriminatorBlock(nn.Module):
    """Residual: (conv3 → conv3 with ×½) + (×½ → conv1), both scaled by √½."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv0 = EqualConv2d(cin, cin, 3, act="lrelu")
        self.conv1 = EqualConv2d(cin, cout, 3, down=2, act="lrelu")
        self.skip = EqualConv2d(cin, cout, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) * math.sqrt(0.5)


class MinibatchStd(nn.Module):
    """Appends the mean standard deviation over groups of ``group`` samples as a channel."""

    def __init__(self, group: int = 4):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = max(d for d in range(1, min(self.group, n) + 1) if n % d == 0)  # any batch size works
        y = x.float().reshape(g, -1, c, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[1, 2, 3])  # one value per group member set
        y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w).to(x.dtype)
        return torch.cat([x, y], dim=1)


class StyleGAN2Discriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, channel_base: int, channel_max: int, mbstd_group: int = 4):
        super().__init__()
        self.img_channels, self.img_resolution = channels, resolution
        self.channel_base, self.channel_max = channel_base, channel_max
        n = doublings(resolution, 4)
        top = channels_at(resolution, channel_base, channel_max)
        self.from_rgb = EqualConv2d(channels, top, 1, act="lrelu")
        blocks = []
        for i in range(n):
            res = resolution // 2**i
            blocks.append(DiscriminatorBlock(channels_at(res, channel_base, channel_max),
                                             channels_at(res // 2, channel_base, channel_max)))
        self.blocks = nn.Sequential(*blocks)
        c4 = channels_at(4, channel_base, channel_max)
        self.mbstd = MinibatchStd(mbstd_group)
        self.conv = EqualConv2d(c4 + 1, c4, 3, act="lrelu")
        self.fc = EqualLinear(c4 * 16, c4, act="lrelu")
        self.out = EqualLinear(c4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.from_rgb(x))
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1))).view(-1)


def build(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    opts = cfg.options
    clamp = opts.get("conv_clamp")  # checkpoints made before the option: no clamp
    G = StyleGAN2Generator(cfg.z_dim, cfg.channels, cfg.resolution, opts["channel_base"], opts["channel_max"],
                           opts["mapping_layers"], w_dim=opts["w_dim"] or cfg.z_dim, conv_clamp=clamp or None)
    D = StyleGAN2Discriminator(cfg.channels, cfg.resolution, opts["channel_base"], opts["channel_max"],
                               opts["mbstd_group"])
    return G, D


# ---------------------------------------------------------------------- training

def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """A separable Gaussian blur (σ in pixels, taps out to ⌊3σ⌋, zero padding, same size)."""
    radius = int(3 * sigma)
    if radius < 1:
        return images
    x = torch.arange(-radius, radius + 1, device=images.device, dtype=torch.float32)
    taps = torch.exp(-x.square() / (2 * sigma * sigma))
    taps = (taps / taps.sum()).to(images.dtype)
    c = images.shape[1]
    out = F.conv2d(images, taps.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, radius), groups=c)
    return F.conv2d(out, taps.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(radius, 0), groups=c)


class StyleGAN2Objective(Objective):
    """One StyleGAN2-ADA step: D (+ lazy R1), then G (+ lazy path length), ADA update.

    metrics.csv: ``r1`` and ``pl`` are the penalties (before weighting) of the latest lazy
    step; ``ada_p`` is the augmentation probability and ``ada_rt`` the last r_t measured.
    Under DDP the objective all-reduces gradients itself (R1 and path length need double
    backward, which DistributedDataParallel does not support)."""

    stats = ("loss_d", "loss_g", "d_real", "d_fake", "r1", "pl")
    gauge_names = ("ada_p", "ada_rt")
    ema_copies_buffers = True  # the reference copies buffers (w_avg, constant noise) into G_ema

    def __init__(self, spec, G: nn.Module, D: nn.Module):
        super().__init__(spec, G, D)
        o = self.o = spec.model.options
        self.r1_gamma = o["r1_gamma"] if o["r1_gamma"] is not None else r1_gamma_auto(spec.model.resolution,
                                                                                     self._images_per_step())
        self.augment = AugmentPipe(p=o["ada_p"]).to(spec.device) if (o["ada"] or o["ada_p"] > 0) else None
        self.ada = None
        if self.augment is not None and o["ada"] and o["ada_kimg"] > 0:
            self.ada = AdaController(self.augment, o["ada_target"], o["ada_interval"], o["ada_kimg"])
        self.pl_mean = torch.zeros((), device=spec.device)
        self.last_r1 = torch.zeros((), device=spec.device)
        self.last_pl = torch.zeros((), device=spec.device)

    def make_optimizers(self, G: nn.Module, D: nn.Module):
        o = self.o

        def adam(module: nn.Module, interval: int) -> torch.optim.Optimizer:
            ratio = interval / (interval + 1) if interval > 0 else 1.0  # lazy regularisation (Karras 2020a, B)
            b1, b2 = self.spec.family.betas
            return torch.optim.Adam(module.parameters(), lr=o["lr"] * ratio, betas=(b1 ** ratio, b2 ** ratio), eps=1e-8)

        g_interval = o["pl_interval"] if o["pl_weight"] > 0 else 0
        d_interval = o["r1_interval"] if self.r1_gamma > 0 else 0
        return adam(G, g_interval), adam(D, d_interval)

    # -- pieces

    def run_G(self, ctx: StepContext, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training-mode G with style mixing: (images, ws)."""
        G = ctx.G
        w = G.mapping(z, update_w_avg=False)
        G.mapping.track_w_avg(self.all_reduce_mean(w.detach().float().mean(0)))  # one w_avg on every rank
        ws = G.broadcast(w)
        if self.o["style_mixing"] > 0:
            r = torch.rand(2, device=ctx.device, generator=ctx.rng)
            cutoff = 1 + int(r[0] * (G.num_ws - 1))
            if float(r[1]) < self.o["style_mixing"]:
                z2 = ctx.latents(len(z))
                ws = torch.cat([ws[:, :cutoff], G.broadcast(G.mapping(z2, update_w_avg=False))[:, cutoff:]], dim=1)
        return G.synthesis(ws, "random"), ws

    def run_D(self, ctx: StepContext, images: torch.Tensor) -> torch.Tensor:
        sigma = self.blur_sigma(ctx.step)
        if sigma > 0:
            images = gaussian_blur(images, sigma)
        if self.augment is not None:
            images = self.augment(images, ctx.rng)
        return ctx.D(images)

    def blur_sigma(self, step: int) -> float:
        """The D-input blur at generator step ``step`` (Karras et al. 2021, config R: σ starts
        at ``blur_sigma`` pixels and falls linearly to 0 over ``blur_fade_kimg`` thousand images)."""
        o = self.o
        if not o["blur_sigma"]:
            return 0.0
        batch = self._images_per_step()
        fade = (o["blur_fade_kimg"] if o["blur_fade_kimg"] is not None else batch * 200 / 32) * 1000
        return o["blur_sigma"] * max(0.0, 1 - step * batch / fade) if fade > 0 else 0.0

    def _images_per_step(self) -> int:
        return self.spec.train.batch_size * self.world.size

    # -- the step

    def step(self, ctx: StepContext) -> torch.Tensor:
        t, o = ctx, self.o
        n = self.spec.train.batch_size
        # D: logistic loss on augmented reals and fakes
        real = t.real_batch()
        with torch.no_grad(), t.autocast():
            fake, _ = self.run_G(t, t.latents(n))
        with t.autocast():
            s_fake = self.run_D(t, fake)
            s_real = self.run_D(t, real)
            loss_d = F.softplus(s_fake.float()).mean() + F.softplus(-s_real.float()).mean()
        self.optimise(loss_d, t.opt_D, t.scaler_D, params=t.D)
        if self.ada is not None:
            self.ada.accumulate(s_real)
        d_step = t.step  # one D step per generator step
        if self.r1_gamma > 0 and o["r1_interval"] > 0 and d_step % o["r1_interval"] == 0:
            self.last_r1 = self._r1(t, real)
        # G: non-saturating loss through the (frozen) D and its augmentations
        t.D.requires_grad_(False)
        try:
            with t.autocast():
                fake, _ = self.run_G(t, t.latents(n))
                loss_g = F.softplus(-self.run_D(t, fake).float()).mean()
            self.optimise(loss_g, t.opt_G, t.scaler_G, params=t.G)
            if o["pl_weight"] > 0 and d_step % o["pl_interval"] == 0:
                self.last_pl = self._path_length(t)
        finally:
            t.D.requires_grad_(True)
        if self.ada is not None:
            self.ada.update(self._images_per_step(), reduce=self._sum_across)
        return torch.stack([loss_d.detach(), loss_g.detach(), s_real.detach().float().mean(),
                            s_fake.detach().float().mean(), self.last_r1.detach().float(), self.last_pl.detach().float()])

    def _r1(self, t: StepContext, real: torch.Tensor) -> torch.Tensor:
        """Lazy R1: γ/2·E‖∇ₓD(x)‖² on reals, times the interval (fp32)."""
        o = self.o
        with torch.autocast(t.device.type, enabled=False):
            x = real.detach().float().requires_grad_(True)
            score = self.run_D(t, x)
            (grad,) = torch.autograd.grad(score.sum(), x, create_graph=True)
            penalty = grad.square().sum(dim=[1, 2, 3])
            loss = (penalty * (self.r1_gamma / 2)).mean() * o["r1_interval"] + score.mean() * 0
        self.optimise(loss, t.opt_D, t.scaler_D, params=t.D)
        return penalty.detach().mean()

    def _path_length(self, t: StepContext) -> torch.Tensor:
        """Lazy path-length regulariser on half a batch: (‖Jᵀy‖ − a)², a the running mean."""
        o = self.o
        n = max(1, self.spec.train.batch_size // 2)
        with torch.autocast(t.device.type, enabled=False):
            img, ws = self.run_G(t, t.latents(n))
            noise = torch.randn(img.shape, device=t.device, generator=t.rng) / math.sqrt(img.shape[2] * img.shape[3])
            (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
            lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
            mean = self.all_reduce_mean(lengths.detach().mean())
            self.pl_mean = self.pl_mean.lerp(mean, 0.01)
            penalty = (lengths - self.pl_mean).square()
            loss = (penalty * o["pl_weight"]).mean() * o["pl_interval"] + img[:, 0, 0, 0].mean() * 0
        self.optimise(loss, t.opt_G, t.scaler_G, params=t.G)
        return penalty.detach().mean()

    def _sum_across(self, values: torch.Tensor) -> torch.Tensor:
        return self.all_reduce_mean(values) * self.world.size

    # -- bookkeeping

    def ema_decay(self, step: int) -> float:
        """β = ½^(batch / half-life), half-life = min(ema_kimg·1000, images seen · ema_rampup)."""
        o = self.o
        batch = self._images_per_step()
        ema_kimg = o["ema_kimg"] if o["ema_kimg"] is not None else batch * 10 / 32  # --cfg auto's rule
        half_life = ema_kimg * 1000
        if o["ema_rampup"]:
            half_life = min(half_life, step * batch * o["ema_rampup"])
        return 0.5 ** (batch / max(half_life, 1e-8))

    def gauges(self) -> dict[str, float]:
        p = float(self.augment.p) if self.augment is not None else 0.0
        return {"ada_p": p, "ada_rt": self.ada.last_rt if self.ada is not None else float("nan")}

    def state_dict(self) -> dict[str, Any]:
        return {"pl_mean": self.pl_mean.cpu(), "last_r1": self.last_r1.cpu(), "last_pl": self.last_pl.cpu(),
                "augment_p": float(self.augment.p) if self.augment is not None else 0.0,
                "ada": self.ada.state_dict() if self.ada is not None else {}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        dev = self.device
        self.pl_mean = state["pl_mean"].to(dev)
        self.last_r1, self.last_pl = state["last_r1"].to(dev), state["last_pl"].to(dev)
        if self.augment is not None:
            self.augment.p.fill_(float(state["augment_p"]))
        if self.ada is not None:
            self.ada.load_state_dict(state["ada"])


STYLEGAN2 = Family(
    name="stylegan2",
    summary="StyleGAN2-ADA: mapping net + modulated convs, skip G, residual D, lazy R1, style mixing, "
            "adaptive augmentation; Adam 0.0025, β (0, 0.99)",
    build=build,
    lr_g=0.0025,
    lr_d=0.0025,
    betas=(0.0, 0.99),
    z_dim=512,
    width=None,  # --width is channel_max here (width_option), stored among the options
    width_option="channel_max",
    batch_size=32,
    resolutions=RESOLUTIONS,
    objective=StyleGAN2Objective,
    options=stylegan2_options,
    reference="Karras et al. Analyzing and improving the image quality of StyleGAN (2020); "
              "Training generative adversarial networks with limited data (2020)",
)


# ---------------------------------------------------------------------- NVlabs TensorFlow snapshots

def from_tf(kwargs: dict[str, Any], variables: dict[str, Any]) -> StyleGAN2Generator:
    """A StyleGAN2 generator from a TensorFlow snapshot (NVlabs' stylegan2 / stylegan2-ada):
    its explicit keyword arguments (defaults are the TensorFlow code's: fmap_base 16384, i.e.
    channel_base 32768) and its variables, laid out as the PyTorch snapshot it corresponds to
    (conv kernels [k, k, in, out] → [out, in, k, k], the up-convolution's kernel flipped, since
    TensorFlow upsampled with a transposed convolution; styles' bias stored as offset from 1)."""
    def arg(name: str, default: Any) -> Any:
        value = kwargs.get(name, default)
        return default if value is None else value

    if any(name.startswith(("synthesis/ToRGB_lod", "synthesis/4x4/ToRGB_lod")) for name in variables):
        raise BadInput("a StyleGAN2 snapshot with the 'orig' toRGB layout: only 'skip' (NVlabs' default) is supported")
    init = {"z_dim": arg("latent_size", 512), "c_dim": arg("label_size", 0), "w_dim": arg("dlatent_size", 512),
            "img_resolution": arg("resolution", 1024), "img_channels": arg("num_channels", 3),
            "mapping_kwargs": {"num_layers": arg("mapping_layers", 8), "layer_features": kwargs.get("mapping_fmaps"),
                               "embed_features": kwargs.get("label_fmaps"),
                               "activation": arg("mapping_nonlinearity", "lrelu"),
                               "lr_multiplier": arg("mapping_lrmul", 0.01)},
            "synthesis_kwargs": {"channel_base": int(arg("fmap_base", 16384)) * 2, "channel_max": arg("fmap_max", 512),
                                 "conv_clamp": kwargs.get("conv_clamp"), "architecture": arg("architecture", "skip"),
                                 "resample_filter": arg("resample_kernel", [1, 3, 3, 1])}}
    if float(arg("fmap_decay", 1.0)) != 1.0:
        raise BadInput(f"a StyleGAN2 snapshot with fmap_decay={kwargs['fmap_decay']}: only 1 is supported")
    for key, expected in (("nonlinearity", "lrelu"), ("use_noise", True), ("normalize_latents", True),
                          ("fmap_min", 1), ("dtype", "float32")):
        if kwargs.get(key, expected) != expected:
            raise BadInput(f"a StyleGAN2 snapshot with {key}={kwargs[key]!r}: only NVlabs' default {expected!r} "
                           "is supported")

    def take(name: str) -> np.ndarray:
        if name not in variables:
            raise BadInput(f"StyleGAN2 snapshot has no variable {name}")
        return np.asarray(variables[name], dtype=np.float32)

    def conv(name: str, flip: bool = False) -> np.ndarray:
        w = take(name)
        return (w[::-1, ::-1] if flip else w).transpose(3, 2, 0, 1)

    state: dict[str, np.ndarray] = {"mapping.w_avg": take("dlatent_avg")}
    for i in range(int(init["mapping_kwargs"]["num_layers"])):
        state[f"mapping.fc{i}.weight"] = take(f"mapping/Dense{i}/weight").T
        state[f"mapping.fc{i}.bias"] = take(f"mapping/Dense{i}/bias")
    if init["c_dim"]:
        state["mapping.embed.weight"] = take("mapping/LabelEmbed/weight").T
        state["mapping.embed.bias"] = take("mapping/LabelEmbed/bias")
    resolution = int(init["img_resolution"])
    for res in [4 * 2 ** i for i in range(doublings(resolution, 4) + 1)]:
        ours, theirs = f"synthesis.b{res}", f"synthesis/{res}x{res}"
        layers = [("conv1", "Conv", 0)] if res == 4 else [("conv0", "Conv0_up", -5), ("conv1", "Conv1", -4)]
        if res == 4:
            state[f"{ours}.const"] = take(f"{theirs}/Const/const")[0]
        for conv_name, scope, offset in layers:
            p, t = f"{ours}.{conv_name}", f"{theirs}/{scope}"
            state[f"{p}.weight"] = conv(f"{t}/weight", flip=scope == "Conv0_up")
            state[f"{p}.bias"] = take(f"{t}/bias")
            state[f"{p}.noise_strength"] = take(f"{t}/noise_strength")
            noise = 0 if res == 4 else int(math.log2(res)) * 2 + offset
            state[f"{p}.noise_const"] = take(f"synthesis/noise{noise}")[0, 0]
            state[f"{p}.affine.weight"] = take(f"{t}/mod_weight").T
            state[f"{p}.affine.bias"] = take(f"{t}/mod_bias") + 1
        state[f"{ours}.torgb.weight"] = conv(f"{theirs}/ToRGB/weight")
        state[f"{ours}.torgb.bias"] = take(f"{theirs}/ToRGB/bias")
        state[f"{ours}.torgb.affine.weight"] = take(f"{theirs}/ToRGB/mod_weight").T
        state[f"{ours}.torgb.affine.bias"] = take(f"{theirs}/ToRGB/mod_bias") + 1
    return from_nvlabs(init, {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()})
