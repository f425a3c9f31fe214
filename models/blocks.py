"""Building blocks shared by the model files, so each model reads like its paper's figure."""
from __future__ import annotations

import math

import torch
from torch import nn


def doublings(resolution: int, start: int) -> int:
    """How many ×2 stages lead from ``start``×``start`` to ``resolution``×``resolution``."""
    n = round(math.log2(resolution / start))
    if n < 1 or start * 2**n != resolution:
        raise ValueError(f"{resolution} is not {start}·2^k")
    return n


def dcgan_init(module: nn.Module) -> nn.Module:
    """Radford et al.: weights from N(0, 0.02), batch-norm scales from N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


def up(cin: int, cout: int, kernel: int = 4, stride: int = 2, padding: int = 1,
       output_padding: int = 0, act: nn.Module | None = None) -> nn.Sequential:
    """Transposed conv → batch norm → ReLU (or ``act``): one generator stage."""
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding=output_padding, bias=False),
        nn.BatchNorm2d(cout),
        act if act is not None else nn.ReLU(True),
    )


def down(cin: int, cout: int, norm: str | None = "batch", kernel: int = 4, stride: int = 2,
         padding: int = 1) -> nn.Sequential:
    """Strided conv → norm → LeakyReLU(0.2): one discriminator stage.

    ``norm`` is "batch", "layer" (per-sample over C×H×W, for critics with a gradient
    penalty, where batch norm would couple samples) or None. No conv bias, as in DCGAN."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, padding, bias=False)]
    if norm == "batch":
        layers.append(nn.BatchNorm2d(cout))
    elif norm == "layer":
        layers.append(nn.GroupNorm(1, cout))
    elif norm is not None:
        raise ValueError(f"unknown norm {norm!r}")
    layers.append(nn.LeakyReLU(0.2, True))
    return nn.Sequential(*layers)


class Reshape(nn.Module):
    """View a flat vector as C×H×W (dense-to-feature-map generators)."""

    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], *self.shape)


class ResBlockUp(nn.Module):
    """Pre-activation residual block that doubles H and W: BN-ReLU-up-conv3-BN-ReLU-conv3,
    with an upsampled 1×1 conv shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1),
        )
        self.skip = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.skip(x)


class ResBlockDown(nn.Module):
    """Residual block that halves H and W: [LReLU]-conv3-BN-LReLU-conv3-avgpool, with a
    1×1 conv + avgpool shortcut. The first block of D skips the leading activation so
    raw pixels are not rectified."""

    def __init__(self, cin: int, cout: int, first: bool = False):
        super().__init__()
        pre: list[nn.Module] = [] if first else [nn.LeakyReLU(0.2)]
        self.main = nn.Sequential(
            *pre,
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout), nn.LeakyReLU(0.2),
            nn.Conv2d(cout, cout, 3, 1, 1),
            nn.AvgPool2d(2),
        )
        self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1), nn.AvgPool2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.skip(x)


def conv_reflect(cin: int, cout: int, kernel: int, stride: int = 1, norm: bool = True,
                 act: nn.Module | None = None, bias: bool = False) -> nn.Sequential:
    """Reflection-pad → conv → instance norm → act: the image-to-image stage (CycleGAN,
    U-GAT-IT), where reflection padding avoids dark borders on translated images."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(cin, cout, kernel, stride, bias=bias)]
    if norm:
        layers.append(nn.InstanceNorm2d(cout))
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class ResnetBlock(nn.Module):
    """Johnson et al. residual block: two reflection-padded 3×3 convs with instance norm,
    ReLU between, identity shortcut (CycleGAN's and U-GAT-IT's encoder bottleneck)."""

    def __init__(self, dim: int, bias: bool = False):
        super().__init__()
        self.main = nn.Sequential(conv_reflect(dim, dim, 3, act=nn.ReLU(True), bias=bias),
                                  conv_reflect(dim, dim, 3, bias=bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


# ---------------------------------------------------------------------- equalised learning rate
# Karras et al. (ProGAN, StyleGAN): weights are stored N(0, 1) and scaled by He's constant at
# run time, so Adam's per-parameter step is the same relative size for every layer.

class EqualLinear(nn.Module):
    """Dense layer with equalised learning rate; ``lr_mul`` slows it further (StyleGAN's
    mapping network uses 0.01); ``act="lrelu"`` adds LeakyReLU(0.2)·√2 (variance-preserving);
    ``gain`` scales the weight instead (StyleGAN v1 puts He's √2 there)."""

    def __init__(self, cin: int, cout: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, act: str | None = None, gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init) / lr_mul)) if bias else None
        self.weight_gain = lr_mul / math.sqrt(cin) if gain == 1 else gain / math.sqrt(cin) * lr_mul
        self.lr_mul, self.act = lr_mul, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.bias * self.lr_mul if self.bias is not None else None
        x = torch.nn.functional.linear(x, self.weight * self.weight_gain, b)
        return lrelu_gain(x) if self.act == "lrelu" else x


class EqualConv2d(nn.Module):
    """Conv with equalised learning rate; ``down=2`` blurs with the [1,3,3,1] filter, then
    strides (StyleGAN2's discriminator); ``act="lrelu"`` as in EqualLinear."""

    def __init__(self, cin: int, cout: int, kernel: int, bias: bool = True, down: int = 1,
                 act: str | None = None, gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.weight_gain = gain / math.sqrt(cin * kernel * kernel)
        self.kernel, self.down, self.act = kernel, down, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        if self.down == 2:
            if self.kernel == 1:  # skip path: FIR downsample, then a 1×1 conv
                x = fir_downsample2d(x)
                x = torch.nn.functional.conv2d(x, w, self.bias)
            else:  # blur so the strided conv lands on pixel centres, then stride 2, no padding
                x = fir_filter2d(x, pad=(self.kernel - 1 + 2) // 2)
                x = torch.nn.functional.conv2d(x, w, self.bias, stride=2)
        else:
            x = torch.nn.functional.conv2d(x, w, self.bias, padding=self.kernel // 2)
        return lrelu_gain(x) if self.act == "lrelu" else x


def lrelu_gain(x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU(0.2) scaled by √2 to keep unit variance (StyleGAN's bias_act default)."""
    return torch.nn.functional.leaky_relu(x, 0.2) * math.sqrt(2)


# ---------------------------------------------------------------------- FIR resampling
# The [1,3,3,1] binomial filter of StyleGAN2, applied with depthwise convs (no custom ops).

def _fir_kernel(x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    f = torch.tensor([1.0, 3.0, 3.0, 1.0], device=x.device, dtype=x.dtype)
    k = torch.outer(f, f)
    k = k / k.sum() * gain
    return k[None, None].expand(x.shape[1], 1, 4, 4)


def fir_filter2d(x: torch.Tensor, pad: int, gain: float = 1.0) -> torch.Tensor:
    """Blur each channel with the 4×4 filter (times ``gain``) after zero-padding ``pad`` on every
    side (output H + 2·pad − 3)."""
    x = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    return torch.nn.functional.conv2d(x, _fir_kernel(x, gain), groups=x.shape[1])


def fir_upsample2d(x: torch.Tensor) -> torch.Tensor:
    """×2 upsampling: zero insertion + the 4×4 filter (gain 4), as a depthwise transposed conv."""
    return torch.nn.functional.conv_transpose2d(x, _fir_kernel(x, gain=4.0), stride=2, padding=1,
                                                groups=x.shape[1])


def fir_downsample2d(x: torch.Tensor) -> torch.Tensor:
    """×2 downsampling: the 4×4 filter, then every second pixel."""
    return torch.nn.functional.conv2d(x, _fir_kernel(x), stride=2, padding=1, groups=x.shape[1])
