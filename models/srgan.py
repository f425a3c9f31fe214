"""SRGAN (Ledig et al. 2017): an SRResNet generator, the paper's VGG-style discriminator,
and the losses (pixel L1 + a small adversarial term + an optional perceptual term).

The generator maps a low-resolution image (N×3×h×w in [-1, 1]) to N×3×(s·h)×(s·w) in
[-1, 1]; it is fully convolutional, so it upscales images of any size. Training pairs come
from high-resolution images alone: the LR input is the HR image downscaled with Pillow's
bicubic filter (``ganeval.resample.downscale``), so training sees exactly the degradation
that ``ganeval upscale-compare`` measures."""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganeval.errors import BadInput
from ganeval.images import CorruptImage, signed_to_uint8, uint8_to_signed
from ganeval.sources import open_source
from ganeval.resample import downscale, downscale_batch, resize_rgb
from ganeval.models.objective import Objective, StepContext
from ganeval.models.options import fill_options
from ganeval.models.spec import Family, ModelConfig

SCALES = (2, 4, 8)
N_BLOCKS = 16  # residual blocks of the paper's generator
ADV_WEIGHT = 1e-3  # the paper's weight of the adversarial term
PERCEPTUAL_WEIGHT = 6e-3  # the paper's 1/12.75² rescaling of VGG feature MSE (features on a 0–1 scale)


def check_scale(scale: int) -> int:
    if scale not in SCALES:
        raise BadInput(f"SRGAN scale must be one of {', '.join(map(str, SCALES))}, not {scale}")
    return scale


class _Residual(nn.Module):
    """conv3-BN-PReLU-conv3-BN with an identity shortcut (the paper's "B residual blocks")."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width), nn.PReLU(width),
            nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """conv9-PReLU → B residual blocks → conv3-BN + long skip → log2(scale) × (conv3 to 4C,
    pixel shuffle ×2, PReLU) → conv9 → tanh."""

    def __init__(self, scale: int = 4, width: int = 64, n_blocks: int = N_BLOCKS, channels: int = 3):
        super().__init__()
        self.scale = check_scale(scale)
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, 1, 4), nn.PReLU(width))
        self.blocks = nn.Sequential(*[_Residual(width) for _ in range(n_blocks)])
        self.fuse = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width))
        ups: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            ups += [nn.Conv2d(width, width * 4, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(width)]
        self.upsample = nn.Sequential(*ups)
        self.tail = nn.Conv2d(width, channels, 9, 1, 4)

    def inspect_input(self, seed: int = 0, size: int = 16) -> torch.Tensor:
        """A 1×3×size×size synthetic face in [-1, 1]: an input for ``ganeval inspect``."""
        from ganeval.synth import make_faces

        face = torch.from_numpy(np.array(downscale(make_faces(1, size=size * 4, seed=seed)[0], 4)[None]))
        return uint8_to_signed(face.permute(0, 3, 1, 2)).to(self.tail.weight.device)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if lr.ndim != 4:  # e.g. `ganeval sample` handing it latents
            raise BadInput("an SRGAN generator upscales images and cannot sample from z; use `ganeval upscale`")
        x = self.head(lr)
        x = x + self.fuse(self.blocks(x))
        return torch.tanh(self.tail(self.upsample(x)))


class SRDiscriminator(nn.Module):
    """The paper's D: conv3 64 → 7 × (conv3, BN, LeakyReLU) with strides 2,1,2,1,2,1,2 and
    widths 64,128,128,256,256,512,512 → dense 1024 → LeakyReLU → dense 1 (a logit).

    An adaptive average pool to 4×4 before the dense layers lets it judge any patch size
    (the paper's 96 px give 6×6 there; 32 px give 2×2)."""

    POOL = 4

    def __init__(self, width: int = 64, channels: int = 3):
        super().__init__()
        widths = [width, width * 2, width * 2, width * 4, width * 4, width * 8, width * 8]
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, 1, 1), nn.LeakyReLU(0.2, True)]
        cin = width
        for i, cout in enumerate(widths):
            stride = 2 if i % 2 == 0 else 1
            layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(self.POOL)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(cin * self.POOL * self.POOL, width * 16),
                                  nn.LeakyReLU(0.2, True), nn.Linear(width * 16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x))).view(-1)


# ---------------------------------------------------------------------- perceptual loss

VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's ImageNet VGG19 weights
VGG54 = 35  # vgg19.features[:36] ends at relu5_4: the paper's VGG54 feature map
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
I2V_LAYERS = 8  # illust2vec conv layers used (through conv5_2, before its last pool)


class PerceptualFeatures(nn.Module):
    """A frozen feature tower on [-1, 1] RGB input; the loss is the MSE between feature maps
    of SR and HR images, on a scale comparable to VGG features of 0–1 images."""

    def __init__(self, name: str, tower: nn.Module, mean: tuple[float, ...], std: tuple[float, ...],
                 bgr: bool = False, out_scale: float = 1.0):
        super().__init__()
        self.name, self.tower, self.bgr, self.out_scale = name, tower.eval().requires_grad_(False), bgr, out_scale
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> "PerceptualFeatures":
        return super().train(False)  # always frozen statistics

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.float() + 1) / 2  # [-1, 1] → [0, 1]
        if self.bgr:
            x = x.flip(1)
        return self.tower((x - self.mean) / self.std) * self.out_scale


def _vgg19_tower(path: Path) -> nn.Module:
    from ganeval.compat import import_torchvision

    tv = import_torchvision()
    net = tv.models.vgg19(weights=None)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except Exception as err:  # noqa: BLE001 - any unreadable file is one line for the user
        raise BadInput(f"{path}: not torchvision VGG19 weights ({str(err).splitlines()[0][:120]})") from None
    return net.features[:VGG54 + 1]


def _illust2vec_tower(path: str | None) -> nn.Module:
    from ganeval.features.illust2vec import CONV_LAYERS, POOL_AFTER, build_illust2vec

    net = build_illust2vec(path).net
    layers: list[nn.Module] = []
    for name in CONV_LAYERS[:I2V_LAYERS]:
        layers += [getattr(net, name), nn.ReLU()]
        if name in POOL_AFTER and name != CONV_LAYERS[I2V_LAYERS - 1]:
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
    return nn.Sequential(*layers)


def vgg19_candidates() -> list[Path]:
    """Where torchvision's VGG19 file may already be: ganeval's weight cache, torch hub's cache."""
    from ganeval.weights import weights_cache

    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    return [weights_cache() / VGG19_FILE, hub / VGG19_FILE]


def _illust2vec_features(path: str | None) -> PerceptualFeatures:
    from ganeval.features.illust2vec import MEAN_BGR

    # i2v reads 0–255 BGR minus its mean; on 0–1 input that is mean/255 and std 1/255, and
    # dividing the features by 255 keeps them on the scale VGG features of 0–1 images have
    return PerceptualFeatures("illust2vec", _illust2vec_tower(path), tuple(m / 255 for m in MEAN_BGR),
                              (1 / 255,) * 3, bgr=True, out_scale=1 / 255)


def _vgg19_file(path: str) -> Path | None:
    candidates = [Path(path).expanduser()] if path else vgg19_candidates()
    return next((c for c in candidates if c.is_file()), None)


def build_perceptual(spec: str) -> tuple[PerceptualFeatures | None, str, str]:
    """``spec``: "off"; "auto" (illust2vec, else VGG19, if already in the caches; off when
    neither is); "illust2vec[:PATH]" or "vgg19[:PATH]" (an error when missing). Returns the
    frozen tower (or None), one line saying what the perceptual term uses, and the resolved
    spec (what "auto" became), so a resumed run rebuilds the same loss. Never downloads."""
    from ganeval.features.illust2vec import ILLUST2VEC_WEIGHTS
    from ganeval.weights import weights_cache

    kind, _, path = spec.partition(":")
    kind = kind.lower()
    if kind == "auto" and not path:
        if (weights_cache() / ILLUST2VEC_WEIGHTS.filename).is_file():
            kind = "illust2vec"
        elif _vgg19_file("") is not None:
            kind = "vgg19"
        else:
            return None, ("perceptual loss off: no illust2vec or VGG19 weights in the cache "
                          "(--perceptual illust2vec:PATH or vgg19:PATH turns it on)"), "off"
    if kind == "off" and not path:
        return None, "perceptual loss off", "off"
    if kind == "illust2vec":
        return _illust2vec_features(path or None), "perceptual loss on illust2vec conv5_2 features", spec
    if kind == "vgg19":
        found = _vgg19_file(path)
        if found is None:
            where = path or ", ".join(map(str, vgg19_candidates()))
            raise BadInput(f"VGG19 weights not found ({where}); put torchvision's {VGG19_FILE} there "
                           "or pass --perceptual vgg19:PATH")
        tower = PerceptualFeatures("vgg19", _vgg19_tower(found), IMAGENET_MEAN, IMAGENET_STD)
        return tower, f"perceptual loss on VGG19 relu5_4 features ({found})", f"vgg19:{found}"
    raise BadInput(f"--perceptual must be off, auto, illust2vec[:PATH] or vgg19[:PATH], not {spec!r}")


def generator_loss(sr: torch.Tensor, hr: torch.Tensor, fake_logit: torch.Tensor,
                   perceptual: PerceptualFeatures | None, adv_weight: float = ADV_WEIGHT,
                   perceptual_weight: float = PERCEPTUAL_WEIGHT) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L1(SR, HR) + adv_weight · softplus(−D(SR)) [+ perceptual_weight · MSE(φ(SR), φ(HR))]."""
    pixel = F.l1_loss(sr.float(), hr.float())
    adv = F.softplus(-fake_logit.float()).mean()
    loss = pixel + adv_weight * adv
    percep = pixel.new_zeros(())
    if perceptual is not None:
        with torch.no_grad():
            target = perceptual(hr)
        percep = F.mse_loss(perceptual(sr), target)
        loss = loss + perceptual_weight * percep
    return loss, {"pixel": pixel.detach(), "adv": adv.detach(), "perceptual": percep.detach()}


def discriminator_loss(real_logit: torch.Tensor, fake_logit: torch.Tensor) -> torch.Tensor:
    """The non-saturating GAN loss on logits: softplus(−D(HR)) + softplus(D(SR))."""
    return F.softplus(-real_logit.float()).mean() + F.softplus(fake_logit.float()).mean()


# ---------------------------------------------------------------------- training

def srgan_options(resolution: int, given: dict) -> dict:
    """scale (4), n_blocks (16), perceptual ("auto"), adv_weight (1e-3), perceptual_weight (6e-3).
    ``resolution`` is the HR training size; the LR input is resolution/scale."""
    defaults = {"scale": 4, "n_blocks": N_BLOCKS, "perceptual": "auto", "adv_weight": ADV_WEIGHT,
                "perceptual_weight": PERCEPTUAL_WEIGHT}
    opts = fill_options("srgan", given, defaults, non_negative=("n_blocks", "adv_weight", "perceptual_weight"))
    check_scale(opts["scale"])
    if opts["perceptual"].partition(":")[0].lower() not in ("off", "auto", "illust2vec", "vgg19"):
        raise BadInput(f"srgan option perceptual must be off, auto, illust2vec[:PATH] or vgg19[:PATH], "
                       f"not {opts['perceptual']!r}")
    if resolution % opts["scale"] or resolution // opts["scale"] < 4:
        raise BadInput(f"srgan --resolution {resolution} (the HR size) must be a multiple of --scale "
                       f"{opts['scale']} with at least 4 LR pixels a side")
    return opts


def build_from_config(cfg: ModelConfig) -> tuple[SRResNet, SRDiscriminator]:
    o = cfg.options
    return SRResNet(o["scale"], cfg.width, o["n_blocks"], cfg.channels), SRDiscriminator(cfg.width, cfg.channels)


GRID_IMAGES = 6  # rows of the training grid (bicubic | SR | HR)


def _lr_batch(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """uint8 N×C×H×W HR (a channels-last view) → uint8 N×C×h×w LR through ``downscale``."""
    nhwc = hr.permute(0, 2, 3, 1).numpy()
    return torch.from_numpy(downscale_batch(nhwc, scale)).permute(0, 3, 1, 2)


def _signed(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = uint8_to_signed(images.to(device, non_blocking=True))
    return x.contiguous(memory_format=torch.channels_last)


class SRGANObjective(Objective):
    """One step: D learns HR vs SR(LR) (non-saturating loss), then G minimises
    L1 + adv_weight·adversarial (+ perceptual_weight·feature MSE), reusing the same SR
    batch. LR inputs are made from each HR batch by ``ganeval.resample.downscale``. The
    perceptual choice ("auto" resolved once) is kept with the checkpoint, so a resumed
    run uses the same loss."""

    stats = ("loss_d", "loss_g", "pixel", "adv", "perceptual", "d_real", "d_fake")

    def __init__(self, spec, G, D):
        super().__init__(spec, G, D)
        self.perceptual_spec = str(self.options["perceptual"])
        self.perceptual: PerceptualFeatures | None = None
        self._preview: np.ndarray | None = None

    def _build_perceptual(self) -> None:
        tower, line, self.perceptual_spec = build_perceptual(self.perceptual_spec)
        self.perceptual = tower.to(self.device) if tower is not None else None
        if self.world.is_main:
            print(line, file=sys.stderr)

    def setup(self) -> None:
        self._build_perceptual()

    def state_dict(self) -> dict:
        return {"perceptual": self.perceptual_spec}

    def load_state_dict(self, state: dict) -> None:
        if "perceptual" in state:
            self.perceptual_spec = str(state["perceptual"])

    def step(self, t: StepContext) -> torch.Tensor:
        o = self.options
        hr_u8 = next(t.data)
        lr = _signed(_lr_batch(hr_u8, o["scale"]), t.device)
        hr = _signed(hr_u8, t.device)
        with t.autocast():
            sr = t.G(lr)
            real_logit, fake_logit = t.D(hr), t.D(sr.detach())
            d_loss = discriminator_loss(real_logit, fake_logit)
        self.optimise(d_loss, t.opt_D, t.scaler_D, t.D)
        t.D.requires_grad_(False)
        try:
            with t.autocast():
                g_loss, parts = generator_loss(sr, hr, t.D(sr), self.perceptual, o["adv_weight"],
                                               o["perceptual_weight"])
            self.optimise(g_loss, t.opt_G, t.scaler_G, t.G)
        finally:
            t.D.requires_grad_(True)
        return torch.stack([d_loss.detach().float(), g_loss.detach().float(), parts["pixel"].float(),
                            parts["adv"].float(), parts["perceptual"].float(),
                            real_logit.detach().float().mean(), fake_logit.detach().float().mean()])

    def grid_images(self, G_ema: nn.Module, fixed_z: torch.Tensor | None = None) -> torch.Tensor:
        """One row per image of --data (the first GRID_IMAGES): bicubic-upscaled LR | SR by G_ema | HR."""
        scale = self.options["scale"]
        if self._preview is None:
            source, images = open_source(self.spec.train.data), []
            for i in range(len(source)):
                try:
                    images.append(resize_rgb(source.read(i), self.spec.model.resolution))
                except CorruptImage:
                    continue
                if len(images) == GRID_IMAGES:
                    break
            self._preview = np.stack(images)
        hr = self._preview
        lr = np.stack([downscale(img, scale) for img in hr])
        with torch.no_grad():
            sr = G_ema(_signed(torch.from_numpy(lr).permute(0, 3, 1, 2), self.device))
        sr = signed_to_uint8(sr).permute(0, 2, 3, 1).cpu().numpy()
        bicubic = np.stack([resize_rgb(img, hr.shape[1:3], "bicubic") for img in lr])
        rows = np.stack([bicubic, sr, hr], axis=1).reshape(-1, *hr.shape[1:])  # per image: bicubic, SR, HR
        return torch.from_numpy(rows)

    def grid_columns(self) -> int:
        return 3




SRGAN = Family(
    name="srgan",
    summary="Ledig et al. 2017 super-resolution: SRResNet G (16 res blocks, pixel shuffle ×2/×4/×8), VGG-style D; L1 + 1e-3 adversarial (+ perceptual)",
    build=build_from_config,
    lr_g=1e-4, lr_d=1e-4, betas=(0.9, 0.999), batch_size=16, width=64,
    resolutions=(32, 64, 96, 128, 192, 256, 384, 512), channels=(3,),
    objective=SRGANObjective, options=srgan_options,
    image_input=True,
    reference="Ledig et al. Photo-realistic single image super-resolution using a generative adversarial network. CVPR 2017",
)
