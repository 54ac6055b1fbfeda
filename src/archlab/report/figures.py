"""Figures of a run: training curves, learning rate, confusion matrix, per-class accuracy, mistakes, gradients.

Every function returns a :class:`matplotlib.figure.Figure` attached to its own Agg canvas. pyplot is never
used, so nothing global is set (no backend switch, no figure registry): a figure is freed like any other
object once the caller drops it. Functions whose input column is optional (learning rate, gradient norms)
return None when the run did not log it.
"""

from __future__ import annotations

import io
import math
import re

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from archlab.report.metrics_csv import Row, columns_with_prefix, first_present, read_metrics_csv, series

__all__ = [
    "confusion_matrix_figure",
    "figure_to_png",
    "grad_norm_heatmap",
    "layer_heatmap",
    "update_ratio_heatmap",
    "learning_rate_curve",
    "loss_accuracy_curves",
    "mistakes_grid",
    "per_class_accuracy_figure",
    "read_metrics_csv",
    "series",
]

TRAIN_COLOUR = "tab:blue"
FLOOR = 1e-38  # log10 of zero is drawn as float32's smallest normal number
VAL_COLOUR = "tab:orange"


def new_figure(width: float, height: float) -> Figure:
    """Return an empty figure (inches) with constrained layout, drawn by its own Agg canvas."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def figure_to_png(figure: Figure, dpi: int = 100) -> bytes:
    """Render ``figure`` to PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


def smooth(values: np.ndarray, weight: float = 0.6) -> np.ndarray:
    """Exponential moving average with bias correction (as TensorBoard draws it): ``weight`` is the memory."""
    smoothed = np.empty_like(values, dtype=float)
    average = 0.0
    for index, value in enumerate(values):
        average = weight * average + (1.0 - weight) * value
        smoothed[index] = average / (1.0 - weight ** (index + 1))
    return smoothed


# --- training curves -------------------------------------------------------------------------------------


def loss_accuracy_curves(metrics_rows: list[Row]) -> Figure | None:
    """Two panels, loss and accuracy against the optimizer step.

    Training values (one per logged step) are drawn faintly, with a lightly smoothed line on top;
    validation values (one per epoch) are drawn as markers. Absent series are skipped; None if the run
    logged neither loss nor accuracy.
    """
    panels = {
        "loss": (("train_loss", "train_loss_step"), ("val_loss", "val_loss_epoch")),
        "accuracy": (("train_acc", "train_acc_step"), ("val_acc", "val_acc_epoch")),
    }
    found = {name: (first_present(metrics_rows, train), first_present(metrics_rows, val))
             for name, (train, val) in panels.items()}
    if not any(key for keys in found.values() for key in keys):
        return None
    figure = new_figure(10, 3.8)
    for axes, (name, (train_key, val_key)) in zip(figure.subplots(1, 2), found.items()):
        _draw_curve_panel(axes, metrics_rows, name, train_key, val_key)
    return figure


def _draw_curve_panel(axes, rows: list[Row], name: str, train_key: str | None, val_key: str | None) -> None:
    """Draw one metric's train and validation series on ``axes``."""
    if train_key:
        steps, values = series(rows, train_key)
        axes.plot(steps, values, color=TRAIN_COLOUR, alpha=0.25, linewidth=0.8)
        axes.plot(steps, smooth(values), color=TRAIN_COLOUR, linewidth=1.6, label=f"train ({train_key})")
    if val_key:
        steps, values = series(rows, val_key)
        axes.plot(steps, values, color=VAL_COLOUR, marker="o", linewidth=1.6, label=f"validation ({val_key})")
    if not (train_key or val_key):
        axes.text(0.5, 0.5, f"no {name} logged", ha="center", va="center", transform=axes.transAxes)
    else:
        axes.legend(fontsize=8)
    axes.set_title(name.capitalize())
    axes.set_xlabel("step")
    axes.set_ylabel(name)
    axes.grid(alpha=0.3)


def learning_rate_curve(rows: list[Row]) -> Figure | None:
    """Learning rate against the step for every ``lr-*`` column (one per optimizer / parameter group)."""
    columns = columns_with_prefix(rows, "lr-")
    if not columns:
        return None
    figure = new_figure(7, 3.2)
    axes = figure.subplots()
    every_value = []
    for column in columns:
        steps, values = series(rows, column)
        axes.plot(steps, values, drawstyle="steps-post", linewidth=1.6, label=column.removeprefix("lr-"))
        every_value.extend(values.tolist())
    positive = [value for value in every_value if value > 0]
    if positive and len(positive) == len(every_value) and max(positive) / min(positive) > 20:
        axes.set_yscale("log")
    axes.set_title("Learning rate")
    axes.set_xlabel("step")
    axes.set_ylabel("learning rate")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return figure


def grad_norm_heatmap(rows: list[Row], order: list[str] | None = None) -> Figure | None:
    """Heat map of log10 gradient norms, one row per layer (``grad_norm/<layer>`` columns), one column per step.

    Norms of zero (a dead layer, or an underflow) are floored at 1e-38 (float32's smallest normal number)
    so they show as the darkest cell rather than vanish.
    """
    return layer_heatmap(rows, "grad_norm/", "log10 gradient norm", "Gradient norm per layer (log10)", order)


def update_ratio_heatmap(rows: list[Row], order: list[str] | None = None) -> Figure | None:
    """Heat map of log10 ‖ΔW‖/‖W‖ per layer and step (``update_ratio/<layer>`` columns); ~-3 is healthy."""
    return layer_heatmap(rows, "update_ratio/", "log10 update / weight", "Update-to-weight ratio per layer (log10)",
                         order)


def natural_key(name: str) -> list:
    """Sort key that orders ``stages.2.10`` after ``stages.2.9`` (numbers compared as numbers)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


def layer_heatmap(rows: list[Row], prefix: str, label: str, title: str,
                  order: list[str] | None = None) -> Figure | None:
    """Heat map of log10 of the ``<prefix><layer>`` columns: layers top (first) to bottom (last), steps across.

    ``order`` lists the layers in forward order (the monitor records it); without it, layer names are
    sorted naturally, which is forward order for sequentially numbered modules.
    """
    columns = columns_with_prefix(rows, prefix)
    if not columns:
        return None
    rank = {f"{prefix}{name}": index for index, name in enumerate(order or [])}
    columns.sort(key=lambda column: (rank.get(column, len(rank)), natural_key(column)))
    logged = [row for row in rows if any(column in row for column in columns)]
    grid = np.full((len(columns), len(logged)), np.nan)
    for step_index, row in enumerate(logged):
        for layer_index, column in enumerate(columns):
            if column in row:
                grid[layer_index, step_index] = math.log10(max(row[column], FLOOR))
    steps = [row.get("step", index) for index, row in enumerate(logged)]
    figure = new_figure(9, min(14.0, max(2.6, 0.24 * len(columns) + 1.4)))
    axes = figure.subplots()
    image = axes.imshow(np.ma.masked_invalid(grid), aspect="auto", interpolation="nearest", cmap="viridis")
    figure.colorbar(image, ax=axes, label=label)
    names = [column.removeprefix(prefix) for column in columns]
    shown = np.unique(np.linspace(0, len(names) - 1, num=min(len(names), 50)).round().astype(int))
    axes.set_yticks(shown, [names[index] for index in shown], fontsize=8 if len(shown) <= 30 else 6)
    ticks = np.unique(np.linspace(0, len(steps) - 1, num=min(len(steps), 8)).round().astype(int))
    axes.set_xticks(ticks, [f"{steps[tick]:g}" for tick in ticks])
    axes.set_xlabel("step")
    axes.set_title(title)
    return figure


# --- classification --------------------------------------------------------------------------------------


def confusion_counts(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """Return the ``[true, predicted]`` count matrix."""
    flat = np.asarray(labels, dtype=np.int64) * num_classes + np.asarray(preds, dtype=np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def confusion_matrix_figure(labels: np.ndarray, preds: np.ndarray, classes: list[str]) -> Figure:
    """Confusion matrix: counts written in the cells, colours normalised per row (per true class).

    Row normalisation keeps rare classes visible: a cell's colour is the fraction of that true class
    predicted as the column's class. Counts are left out when there are more than 40 classes.
    """
    count = len(classes)
    counts = confusion_counts(labels, preds, count)
    totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    side = min(max(4.5, 0.5 * count + 2.5), 16)
    figure = new_figure(side + 1.2, side)
    axes = figure.subplots()
    image = axes.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="fraction of the true class", shrink=0.8)
    if count <= 40:
        _write_cell_counts(axes, counts, fractions)
    _set_class_ticks(axes, classes, "x")
    _set_class_ticks(axes, classes, "y")
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title("Confusion matrix (counts; colour = fraction of row)")
    return figure


def _write_cell_counts(axes, counts: np.ndarray, fractions: np.ndarray) -> None:
    """Write each cell's count, white on dark cells; empty cells stay blank to keep the matrix readable."""
    fontsize = max(6, 12 - counts.shape[0] // 4)
    for (true, pred), value in np.ndenumerate(counts):
        if value:
            colour = "white" if fractions[true, pred] > 0.5 else "black"
            axes.text(pred, true, str(value), ha="center", va="center", fontsize=fontsize, color=colour)


def _set_class_ticks(axes, classes: list[str], axis: str, max_labels: int = 40) -> None:
    """Label the class positions on ``axis`` ("x" or "y"), naming every k-th class when there are many."""
    stride = max(1, math.ceil(len(classes) / max_labels))
    positions = list(range(0, len(classes), stride))
    names = [classes[position] for position in positions]
    fontsize = 10 if len(positions) <= 12 else 8 if len(positions) <= 25 else 6
    if axis == "y":
        axes.set_yticks(positions, names, fontsize=fontsize)
        return
    rotate = len(positions) > 12 or max((len(name) for name in names), default=0) > 3
    axes.set_xticks(positions, names, fontsize=fontsize, rotation=45 if rotate else 0,
                    ha="right" if rotate else "center", rotation_mode="anchor" if rotate else "default")


def per_class_accuracy_figure(labels: np.ndarray, preds: np.ndarray, classes: list[str]) -> Figure:
    """Bar chart of the accuracy (recall) of each true class, with the overall accuracy as a dashed line."""
    count = len(classes)
    counts = confusion_counts(labels, preds, count)
    support = counts.sum(axis=1)
    accuracy = np.divide(np.diag(counts), support, out=np.zeros(count), where=support > 0)
    overall = float(np.mean(np.asarray(labels) == np.asarray(preds))) if len(labels) else math.nan
    figure = new_figure(min(max(6, 0.45 * count + 2), 18), 3.6)
    axes = figure.subplots()
    bars = axes.bar(range(count), accuracy, color=TRAIN_COLOUR)
    axes.axhline(overall, color="black", linestyle="--", linewidth=1, label=f"overall {overall:.3f}")
    if count <= 20:
        texts = axes.bar_label(bars, labels=[f"{value:.2f}" if n else "n/a" for value, n in zip(accuracy, support)],
                               fontsize=8, padding=2)
        for text in texts:  # keep the labels readable where the overall line crosses them
            text.set_bbox({"facecolor": "white", "edgecolor": "none", "pad": 0.5})
    _set_class_ticks(axes, classes, "x")
    axes.set_ylim(0, 1.1)
    axes.set_xlabel("true class")
    axes.set_ylabel("accuracy")
    axes.set_title("Accuracy per class")
    axes.legend(fontsize=8, loc="lower right")
    return figure


def mistakes_grid(images: np.ndarray, labels: np.ndarray, preds: np.ndarray, probs_of_pred: np.ndarray,
                  classes: list[str], max_images: int = 64) -> Figure:
    """Grid of misclassified images, each titled ``true→pred (p)`` with p the predicted class's probability.

    ``images`` are raw uint8 pixels, ``[K, C, H, W]`` (C = 1 or 3) or ``[K, H, W]``.
    """
    shown = min(len(images), max_images)
    columns = max(1, min(8, shown))
    rows = max(1, math.ceil(shown / columns))
    heads = [f"{_class_name(classes, labels[i])}→{_class_name(classes, preds[i])}" for i in range(shown)]
    separator = "\n" if any(len(head) > 12 for head in heads) else " "  # long class names: p on line 2
    titles = [_with_probability(head, probs_of_pred[i], separator) for i, head in enumerate(heads)]
    longest = max((max(len(line) for line in title.split("\n")) for title in titles), default=0)
    cell_width = max(1.2, 0.075 * longest)
    figure = new_figure(cell_width * columns, 1.45 * rows + 0.3)
    if shown == 0:
        figure.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
        return figure
    for index, axes in enumerate(np.atleast_1d(figure.subplots(rows, columns)).ravel()):
        axes.set_axis_off()
        if index < shown:
            _draw_image(axes, images[index])
            axes.set_title(titles[index], fontsize=7)
    return figure


def _with_probability(head: str, probability: float, separator: str) -> str:
    """``true→pred (p)``, or just ``true→pred`` when the probability is unknown (NaN)."""
    if math.isnan(float(probability)):
        return head
    return f"{head}{separator}({float(probability):.2f})"


def _class_name(classes: list[str], index: int) -> str:
    """Class name of ``index``, or the number itself when the class list is too short."""
    index = int(index)
    return str(classes[index]) if 0 <= index < len(classes) else str(index)


def _draw_image(axes, image: np.ndarray) -> None:
    """Show one uint8 image given as ``[1, H, W]``, ``[3, H, W]`` or ``[H, W]``."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 3:
        axes.imshow(np.transpose(image, (1, 2, 0)))
    else:
        axes.imshow(image[0] if image.ndim == 3 else image, cmap="gray", vmin=0, vmax=255)
