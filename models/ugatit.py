"""U-GAT-IT (Kim et al. 2020): unpaired translation with attention and adaptive normalisation.

Generator: encoder (c7s1, two stride-2 downs, residual blocks) → CAM attention: an auxiliary
classifier on global average- and max-pooled features whose weights re-weight the feature
maps (the CAM logits say "is this the source domain?") → an MLP that turns the attended
features into AdaLIN's γ and β (the light variant pools them first) → residual blocks with
AdaLIN (a learnable mix ρ of instance and layer norm, ρ clipped to [0, 1] after each optimiser
step) → up-sampling blocks with ILN → c7s1, tanh.

Discriminators: a global one (5 stride-2 convs at 256 px) and a local one (3), each with its
own CAM classifier and spectral norm. Losses: LSGAN adversarial on both the patch output and
the CAM logits, cycle (λ=10), identity (10) and the generator's CAM loss (1000), as in the
paper. Both generators live in one ``Translator`` (the checkpoint's ``G``), the four
discriminators in one ``UGATITCritics`` (``D``)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganeval.models.blocks import ResnetBlock, conv_reflect
from ganeval.models.cyclegan import Translator, lsgan
from ganeval.models.options import fill_options
from ganeval.models.spec import Family, ModelConfig
from ganeval.models.objective import StepContext
from ganeval.models.unpaired import UnpairedObjective

N_BLOCKS = 4
ADV_WEIGHT, CYCLE_WEIGHT, IDENTITY_WEIGHT, CAM_WEIGHT = 1.0, 10.0, 10.0, 1000.0
EPS = 1e-5


def _mix(x: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """ρ · instance-normalised x + (1 − ρ) · layer-normalised x (population variances, ε 1e-5),
    through torch's fused norms."""
    return rho * F.instance_norm(x, eps=EPS) + (1 - rho) * F.layer_norm(x, x.shape[1:], eps=EPS)


class AdaLIN(nn.Module):
    """Adaptive layer-instance norm: γ, β come from the attention features; ρ (per channel,
    initialised to 0.9) is learnt and kept in [0, 1] by ``clip_rho``."""

    def __init__(self, channels: int):
        super().__init__()
        self.rho = nn.Parameter(torch.full((1, channels, 1, 1), 0.9))

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        return _mix(x, self.rho) * gamma[:, :, None, None] + beta[:, :, None, None]


class ILN(nn.Module):
    """Layer-instance norm with its own learnt ρ (initialised to 0), γ and β: the decoder's
    up-sampling norm."""

    def __init__(self, channels: int):
        super().__init__()
        self.rho = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _mix(x, self.rho) * self.gamma + self.beta


@torch.no_grad()
def clip_rho(module: nn.Module) -> None:
    """Clamp every AdaLIN/ILN ρ into [0, 1]; called after each generator optimiser step."""
    for m in module.modules():
        if isinstance(m, (AdaLIN, ILN)):
            m.rho.clamp_(0.0, 1.0)


class ResnetAdaLINBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.conv1 = conv_reflect(dim, dim, 3, norm=False)
        self.norm1 = AdaLIN(dim)
        self.conv2 = conv_reflect(dim, dim, 3, norm=False)
        self.norm2 = AdaLIN(dim)

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x), gamma, beta))
        return x + self.norm2(self.conv2(out), gamma, beta)


class CAM(nn.Module):
    """Class activation map attention: logits from GAP and GMP features through bias-free
    linear classifiers, whose weights then scale the feature maps; a 1×1 conv fuses the two
    attended copies. Returns (features, CAM logits N×2, heatmap N×1×H×W)."""

    def __init__(self, channels: int, act: nn.Module, sn: bool = False):
        super().__init__()
        wrap = spectral_norm if sn else (lambda m: m)
        self.gap_fc = wrap(nn.Linear(channels, 1, bias=False))
        self.gmp_fc = wrap(nn.Linear(channels, 1, bias=False))
        self.fuse = nn.Conv2d(channels * 2, channels, 1, 1)
        self.act = act

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gap_logit = self.gap_fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
        gmp_logit = self.gmp_fc(F.adaptive_max_pool2d(x, 1).flatten(1))
        gap = x * self.gap_fc.weight[:, :, None, None]
        gmp = x * self.gmp_fc.weight[:, :, None, None]
        x = self.act(self.fuse(torch.cat([gap, gmp], 1)))
        return x, torch.cat([gap_logit, gmp_logit], 1), x.sum(1, keepdim=True)


class UGATITGenerator(nn.Module):
    """One direction of U-GAT-IT; ``forward`` returns (image, CAM logits, heatmap)."""

    def __init__(self, resolution: int = 256, width: int = 64, n_blocks: int = N_BLOCKS, light: bool = False,
                 channels: int = 3):
        super().__init__()
        w4 = width * 4
        self.encoder = nn.Sequential(
            conv_reflect(channels, width, 7, act=nn.ReLU(True)),
            conv_reflect(width, width * 2, 3, stride=2, act=nn.ReLU(True)),
            conv_reflect(width * 2, w4, 3, stride=2, act=nn.ReLU(True)),
            *[ResnetBlock(w4) for _ in range(n_blocks)],
        )
        self.cam = CAM(w4, nn.ReLU(True))
        self.light = light
        fc_in = w4 if light else (resolution // 4) ** 2 * w4
        self.mlp = nn.Sequential(nn.Linear(fc_in, w4, bias=False), nn.ReLU(True),
                                 nn.Linear(w4, w4, bias=False), nn.ReLU(True))
        self.gamma = nn.Linear(w4, w4, bias=False)
        self.beta = nn.Linear(w4, w4, bias=False)
        self.bottleneck = nn.ModuleList(ResnetAdaLINBlock(w4) for _ in range(n_blocks))
        ups: list[nn.Module] = []
        for cin in (w4, width * 2):
            ups += [nn.Upsample(scale_factor=2, mode="nearest"), conv_reflect(cin, cin // 2, 3, norm=False),
                    ILN(cin // 2), nn.ReLU(True)]
        ups += [conv_reflect(width, channels, 7, norm=False), nn.Tanh()]
        self.decoder = nn.Sequential(*ups)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, cam_logit, heatmap = self.cam(self.encoder(x))
        style = F.adaptive_avg_pool2d(x, 1).flatten(1) if self.light else x.flatten(1)
        style = self.mlp(style)
        gamma, beta = self.gamma(style), self.beta(style)
        for block in self.bottleneck:
            x = block(x, gamma, beta)
        return self.decoder(x), cam_logit, heatmap


def disc_downsamples(resolution: int, paper: int) -> int:
    """The paper's stride-2 count (5 global, 3 local at 256 px), fewer for small images so the
    last maps stay at least 4×4 (the two 4×4 stride-1 convs need room)."""
    return max(1, min(paper, int(math.log2(resolution)) - 2))


class UGATITDiscriminator(nn.Module):
    """Spectral-normalised 4×4 convs (reflection pad 1, LeakyReLU 0.2): ``downs`` stride-2
    convs doubling the width, one stride-1 conv, CAM, then a stride-1 conv to a logit map.
    Returns (patch logits, CAM logits N×2, heatmap)."""

    def __init__(self, downs: int, width: int = 64, channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        cin, cout = channels, width
        for _ in range(downs):
            layers += [nn.ReflectionPad2d(1), spectral_norm(nn.Conv2d(cin, cout, 4, 2)), nn.LeakyReLU(0.2, True)]
            cin, cout = cout, cout * 2
        layers += [nn.ReflectionPad2d(1), spectral_norm(nn.Conv2d(cin, cout, 4, 1)), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        self.cam = CAM(cout, nn.LeakyReLU(0.2, True), sn=True)
        self.head = nn.Sequential(nn.ReflectionPad2d(1), spectral_norm(nn.Conv2d(cout, 1, 4, 1, bias=False)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, cam_logit, heatmap = self.cam(self.features(x))
        return self.head(x), cam_logit, heatmap


class UGATITCritics(nn.Module):
    """The four discriminators: global and local, for each domain."""

    def __init__(self, resolution: int, width: int = 64, channels: int = 3):
        super().__init__()
        g, l = disc_downsamples(resolution, 5), disc_downsamples(resolution, 3)
        self.GA, self.LA = UGATITDiscriminator(g, width, channels), UGATITDiscriminator(l, width, channels)
        self.GB, self.LB = UGATITDiscriminator(g, width, channels), UGATITDiscriminator(l, width, channels)

    def domain(self, name: str) -> tuple[nn.Module, nn.Module]:
        return (self.GA, self.LA) if name == "A" else (self.GB, self.LB)


def build_ugatit(resolution: int = 256, width: int = 64, n_blocks: int = N_BLOCKS, light: bool = False,
                 channels: int = 3) -> tuple[Translator, UGATITCritics]:
    return (Translator(UGATITGenerator(resolution, width, n_blocks, light, channels),
                       UGATITGenerator(resolution, width, n_blocks, light, channels), resolution),
            UGATITCritics(resolution, width, channels))


def _adv(critics: tuple[nn.Module, nn.Module], images: torch.Tensor, target: float) -> torch.Tensor:
    """LSGAN on both the patch logits and the CAM logits of a global and a local D."""
    total = images.new_zeros(()).float()
    for d in critics:
        logit, cam_logit, _ = d(images)
        total = total + lsgan(logit, target) + lsgan(cam_logit, target)
    return total


def discriminator_loss(D: UGATITCritics, real_A: torch.Tensor, real_B: torch.Tensor, fake_A: torch.Tensor,
                       fake_B: torch.Tensor, adv_weight: float = ADV_WEIGHT) -> torch.Tensor:
    loss_A = _adv(D.domain("A"), real_A, 1.0) + _adv(D.domain("A"), fake_A.detach(), 0.0)
    loss_B = _adv(D.domain("B"), real_B, 1.0) + _adv(D.domain("B"), fake_B.detach(), 0.0)
    return adv_weight * (loss_A + loss_B)


def generator_losses(G: Translator, D: UGATITCritics, real_A: torch.Tensor, real_B: torch.Tensor,
                     adv_weight: float = ADV_WEIGHT, cycle_weight: float = CYCLE_WEIGHT,
                     identity_weight: float = IDENTITY_WEIGHT, cam_weight: float = CAM_WEIGHT
                     ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """adversarial + cycle + identity + CAM: a generator's CAM classifier must say "source
    domain" (1) for images it should translate and "target domain" (0) for identity inputs."""
    fake_B, cam_AB, _ = G.A2B(real_A)
    fake_A, cam_BA, _ = G.B2A(real_B)
    back_A, _, _ = G.B2A(fake_B)
    back_B, _, _ = G.A2B(fake_A)
    same_A, cam_AA, _ = G.B2A(real_A)
    same_B, cam_BB, _ = G.A2B(real_B)
    adv = _adv(D.domain("A"), fake_A, 1.0) + _adv(D.domain("B"), fake_B, 1.0)
    cycle = F.l1_loss(back_A, real_A) + F.l1_loss(back_B, real_B)
    identity = F.l1_loss(same_A, real_A) + F.l1_loss(same_B, real_B)
    ones, zeros = torch.ones_like(cam_BA), torch.zeros_like(cam_AA)
    cam = (F.binary_cross_entropy_with_logits(cam_BA.float(), ones.float())
           + F.binary_cross_entropy_with_logits(cam_AA.float(), zeros.float())
           + F.binary_cross_entropy_with_logits(cam_AB.float(), ones.float())
           + F.binary_cross_entropy_with_logits(cam_BB.float(), zeros.float()))
    loss = adv_weight * adv + cycle_weight * cycle + identity_weight * identity + cam_weight * cam
    parts = {"adv": adv.detach(), "cycle": cycle.detach(), "identity": identity.detach(), "cam": cam.detach()}
    return loss, parts, fake_A, fake_B


# ---------------------------------------------------------------------- training

def ugatit_options(resolution: int, given: dict) -> dict:
    """n_blocks (4), light (False: the full γ/β MLP over all attended features; True pools
    them first, as the paper's light model), the four loss weights of the paper, and lr_decay
    (True: linear to zero over the second half of --steps, as the authors' code)."""
    defaults = {"n_blocks": N_BLOCKS, "light": False, "adv_weight": ADV_WEIGHT, "cycle_weight": CYCLE_WEIGHT,
                "identity_weight": IDENTITY_WEIGHT, "cam_weight": CAM_WEIGHT, "lr_decay": True}
    return fill_options("ugatit", given, defaults, non_negative=tuple(defaults))


def build_from_config(cfg: ModelConfig) -> tuple[Translator, UGATITCritics]:
    o = cfg.options
    return build_ugatit(cfg.resolution, cfg.width, o["n_blocks"], o["light"], cfg.channels)


class UGATITObjective(UnpairedObjective):
    """One step as in the authors' code: the four Ds update on real images and detached
    fakes, then both generators update against frozen Ds, then every ρ is clipped to [0, 1].
    Adam with weight decay 1e-4 on both, as in the paper."""

    stats = ("loss_d", "loss_g", "adv", "cycle", "identity", "cam")
    WEIGHT_DECAY = 1e-4

    def make_optimizers(self, G: nn.Module, D: nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        fam = self.spec.family
        return (torch.optim.Adam(G.parameters(), lr=fam.lr_g, betas=fam.betas, weight_decay=self.WEIGHT_DECAY),
                torch.optim.Adam(D.parameters(), lr=fam.lr_d, betas=fam.betas, weight_decay=self.WEIGHT_DECAY))

    def step(self, t: StepContext) -> torch.Tensor:
        o = self.options
        self.decay_learning_rates(t)
        real_A, real_B = self.real_pair(t)
        with torch.no_grad(), t.autocast():
            fake_A = t.G.translate(real_B, "BA")
            fake_B = t.G.translate(real_A, "AB")
        with t.autocast():
            d_loss = discriminator_loss(t.D, real_A, real_B, fake_A, fake_B, o["adv_weight"])
        self.optimise(d_loss, t.opt_D, t.scaler_D, t.D)
        t.D.requires_grad_(False)
        try:
            with t.autocast():
                g_loss, parts, _, _ = generator_losses(t.G, t.D, real_A, real_B, o["adv_weight"], o["cycle_weight"],
                                                       o["identity_weight"], o["cam_weight"])
            self.optimise(g_loss, t.opt_G, t.scaler_G, t.G)
        finally:
            t.D.requires_grad_(True)
        clip_rho(t.G)
        return torch.stack([d_loss.detach().float(), g_loss.detach().float()]
                           + [parts[k].float() for k in ("adv", "cycle", "identity", "cam")])


UGATIT = Family(
    name="ugatit",
    summary="Kim et al. 2020 U-GAT-IT: unpaired A↔B translation with CAM attention, AdaLIN (ρ∈[0,1]), global+local Ds",
    build=build_from_config,
    lr_g=1e-4, lr_d=1e-4, betas=(0.5, 0.999), batch_size=1, width=64,
    resolutions=(32, 64, 128, 256), channels=(3,),
    objective=UGATITObjective, options=ugatit_options,
    image_input=True,
    reference="Kim, Kim, Kang, Lee. U-GAT-IT: unsupervised generative attentional networks with adaptive "
              "layer-instance normalization for image-to-image translation. ICLR 2020",
)
