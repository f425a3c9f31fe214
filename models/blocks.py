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
