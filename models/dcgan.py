"""DCGAN (Radford, Metz & Chintala 2015) and ``dcgan-seed``, the small DCGAN this project
started from.

dcgan, G: z → 4×4 → … → R×R, each stage a stride-2 4×4 transposed conv + BN + ReLU that
halves the feature maps (8w, 4w, 2w, w at 64×64), tanh output. D mirrors it with strided
convs + BN + LeakyReLU(0.2), no BN on the first layer, a 4×4 conv to one logit. Weights
from N(0, 0.02); Adam lr 2e-4, β1 0.5; batch 128; the non-saturating GAN loss.

dcgan-seed, G: dense → R/8 × R/8 × 8w, then 4 transposed 5×5 convs (stride 1, 2, 2, 2)
with BN + LeakyReLU, tanh output. D: two stride-2 5×5 convs with LeakyReLU + dropout 0.3,
then a dense logit. Adam lr 1e-4 (framework defaults otherwise), batch 256. With w=32 and
R=64 this is the 8×8 → 64×64 network of the original anime-face runs; ``--channels 1``
gives their grayscale variant.
"""
from __future__ import annotations

import torch
from torch import nn

from ganeval.models.blocks import Reshape, dcgan_init, doublings, down, up
from ganeval.models.spec import Family, ModelConfig


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim: int = 100, channels: int = 3, resolution: int = 64, width: int = 64):
        super().__init__()
        n = doublings(resolution, 4)  # 64×64: 4 → 8 → 16 → 32 → 64
        c = width * 2 ** (n - 1)
        layers: list[nn.Module] = [up(z_dim, c, kernel=4, stride=1, padding=0)]  # 1×1 → 4×4
        for _ in range(n - 1):
            layers.append(up(c, c // 2))
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.z_dim = z_dim
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.z_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    def __init__(self, channels: int = 3, resolution: int = 64, width: int = 64, norm: str | None = "batch"):
        super().__init__()
        n = doublings(resolution, 4)  # 64×64 → 32 → 16 → 8 → 4
        layers: list[nn.Module] = [down(channels, width, norm=None)]
        c = width
        for _ in range(n - 1):
            layers.append(down(c, c * 2, norm=norm))
            c *= 2
        layers.append(nn.Conv2d(c, 1, 4, 1, 0, bias=False))  # 4×4 → one score
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


class SeedGenerator(nn.Module):
    def __init__(self, z_dim: int = 100, channels: int = 3, resolution: int = 64, width: int = 32):
        super().__init__()
        s = resolution // 8
        act = lambda: nn.LeakyReLU(0.3)  # noqa: E731 - Keras' LeakyReLU default slope
        self.net = nn.Sequential(
            nn.Linear(z_dim, 8 * width * s * s, bias=False), nn.BatchNorm1d(8 * width * s * s), act(),
            Reshape(8 * width, s, s),
            up(8 * width, 4 * width, kernel=5, stride=1, padding=2, act=act()),  # s
            up(4 * width, 2 * width, kernel=5, padding=2, output_padding=1, act=act()),  # 2s
            up(2 * width, width, kernel=5, padding=2, output_padding=1, act=act()),  # 4s
            nn.ConvTranspose2d(width, channels, 5, 2, 2, output_padding=1, bias=False),  # 8s
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class SeedDiscriminator(nn.Module):
    def __init__(self, channels: int = 3, resolution: int = 64, width: int = 32):
        super().__init__()
        s = resolution // 4
        self.net = nn.Sequential(
            nn.Conv2d(channels, 2 * width, 5, 2, 2), nn.LeakyReLU(0.3), nn.Dropout(0.3),
            nn.Conv2d(2 * width, 4 * width, 5, 2, 2), nn.LeakyReLU(0.3), nn.Dropout(0.3),
            nn.Flatten(),
            nn.Linear(4 * width * s * s, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


def build_dcgan(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    return (DCGANGenerator(cfg.z_dim, cfg.channels, cfg.resolution, cfg.width),
            DCGANDiscriminator(cfg.channels, cfg.resolution, cfg.width))


def build_seed(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    return (SeedGenerator(cfg.z_dim, cfg.channels, cfg.resolution, cfg.width),
            SeedDiscriminator(cfg.channels, cfg.resolution, cfg.width))


DCGAN = Family(
    name="dcgan",
    summary="Radford et al. 2015: all-conv G (transposed convs + BN + ReLU) and D (strided convs + BN + LeakyReLU); Adam 2e-4, β1 0.5",
    build=build_dcgan,
    reference="Radford, Metz, Chintala. Unsupervised representation learning with deep convolutional GANs. 2015",
)

DCGAN_SEED = Family(
    name="dcgan-seed",
    summary="the original project's small DCGAN: dense → 8×8 then 4 transposed convs; D with 2 convs + dropout; Adam 1e-4",
    build=build_seed,
    lr_g=1e-4,
    lr_d=1e-4,
    betas=(0.9, 0.999),
    width=32,
    batch_size=256,
    reference="the TensorFlow DCGAN tutorial network the anime-face project started from",
)
