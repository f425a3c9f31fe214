"""Image translation with a trained CycleGAN or U-GAT-IT checkpoint (``ganeval translate``).

By default an image is resized to the model's training size and translated whole. With
``mosaic`` a large image is cut into model-size tiles (edges padded by reflection), each
tile is translated at its own scale, and the results are stitched back to the original
size (``ganeval.tiling``)."""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from ganeval.device import resolve_device
from ganeval.errors import BadInput
from ganeval.resample import resize_rgb
from ganeval.tiling import split_tiles, stitch_tiles
from ganeval.models.checkpoint import load_checkpoint, load_generator, model_config
from ganeval.models.unpaired import translate_uint8

TRANSLATORS = ("cyclegan", "ugatit")


class ImageTranslator:
    """The generator of one direction of a translation checkpoint, on uint8 images."""

    def __init__(self, checkpoint: str | os.PathLike | dict[str, Any], direction: str = "AB",
                 device: str | torch.device = "cpu", use_ema: bool = True):
        data = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
        cfg = model_config(data)
        if cfg.model not in TRANSLATORS:
            hint = "; to upscale use `ganeval upscale --method srgan:CKPT`" if cfg.model == "srgan" else ""
            raise BadInput(f"{data.get('path', 'checkpoint')}: holds a '{cfg.model}' model, not an image translator "
                           f"({' or '.join(TRANSLATORS)}){hint}")
        direction = direction.upper()
        if direction not in ("AB", "BA"):
            raise BadInput(f"--direction must be AB or BA, not {direction!r}")
        self.device = resolve_device(device)
        G, self.cfg = load_generator(data, self.device, use_ema=use_ema)
        # plain NCHW: reflection padding and instance norm run faster so than channels-last on CPU
        self.G = G.to(memory_format=torch.contiguous_format)
        self.direction = direction
        self.size = self.cfg.resolution

    @classmethod
    def from_generator(cls, G: torch.nn.Module, size: int, direction: str = "AB",
                       device: str | torch.device = "cpu") -> "ImageTranslator":
        """Wrap a ready Translator (no checkpoint): for tests and for callers holding a model."""
        self = cls.__new__(cls)
        self.G, self.size, self.direction, self.device = G, size, direction.upper(), torch.device(device)
        return self

    def batch(self, images: np.ndarray) -> np.ndarray:
        """uint8 N×S×S×3 at the model size → translated uint8 N×S×S×3."""
        return translate_uint8(self.G, images, self.direction, self.device, torch.contiguous_format)

    def __call__(self, img: np.ndarray, mosaic: bool = False, batch_size: int = 16) -> np.ndarray:
        """One H×W×3 uint8 image → its translation: S×S (resized) by default, H×W with ``mosaic``."""
        if not mosaic:
            return self.batch(resize_rgb(img, self.size)[None])[0]
        tiles, layout = split_tiles(img, self.size)
        out = np.concatenate([self.batch(tiles[i:i + batch_size]) for i in range(0, len(tiles), batch_size)])
        return stitch_tiles(out, layout)
