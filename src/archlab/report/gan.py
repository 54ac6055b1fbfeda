"""The "GAN" section of a ``gan`` run's report: scores, what it draws, and how the game went.

From the run directory (written by ``tasks/gan.py``): ``samples.png``, ``class_grid.png`` (conditional models),
``interpolation.png`` and ``gan_history.json`` (the monitor's checks: D(x), D(G(z)), losses, class coverage,
small-sample FID; the warnings; the test scores). ``val_fid`` comes from metrics.csv. Empty for other runs.
"""

from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from archlab.report.run_files import RunFiles
from archlab.report.sections import Embed, fmt_number, note, section, table

HISTORY_JSON = "gan_history.json"
PICTURES = (("samples.png", "64 samples"),
            ("class_grid.png", "one row per class (the same z in every row)"),
            ("interpolation.png", "latent walks: each row goes from G(z₀) to G(z₁) (spherical interpolation)"))


def _history(run_dir: Path) -> tuple[dict[str, Any], str]:
    path = run_dir / HISTORY_JSON
    if not path.is_file():
        return {}, ""
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return {}, note(f"{HISTORY_JSON} could not be read ({error}).")
    return (history, "") if isinstance(history, dict) else ({}, note(f"{HISTORY_JSON} does not hold an object."))


def _picture(path: Path, caption: str) -> str:
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def _scores(run: RunFiles, settings: dict[str, Any]) -> str:
    test = run.summary.get("test_metrics") or {}
    rows = [["FID (lower is better)", fmt_number(test.get("fid"), 2)],
            ["KID", f"{fmt_number(test.get('kid_mean'), 4)} ± {fmt_number(test.get('kid_std'), 4)}"],
            ["Inception Score (judge's classes; 10 is perfect)",
             f"{fmt_number(test.get('inception_score'), 2)} ± {fmt_number(test.get('inception_score_std'), 2)}"],
            ["class coverage (bits; 3.32 = all ten equally)", fmt_number(test.get("coverage_entropy"), 2)],
            ["best validation FID", fmt_number((run.summary.get("best_val") or {}).get("val_fid"), 2)]]
    rows += [[escape(f"setting: {key}"), escape(str(value))] for key, value in settings.items()]
    return table(["", "value"], rows)


def _curves(history: list[dict[str, Any]], val_fid: list[tuple[int, float]]) -> Figure:
    figure = Figure(figsize=(10, 3.2))
    balance, fid = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    steps = [h["step"] for h in history]
    critic = any(h.get("critic") for h in history)
    for key, label in (("d_real", "D(x)"), ("d_fake", "D(G(z))")):
        balance.plot(steps, [h.get(key) for h in history], marker=".", label=label)
    balance.set_title("critic values" if critic else "discriminator: mean probability 'real'")
    balance.set_xlabel("step")
    balance.legend()
    monitored = [(h["step"], h["monitor_fid"]) for h in history if h.get("monitor_fid") is not None]
    if monitored:
        fid.plot(*zip(*monitored), marker=".", label="monitor (small sample)")
    if val_fid:
        fid.plot(*zip(*val_fid), marker="o", label="validation")
    fid.set_title("FID over training")
    fid.set_xlabel("step")
    fid.legend()
    figure.tight_layout()
    return figure


def _coverage(histogram: list[float]) -> Figure:
    figure = Figure(figsize=(5, 2.8))
    axis = figure.add_subplot(1, 1, 1)
    axis.bar(range(len(histogram)), histogram)
    axis.axhline(1 / len(histogram), color="grey", linestyle="--", linewidth=1)
    axis.set_xticks(range(len(histogram)))
    axis.set_xlabel("class the judge reads")
    axis.set_ylabel("share of samples")
    axis.set_title("class coverage of the test samples")
    figure.tight_layout()
    return figure


def _val_fid(run: RunFiles) -> list[tuple[int, float]]:
    points = []
    for row in run.metrics_rows:
        value, step = row.get("val_fid"), row.get("step")
        if value not in (None, "") and step not in (None, ""):
            points.append((int(float(step)), float(value)))
    return points


def gan_section(run: RunFiles, embed: Embed) -> str:
    """The section, or nothing for a run that is not a GAN run."""
    run_dir = Path(run.run_dir)
    history, problem = _history(run_dir)
    if run.summary.get("task") != "gan" and not history and not problem:
        return ""
    parts = ["<p>Scores of generated images by the data set's judge (a fixed classifier's features, not "
             "Inception): FID and KID against the test split, IS on its class probabilities, coverage = entropy of "
             "the classes it reads. Compare only at the same number of samples.</p>",
             _scores(run, history.get("settings") or {}), problem]
    warnings = history.get("warnings") or run.summary.get("gan_warnings") or []
    if warnings:
        parts.append("<h3>Warnings during training</h3><ul>" + "".join(f"<li>{escape(str(w))}</li>" for w in warnings)
                     + "</ul>")
    parts += [_picture(run_dir / name, caption) for name, caption in PICTURES]
    checks = [h for h in history.get("history") or [] if isinstance(h, dict) and "step" in h]
    if checks:
        parts.append(embed("gan_curves", _curves(checks, _val_fid(run)), "D(x), D(G(z)) and FID over training"))
    histogram = (history.get("test") or {}).get("class_histogram") or run.summary.get("class_histogram")
    if histogram:
        parts.append(embed("gan_coverage", _coverage(histogram), "class coverage histogram"))
    return section("gan", "GAN", "\n".join(part for part in parts if part))
