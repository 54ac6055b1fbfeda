"""Figures of what a CNN sees: first-layer filters, activation maps, Grad-CAM overlays.

Like :mod:`archlab.report.figures`, every function returns a :class:`matplotlib.figure.Figure` on its own
Agg canvas (no pyplot) and takes plain NumPy arrays, so it knows nothing of models or hooks. Grids of small
images are drawn as one mosaic per row (one ``imshow`` with the cells labelled by tick labels) rather than
one axes per cell: a figure of 32 filters then renders in a tenth of the time, which keeps reports fast.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from archlab.report.figures import new_figure

HEAT_CMAP = "jet"
HEAT_ALPHA = 0.45
PAD = 1  # pixels of white between the cells of a mosaic


def to_unit(image: np.ndarray, vmax: float = 255) -> np.ndarray:
    """``[1, H, W]``, ``[H, W]`` or ``[3, H, W]`` pixels in [0, vmax] → ``[H, W, 3]`` floats in [0, 1]."""
    image = np.asarray(image, dtype=np.float32) / vmax
    if image.ndim == 3 and image.shape[0] == 3:
        image = np.transpose(image, (1, 2, 0))
    elif image.ndim == 3:
        image = image[0]
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.clip(image, 0, 1)


def mosaic(cells: list[np.ndarray], columns: int) -> np.ndarray:
    """Tile ``[h, w, 3]`` cells of one size into rows of ``columns``, white between them."""
    height, width = cells[0].shape[:2]
    rows = math.ceil(len(cells) / columns)
    canvas = np.ones((rows * (height + PAD) - PAD, columns * (width + PAD) - PAD, 3), dtype=np.float32)
    for index, cell in enumerate(cells):
        top, left = (index // columns) * (height + PAD), (index % columns) * (width + PAD)
        canvas[top : top + height, left : left + width] = cell
    return canvas


def show_mosaic(axes, cells: list[np.ndarray], labels: list[str] | None = None, columns: int | None = None,
                colours: list[str] | None = None) -> None:
    """Draw ``cells`` as one image on ``axes``; with ``labels`` (one row only) each cell gets its caption."""
    columns = columns or len(cells)
    axes.imshow(mosaic(cells, columns), interpolation="nearest")
    axes.set_yticks([])
    for spine in axes.spines.values():
        spine.set_visible(False)
    if not labels:
        axes.set_xticks([])
        return
    width = cells[0].shape[1] + PAD
    axes.set_xticks([index * width + (width - PAD) / 2 for index in range(len(labels))], labels, fontsize=7)
    axes.tick_params(axis="x", length=0)
    for text, colour in zip(axes.get_xticklabels(), colours or []):
        text.set_color(colour)


def scaled(values: np.ndarray, cmap: str | None = None, symmetric: bool = False) -> np.ndarray:
    """One 2-D array → ``[h, w, 3]`` in [0, 1]: min–max scaled (or ±max|v| with 0 at mid-grey), coloured."""
    values = np.asarray(values, dtype=np.float32)
    if symmetric:
        bound = max(float(np.abs(values).max()), 1e-12)
        unit = (values / bound + 1) / 2
    else:
        low, span = float(values.min()), float(values.max() - values.min())
        unit = (values - low) / span if span > 0 else np.zeros_like(values)
    if cmap is None:
        return np.repeat(unit[..., None], 3, axis=2)
    return colormaps[cmap](unit)[..., :3].astype(np.float32)


def filters_figure(weights: np.ndarray, max_filters: int = 64) -> Figure:
    """Mosaic of first-layer filters ``[out, in, kh, kw]``: grey with 0 at mid-grey (bright = positive weight).

    Three input channels are shown in colour (each filter min–max scaled); any other number of input
    channels is averaged into one grey image.
    """
    weights = np.asarray(weights, dtype=np.float32)[:max_filters]
    if weights.shape[1] == 3:
        cells = [np.transpose((w - w.min()) / max(float(w.max() - w.min()), 1e-12), (1, 2, 0)) for w in weights]
    else:
        cells = [scaled(w.mean(axis=0), symmetric=True) for w in weights]
    columns = min(16, len(cells))
    rows = math.ceil(len(cells) / columns)
    figure = new_figure(min(0.55 * columns + 0.6, 10), 0.55 * rows + 0.7)
    show_mosaic(figure.subplots(), cells, columns=columns)
    kh, kw = weights.shape[-2:]
    figure.suptitle(f"First-layer filters ({len(cells)} shown, {kh}×{kw}, row by row)", fontsize=10)
    return figure


def activations_figure(image: np.ndarray, maps: dict[str, np.ndarray], max_channels: int = 8) -> Figure:
    """One row per layer: the input, then the ``max_channels`` most active channels (highest mean).

    ``image`` is the uint8 input (``[C, H, W]`` or ``[H, W]``); ``maps`` are ``{layer: [channels, h, w]}``.
    Each channel has its own colour scale (viridis), since channels and layers differ in range.
    """
    rows = max(len(maps), 1)
    figure = new_figure(1.1 * (max_channels + 1) + 0.4, 1.25 * rows + 0.5)
    grid = figure.subplots(rows, 2, squeeze=False, gridspec_kw={"width_ratios": [1, max_channels]})
    for (input_axes, axes), (layer, activation) in zip(grid, maps.items()):
        activation = np.asarray(activation, dtype=np.float32)
        show_mosaic(input_axes, [to_unit(image)])
        input_axes.set_title(f"{layer}\n{'×'.join(map(str, activation.shape))}", fontsize=7)
        strongest = np.argsort(-activation.reshape(len(activation), -1).mean(1), kind="stable")[:max_channels]
        show_mosaic(axes, [scaled(activation[c], "viridis") for c in strongest], [f"ch {c}" for c in strongest])
    figure.suptitle("Activation maps (the most active channels of each stage)", fontsize=10)
    return figure


def overlay(image: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """The image with a heat map in [0, 1] blended on top (jet colours), as ``[H, W, 3]`` in [0, 1]."""
    colours = colormaps[HEAT_CMAP](np.clip(np.asarray(heat, dtype=np.float32), 0, 1))[..., :3]
    return (1 - HEAT_ALPHA) * to_unit(image) + HEAT_ALPHA * colours.astype(np.float32)


def grad_cam_figure(images: np.ndarray, rows: list[tuple[str, np.ndarray]], titles: list[str],
                    suptitle: str = "Grad-CAM") -> Figure:
    """Heat maps over their images: one column per image, one row per ``(row label, maps [K, H, W])``.

    ``images`` are uint8 ``[K, C, H, W]`` or ``[K, H, W]``; ``titles`` caption the columns. A map that is
    zero everywhere (no positive evidence for the class at that layer) gets "(none)" after its caption.
    """
    count = len(images)
    figure = new_figure(max(1.1 * count + 0.8, 4.5), 1.35 * max(len(rows), 1) + 0.6)
    for axes, (label, heats) in zip(figure.subplots(len(rows), 1, squeeze=False)[:, 0], rows):
        captions = [title if np.max(heats[i]) > 0 else f"{title} (none)" for i, title in enumerate(titles)]
        show_mosaic(axes, [overlay(images[i], heats[i]) for i in range(count)], captions)
        axes.set_ylabel(label, fontsize=8)
    figure.suptitle(suptitle, fontsize=10)
    return figure
