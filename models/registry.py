"""The model zoo's index: name → Family, and building a G/D pair from a ModelConfig."""
from __future__ import annotations

from torch import nn

from ganeval.errors import BadInput
from ganeval.models.cyclegan import CYCLEGAN
from ganeval.models.dcgan import DCGAN, DCGAN_SEED
from ganeval.models.resdcgan import RESDCGAN, RESDCGAN_CYCLE
from ganeval.models.spec import Family, ModelConfig
from ganeval.models.stylegan import STYLEGAN
from ganeval.models.stylegan2 import STYLEGAN2
from ganeval.models.stylegan3 import STYLEGAN3
from ganeval.models.srgan import SRGAN
from ganeval.models.ugatit import UGATIT
from ganeval.models.wgan_gp import WGAN_GP

FAMILIES: dict[str, Family] = {f.name: f for f in (DCGAN_SEED, DCGAN, WGAN_GP, RESDCGAN, RESDCGAN_CYCLE, STYLEGAN, STYLEGAN2,
                                                STYLEGAN3)}
FAMILIES.update({f.name: f for f in (SRGAN, CYCLEGAN, UGATIT)})  # image-to-image families


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise BadInput(f"unknown model {name!r}; choose one of: {', '.join(FAMILIES)} "
                       "(`ganeval models` describes them)") from None


def build_models(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """Fresh (G, D) for a config, after checking the family supports it."""
    family = get_family(cfg.model)
    checked = family.config(cfg.resolution, cfg.channels, cfg.z_dim, cfg.width, cfg.cycle_lambda, cfg.options)
    return family.build(checked)


def build_generator(cfg: ModelConfig) -> nn.Module:
    return build_models(cfg)[0]
