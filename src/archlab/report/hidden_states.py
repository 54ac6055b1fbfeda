"""The "Hidden states" section of a recurrent run's report, from ``hidden_states.npz``.

Left: where each test sequence ends in the plane of the first two principal components of the hidden
states, coloured by class. Right: each class's mean trajectory over time in that plane (a dot per step,
a cross at the last), showing when in the sequence the classes pull apart.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from archlab.monitor.hidden_states import HIDDEN_STATES
from archlab.report.figures import new_figure
from archlab.report.run_files import RunFiles
from archlab.report.sections import Embed, note, section, table


def hidden_state_figure(projections: np.ndarray, labels: np.ndarray, explained: np.ndarray,
                        classes: list[str]) -> Figure:
    figure = new_figure(11, 4.6)
    final_axes, path_axes = figure.subplots(1, 2)
    colours = [f"C{index % 10}" for index in range(max(len(classes), int(labels.max(initial=0)) + 1))]
    for label in np.unique(labels):
        members = projections[labels == label]
        name = classes[label] if label < len(classes) else str(label)
        final_axes.scatter(members[:, -1, 0], members[:, -1, 1], s=9, alpha=0.6, color=colours[label], label=name)
        mean = members.mean(axis=0)
        path_axes.plot(mean[:, 0], mean[:, 1], "-o", markersize=2, color=colours[label], label=name)
        path_axes.plot(mean[-1, 0], mean[-1, 1], "x", markersize=8, color=colours[label])
    for axes, title in ((final_axes, "last time step, one point per test sequence"),
                        (path_axes, "mean trajectory per class (x: last step)")):
        axes.set_xlabel(f"PC1 ({100 * explained[0]:.0f}% of variance)")
        axes.set_ylabel(f"PC2 ({100 * explained[1]:.0f}%)")
        axes.set_title(title, fontsize=10)
        axes.grid(alpha=0.3)
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
            padding = padding_table(arrays)
    except (OSError, KeyError, ValueError) as error:
        return section("hidden-states", "Hidden states", note(f"{path.name} could not be read ({error})."))
    classes = [str(name) for name in run.meta.get("classes") or []]
    figure = hidden_state_figure(projections, labels.astype(np.int64), explained, classes)
    caption = (f'<p class="caption">Hidden states of {len(labels)} test sequences over {projections.shape[1]} time '
               "steps, projected on their first two principal components.</p>")
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
