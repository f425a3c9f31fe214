"""DINOv2 ViT-L/14 features for FD_DINOv2 (Stein et al. 2023, dgm-eval).

As dgm-eval: images resized to 224×224 by Pillow (bicubic, on the 8-bit image, as torchvision's
``Resize`` does on a PIL image), scaled to [0, 1], normalised with ImageNet mean/std; the feature is the CLS
token after the final LayerNorm (1024-d). The architecture is timm's
``vit_large_patch14_dinov2`` at 224 px (``timm`` is an optional dependency). The published
checkpoint (facebookresearch format, 518 px) has a 37×37 position grid; it is resampled
once at load time to 16×16 exactly as the DINOv2 hub model does on every 224-px forward
(bicubic, scale factor (16 + 0.1) / 37, no antialiasing), so features match dgm-eval's."""
from __future__ import annotations

import math

import numpy as np
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ganeval.errors import BadInput, GanevalError
from ganeval.features.base import ExtractorInfo, FeatureExtractor
from ganeval.weights import WeightSpec, file_sha256, load_state_dict, locate_weights

DINOV2_WEIGHTS = WeightSpec(
    filename="dinov2_vitl14_pretrain.pth",
    url="https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth",
    sha256_prefix=None,  # Meta publishes no checksum; the file is checked by its tensor shapes
    how_to_get="download dinov2_vitl14_pretrain.pth from https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/ "
               "on a machine with internet.",
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 224
VIT_L14 = dict(patch_size=14, embed_dim=1024, depth=24, num_heads=16, init_values=1e-5)
_INTERPOLATE_OFFSET = 0.1  # DINOv2's interpolate_offset


def _timm():
    from ganeval.compat import ensure_torchvision_importable

    ensure_torchvision_importable()  # timm imports torchvision
    try:
        import timm
    except ImportError:
        raise GanevalError("--features dinov2 needs timm: pip install timm") from None
    return timm


def build_vit(arch: dict[str, Any] = VIT_L14, img_size: int = INPUT_SIZE, device: str | torch.device = "cpu"):
    """timm's DINOv2 ViT (no classifier head) for ``img_size`` inputs."""
    _timm()
    from timm.models.vision_transformer import VisionTransformer

    with torch.device(device):
        return VisionTransformer(img_size=img_size, num_classes=0, **arch)


def resample_position_grid(pos_embed: torch.Tensor, grid: int) -> torch.Tensor:
    """1×(1+M²)×D → 1×(1+grid²)×D, as DINOv2's ``interpolate_pos_encoding``."""
    cls, patches = pos_embed[:, :1], pos_embed[:, 1:]
    m = int(math.isqrt(patches.shape[1]))
    if m * m != patches.shape[1]:
        raise BadInput(f"DINOv2 position embedding of {patches.shape[1]} patches is not a square grid")
    if m == grid:
        return pos_embed
    scale = (grid + _INTERPOLATE_OFFSET) / m
    dim = patches.shape[-1]
    grid_pos = patches.float().reshape(1, m, m, dim).permute(0, 3, 1, 2)
    grid_pos = F.interpolate(grid_pos, scale_factor=(scale, scale), mode="bicubic", antialias=False)
    if grid_pos.shape[-2:] != (grid, grid):
        raise BadInput(f"DINOv2 position grid {m}×{m} does not resample to {grid}×{grid}")
    return torch.cat([cls.float(), grid_pos.permute(0, 2, 3, 1).reshape(1, grid * grid, dim)], dim=1)


def convert_dinov2_state(state: dict[str, torch.Tensor], model: torch.nn.Module, source: str) -> dict[str, torch.Tensor]:
    """facebookresearch (or timm) DINOv2 keys → this timm model's, position grid resampled;
    any other difference is an error naming the first mismatching key."""
    state = dict(state.get("model", state)) if isinstance(state.get("model"), dict) else dict(state)
    state.pop("mask_token", None)
    expected = model.state_dict()
    if "pos_embed" in state and "pos_embed" in expected:
        grid = int(math.isqrt(expected["pos_embed"].shape[1] - 1))
        state["pos_embed"] = resample_position_grid(state["pos_embed"], grid)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[0]}" if missing else f"unexpected {unexpected[0]}"
        raise BadInput(f"{source}: not DINOv2 ViT weights of this size ({detail}, {len(missing)} missing, "
                       f"{len(unexpected)} unexpected)")
    for key, value in expected.items():
        if state[key].shape != value.shape:
            raise BadInput(f"{source}: not DINOv2 ViT-L/14 weights ({key} has shape {tuple(state[key].shape)}, "
                           f"expected {tuple(value.shape)})")
    return state


class DinoV2Extractor(FeatureExtractor):
    """uint8 RGB N×3×H×W → CLS token features N×embed_dim (1024 for ViT-L/14)."""

    def __init__(self, state: dict[str, torch.Tensor], weights_id: str, standard: bool,
                 arch: dict[str, Any] = VIT_L14, source: str = "weights") -> None:
        super().__init__()
        vit = build_vit(arch, INPUT_SIZE)
        vit.load_state_dict(convert_dinov2_state(state, vit, source))
        self.vit = vit.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.info = ExtractorInfo("dinov2", int(arch["embed_dim"]), INPUT_SIZE, weights_id, standard, "exact", "native")

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 N×3×H×W → normalised N×3×224×224: each image resized by Pillow's bicubic filter,
        as dgm-eval's transform does (torch's antialiased bicubic differs by a level on ~20% of values)."""
        from ganeval.resample import resize_rgb

        if images.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            arrays = images.permute(0, 2, 3, 1).to(torch.uint8).cpu().numpy()
            resized = np.stack([resize_rgb(a, INPUT_SIZE, "bicubic") for a in arrays])
            images = torch.from_numpy(resized).permute(0, 3, 1, 2).to(images.device)
        x = images.float()
        return (x / 255.0 - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.vit(self.preprocess(images))


def build_dinov2(weights: str | os.PathLike | None = None, device: torch.device | str = "cpu") -> DinoV2Extractor:
    """ViT-L/14 with weights from ``weights``, the cache, or the official download."""
    _timm()
    path = Path(locate_weights(DINOV2_WEIGHTS, weights))
    state = load_state_dict(path)
    standard = path.name == DINOV2_WEIGHTS.filename  # no published checksum: the official name stands in
    return DinoV2Extractor(state, file_sha256(path), standard, VIT_L14, str(path)).to(device)
