"""The "Hidden states" section of a recurrent run's report, from ``hidden_states.npz``.

Left: where each test sequence ends in the plane of the first two principal components of the hidden
states, coloured by class. Middle: each class's mean trajectory over time in that plane (a dot per step,
a cross at the last), showing when in the sequence the classes pull apart. Right (when the run has one): a
t-SNE map of the final states. Texts end at their own lengths; a class's mean at a step is taken over the
texts still running there.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import warnings

import numpy as np
from matplotlib.figure import Figure

from archlab.monitor.hidden_states import HIDDEN_STATES
from archlab.report.figures import new_figure
from archlab.report.run_files import RunFiles
from archlab.report.sections import Embed, note, section, table


def hidden_state_figure(projections: np.ndarray, labels: np.ndarray, explained: np.ndarray,
                        classes: list[str], lengths: np.ndarray | None = None,
                        tsne: np.ndarray | None = None) -> Figure:
    panels = 3 if tsne is not None else 2
    figure = new_figure(5.5 * panels, 4.6)
    axes_list = figure.subplots(1, panels)
    final_axes, path_axes = axes_list[0], axes_list[1]
    if lengths is None:
        lengths = np.full(len(labels), projections.shape[1])
    final = projections[np.arange(len(labels)), lengths.astype(np.int64) - 1]
    colours = [f"C{index % 10}" for index in range(max(len(classes), int(labels.max(initial=0)) + 1))]
    for label in np.unique(labels):
        chosen = labels == label
        name = classes[label] if label < len(classes) else str(label)
        final_axes.scatter(final[chosen, 0], final[chosen, 1], s=9, alpha=0.6, color=colours[label], label=name)
        with warnings.catch_warnings():  # steps no text of the class reaches are all NaN: left out of the path
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(projections[chosen], axis=0)
        mean = mean[~np.isnan(mean).any(axis=1)]
        path_axes.plot(mean[:, 0], mean[:, 1], "-o", markersize=2, color=colours[label], label=name)
        path_axes.plot(mean[-1, 0], mean[-1, 1], "x", markersize=8, color=colours[label])
        if tsne is not None:
            axes_list[2].scatter(tsne[chosen, 0], tsne[chosen, 1], s=9, alpha=0.6, color=colours[label], label=name)
    for axes, title in ((final_axes, "last time step, one point per test sequence"),
                        (path_axes, "mean trajectory per class (x: last step)")):
        axes.set_xlabel(f"PC1 ({100 * explained[0]:.0f}% of variance)")
        axes.set_ylabel(f"PC2 ({100 * explained[1]:.0f}%)")
        axes.set_title(title, fontsize=10)
        axes.grid(alpha=0.3)
    if tsne is not None:
        axes_list[2].set_title("t-SNE of the final states", fontsize=10)
        axes_list[2].set_xticks([])
        axes_list[2].set_yticks([])
    path_axes.legend(fontsize=7, ncol=2)
    return figure


def hidden_states(run: RunFiles, embed: Embed) -> str:
    """The section, or nothing for a run whose model has no hidden states (not recurrent)."""
    path = Path(run.run_dir) / HIDDEN_STATES
    if not path.is_file():
        return ""
    try:
        with np.load(path) as arrays:
            projections, labels, explained = arrays["projections"], arrays["labels"], arrays["explained"]
            lengths = arrays["lengths"] if "lengths" in arrays else None
            tsne = arrays["tsne"] if "tsne" in arrays else None
            padding = padding_table(arrays)
    except (OSError, KeyError, ValueError) as error:
        return section("hidden-states", "Hidden states", note(f"{path.name} could not be read ({error})."))
    classes = [str(name) for name in run.meta.get("classes") or []]
    figure = hidden_state_figure(projections, labels.astype(np.int64), explained, classes, lengths, tsne)
    steps = (f"{projections.shape[1]} time steps" if lengths is None or (lengths == projections.shape[1]).all()
             else f"up to {projections.shape[1]} time steps (each text its own length)")
    caption = (f'<p class="caption">Hidden states of {len(labels)} test sequences over {steps}, projected on their '
               f"first two principal components{'; right: t-SNE of their final states' if tsne is not None else ''}.</p>")
    body = embed("hidden_states", figure, "hidden states PCA") + caption + padding
    return section("hidden-states", "Hidden states", body)


def padding_table(arrays) -> str:
    """How much the output moves when steps of zeros or noise are appended to each test sequence."""
    if "padding_kinds" not in arrays:
        return ""
    steps = int(arrays["padding_steps"])
    rows = [[escape(str(kind)), f"{distance:.4f}", f"{100 * changed:.1f} %"] for kind, distance, changed in
            zip(arrays["padding_kinds"], arrays["padding_distance"], arrays["padding_changed"])]
    return (f"<p>Padding robustness: the same sequences with {steps} extra steps appended at the end.</p>"
            + table(["appended", "mean change of the class probabilities (total variation)", "predictions changed"],
                    rows))
