"""Name → feature network, the one place that knows which extractors exist."""
from __future__ import annotations

import os

import torch

from ganeval.errors import BadInput
from ganeval.features.base import FeatureExtractor

FEATURES = ("inception", "illust2vec", "dinov2", "vgg16")
RESIZES = ("pytorch-fid", "clean", "torch-fidelity")
# --preset names the reference package whose preprocessing a run reproduces
PRESETS = {"pytorch-fid": "pytorch-fid", "clean-fid": "clean", "torch-fidelity": "torch-fidelity"}


def preset_resize(preset: str | None, resize: str = "pytorch-fid") -> str:
    """The Inception preprocessing of ``preset`` (a reference package's name; "clean" is
    accepted for clean-fid), or ``resize`` when no preset is given."""
    if preset is None:
        return resize
    key = "clean-fid" if preset == "clean" else preset
    if key not in PRESETS:
        raise BadInput(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    if resize not in ("pytorch-fid", PRESETS[key]):
        raise BadInput(f"preset {key} and resize {resize} disagree: give one of them")
    return PRESETS[key]


def preset_of(resize: str) -> str | None:
    """The reference package whose preprocessing ``resize`` is (None for a network's own)."""
    return next((name for name, r in PRESETS.items() if r == resize), None)


def build_extractor(name: str, weights: str | os.PathLike | None, device: torch.device,
                    fast: bool = False, resize: str = "pytorch-fid") -> FeatureExtractor:
    """``fast`` trades bit-parity with the reference for speed where a network offers it;
    ``resize`` picks pytorch-fid's, clean-fid's or torch-fidelity's preprocessing (Inception only)."""
    if resize not in RESIZES:
        raise BadInput(f"unknown resize {resize!r}: choose one of {', '.join(RESIZES)}")
    if resize != "pytorch-fid" and name != "inception":
        raise BadInput(f"--resize {resize} applies to Inception features only, not {name}")
    if name == "inception":
        from ganeval.features.inception import build_inception

        return build_inception(weights, device, fast, resize)
    if name == "illust2vec":
        from ganeval.features.illust2vec import build_illust2vec

        return build_illust2vec(weights, device)
    if name == "dinov2":
        from ganeval.features.dinov2 import build_dinov2

        return build_dinov2(weights, device)
    if name == "vgg16":
        from ganeval.features.vgg16 import build_vgg16

        return build_vgg16(weights, device)
    raise BadInput(f"unknown features {name!r}: choose one of {', '.join(FEATURES)}")


def weight_specs() -> list:
    """The weight file of every feature network (for ``ganeval weights list``)."""
    from ganeval.features.dinov2 import DINOV2_WEIGHTS
    from ganeval.features.illust2vec import ILLUST2VEC_WEIGHTS
    from ganeval.features.inception import INCEPTION_WEIGHTS
    from ganeval.features.vgg16 import VGG16_WEIGHTS

    return [INCEPTION_WEIGHTS, ILLUST2VEC_WEIGHTS, DINOV2_WEIGHTS, VGG16_WEIGHTS]
