"""The sections of a run's HTML report, each a function from the run's files to an HTML fragment.

Figures are handed to an ``embed(name, figure, alt)`` callable that saves them and returns the ``<img>``
markup, so this module knows nothing about files or encodings. Every value read from the run is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

import numpy as np
from matplotlib.figure import Figure

from archlab.report import figures
from archlab.report.run_files import RunFiles

Embed = Callable[[str, Figure, str], str]
MISSING = "—"


# --- formatting ------------------------------------------------------------------------------------------


def fmt_number(value: object, digits: int = 4, suffix: str = "") -> str:
    """A float with ``digits`` decimals, or "—" when the value is missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return MISSING
    return f"{value:.{digits}f}{suffix}"


def fmt_percent(value: object) -> str:
    """A fraction in [0, 1] as a percentage with two decimals, or "—"."""
    return MISSING if fmt_number(value) == MISSING else fmt_number(value * 100, 2, " %")


def fmt_count(value: object, suffix: str = "") -> str:
    """A large number with thousands separators and no decimals, or "—"."""
    text = fmt_number(value, 0)
    return MISSING if text == MISSING else f"{float(value):,.0f}{suffix}"


def fmt_text(value: object) -> str:
    """Any value as escaped text, or "—" when missing."""
    return MISSING if value is None or value == "" else escape(str(value))


def note(text: str) -> str:
    """A paragraph explaining why a section is empty."""
    return f'<p class="note">{escape(text)}</p>'


def section(anchor: str, title: str, body: str) -> str:
    """Wrap ``body`` in a titled section."""
    return f'<section id="{anchor}">\n<h2>{escape(title)}</h2>\n{body}\n</section>'


def table(header: list[str], rows: list[list[str]], css_class: str = "") -> str:
    """An HTML table; cells must already be escaped."""
    head = "".join(f"<th>{cell}</th>" for cell in header)
    body = "\n".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    opening = f'<table class="{css_class}">' if css_class else "<table>"
    return f"{opening}\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


# --- sections --------------------------------------------------------------------------------------------


def header(run: RunFiles) -> str:
    """Title line: model, data, recipe, creation time and run folder."""
    summary = run.summary
    title = f"{fmt_text(summary.get('model'))} on {fmt_text(summary.get('data'))}"
    details = [f"recipe {fmt_text(summary.get('recipe'))}", f"created {fmt_text(summary.get('created'))}",
               f"run <code>{escape(str(run.run_dir))}</code>"]
    return f'<header>\n<h1>{title}</h1>\n<p class="sub">{" · ".join(details)}</p>\n</header>'


def key_numbers(run: RunFiles) -> str:
    """Table of the headline numbers: test metrics, best validation, speed and size."""
    summary = run.summary
    test = summary.get("test_metrics") or {}
    best = summary.get("best_val") or {}
    rows = [
        ["test accuracy", fmt_percent(test.get("accuracy"))],
        ["test loss", fmt_number(test.get("loss"))],
        *[[f"test {escape(str(name))}", fmt_number(value)] for name, value in test.items()
          if name not in ("accuracy", "loss")],
        ["best validation accuracy", fmt_percent(best.get("val_acc"))],
        ["best validation loss", fmt_number(best.get("val_loss"))],
        ["best epoch", fmt_text(best.get("epoch"))],
        ["epochs", fmt_text(summary.get("epochs"))],
        ["wall time", fmt_number(summary.get("wall_seconds"), 1, " s")],
        ["training throughput", fmt_count(summary.get("train_images_per_second"), " images/s")
         if summary.get("train_images_per_second") else fmt_count(summary.get("train_samples_per_second"), " samples/s")],
        ["parameters", fmt_count(summary.get("params"))],
        ["MFLOPs", fmt_number(summary.get("mflops"), 2)],
        ["precision", fmt_text(summary.get("precision"))],
    ]
    return section("key-numbers", "Key numbers", table(["metric", "value"], rows, css_class="kv"))


def cross_validation(run: RunFiles) -> str:
    """Per-fold validation results and their mean ± std, when the run was cross-validated."""
    cv = run.summary.get("cv")
    if not isinstance(cv, dict):
        return ""
    rows = [[str(index + 1), fmt_percent(fold.get("val_acc")), fmt_number(fold.get("val_loss"))]
            for index, fold in enumerate(cv.get("folds") or []) if isinstance(fold, dict)]
    rows.append([
        "<strong>mean ± std</strong>",
        f"{fmt_percent(cv.get('val_acc_mean'))} ± {fmt_percent(cv.get('val_acc_std'))}",
        f"{fmt_number(cv.get('val_loss_mean'))} ± {fmt_number(cv.get('val_loss_std'))}",
    ])
    title = f"Cross-validation ({fmt_text(cv.get('k'))} folds)"
    return section("cross-validation", title, table(["fold", "validation accuracy", "validation loss"], rows))


def _metrics_figure(run: RunFiles, embed: Embed, anchor: str, title: str, figure, alt: str, missing: str) -> str:
    """A section holding one figure drawn from ``metrics.csv``, or a note saying what is missing."""
    if run.metrics_note:
        return section(anchor, title, note(run.metrics_note))
    drawn = figure(run.metrics_rows)
    body = embed(anchor.replace("-", "_"), drawn, alt) if drawn else note(missing)
    return section(anchor, title, body)


def curves(run: RunFiles, embed: Embed) -> str:
    """Loss and accuracy curves from ``metrics.csv``."""
    return _metrics_figure(run, embed, "curves", "Loss and accuracy", figures.loss_accuracy_curves,
                           "loss and accuracy curves",
                           "metrics.csv has no loss or accuracy column (train_loss, val_loss, train_acc, val_acc): "
                           "the run logged fewer steps than log_every_n_steps.")


def learning_rate(run: RunFiles, embed: Embed) -> str:
    """Learning-rate schedule, from the ``lr-*`` columns."""
    return _metrics_figure(run, embed, "learning-rate", "Learning rate", figures.learning_rate_curve,
                           "learning rate against step",
                           "metrics.csv has no lr-* column: the run logged fewer steps than log_every_n_steps.")


def grad_norms(run: RunFiles, embed: Embed) -> str:
    """Gradient flow: the monitor's diagnoses, then heat maps of gradient norm and update ratio per layer."""
    diagnostics = run.summary.get("diagnostics") if isinstance(run.summary.get("diagnostics"), dict) else {}
    order = [str(name) for name in diagnostics.get("layers") or []]
    parts = [diagnoses_table(diagnostics)]
    if run.metrics_note:
        parts.append(note(run.metrics_note))
        return section("grad-norms", "Gradient flow", "\n".join(parts))
    drawn = figures.grad_norm_heatmap(run.metrics_rows, order)
    parts.append(embed("grad_norms", drawn, "log10 gradient norm per layer and step") if drawn else note(
        "metrics.csv has no grad_norm/* column: gradient norms are logged every monitor.every_n_steps steps "
        "(0 turns them off); train with a value of 1 or more."))
    ratios = figures.update_ratio_heatmap(run.metrics_rows, order)
    if ratios:
        parts.append(embed("update_ratios", ratios, "log10 update-to-weight ratio per layer and step"))
        parts.append('<p class="caption">Update-to-weight ratio ‖ΔW‖/‖W‖ of each optimizer step: around 1e-3 '
                     "is healthy; far below, the layer barely learns; far above, the step is too large.</p>")
    return section("grad-norms", "Gradient flow", "\n".join(parts))


def diagnoses_table(diagnostics: dict) -> str:
    """The monitor's findings (the first of each kind, and how often it recurred), or a line saying none."""
    found = [d for d in diagnostics.get("diagnoses") or [] if isinstance(d, dict)]
    counts = diagnostics.get("counts") or {}
    parts = []
    if diagnostics.get("stopped"):
        parts.append(note(f"Training stopped: {diagnostics['stopped']}."))
    if not found:
        parts.append("<p>The gradient-flow monitor found nothing to report (no vanishing or exploding "
                     "gradients, dead ReLUs, NaN/Inf, plateau or oscillating loss).</p>" if diagnostics else
                     note("This run has no gradient-flow diagnostics (runs made by older versions of archlab)."))
        return "\n".join(parts)
    rows = [[fmt_text(d.get("kind")), fmt_text(d.get("step")), fmt_text(counts.get(d.get("kind"))),
             fmt_text(d.get("message")), fmt_text(d.get("suggestion"))] for d in found]
    parts.append(table(["diagnosis", "first step", "times", "what was measured", "suggestion"], rows))
    return "\n".join(parts)


def classification(run: RunFiles, embed: Embed) -> str:
    """Confusion matrix, per-class scores and misclassified examples, from ``test_predictions.npz``."""
    if run.summary.get("task", "classify") != "classify":
        return ""
    titles = {"confusion": "Confusion matrix", "per-class": "Accuracy per class", "mistakes": "Misclassified"}
    if run.predictions is None:
        return "\n".join(section(anchor, title, note(run.predictions_note or "")) for anchor, title in titles.items())
    labels, preds = run.predictions["labels"], run.predictions["preds"]
    classes = class_names(run, labels, preds)
    parts = [
        section("confusion", titles["confusion"], embed(
            "confusion_matrix", figures.confusion_matrix_figure(labels, preds, classes), "confusion matrix")),
        section("per-class", titles["per-class"], embed(
            "per_class_accuracy", figures.per_class_accuracy_figure(labels, preds, classes), "accuracy per class")
            + per_class_table(run.summary.get("per_class"))),
        section("mistakes", titles["mistakes"], mistakes_body(run, classes, embed)),
    ]
    return "\n".join(parts)


def per_class_table(scores: object) -> str:
    """Precision, recall, F1 and support of each class (``summary.json``'s ``per_class``), or nothing."""
    if not isinstance(scores, dict) or not scores:
        return ""
    rows = [[fmt_text(name), fmt_percent(s.get("precision")), fmt_percent(s.get("recall")),
             fmt_percent(s.get("f1")), fmt_count(s.get("support"))] for name, s in scores.items() if isinstance(s, dict)]
    return table(["class", "precision", "recall", "F1", "test examples"], rows)


def mistaken_texts(arrays: dict, classes: list[str]) -> str:
    """Misclassified test texts (the first 500 characters of each) with true and predicted class."""
    index = arrays["mistake_index"].astype(np.int64)
    if index.size == 0:
        return note("No misclassified test texts.")
    texts = arrays["mistake_texts"]
    rows = [[fmt_text(classes[int(arrays["labels"][i])]), fmt_text(classes[int(arrays["preds"][i])]),
             f'<span style="white-space: pre-wrap; text-align: left">{escape(str(text)[:300])}</span>']
            for i, text in zip(index[:20], texts[:20])]
    caption = (f'<p class="caption">{min(len(texts), 20)} of {int(np.sum(arrays["labels"] != arrays["preds"]))} '
               "misclassified test texts (first 300 characters).</p>")
    return table(["true", "predicted", "text"], rows) + caption


def mistakes_body(run: RunFiles, classes: list[str], embed: Embed) -> str:
    """The grid of misclassified test images (or a table of texts), or a note saying why there is none."""
    arrays = run.predictions or {}
    if "mistake_index" in arrays and "mistake_texts" in arrays:
        return mistaken_texts(arrays, classes)
    if "mistake_index" not in arrays or "mistake_images" not in arrays:
        return note(f"test_predictions.npz has no mistake_images: re-run `archlab eval {run.run_dir}` "
                    "to recreate predictions.")
    index = arrays["mistake_index"].astype(np.int64)
    if index.size == 0:
        return note("No misclassified test images.")
    if index.min() < 0 or index.max() >= len(arrays["labels"]):
        return note(f"test_predictions.npz has mistake indices outside the test split: re-run "
                    f"`archlab eval {run.run_dir}` to recreate predictions.")
    labels, preds = arrays["labels"][index], arrays["preds"][index]
    probs = arrays.get("probs")
    chosen = (probs[index, preds].astype(np.float32) if probs is not None
              else np.full(index.shape, np.nan, dtype=np.float32))
    images = arrays["mistake_images"]
    figure = figures.mistakes_grid(images, labels, preds, chosen, classes)
    caption = (f'<p class="caption">{min(len(images), 64)} of {int(np.sum(arrays["labels"] != arrays["preds"]))} '
               "misclassified test images; title: true→predicted (probability of the prediction).</p>")
    return embed("mistakes", figure, "misclassified test images") + caption


def class_names(run: RunFiles, labels: np.ndarray, preds: np.ndarray) -> list[str]:
    """Class names from ``meta.json``, padded with numbers if predictions use more classes than it names."""
    names = [str(name) for name in run.meta.get("classes") or []]
    probs = (run.predictions or {}).get("probs")
    count = max(len(names), int(max(labels.max(initial=-1), preds.max(initial=-1))) + 1,
                probs.shape[1] if probs is not None and probs.ndim == 2 else 0)
    return names + [str(index) for index in range(len(names), count)]


def config(run: RunFiles) -> str:
    """The resolved training configuration, verbatim."""
    if run.config_text is None:
        body = note(f"No config.yaml in {run.run_dir}: the run did not store its resolved configuration "
                    "(runs made by older versions of archlab do not).")
    else:
        body = f"<pre>{escape(run.config_text)}</pre>"
    return section("config", "Configuration", body)
