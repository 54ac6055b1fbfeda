"""Report sections of the analyses: "Inside the network" (filters, activation maps, Grad-CAM) and
"Adversarial robustness" (accuracy against ε from ``archlab attack``).

Both are built from the run directory alone and fail soft: a missing weight file, an old
``test_predictions.npz`` without ``correct_images``, a model without convolutions or an unreadable attack
file each leave a note in the section, never an exception. The model runs on a handful of test images, so
the section adds about a second to the report.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np

from archlab.errors import ArchlabError
from archlab.report import attack_figures, explain_figures
from archlab.report.figures import _class_name
from archlab.report.run_files import RunFiles
from archlab.report.sections import MISSING, Embed, fmt_percent, fmt_text, note, section, table

INSIDE = ("inside", "Inside the network")
SHOWN = 8  # test images in the Grad-CAM figure: half correct, half misclassified where there are enough
# What can go wrong when an old or foreign run is rebuilt and run: a user-facing error, a state dict that does
# not fit the model, arguments the model no longer takes, images of the wrong shape.
LOAD_ERRORS = (ArchlabError, RuntimeError, ValueError, TypeError, KeyError, OSError)


@dataclass
class Samples:
    """A few test images (uint8 ``[K, C, H, W]``), their true labels, and a column title for each."""

    images: np.ndarray
    labels: np.ndarray
    titles: list[str]


def inside_network(run: RunFiles, embed: Embed) -> str:
    """Filters, activation maps and Grad-CAM of the run's model on correct and misclassified test images."""
    if run.summary.get("cv"):
        return ""  # a cross-validated run keeps one model per fold, in fold-K/
    if not run.meta:
        return section(*INSIDE, note(f"No meta.json in {run.run_dir}: the model cannot be rebuilt."))
    if "classes" not in run.meta or run.meta.get("input_kind", "image") != "image":
        return ""  # filters and Grad-CAM are drawn for image classifiers
    from archlab.analysis.explain import first_layer_filters
    from archlab.runs import load_model

    try:
        loaded = load_model(run.run_dir)
    except LOAD_ERRORS as error:
        return section(*INSIDE, note(f"The model could not be loaded ({error}), so its insides are not shown."))
    try:
        filters = first_layer_filters(loaded.model)
    except ArchlabError as error:
        return section(*INSIDE, note(f"{error} Filters, activation maps and Grad-CAM need a convolutional network."))
    samples, notes = sample_images(run)
    parts = [_filters(filters.numpy(), embed)]
    if samples is not None:
        parts += [_figure_or_note(_activations, loaded, embed, samples),
                  _figure_or_note(_grad_cams, loaded, embed, samples)]
    return section(*INSIDE, "\n".join(parts + [note(text) for text in notes]))


def _figure_or_note(draw, *args) -> str:
    try:
        return draw(*args)
    except LOAD_ERRORS as error:
        return note(str(error))


def _filters(weights: np.ndarray, embed: Embed) -> str:
    figure = explain_figures.filters_figure(weights)
    caption = "First-layer filters: the first convolution's weights as images (grey = 0, bright = positive)."
    return embed("filters", figure, "first-layer filters") + f'<p class="caption">{caption}</p>'


def _normalized(loaded, images: np.ndarray):
    import torch

    return torch.from_numpy(images.astype(np.float32) / 255).sub(loaded.mean).div(loaded.std)


def _activations(loaded, embed: Embed, samples: Samples) -> str:
    from archlab.analysis.explain import activation_maps

    maps = activation_maps(loaded.model, _normalized(loaded, samples.images[:1]))
    figure = explain_figures.activations_figure(samples.images[0], {k: v.cpu().numpy() for k, v in maps.items()})
    caption = (f"Activation maps of one test image ({escape(samples.titles[0])}): the eight most active channels "
               "of each convolutional stage, each on its own colour scale.")
    return embed("activations", figure, "activation maps") + f'<p class="caption">{caption}</p>'


def _grad_cams(loaded, embed: Embed, samples: Samples) -> str:
    from archlab.analysis.explain import grad_cam

    x = _normalized(loaded, samples.images)
    predicted = grad_cam(loaded.model, x)
    true = grad_cam(loaded.model, x, samples.labels.astype(np.int64), layer=predicted.layer)
    rows = [("predicted class", predicted.maps.cpu().numpy()), ("true class", true.maps.cpu().numpy())]
    figure = explain_figures.grad_cam_figure(samples.images, rows, samples.titles,
                                             suptitle=f"Grad-CAM at layer {predicted.layer}")
    caption = ("Grad-CAM (Selvaraju et al. 2017): where the evidence for a class lies, from the gradient of its "
               "score with respect to the last feature map. Top row: the predicted class; bottom row: the true "
               "class. Captions: the true class, →predicted when wrong; (none): no positive evidence for the "
               "class at that layer. Networks that flatten a small last feature map into a dense classifier often "
               "show little here; an earlier layer can tell more (archlab explain RUN IMAGE --layer NAME).")
    return embed("grad_cam", figure, "Grad-CAM overlays") + f'<p class="caption">{escape(caption)}</p>'


def sample_images(run: RunFiles) -> tuple[Samples | None, list[str]]:
    """Eight test images from ``test_predictions.npz``: four correctly classified and four misclassified,
    or more of one kind when the other has fewer."""
    if run.predictions is None:
        return None, [run.predictions_note or "No test predictions."]
    notes: list[str] = []
    correct, mistakes = (_saved_images(run, kind, notes) for kind in ("correct", "mistake"))
    mistakes = mistakes[: SHOWN - min(len(correct), SHOWN // 2)]
    picked = correct[: SHOWN - len(mistakes)] + mistakes
    if not picked:
        return None, notes + ["No test images to explain."]
    classes = [str(name) for name in run.meta.get("classes") or []]
    titles = [_class_name(classes, true) + ("" if true == pred else f"→{_class_name(classes, pred)}")
              for _, true, pred in picked]
    images = np.stack([np.asarray(image).reshape(-1, *np.asarray(image).shape[-2:]) for image, _, _ in picked])
    return Samples(images, np.array([true for _, true, _ in picked]), titles), notes


def _saved_images(run: RunFiles, kind: str, notes: list[str]) -> list[tuple[np.ndarray, int, int]]:
    """``(image, true label, prediction)`` of the saved ``<kind>_images``, or [] and a note saying why not."""
    arrays = run.predictions or {}
    recreate = f"re-run `archlab eval {run.run_dir}` to recreate test_predictions.npz."
    if f"{kind}_images" not in arrays or f"{kind}_index" not in arrays:
        notes.append(f"test_predictions.npz has no {kind}_images (written by an older archlab): {recreate}")
        return []
    index = arrays[f"{kind}_index"].astype(np.int64)[:SHOWN]
    if index.size and (index.min() < 0 or index.max() >= len(arrays["labels"])):
        notes.append(f"test_predictions.npz has {kind} indices outside the test split: {recreate}")
        return []
    return [(arrays[f"{kind}_images"][i], int(arrays["labels"][j]), int(arrays["preds"][j]))
            for i, j in enumerate(index)]


# --- adversarial robustness ------------------------------------------------------------------------------


def robustness(run: RunFiles, embed: Embed) -> str:
    """Accuracy against ε for each ``attack-<method>.json``, and the saved grids of adversarial examples."""
    if not run.attacks and not run.attacks_notes:
        return ""
    parts = [note(text) for text in run.attacks_notes]
    if run.attacks:
        curves = {method: (record["eps"], record["accuracy"]) for method, record in run.attacks.items()}
        parts.append(embed("robustness", attack_figures.robustness_curve(curves), "accuracy against epsilon"))
        parts.append(robustness_table(run.attacks))
        parts.append(f'<p class="caption">{escape(robustness_caption(run.attacks))}</p>')
        parts += [examples_image(run.run_dir, method, record) for method, record in run.attacks.items()]
    return section("robustness", "Adversarial robustness", "\n".join(parts))


def robustness_table(attacks: dict[str, dict]) -> str:
    """One row per ε, one column per attack method."""
    eps_values = sorted({float(value) for record in attacks.values() for value in record["eps"]})
    by_method = {method: dict(zip(map(float, record["eps"]), record["accuracy"])) for method, record in attacks.items()}
    rows = [[f"{value:g}", *(fmt_percent(curve.get(value)) if value in curve else MISSING
                             for curve in by_method.values())] for value in eps_values]
    return table(["ε", *(escape(method.upper()) for method in attacks)], rows)


def robustness_caption(attacks: dict[str, dict]) -> str:
    described = []
    for method, record in attacks.items():
        steps = (record.get("settings") or {}).get("steps")
        detail = f", {steps} steps" if method != "fgsm" and steps else ""
        described.append(f"{method.upper()} on {record.get('images', '?')} test images{detail}")
    return ("Accuracy under an L∞ attack of radius ε in pixel units (ε = 0.1: every pixel may move by a tenth "
            f"of the grey range); ε = 0 is the clean accuracy. {'; '.join(described)}. "
            "FGSM: Goodfellow et al. 2015; PGD: Madry et al. 2018.")


def examples_image(run_dir: Path, method: str, record: dict) -> str:
    """The grid PNG that ``archlab attack`` saved, embedded as it is, or a note if it is missing."""
    path = run_dir / Path(str(record.get("examples") or f"attack-{method}.png")).name
    data = path.read_bytes() if path.is_file() else b""
    if not data.startswith(b"\x89PNG"):
        return note(f"{path} is missing or not a PNG: run `archlab attack {run_dir} --method {method}` again.")
    encoded = base64.b64encode(data).decode("ascii")
    return (f'<p class="caption">{fmt_text(method.upper())}: clean, adversarial and perturbation images.</p>\n'
            f'<img src="data:image/png;base64,{encoded}" alt="{escape(method)} adversarial examples">')
