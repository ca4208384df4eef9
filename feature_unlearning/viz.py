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


# ------------------------------------------------------------------------- labelled pictures (uint8)

REMOVED_INK = (255, 80, 60)  # difference images: ink the unlearned model no longer draws
ADDED_INK = (60, 190, 255)  # ... and ink it draws where the original did not
TEXT = (235, 235, 235)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size only
        return ImageFont.load_default()


def add_title(array: np.ndarray, text: str, *, height: int = 28, size: int = 16) -> np.ndarray:
    """``array`` ``(H, W, 3)`` uint8 with a band of ``height`` px on top holding ``text``, centred."""
    from PIL import Image, ImageDraw

    band = Image.new("RGB", (array.shape[1], height), (BACKGROUND,) * 3)
    draw = ImageDraw.Draw(band)
    font = _font(size)
    width = draw.textlength(text, font=font)
    draw.text(((array.shape[1] - width) / 2, (height - size) / 2 - 1), text, fill=TEXT, font=font)
    return np.concatenate([np.asarray(band), array], axis=0)


def traversal_grid(
    images: torch.Tensor,
    alphas: Sequence[float],
    *,
    scale: int = 3,
    padding: int = 2,
    label_size: int = 14,
) -> np.ndarray:
    """Traversal strips as one picture: ``images`` ``(N, A, C, H, W)`` from
    :func:`~feature_unlearning.directions.traverse`, one row per sample, one column per ``alphas`` value,
    each column headed by its ``a`` (the ``a = 0`` column is framed: the samples as they are)."""
    if images.ndim != 5 or images.shape[1] != len(alphas):
        raise ValueError(f"images must be (N, {len(alphas)}, C, H, W) for {len(alphas)} alphas, got {tuple(images.shape)}")
    n, a = images.shape[:2]
    zero = [j for j, v in enumerate(alphas) if abs(float(v)) < 1e-9]
    marked = [i * a + j for i in range(n) for j in zero]
    grid = image_grid(images.reshape(n * a, *images.shape[2:]), nrow=a, scale=scale, padding=padding,
                      highlight=marked, highlight_color=(110, 110, 110))
    cell = images.shape[-1] * scale + 2 * padding
    return _column_labels(grid, [f"{float(v):+g}".replace("+0", "0") for v in alphas], cell, label_size)


def _column_labels(grid: np.ndarray, labels: Sequence[str], cell: int, size: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    height = size + 10
    band = Image.new("RGB", (grid.shape[1], height), (BACKGROUND,) * 3)
    draw = ImageDraw.Draw(band)
    font = _font(size)
    for j, text in enumerate(labels):
        width = draw.textlength(text, font=font)
        draw.text((j * cell + (cell - width) / 2, 4), text, fill=TEXT, font=font)
    return np.concatenate([np.asarray(band), grid], axis=0)


def difference_images(original: torch.Tensor, unlearned: torch.Tensor) -> torch.Tensor:
    """Signed difference of two renderings ``(N, C, H, W)`` in [-1, 1] as colour images ``(N, 3, H, W)``
    in [-1, 1]: ink removed by unlearning in red (:data:`REMOVED_INK`), ink added in blue, black where alike.
    Brightness is the square root of the change, so that small changes stay visible."""
    diff = (unlearned.float().mean(1) - original.float().mean(1)).cpu() / 2  # (N, H, W) in [-1, 1]
    removed, added = (-diff).clamp_min(0).sqrt(), diff.clamp_min(0).sqrt()
    rgb = torch.stack(
        [removed * REMOVED_INK[c] / 255 + added * ADDED_INK[c] / 255 for c in range(3)], dim=1
    ).clamp(0, 1)
    return rgb * 2 - 1


def side_by_side(
    original: torch.Tensor,
    unlearned: torch.Tensor,
    *,
    nrow: int = 4,
    scale: int = 3,
    padding: int = 2,
    highlight: Sequence[int] = (),
    titles: Sequence[str] = ("original", "unlearned", "difference"),
    gap: int = 12,
) -> np.ndarray:
    """Three titled grids of the same latents: ``original`` | ``unlearned`` | their difference
    (:func:`difference_images`). ``highlight`` frames the same indices in the first two grids."""
    if original.shape != unlearned.shape:
        raise ValueError(f"original and unlearned must have one shape, got {tuple(original.shape)} and {tuple(unlearned.shape)}")
    panels = [
        image_grid(original, nrow=nrow, scale=scale, padding=padding, highlight=highlight),
        image_grid(unlearned, nrow=nrow, scale=scale, padding=padding, highlight=highlight),
        image_grid(difference_images(original, unlearned), nrow=nrow, scale=scale, padding=padding),
    ]
    panels = [add_title(p, t) for p, t in zip(panels, titles)]
    spacer = np.full((panels[0].shape[0], gap, 3), BACKGROUND, np.uint8)
    return np.concatenate([panels[0], spacer, panels[1], spacer, panels[2]], axis=1)


# ------------------------------------------------------------------------------ plots (matplotlib)


def _figure(size: tuple[float, float]):
    # A bare Figure (not pyplot): no global state, safe from worker threads, nothing to close.
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=100, layout="constrained")


def projection_histogram(
    positive: torch.Tensor,
    negative: torch.Tensor,
    threshold: float,
    *,
    bins: int = 40,
    size: tuple[float, float] = (6.0, 3.2),
):
    """Histogram of the projections ``z . d`` of latents with (``positive``) and without the feature,
    with the threshold t as a vertical line; each class is normalised to its own area, so a rare feature
    stays visible. Returns a matplotlib ``Figure``."""
    pos, neg = positive.detach().float().cpu().numpy(), negative.detach().float().cpu().numpy()
    values = np.concatenate([pos, neg, [threshold]])
    edges = np.linspace(values.min(), values.max(), bins + 1) if len(values) > 1 else bins
    fig = _figure(size)
    ax = fig.add_subplot()
    if len(neg):
        ax.hist(neg, bins=edges, density=True, alpha=0.55, color="#5b8def", label=f"without the feature ({len(neg)})")
    if len(pos):
        ax.hist(pos, bins=edges, density=True, alpha=0.6, color="#f5a300", label=f"with the feature ({len(pos)})")
    ax.axvline(threshold, color="#d62728", linewidth=2, label=f"threshold t = {threshold:.2f}")
    ax.set_xlabel("projection on the feature direction  z · d")
    ax.set_ylabel("density")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


LOSS_TERMS = {"loss": "total", "recon": "L_recon (keep)", "unlearn": "L_unlearn", "percep": "L_percep (1 - MS-SSIM)"}


def loss_curves(history, *, total_steps: int | None = None, size: tuple[float, float] = (6.0, 3.2)):
    """The loss terms over the steps of an unlearning run: ``history`` is a
    :class:`~feature_unlearning.unlearn.History` or a dict with ``"step"`` and the lists of
    :data:`LOSS_TERMS`. ``total_steps`` fixes the x range so a running plot does not rescale.
    Returns a matplotlib ``Figure``."""
    data = history.asdict() if hasattr(history, "asdict") else dict(history)
    steps = list(data.get("step", []))
    fig = _figure(size)
    ax = fig.add_subplot()
    for key, label in LOSS_TERMS.items():
        values = list(data.get(key, []))
        if steps and len(values) == len(steps):
            ax.plot(steps, values, label=label, linewidth=2.2 if key == "loss" else 1.3)
    if total_steps:
        ax.set_xlim(0, total_steps)
    if not steps:
        ax.text(0.5, 0.5, "no steps yet", ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_ylim(bottom=0)
    if ax.lines:  # above the axes, where no curve runs
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=len(ax.lines), fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def fit(images: torch.Tensor, size: int) -> tuple[torch.Tensor, int]:
    """Images ``(..., C, H, W)`` and the integer ``scale`` that show them about ``size`` px tall: small
    images are kept (to be enlarged ``scale`` times, nearest neighbour, by :func:`image_grid`); large ones
    are shrunk by area averaging (scale 1)."""
    h, w = images.shape[-2:]
    if h <= size:
        return images, max(1, round(size / h))
    lead = images.shape[:-3]
    flat = images.reshape(-1, *images.shape[-3:]).float()
    small = torch.nn.functional.interpolate(flat, size=(size, max(1, round(w * size / h))), mode="area")
    return small.reshape(*lead, *small.shape[1:]), 1
