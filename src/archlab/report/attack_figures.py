"""Figures of adversarial robustness: accuracy against ε, and a grid of adversarial examples.

Matplotlib Figure objects on their own Agg canvas (no pyplot), drawn from plain NumPy arrays.
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from archlab.report.explain_figures import show_mosaic, to_unit
from archlab.report.figures import _class_name, new_figure

WRONG_COLOUR = "tab:red"


def robustness_curve(curves: dict[str, tuple[list[float], list[float]]],
                     title: str = "Accuracy under attack") -> Figure:
    """Accuracy against ε (pixel units), one line per attack method: ``{method: (eps, accuracy)}``."""
    figure = new_figure(6, 3.6)
    axes = figure.subplots()
    for method, (eps, accuracy) in curves.items():
        axes.plot(eps, accuracy, marker="o", linewidth=1.6, label=method.upper())
    axes.set_ylim(0, 1.05)
    axes.set_xlabel("ε (L∞ radius, pixel units in [0, 1])")
    axes.set_ylabel("accuracy")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return figure


def adversarial_grid(clean: np.ndarray, adversarial: np.ndarray, labels: np.ndarray, clean_pred: np.ndarray,
                     adversarial_pred: np.ndarray, classes: list[str], eps: float, method: str) -> Figure:
    """Three rows: the clean images, the adversarial ones, and the perturbations ``x' − x``.

    Images are float pixels in [0, 1], ``[K, C, H, W]``. Captions give the true class and the predictions,
    red when wrong; perturbations are drawn blue (darker) to red (brighter) on a scale from −ε to +ε.
    """
    truth, before, after = (_names(classes, values) for values in (labels, clean_pred, adversarial_pred))
    bound = max(float(eps), 1e-6)
    difference = (np.asarray(adversarial, dtype=np.float32) - np.asarray(clean, dtype=np.float32)).mean(axis=1)
    rows = [
        ("clean", [to_unit(image, 1.0) for image in clean], [f"{t}: {p}" for t, p in zip(truth, before)], before),
        ("adversarial", [to_unit(image, 1.0) for image in adversarial], after, after),
        ("perturbation", [colormaps["seismic"]((d / bound + 1) / 2)[..., :3] for d in difference], None, None),
    ]
    figure = new_figure(max(1.0 * len(clean), 3.0) + 0.8, 4.4)
    for axes, (label, cells, captions, predicted) in zip(figure.subplots(3, 1), rows):
        colours = [WRONG_COLOUR if p != t else "black" for p, t in zip(predicted or [], truth)]
        show_mosaic(axes, cells, captions, colours=colours)
        axes.set_ylabel(label, fontsize=8)
    figure.suptitle(f"{method.upper()} at ε = {eps:g} (captions: true: predicted; red = wrong)", fontsize=10)
    return figure


def _names(classes: list[str], values: np.ndarray) -> list[str]:
    return [_class_name(classes, int(value)) for value in values]
