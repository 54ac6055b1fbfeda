"""Report sections of translation, reconstruction and anomaly scoring; each is empty for runs without its files.

- ``translate_section``: a CycleGAN run's test figures beside their references, and the round trips
  a → G_AB(a) → G_BA(G_AB(a)) and b → G_BA(b) → G_AB(G_BA(b)) of one test image per class.
- ``reconstruct_section``: an autoencoder run's test images above their reconstructions, its error per class
  and, with a held-out class, the ROC-AUC of that error.
- ``anomaly_section``: the ROC-AUC table written by ``archlab anomaly`` into a GAN run.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import numpy as np
import torch

from archlab.report.run_files import RunFiles
from archlab.report.sections import Embed, fmt_number, fmt_percent, note, section, table

TRANSLATIONS_NPZ = "translations.npz"
RECONSTRUCTIONS_NPZ = "reconstructions.npz"
ANOMALY_JSON = "anomaly.json"
SCORE_NAMES = {"discriminator": "discriminator score −D(x)",
               "latent_search": "latent search A(x) (AnoGAN, λ = 0.1)",
               "latent_residual": "latent search residual Σ|x − G(z)|",
               "autoencoder": "autoencoder reconstruction error"}


def _grid(embed: Embed, name: str, images: np.ndarray, columns: int, alt: str) -> str:
    from archlab.report.image_grid import image_grid

    return embed(name, image_grid(torch.from_numpy(images), nrow=columns), alt)


def translate_section(run: RunFiles, embed: Embed) -> str:
    path = Path(run.run_dir) / TRANSLATIONS_NPZ
    if not path.is_file():
        return ""
    summary = run.summary
    metrics, reference = summary.get("test_metrics", {}), summary.get("translation_reference", {})
    domains = summary.get("domains", {})
    a, b = escape(str(domains.get("a", "A"))), escape(str(domains.get("b", "B")))
    rows = [[f"FID of G_AB(a) against real {b}", fmt_number(metrics.get("fid"), 3),
             fmt_number(reference.get("reference_fid"), 3) + " (real training images of B)"],
            ["cycle error |G_BA(G_AB(a)) − a|₁", fmt_number(metrics.get("cycle_a")), "0"],
            ["cycle error |G_AB(G_BA(b)) − b|₁", fmt_number(metrics.get("cycle_b")), "0"],
            ["judge accuracy on G_BA(G_AB(a))", fmt_percent(metrics.get("content_cycle_acc")), ""]]
    if "content_translation_acc" in metrics:
        rows.append(["judge accuracy on G_AB(a) (the digit kept)", fmt_percent(metrics["content_translation_acc"]),
                     fmt_percent(reference.get("reference_content_acc")) + f" (the judge on real {b})"])
    body = table(["test figure", "value", "reference"], rows)
    if "fid" not in metrics:
        body += note("The translations were not scored: no judge artifact for this data set "
                     "(build it with `archlab judge build`, then run `archlab eval` on this run).")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            ab, ba = arrays["ab"], arrays["ba"]
    except (OSError, KeyError, ValueError) as error:
        return section("translation", "Translation", body + note(f"{TRANSLATIONS_NPZ} could not be read ({error})."))
    body += (f'<p class="caption">Rows: a test image of {a} per class, its translation to {b}, and back.</p>'
             + _grid(embed, "translate-ab", ab, len(ab) // 3, f"{a} to {b} and back"))
    body += (f'<p class="caption">Rows: a test image of {b}, its translation to {a}, and back.</p>'
             + _grid(embed, "translate-ba", ba, len(ba) // 3, f"{b} to {a} and back"))
    return section("translation", "Translation", body)


def reconstruct_section(run: RunFiles, embed: Embed) -> str:
    path = Path(run.run_dir) / RECONSTRUCTIONS_NPZ
    if not path.is_file():
        return ""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            images, reconstructions = arrays["images"], arrays["reconstructions"]
    except (OSError, KeyError, ValueError) as error:
        return section("reconstruction", "Reconstruction", note(f"{RECONSTRUCTIONS_NPZ} could not be read ({error})."))
    summary = run.summary
    holdout = summary.get("holdout_class")
    by_class = summary.get("reconstruction_error_by_class", {})
    rows = [[escape(str(name)) + (" (held out)" if holdout is not None and index == holdout else ""),
             fmt_number(value, 5)] for index, (name, value) in enumerate(by_class.items())]
    body = ""
    if holdout is not None:
        auc = summary.get("test_metrics", {}).get("anomaly_auc")
        body += (f"<p>Trained without class {escape(str(holdout))}; the ROC-AUC of the per-image error as a score "
                 f"for that class is <strong>{fmt_number(auc)}</strong> (0.5: chance).</p>")
    body += table(["class", "mean squared error (test)"], rows) if rows else ""
    body += ('<p class="caption">Test images (first row of each pair) and their reconstructions.</p>'
             + _grid(embed, "reconstructions", np.concatenate([images[:8], reconstructions[:8]]), 8,
                     "test images and reconstructions"))
    return section("reconstruction", "Reconstruction", body)


def anomaly_section(run: RunFiles, embed: Embed) -> str:
    path = Path(run.run_dir) / ANOMALY_JSON
    if not path.is_file():
        return ""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        auc, seconds = dict(result["auc"]), dict(result.get("seconds", {}))
    except (OSError, KeyError, TypeError, ValueError) as error:
        return section("anomaly", "Anomaly detection", note(f"{ANOMALY_JSON} could not be read ({error}); "
                                                            "run `archlab anomaly` again."))
    rows = [[escape(SCORE_NAMES.get(name, name)), fmt_number(value), fmt_number(seconds.get(name), 1)]
            for name, value in auc.items()]
    settings = result.get("settings", {})
    body = (f"<p>Held-out class {escape(str(result.get('holdout')))}: {escape(str(result.get('positives')))} of "
            f"{escape(str(result.get('n')))} test images (a seeded subset). Latent search: "
            f"{escape(str(settings.get('steps')))} Adam steps, lr {escape(str(settings.get('lr')))}.</p>"
            + table(["anomaly score", "ROC-AUC", "seconds"], rows))
    for line in result.get("notes", []):
        body += note(str(line))
    return section("anomaly", "Anomaly detection", body)
