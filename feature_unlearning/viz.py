"""Pictures: image grids, traversal strips, before/after comparisons, histograms and loss curves.

Grids are plain ``uint8`` arrays ``(H, W, 3)`` (what Gradio and PIL take); plots are matplotlib figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

HIGHLIGHT = (255, 170, 0)  # marked images get an amber frame
BACKGROUND = 40


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(N, C, H, W)`` in [-1, 1] -> ``(N, H, W, 3)`` uint8 (grayscale repeated into RGB)."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    return x.permute(0, 2, 3, 1).numpy()


def image_grid(
    images: torch.Tensor,
    *,
    nrow: int = 8,
    scale: int = 1,
    padding: int = 2,
    highlight: Sequence[int] = (),
    highlight_color: tuple[int, int, int] = HIGHLIGHT,
) -> np.ndarray:
    """Tile ``images`` ``(N, C, H, W)`` in [-1, 1] into one ``(H, W, 3)`` uint8 picture, ``nrow`` per row.

    Each image is enlarged ``scale`` times (nearest neighbour). Images whose index is in ``highlight`` get
    a frame of ``highlight_color`` in their padding (``padding`` must then be at least 1).
    """
    tiles = to_uint8(images)
    n = len(tiles)
    if n == 0:
        return np.full((1, 1, 3), BACKGROUND, np.uint8)
    if scale > 1:
        tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
    h, w = tiles.shape[1:3]
    cols = min(nrow, n)
    rows = (n + cols - 1) // cols
    cell_h, cell_w = h + 2 * padding, w + 2 * padding
    grid = np.full((rows * cell_h, cols * cell_w, 3), BACKGROUND, np.uint8)
    marked = set(int(i) for i in highlight)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = r * cell_h, c * cell_w
        if i in marked and padding:
            grid[y : y + cell_h, x : x + cell_w] = highlight_color
        grid[y + padding : y + padding + h, x + padding : x + padding + w] = tile
    return grid


def grid_index(x: float, y: float, *, n: int, nrow: int, tile: int, padding: int = 2) -> int | None:
    """Which image of an :func:`image_grid` (``tile`` px images) the pixel ``(x, y)`` falls on, or None."""
    cell = tile + 2 * padding
    c, r = int(x // cell), int(y // cell)
    if c >= min(nrow, n) or c < 0 or r < 0:
        return None
    i = r * min(nrow, n) + c
    return i if i < n else None


def save_image(array: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 ``(H, W, 3)`` array as PNG (the folder is created)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path
