"""CycleGAN (Zhu et al. 2017): unpaired translation between domains A and B.

Two ResNet generators (Johnson et al.: c7s1-64, d128, d256, R256 × n, u128, u64, c7s1-3 with
instance norm and reflection padding), two 70×70 PatchGAN discriminators (C64-C128-C256-C512,
LeakyReLU 0.2, instance norm except on the first layer), the least-squares adversarial loss,
the cycle loss (λ=10) and the identity loss (0.5λ). An optional image pool (50 in the paper)
lets D see a history of fakes."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganeval.errors import BadInput
from ganeval.images import uint8_to_signed
from ganeval.models.blocks import ResnetBlock, conv_reflect, dcgan_init
from ganeval.models.options import fill_options
from ganeval.models.spec import Family, ModelConfig
from ganeval.models.objective import StepContext
from ganeval.models.unpaired import UnpairedObjective

CYCLE_LAMBDA = 10.0
IDENTITY_RATIO = 0.5  # identity weight = 0.5 · λ
N_BLOCKS = 9  # residual blocks at 256 px (the paper uses 6 at 128 px)


class ResnetGenerator(nn.Module):
    """c7s1-w, d2w, d4w, n × R4w, u2w, uw, c7s1-3, tanh; sizes must be multiples of 4."""

    def __init__(self, width: int = 64, n_blocks: int = N_BLOCKS, channels: int = 3):
        super().__init__()
        # convolutions keep their biases, as in the authors' code (instance norm without affine)
        layers: list[nn.Module] = [conv_reflect(channels, width, 7, act=nn.ReLU(True), bias=True)]
        layers += [nn.Conv2d(width, width * 2, 3, 2, 1), nn.InstanceNorm2d(width * 2), nn.ReLU(True),
                   nn.Conv2d(width * 2, width * 4, 3, 2, 1), nn.InstanceNorm2d(width * 4), nn.ReLU(True)]
        layers += [ResnetBlock(width * 4, bias=True) for _ in range(n_blocks)]
        for cin in (width * 4, width * 2):
            layers += [nn.ConvTranspose2d(cin, cin // 2, 3, 2, 1, output_padding=1),
                       nn.InstanceNorm2d(cin // 2), nn.ReLU(True)]
        layers += [conv_reflect(width, channels, 7, norm=False, bias=True), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """70×70 PatchGAN: three 4×4 stride-2 convs, one stride-1 conv, then a 1-channel conv;
    each output logit sees a 70×70 receptive field. Works from 32×32 inputs (a 2×2 map)."""

    def __init__(self, width: int = 64, channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        cin = width
        for cout, stride in ((width * 2, 2), (width * 4, 2), (width * 8, 1)):
            layers += [nn.Conv2d(cin, cout, 4, stride, 1), nn.InstanceNorm2d(cout), nn.LeakyReLU(0.2, True)]
            cin = cout
        layers.append(nn.Conv2d(cin, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Translator(nn.Module):
    """Both generators in one module (the checkpoint's ``G``): ``A2B`` and ``B2A``.

    A U-GAT-IT generator returns (image, CAM logits, heatmap); ``translate`` and ``forward``
    return the image alone, whatever the family. ``forward(x)`` translates A→B, so code that
    treats G as "the model" gets the main direction."""

    def __init__(self, A2B: nn.Module, B2A: nn.Module, resolution: int = 256):
        super().__init__()
        self.A2B, self.B2A = A2B, B2A
        self.resolution = resolution  # the training size: what `ganeval translate` resizes to

    def inspect_input(self, seed: int = 0) -> torch.Tensor:
        """A 1×3×R×R synthetic face in [-1, 1]: an input for ``ganeval inspect``."""
        from ganeval.synth import make_faces

        face = torch.from_numpy(np.array(make_faces(1, size=self.resolution, seed=seed)))
        device = next(self.parameters()).device
        return uint8_to_signed(face.permute(0, 3, 1, 2)).to(device)

    def translate(self, x: torch.Tensor, direction: str = "AB") -> torch.Tensor:
        if x.ndim != 4:  # e.g. `ganeval sample` handing it latents
            raise BadInput("an image translator maps images to images and cannot sample from z; "
                           "use `ganeval translate`")
        out = (self.A2B if direction.upper() == "AB" else self.B2A)(x)
        return out[0] if isinstance(out, tuple) else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.translate(x, "AB")


class Critics(nn.Module):
    """Both discriminators in one module (the checkpoint's ``D``): ``A`` judges domain A, ``B`` domain B."""

    def __init__(self, A: nn.Module, B: nn.Module):
        super().__init__()
        self.A, self.B = A, B


class ImagePool:
    """Shrivastava et al.'s history of fakes: once full, half the time D sees an older fake
    instead of the newest one. Draws come from the given (checkpointed) generator and the pool
    is saved with the objective's state, so a resumed run continues exactly."""

    def __init__(self, size: int):
        self.size = size
        self.images: list[torch.Tensor] = []

    def state(self) -> torch.Tensor:
        return torch.stack(self.images).cpu() if self.images else torch.empty(0)

    def load(self, images: torch.Tensor, device: torch.device) -> None:
        self.images = list(images.to(device).unbind(0)) if images.numel() else []

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.size == 0:
            return batch
        out = []
        for image in batch.detach():
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand((), generator=generator, device=generator.device).item() < 0.5:
                i = int(torch.randint(self.size, (), generator=generator, device=generator.device))
                out.append(self.images[i])
                self.images[i] = image
            else:
                out.append(image)
        # one memory layout whatever the pool held, so a resumed run uses the same conv kernels
        return torch.stack(out).contiguous(memory_format=torch.channels_last)


def lsgan(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mao et al.'s least-squares GAN loss: mean (D(x) − target)²."""
    return (logits.float() - target).pow(2).mean()


def build_cyclegan(resolution: int = 256, width: int = 64, n_blocks: int = N_BLOCKS,
                   channels: int = 3) -> tuple[Translator, Critics]:
    """Both generators and both PatchGANs, initialised from N(0, 0.02) as in the authors' code."""
    G = Translator(ResnetGenerator(width, n_blocks, channels), ResnetGenerator(width, n_blocks, channels), resolution)
    D = Critics(PatchDiscriminator(width, channels), PatchDiscriminator(width, channels))
    return dcgan_init(G), dcgan_init(D)


def generator_losses(G: Translator, D: Critics, real_A: torch.Tensor, real_B: torch.Tensor,
                     cycle_lambda: float = CYCLE_LAMBDA, identity_ratio: float = IDENTITY_RATIO
                     ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The G objective: LSGAN(D_B(G(A)), 1) + LSGAN(D_A(F(B)), 1) + λ·(‖F(G(A))−A‖₁ + ‖G(F(B))−B‖₁)
    + 0.5λ·(‖G(B)−B‖₁ + ‖F(A)−A‖₁). Returns the loss, its parts and the two fakes (for D)."""
    fake_B, fake_A = G.A2B(real_A), G.B2A(real_B)
    adv = lsgan(D.B(fake_B), 1.0) + lsgan(D.A(fake_A), 1.0)
    cycle = F.l1_loss(G.B2A(fake_B), real_A) + F.l1_loss(G.A2B(fake_A), real_B)
    loss = adv + cycle_lambda * cycle
    identity = adv.new_zeros(())
    if identity_ratio > 0:
        identity = F.l1_loss(G.A2B(real_B), real_B) + F.l1_loss(G.B2A(real_A), real_A)
        loss = loss + identity_ratio * cycle_lambda * identity
    parts = {"adv": adv.detach(), "cycle": cycle.detach(), "identity": identity.detach()}
    return loss, parts, fake_A, fake_B


def discriminator_loss(D: Critics, real_A: torch.Tensor, real_B: torch.Tensor, fake_A: torch.Tensor,
                       fake_B: torch.Tensor) -> torch.Tensor:
    """Each D: 0.5 · (LSGAN(real, 1) + LSGAN(fake, 0)), halved as in the paper to slow D down."""
    loss_A = 0.5 * (lsgan(D.A(real_A), 1.0) + lsgan(D.A(fake_A.detach()), 0.0))
    loss_B = 0.5 * (lsgan(D.B(real_B), 1.0) + lsgan(D.B(fake_B.detach()), 0.0))
    return loss_A + loss_B


# ---------------------------------------------------------------------- training

def cyclegan_options(resolution: int, given: dict) -> dict:
    """n_blocks (paper: 6 at ≤128 px, 9 at 256), pool_size (50), lambda_cycle (10), identity (0.5),
    lr_decay (True: linear to zero over the second half of --steps, as the paper)."""
    defaults = {"n_blocks": N_BLOCKS if resolution >= 256 else 6, "pool_size": 50,
                "lambda_cycle": CYCLE_LAMBDA, "identity": IDENTITY_RATIO, "lr_decay": True}
    return fill_options("cyclegan", given, defaults, non_negative=tuple(defaults))


def build_from_config(cfg: ModelConfig) -> tuple[Translator, Critics]:
    return build_cyclegan(cfg.resolution, cfg.width, cfg.options["n_blocks"], cfg.channels)


class CycleGANObjective(UnpairedObjective):
    """One step as in the paper's code: both generators update against frozen Ds, then both
    Ds update on real images and (pooled) fakes."""

    stats = ("loss_d", "loss_g", "adv", "cycle", "identity")

    def __init__(self, spec, G, D):
        super().__init__(spec, G, D)
        size = self.options["pool_size"]
        self.pool_A, self.pool_B = ImagePool(size), ImagePool(size)

    def step(self, t: StepContext) -> torch.Tensor:
        opts = self.options
        self.decay_learning_rates(t)
        real_A, real_B = self.real_pair(t)
        t.D.requires_grad_(False)
        try:
            with t.autocast():
                g_loss, parts, fake_A, fake_B = generator_losses(t.G, t.D, real_A, real_B,
                                                                 opts["lambda_cycle"], opts["identity"])
            self.optimise(g_loss, t.opt_G, t.scaler_G, t.G)
        finally:
            t.D.requires_grad_(True)
        fake_A = self.pool_A(fake_A.detach(), t.rng)
        fake_B = self.pool_B(fake_B.detach(), t.rng)
        with t.autocast():
            d_loss = discriminator_loss(t.D, real_A, real_B, fake_A, fake_B)
        self.optimise(d_loss, t.opt_D, t.scaler_D, t.D)
        return torch.stack([d_loss.detach().float(), g_loss.detach().float(), parts["adv"].float(),
                            parts["cycle"].float(), parts["identity"].float()])

    def state_dict(self) -> dict:
        return {"pool_A": self.pool_A.state(), "pool_B": self.pool_B.state()}

    def load_state_dict(self, state: dict) -> None:
        for key, pool in (("pool_A", self.pool_A), ("pool_B", self.pool_B)):
            if key in state:
                pool.load(state[key], self.device)


CYCLEGAN = Family(
    name="cyclegan",
    summary="Zhu et al. 2017: unpaired A↔B translation (trainA/ trainB/), ResNet G, 70×70 PatchGAN, LSGAN + cycle λ=10 + identity",
    build=build_from_config,
    lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999), batch_size=1, width=64,
    resolutions=(32, 64, 128, 256), channels=(3,),
    objective=CycleGANObjective, options=cyclegan_options,
    image_input=True,
    reference="Zhu, Park, Isola, Efros. Unpaired image-to-image translation using cycle-consistent adversarial networks. 2017",
)
