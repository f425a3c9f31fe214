"""What a model family is: how to build G and D, which loss and optimiser its paper uses.

Each family file (dcgan.py, wgan_gp.py, resdcgan.py, stylegan2.py, ...) declares one or
more ``Family`` objects; the registry collects them and the trainer reads everything it
needs from here (and from the family's training objective, ``models/objective.py``), so
no family-specific branch lives in the trainer.

Family-specific settings (a StyleGAN preset, an upscaling factor) live in
``ModelConfig.options``, a plain dict stored with the checkpoint; the family's
``options`` function fills in its defaults and rejects unknown keys or bad values."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from torch import nn

from ganeval.errors import BadInput

RESOLUTIONS = (32, 64, 128)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a G/D pair; stored verbatim in checkpoints."""

    model: str
    resolution: int = 64
    channels: int = 3
    z_dim: int = 100
    width: int | None = 64  # base feature maps (ngf = ndf in DCGAN terms); None where a family names it an option
    cycle_lambda: float = 0.0  # latent-cycle weight, only for families that have the head
    options: dict[str, Any] = field(default_factory=dict)  # family-specific settings, JSON-like values

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass(frozen=True)
class Family:
    """One trainable GAN: architecture, objective and the optimiser settings of its paper."""

    name: str
    summary: str  # one line for `ganeval models`
    build: Callable[[ModelConfig], tuple[nn.Module, nn.Module]]
    loss: str = "nonsaturating"  # "nonsaturating" (BCE on logits) or "wgan-gp"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = 1  # D updates per G update
    gp_lambda: float = 0.0  # gradient-penalty weight (wgan-gp)
    cycle_lambda: float = 0.0  # default latent-cycle weight; 0 = the family has no z head
    z_dim: int = 100
    width: int | None = 64  # None: the family's width is the option named by width_option
    # the family option that --width sets (stylegan2: "channel_max"), for families whose
    # paper names it otherwise; ModelConfig.width is then None
    width_option: str | None = None
    batch_size: int = 128
    resolutions: tuple[int, ...] = RESOLUTIONS
    channels: tuple[int, ...] = (1, 3)
    reference: str = ""
    # the training objective class (models/objective.py); None = GANObjective, the plain GAN step
    objective: Callable[..., Any] | None = None
    # True for image-to-image families (srgan, cyclegan, ...): G takes an image, not z, so the
    # z-sampling tools (sample, fid --generator, interpolate) refuse them in one line
    image_input: bool = False
    # (resolution, given options) -> complete options, raising BadInput on unknown keys or
    # bad values; must accept its own output unchanged. None = the family takes no options.
    options: Callable[[int, dict[str, Any]], dict[str, Any]] | None = None

    def config(self, resolution: int = 64, channels: int = 3, z_dim: int | None = None,
               width: int | None = None, cycle_lambda: float | None = None,
               options: dict[str, Any] | None = None) -> ModelConfig:
        """A validated ModelConfig with this family's defaults filled in."""
        if resolution not in self.resolutions:
            raise BadInput(f"{self.name} cannot generate {resolution}×{resolution} images; "
                           f"supported resolutions: {', '.join(map(str, self.resolutions))}")
        if channels not in self.channels:
            raise BadInput(f"{self.name} supports --channels {' or '.join(map(str, self.channels))}, not {channels}")
        if cycle_lambda is not None and cycle_lambda != 0 and not self.cycle_lambda:
            raise BadInput(f"{self.name} has no latent-cycle head; --cycle-lambda applies to resdcgan-cycle only")
        if cycle_lambda is not None and cycle_lambda < 0:
            raise BadInput(f"--cycle-lambda must be 0 or more, got {cycle_lambda}")
        z = self.z_dim if z_dim is None else z_dim
        given = dict(options or {})
        if self.width_option is not None:  # --width names an option of this family (also old checkpoints' width)
            if width is not None:
                if given.get(self.width_option, width) != width:
                    raise BadInput(f"--width {width} and -O {self.width_option}={given[self.width_option]} disagree; "
                                   f"for {self.name} they are one setting, give one of them")
                given[self.width_option] = width
            w = None
        else:
            w = self.width if width is None else width
        if z < 1 or (w is not None and w < 1):
            raise BadInput(f"--z-dim and --width must be at least 1 (got {z}, {w if w is not None else width})")
        if self.options is not None:
            opts = self.options(resolution, given)
        elif options:
            raise BadInput(f"{self.name} takes no family options (got {', '.join(sorted(options))})")
        else:
            opts = {}
        return ModelConfig(self.name, resolution, channels, z, w,
                           self.cycle_lambda if cycle_lambda is None else float(cycle_lambda), opts)
