"""The figures: each returns an Agg-backed Figure that renders and is garbage-collectable."""

import gc
import weakref

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from archlab.report import figures

CLASSES = [str(digit) for digit in range(10)]
LAYERS = ["conv1.weight", "conv2.weight", "fc.weight"]


def _check_renders(figure):
    assert isinstance(figure, Figure)
    assert isinstance(figure.canvas, FigureCanvasAgg)
    assert figures.figure_to_png(figure, dpi=40).startswith(b"\x89PNG")


@pytest.fixture(scope="module")
def predictions():
    generator = np.random.default_rng(1)
    labels = generator.integers(0, 10, size=50)
    preds = labels.copy()
    preds[:5] = (preds[:5] + 3) % 10
    return labels, preds


def test_curves_learning_rate_and_grad_norms_render(fake_metrics_rows):
    rows = fake_metrics_rows()
    for figure in (figures.loss_accuracy_curves(rows), figures.learning_rate_curve(rows),
                   figures.grad_norm_heatmap(rows)):
        _check_renders(figure)


def test_grad_norm_heatmap_has_one_row_per_layer(fake_metrics_rows):
    figure = figures.grad_norm_heatmap(fake_metrics_rows())
    labels = [label.get_text() for label in figure.axes[0].get_yticklabels()]
    assert labels == LAYERS


def test_optional_figures_are_none_without_their_columns():
    rows = [{"step": 0.0, "train_loss": 1.0}]
    assert figures.learning_rate_curve(rows) is None
    assert figures.grad_norm_heatmap(rows) is None
    assert figures.loss_accuracy_curves([{"step": 0.0, "other": 1.0}]) is None


def test_curves_skip_absent_series():
    figure = figures.loss_accuracy_curves([{"step": 9.0, "epoch": 0.0, "val_loss": 0.5}])
    loss_axes, accuracy_axes = figure.axes[:2]
    assert len(loss_axes.lines) == 1
    assert not accuracy_axes.lines
    _check_renders(figure)


def test_confusion_counts_and_classification_figures(predictions):
    labels, preds = predictions
    counts = figures.confusion_counts(labels, preds, 10)
    assert counts.sum() == 50 and np.trace(counts) == 45
    _check_renders(figures.confusion_matrix_figure(labels, preds, CLASSES))
    _check_renders(figures.per_class_accuracy_figure(labels, preds, CLASSES))


def test_mistakes_grid_handles_grey_colour_and_no_images():
    grey = np.zeros((5, 1, 8, 8), dtype=np.uint8)
    colour = np.zeros((3, 3, 8, 8), dtype=np.uint8)
    probs = np.array([0.9, 0.8, np.nan, 0.5, 0.4])
    figure = figures.mistakes_grid(grey, [0, 1, 2, 3, 4], [1, 2, 3, 4, 5], probs, CLASSES)
    assert figure.axes[0].get_title() == "0→1 (0.90)"
    assert figure.axes[2].get_title() == "2→3"
    _check_renders(figure)
    _check_renders(figures.mistakes_grid(colour, [0, 1, 2], [1, 2, 0], probs[:3], ["cat", "dog", "bird"]))
    _check_renders(figures.mistakes_grid(grey[:0], [], [], np.array([]), CLASSES))


def test_mistakes_grid_caps_the_number_of_images():
    images = np.zeros((10, 1, 4, 4), dtype=np.uint8)
    figure = figures.mistakes_grid(images, [0] * 10, [1] * 10, np.full(10, 0.5), CLASSES, max_images=4)
    assert sum(1 for axes in figure.axes if axes.images) == 4


def test_figures_are_garbage_collectable(predictions):
    figure = figures.confusion_matrix_figure(*predictions, CLASSES)
    figures.figure_to_png(figure, dpi=30)
    reference = weakref.ref(figure)
    del figure
    gc.collect()
    assert reference() is None
