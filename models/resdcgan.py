"""ResDCGAN: a DCGAN whose stages are residual blocks, in G and in D; and
``resdcgan-cycle``, the same with a latent-cycle constraint.

G: dense z → 4×4×8w, then one up-sampling residual block per doubling (feature maps
halve down to w), BN-ReLU-conv3×3-tanh. D: one down-sampling residual block per halving
(w → 8w), LeakyReLU, global sum pooling, dense logit. DCGAN's init, loss and optimiser.

resdcgan-cycle adds a dense head on D's pooled features that predicts z from G(z). Its
error λ·mean((ẑ − z)²) is added to D's loss (on detached fakes: the head learns to read
z) and to G's loss (G keeps z recoverable from its output). A small λ (default 0.1) keeps
images tied to their latent, "similar to the input, not equal", without turning G into an
autoencoder.
"""
from __future__ import annotations

import torch
from torch import nn

from ganeval.models.blocks import Reshape, ResBlockDown, ResBlockUp, dcgan_init, doublings
from ganeval.models.spec import Family, ModelConfig


class ResGenerator(nn.Module):
    def __init__(self, z_dim: int = 128, channels: int = 3, resolution: int = 64, width: int = 64):
        super().__init__()
        n = doublings(resolution, 4)
        c = width * 8
        blocks: list[nn.Module] = []
        for _ in range(n):  # 4 → 8 → … → resolution
            blocks.append(ResBlockUp(c, max(width, c // 2)))
            c = max(width, c // 2)
        self.net = nn.Sequential(
            nn.Linear(z_dim, 4 * 4 * width * 8), Reshape(width * 8, 4, 4),
            *blocks,
            nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, channels, 3, 1, 1), nn.Tanh(),
        )
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ResDiscriminator(nn.Module):
    """Returns the logit, or (logit, ẑ) when built with a latent head."""

    def __init__(self, channels: int = 3, resolution: int = 64, width: int = 64, z_head: int = 0):
        super().__init__()
        n = doublings(resolution, 4)
        blocks: list[nn.Module] = []
        c = channels
        for i in range(n):  # resolution → … → 4
            cout = width * 2 ** min(i, 3)
            blocks.append(ResBlockDown(c, cout, first=i == 0))
            c = cout
        self.features = nn.Sequential(*blocks, nn.LeakyReLU(0.2))
        self.logit = nn.Linear(c, 1)
        self.z_head = nn.Linear(c, z_head) if z_head else None
        dcgan_init(self)

    def forward(self, x: torch.Tensor):
        h = self.features(x).sum(dim=(2, 3))
        logit = self.logit(h).view(-1)
        if self.z_head is None:
            return logit
        return logit, self.z_head(h)


def build(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    return (ResGenerator(cfg.z_dim, cfg.channels, cfg.resolution, cfg.width),
            ResDiscriminator(cfg.channels, cfg.resolution, cfg.width))


def build_cycle(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    return (ResGenerator(cfg.z_dim, cfg.channels, cfg.resolution, cfg.width),
            ResDiscriminator(cfg.channels, cfg.resolution, cfg.width, z_head=cfg.z_dim))


RESDCGAN = Family(
    name="resdcgan",
    summary="DCGAN with residual up/down blocks in G and D; non-saturating loss, Adam 2e-4, β1 0.5",
    build=build,
    z_dim=128,
    batch_size=64,
    reference="DCGAN (Radford et al. 2015) with the residual blocks of He et al. 2016",
)

RESDCGAN_CYCLE = Family(
    name="resdcgan-cycle",
    summary="resdcgan + a head on D's features that predicts z from G(z), adding λ·‖ẑ−z‖² (λ=0.1 by default)",
    build=build_cycle,
    cycle_lambda=0.1,
    z_dim=128,
    batch_size=64,
    reference="resdcgan with a latent-reconstruction term in the spirit of InfoGAN (Chen et al. 2016)",
)
