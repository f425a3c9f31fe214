"""The DINOv2 wrapper against a plain timm forward on identical test-built weights."""
from __future__ import annotations

import math

import pytest
import numpy as np
import torch
from PIL import Image
import torch.nn.functional as F

from ganeval.compat import ensure_torchvision_importable  # noqa: E402

ensure_torchvision_importable()  # timm imports torchvision
pytest.importorskip("timm")

from ganeval.errors import BadInput  # noqa: E402
from ganeval.features.dinov2 import (  # noqa: E402
    IMAGENET_MEAN, IMAGENET_STD, VIT_L14, DinoV2Extractor, build_vit, resample_position_grid)

SMALL = dict(patch_size=14, embed_dim=48, depth=2, num_heads=3, init_values=1e-5)


def _original_format_state(arch, seed=0):
    """A DINOv2 checkpoint as facebookresearch publishes it: 518-px position grid, mask_token."""
    torch.manual_seed(seed)
    vit518 = build_vit(arch, img_size=518)
    state = {k: v.clone() for k, v in vit518.state_dict().items()}
    for key, value in state.items():  # timm's init leaves some tensors constant; make every one matter
        state[key] = value + 0.02 * torch.randn_like(value)
        if key.endswith(".gamma"):  # trained LayerScales are far from their 1e-5 init
            state[key] = 0.5 + 0.1 * torch.randn_like(value)
    state["mask_token"] = torch.zeros(1, arch["embed_dim"])
    return state


def test_wrapper_equals_timm_forward():
    state = _original_format_state(SMALL)
    ours = DinoV2Extractor(state, "test", False, SMALL).eval()
    plain = build_vit(SMALL, img_size=224).eval()
    pos = state["pos_embed"]
    m = 37
    grid = F.interpolate(pos[:, 1:].reshape(1, m, m, -1).permute(0, 3, 1, 2), scale_factor=(16.1 / 37, 16.1 / 37),
                         mode="bicubic", antialias=False).permute(0, 2, 3, 1).reshape(1, 256, -1)
    plain.load_state_dict({**{k: v for k, v in state.items() if k != "mask_token"},
                           "pos_embed": torch.cat([pos[:, :1], grid], 1)})
    images = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        got = ours(images)
        pil = [np.asarray(Image.fromarray(a).resize((224, 224), Image.BICUBIC)) for a in images.permute(0, 2, 3, 1).numpy()]
        raw = torch.from_numpy(np.stack(pil)).permute(0, 3, 1, 2).float()  # dgm-eval: Pillow bicubic
        x = raw / 255
        x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        want = plain.forward_head(plain.forward_features(x), pre_logits=True)
        cls_after_norm = plain.forward_features(x)[:, 0]
    assert got.shape == (3, 48) and ours.info.dim == 48 and ours.info.name == "dinov2"
    assert torch.allclose(got, want, atol=1e-5, rtol=0)
    assert got.std(0).mean() > 1e-2  # the images give different features
    pre = ours.preprocess(images) * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    assert torch.equal((pre * 255).round(), raw)  # the network's input is Pillow's, exactly
    # the CLS token after the final norm
    assert torch.allclose(want, cls_after_norm, atol=1e-6)


def test_vit_l14_shapes_without_running():
    vit = build_vit(VIT_L14, img_size=224, device="meta")
    state = vit.state_dict()
    assert state["pos_embed"].shape == (1, 1 + 16 * 16, 1024)
    assert state["patch_embed.proj.weight"].shape == (1024, 3, 14, 14)
    assert state["blocks.23.ls2.gamma"].shape == (1024,)
    assert "blocks.24.norm1.weight" not in state and vit.num_features == 1024
    published_grid = torch.zeros(1, 1 + 37 * 37, 8)
    assert resample_position_grid(published_grid, 16).shape == (1, 257, 8)
    assert math.isclose(sum(p.numel() for p in vit.parameters()) / 1e6, 304.4, rel_tol=0.01)


def test_foreign_weights_rejected():
    state = _original_format_state(SMALL)
    del state["blocks.1.norm1.weight"]
    with pytest.raises(BadInput, match="missing blocks.1.norm1.weight"):
        DinoV2Extractor(state, "t", False, SMALL, "x.pth")


def test_missing_weights_offline(tmp_path):
    from ganeval.errors import MissingWeights
    from ganeval.features.registry import build_extractor

    with pytest.raises(MissingWeights, match="dinov2_vitl14_pretrain.pth not in the cache"):
        build_extractor("dinov2", None, torch.device("cpu"))
