"""Image folders in tests, as a reference package reads them (one PNG a file)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def png_folders(root: Path, **sets: np.ndarray) -> dict[str, Path]:
    """``png_folders(tmp, real=a, fake=b)``: root/real/000.png … from each uint8 N×H×W×3 array."""
    out = {}
    for name, images in sets.items():
        folder = root / name
        folder.mkdir()
        for i, image in enumerate(images):
            Image.fromarray(image).save(folder / f"{i:03d}.png")
        out[name] = folder
    return out
