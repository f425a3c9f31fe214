"""Mosaic processing: cut a large image into model-size squares and stitch the results back.

A model trained on R×R images sees R×R tiles at their own scale, instead of the whole image
shrunk to R×R. The bottom and right edges are padded by reflection up to a multiple of R
(so edge tiles hold image-like content rather than black), and the stitched result is
cropped back to the original size: with an identity model it reproduces the input exactly."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TileLayout:
    height: int  # the original image's size
    width: int
    tile: int
    rows: int
    cols: int

    @property
    def count(self) -> int:
        return self.rows * self.cols


def split_tiles(img: np.ndarray, tile: int) -> tuple[np.ndarray, TileLayout]:
    """H×W×C → (rows·cols)×tile×tile×C tiles in row-major order, and their layout."""
    if tile < 1:
        raise ValueError(f"tile size must be positive, got {tile}")
    h, w = img.shape[:2]
    rows, cols = -(-h // tile), -(-w // tile)
    pad = ((0, rows * tile - h), (0, cols * tile - w)) + ((0, 0),) * (img.ndim - 2)
    # numpy reflects repeatedly when the pad is wider than the image; a 1-pixel side repeats it
    padded = np.pad(img, pad, mode="reflect")
    tiles = padded.reshape(rows, tile, cols, tile, *img.shape[2:]).swapaxes(1, 2)
    return np.ascontiguousarray(tiles.reshape(rows * cols, tile, tile, *img.shape[2:])), TileLayout(h, w, tile, rows, cols)


def stitch_tiles(tiles: np.ndarray, layout: TileLayout) -> np.ndarray:
    """Inverse of ``split_tiles``: tiles (same size as split) → the H×W×C image."""
    if len(tiles) != layout.count or tiles.shape[1:3] != (layout.tile, layout.tile):
        raise ValueError(f"expected {layout.count} tiles of {layout.tile}×{layout.tile}, got {tiles.shape}")
    t = layout.tile
    grid = tiles.reshape(layout.rows, layout.cols, t, t, *tiles.shape[3:]).swapaxes(1, 2)
    full = grid.reshape(layout.rows * t, layout.cols * t, *tiles.shape[3:])
    return np.ascontiguousarray(full[:layout.height, :layout.width])
