"""Grids of generated (or real) images: a PNG for the command line, a matplotlib Figure for reports.

Every generative model in archlab speaks images ``(N, C, H, W)`` with pixels in ``[-1, 1]``; a grid lays
them out in rows of ``nrow`` with a one-pixel gap, maps ``[-1, 1]`` to ``[0, 255]`` (values outside are
clipped, NaN shows as black) and writes greyscale (C = 1) or RGB (C = 3) images.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from archlab.errors import ConfigError
from archlab.io import atomic_write_bytes

PAD = 1  # pixels between tiles
PAD_VALUE = 255  # white gaps: dark MNIST digits on black backgrounds stay apart


def _check_images(images: torch.Tensor, nrow: int) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ConfigError(f"An image grid needs a tensor (N, C, H, W) with C = 1 or 3, got {shape}.")
    if images.shape[0] == 0:
        raise ConfigError("An image grid needs at least one image, got none.")
    if nrow < 1:
        raise ConfigError(f"nrow (images per row) must be ≥ 1, got {nrow}.")
    return images


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1] → uint8 array (N, H, W, C) in [0, 255] (clipped; NaN → 0)."""
    x = images.detach().float().cpu().nan_to_num(nan=-1.0)
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def grid_array(images: torch.Tensor, nrow: int = 8) -> np.ndarray:
    """The tiles of ``images`` ([-1, 1]) side by side: uint8 (rows·(H+1)-1, nrow·(W+1)-1, C), white gaps."""
    images = _check_images(images, nrow)
    tiles = to_uint8(images)
    n, h, w, c = tiles.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + PAD) - PAD, cols * (w + PAD) - PAD, c), PAD_VALUE, dtype=np.uint8)
    for index, tile in enumerate(tiles):
        r, col = divmod(index, cols)
        grid[r * (h + PAD): r * (h + PAD) + h, col * (w + PAD): col * (w + PAD) + w] = tile
    return grid


def save_image_grid(images: torch.Tensor, path: str | Path, nrow: int = 8, scale: int = 2) -> Path:
    """Write ``images`` ([-1, 1]) as one PNG grid (atomically; each pixel ``scale``× for visibility)."""
    from PIL import Image

    if scale < 1:
        raise ConfigError(f"scale must be ≥ 1, got {scale}.")
    grid = grid_array(images, nrow)
    picture = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def image_grid(images: torch.Tensor, nrow: int = 8, titles: Sequence[str] | None = None,
               tile_inches: float = 0.9):
    """A matplotlib Figure of ``images`` ([-1, 1]) in rows of ``nrow``, one optional title per image."""
    from matplotlib.figure import Figure

    images = _check_images(images, nrow)
    if titles is not None and len(titles) != images.shape[0]:
        raise ConfigError(f"image_grid got {len(titles)} titles for {images.shape[0]} images; give one per image.")
    tiles = to_uint8(images)
    cols = min(nrow, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    extra = 0.25 if titles is not None else 0.0
    figure = Figure(figsize=(cols * tile_inches, rows * (tile_inches + extra)))
    axes = figure.subplots(rows, cols, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if index >= len(tiles):
            continue
        tile = tiles[index]
        if tile.shape[-1] == 1:
            ax.imshow(tile[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(tile, interpolation="nearest")
        if titles is not None:
            ax.set_title(str(titles[index]), fontsize=7, pad=2)
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.99 - (0.05 if titles else 0.0),
                           wspace=0.05, hspace=0.3 if titles else 0.05)
    return figure
