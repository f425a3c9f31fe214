"""WGAN-GP (Gulrajani et al. 2017): a Wasserstein critic with a gradient penalty.

G is the DCGAN generator. The critic is the DCGAN discriminator with layer norm in place
of batch norm (the paper: batch norm makes the per-sample gradient penalty invalid) and
no sigmoid. Loss: D(fake) − D(real) + λ·(‖∇D(x̂)‖ − 1)² at random interpolates x̂,
λ = 10, five critic updates per generator update; Adam lr 1e-4, β = (0, 0.9); batch 64.
"""
from __future__ import annotations

from torch import nn

from ganeval.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganeval.models.spec import Family, ModelConfig


def build(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    generator = DCGANGenerator(cfg.z_dim, cfg.channels, cfg.resolution, cfg.width)
    critic = DCGANDiscriminator(cfg.channels, cfg.resolution, cfg.width, norm="layer")
    return generator, critic


WGAN_GP = Family(
    name="wgan-gp",
    summary="Gulrajani et al. 2017: DCGAN G, layer-norm critic, gradient penalty λ=10, n_critic=5; Adam 1e-4, β (0, 0.9)",
    build=build,
    loss="wgan-gp",
    lr_g=1e-4,
    lr_d=1e-4,
    betas=(0.0, 0.9),
    n_critic=5,
    gp_lambda=10.0,
    z_dim=128,
    batch_size=64,
    reference="Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville. Improved training of Wasserstein GANs. 2017",
)
