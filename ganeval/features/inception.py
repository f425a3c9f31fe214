"""The FID Inception-v3: the TF 2015-12-05 graph as ported by pytorch-fid.

It differs from torchvision's Inception-v3 only in its pooling branches: average pools
exclude the padding, and the last block max-pools. Feature = pool3 (2048-d), inputs
resized bilinearly to 299 and scaled to [-1, 1], exactly as pytorch-fid's InceptionV3."""
from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ganeval.compat import import_torchvision
from ganeval.errors import BadInput
from ganeval.features.base import ExtractorInfo, FeatureExtractor
from ganeval.features.pools import avg_pool3_valid, max_pool3
from ganeval.resample import tf1_bilinear_resize
from ganeval.weights import WeightSpec, file_sha256, load_state_dict, locate_weights

_tv_inception = import_torchvision().models.inception
BasicConv2d = _tv_inception.BasicConv2d

INCEPTION_WEIGHTS = WeightSpec(
    filename="pt_inception-2015-12-05-6726825d.pth",
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    sha256_prefix="6726825d",
    how_to_get="download pt_inception-2015-12-05-6726825d.pth from the pytorch-fid release 'fid_weights' on a machine with internet.",
)

# the 2015 graph averages over valid pixels only; pools.py computes PyTorch's pools bit for bit
_avg_pool_valid = avg_pool3_valid
_max_pool_same = partial(max_pool3, stride=1, padding=1)


class MixedA(_tv_inception.InceptionA):
    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool_valid(x)),
        ]


class MixedB(_tv_inception.InceptionB):
    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return [self.branch3x3(x), bd, max_pool3(x, stride=2)]


class MixedC(_tv_inception.InceptionC):
    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7dbl = x
        for conv in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                     self.branch7x7dbl_4, self.branch7x7dbl_5):
            b7dbl = conv(b7dbl)
        return [self.branch1x1(x), b7, b7dbl, self.branch_pool(_avg_pool_valid(x))]


class MixedD(_tv_inception.InceptionD):
    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for conv in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = conv(b7)
        return [b3, b7, max_pool3(x, stride=2)]


class MixedE(_tv_inception.InceptionE):
    """Mixed_7b pools by valid-pixel average, Mixed_7c by max: the pool is a parameter."""

    def __init__(self, in_channels: int, pool) -> None:
        super().__init__(in_channels)
        self.pool = pool

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        return [self.branch1x1(x), b3, bd, self.branch_pool(self.pool(x))]


class FIDInceptionNet(nn.Module):
    """Stem + 11 mixed blocks up to pool3; module names match the published state dict."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = MixedA(192, pool_features=32)
        self.Mixed_5c = MixedA(256, pool_features=64)
        self.Mixed_5d = MixedA(288, pool_features=64)
        self.Mixed_6a = MixedB(288)
        self.Mixed_6b = MixedC(768, channels_7x7=128)
        self.Mixed_6c = MixedC(768, channels_7x7=160)
        self.Mixed_6d = MixedC(768, channels_7x7=160)
        self.Mixed_6e = MixedC(768, channels_7x7=192)
        self.Mixed_7a = MixedD(768)
        self.Mixed_7b = MixedE(1280, pool=_avg_pool_valid)
        self.Mixed_7c = MixedE(2048, pool=_max_pool_same)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = max_pool3(x, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = max_pool3(x, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def load_inception_state(path: Path) -> dict[str, torch.Tensor]:
    """Read a pytorch-fid-format state dict. The 1008-way classifier (``fc``) is kept when
    present (the Inception Score needs it); AuxLogits are dropped; nothing else may differ."""
    state = load_state_dict(path)
    classifier = {k: v for k, v in state.items() if k in CLASSIFIER_SHAPES}
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "AuxLogits."))}
    expected = _empty_net().state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise BadInput(f"{path}: not FID Inception weights ({detail}, {len(missing)} missing, {len(unexpected)} unexpected)")
    for key, value in expected.items():
        if state[key].shape != value.shape:
            raise BadInput(f"{path}: not FID Inception weights ({key} has shape {tuple(state[key].shape)}, expected {tuple(value.shape)})")
    if len(classifier) == len(CLASSIFIER_SHAPES) and all(
            tuple(v.shape) == CLASSIFIER_SHAPES[k] for k, v in classifier.items()):
        state.update(classifier)
    return state


# the TF graph's 1008-way softmax layer, as pytorch-fid and torch-fidelity store it
CLASSIFIER_SHAPES = {"fc.weight": (1008, 2048), "fc.bias": (1008,)}
RESIZE_MODES = ("pytorch-fid", "clean", "torch-fidelity")


def clean_resize(images: torch.Tensor, size: int = 299) -> torch.Tensor:
    """clean-fid's resize (``make_resizer("PIL", False, "bicubic", (size, size))``): each
    channel as a float32 Pillow image, bicubic with Pillow's antialiasing, clipped to
    [0, 255] and not quantised. uint8 N×3×H×W in, float32 N×3×size×size out (on CPU:
    Pillow does the work, as in clean-fid)."""
    from PIL import Image

    arr = images.detach().cpu().numpy()
    out = np.empty((arr.shape[0], 3, size, size), dtype=np.float32)
    for i, image in enumerate(arr):
        for c in range(3):
            resized = Image.fromarray(image[c].astype(np.float32)).resize((size, size), Image.BICUBIC)
            out[i, c] = np.asarray(resized).clip(0, 255)
    return torch.from_numpy(out).to(images.device)


def _empty_net() -> FIDInceptionNet:
    """The architecture without initialising 22M weights (0.3-1 s) that loading overwrites anyway."""
    with torch.device("meta"):
        return FIDInceptionNet()


class _ConvReLU(nn.Module):
    """A BasicConv2d with its BatchNorm folded into the convolution (inference only)."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.conv = fuse_conv_bn_eval(block.conv, block.bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x), inplace=True)


def fold_batchnorm(net: nn.Module) -> nn.Module:
    """Fold every conv+BN pair into one convolution (inference only)."""
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, BasicConv2d):
                setattr(module, name, _ConvReLU(child))
    return net


class InceptionExtractor(FeatureExtractor):
    """uint8 RGB N×3×H×W → pool3 features N×2048.

    ``resize="pytorch-fid"`` (default): pytorch-fid's preprocessing, bilinear resize in
    torch and 2x/255-1. ``resize="clean"``: clean-fid's, Pillow bicubic on floats
    (``clean_resize``) and the TF graph's own (x-128)/128. ``resize="torch-fidelity"``:
    torch-fidelity's, TF1's bilinear resize (``tf1_bilinear_resize``) and (x-128)/128.
    ``fast=False`` runs pytorch-fid's exact op order: bit-identical features on CPU.
    ``fast=True`` folds BatchNorm into the convolutions and runs channels-last: faster,
    and as close to a float64 evaluation as the exact path (both ~1e-4 at unit-scale
    features), but no longer bit-identical to pytorch-fid (differences ~1e-4).
    When the weights hold the 1008-way classifier, ``logits`` gives the Inception Score's
    input from pool3 features (torch-fidelity's ``logits_unbiased``: no bias)."""

    def __init__(self, state: dict[str, torch.Tensor], weights_id: str, standard: bool, fast: bool = False,
                 resize: str = "pytorch-fid") -> None:
        super().__init__()
        if resize not in RESIZE_MODES:
            raise BadInput(f"unknown resize {resize!r}: choose one of {', '.join(RESIZE_MODES)}")
        state = dict(state)
        fc_weight = state.pop("fc.weight", None)
        state.pop("fc.bias", None)
        net = _empty_net()
        net.load_state_dict(state, assign=True)  # the loaded tensors become the weights: no init, no copy
        net = net.eval().requires_grad_(False)
        self.memory_format = torch.channels_last if fast else torch.contiguous_format
        self.net = fold_batchnorm(net).to(memory_format=self.memory_format) if fast else net
        self.register_buffer("fc_weight", fc_weight.float().clone() if fc_weight is not None else None)
        self.resize = resize
        self.info = ExtractorInfo("inception", 2048, 299, weights_id, standard, "fast" if fast else "exact", resize)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        if self.fc_weight is None:
            raise BadInput("these Inception weights have no 1008-way classifier (fc): the Inception Score needs it")
        features = torch.as_tensor(features).to(self.fc_weight.device, torch.float32)
        return features.mm(self.fc_weight.T)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.resize in ("clean", "torch-fidelity"):
            x = clean_resize(images) if self.resize == "clean" else tf1_bilinear_resize(images.float(), 299)
            return self.net(((x - 128) / 128).contiguous(memory_format=self.memory_format))
        # lay out the uint8 batch first (1 byte per value, not 4): NCHW as pytorch-fid's ToTensor
        # gives in exact mode, so resizing runs its kernel too; channels-last in fast mode
        x = images.contiguous(memory_format=self.memory_format).float() / 255.0
        if x.shape[-2:] != (299, 299):
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return self.net((2.0 * x - 1.0).contiguous(memory_format=self.memory_format))


def build_inception(weights: str | os.PathLike | None = None, device: torch.device | str = "cpu",
                    fast: bool = False, resize: str = "pytorch-fid") -> InceptionExtractor:
    """The FID Inception with weights from ``weights``, the cache, or the official download."""
    path = locate_weights(INCEPTION_WEIGHTS, weights)
    digest = file_sha256(path)
    extractor = InceptionExtractor(load_inception_state(path), digest,
                                   digest.startswith(INCEPTION_WEIGHTS.sha256_prefix or "-"), fast, resize)
    return extractor.to(device)
