"""Read the files of a run directory for the report, tolerating the optional ones that are missing.

Only ``summary.json`` is required (its absence raises :class:`RunError`). Every other file may be absent
in an old or partial run; its loader then returns an empty value and a note saying what is missing and
how to recreate it, which the report shows in place of the section.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from archlab.errors import RunError
from archlab.report.metrics_csv import Row, read_metrics_csv

SUMMARY_FILE = "summary.json"
META_FILE = "meta.json"
METRICS_FILE = "metrics.csv"
PREDICTIONS_FILE = "test_predictions.npz"
CONFIG_FILE = "config.yaml"
ATTACK_GLOB = "attack-*.json"


@dataclass
class RunFiles:
    """What the report needs from a run directory; ``*_note`` explains an input that is missing."""

    run_dir: Path
    summary: dict
    meta: dict = field(default_factory=dict)
    metrics_rows: list[Row] = field(default_factory=list)
    metrics_note: str | None = None
    predictions: dict[str, np.ndarray] | None = None
    predictions_note: str | None = None
    config_text: str | None = None
    attacks: dict[str, dict] = field(default_factory=dict)
    attacks_notes: list[str] = field(default_factory=list)


def read_run_files(run_dir: Path) -> RunFiles:
    """Read every file of ``run_dir`` that the report uses."""
    run_dir = Path(run_dir)
    summary = read_summary(run_dir)
    rows, metrics_note = read_metrics(run_dir)
    predictions, predictions_note = read_predictions(run_dir)
    config_path = run_dir / CONFIG_FILE
    attacks, attacks_notes = read_attacks(run_dir)
    return RunFiles(
        run_dir=run_dir,
        summary=summary,
        meta=read_json(run_dir / META_FILE, required=False),
        metrics_rows=rows,
        metrics_note=metrics_note,
        predictions=predictions,
        predictions_note=predictions_note,
        config_text=config_path.read_text(encoding="utf-8") if config_path.is_file() else None,
        attacks=attacks,
        attacks_notes=attacks_notes,
    )


def read_summary(run_dir: Path) -> dict:
    """Return the run's ``summary.json``; raise :class:`RunError` if the folder or the file is missing."""
    if not run_dir.is_dir():
        raise RunError(
            f"The run directory {run_dir} does not exist. Check the path, or train first with "
            "`archlab train ...` (list existing runs with `archlab runs`)."
        )
    return read_json(run_dir / SUMMARY_FILE, required=True)


def read_json(path: Path, required: bool) -> dict:
    """Return the JSON object in ``path``; an absent optional file gives ``{}``; bad JSON raises RunError."""
    if not path.is_file():
        if not required:
            return {}
        raise RunError(
            f"The run directory {path.parent} has no {path.name}, so it is not a finished run: training "
            "writes this file when it ends. Train first with `archlab train ...` (or let the interrupted "
            "run finish), then build the report again."
        )
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(
            f"{path} is not valid JSON ({error}); the run was probably interrupted while writing it. "
            "Train the run again, or delete the file if it is optional."
        ) from error
    if not isinstance(content, dict):
        raise RunError(f"{path} should hold a JSON object, not {type(content).__name__}; train the run again.")
    return content


def find_metrics_csv(run_dir: Path) -> Path | None:
    """Return ``run_dir/metrics.csv``, else the newest ``metrics.csv`` below it (Lightning's version folders)."""
    direct = run_dir / METRICS_FILE
    if direct.is_file():
        return direct
    nested = sorted(run_dir.rglob(METRICS_FILE), key=lambda path: path.stat().st_mtime, reverse=True)
    return nested[0] if nested else None


def read_metrics(run_dir: Path) -> tuple[list[Row], str | None]:
    """Return the metrics rows, or no rows and a note when the run has no ``metrics.csv``."""
    path = find_metrics_csv(run_dir)
    if path is None:
        return [], (
            f"No {METRICS_FILE} in {run_dir}: the run logged no metrics. It is written by the CSV logger "
            "during training; train again with `archlab train ...` to get the curves."
        )
    return read_metrics_csv(path), None


def read_predictions(run_dir: Path) -> tuple[dict[str, np.ndarray] | None, str | None]:
    """Return the arrays of ``test_predictions.npz``, or None and a note when it is missing or unreadable."""
    path = run_dir / PREDICTIONS_FILE
    recreate = f"re-run `archlab eval {run_dir}` to recreate predictions."
    if not path.is_file():
        return None, f"No {PREDICTIONS_FILE} in {run_dir}: {recreate}"
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        return None, f"{path} could not be read ({error}): {recreate}"
    missing = [name for name in ("labels", "preds") if name not in arrays]
    if missing:
        return None, f"{path} lacks the arrays {', '.join(missing)}: {recreate}"
    return arrays, None


def read_attacks(run_dir: Path) -> tuple[dict[str, dict], list[str]]:
    """``{method: record}`` from the ``attack-<method>.json`` files of ``archlab attack``; unreadable or
    malformed files are skipped with a note."""
    attacks, notes = {}, []
    for path in sorted(run_dir.glob(ATTACK_GLOB)):
        method = path.stem.removeprefix("attack-")
        try:
            record = read_json(path, required=True)
        except RunError as error:
            notes.append(str(error))
            continue
        eps, accuracy = record.get("eps"), record.get("accuracy")
        if not (isinstance(eps, list) and isinstance(accuracy, list) and len(eps) == len(accuracy) and eps):
            notes.append(f"{path} has no matching eps and accuracy lists; run `archlab attack {run_dir} "
                         f"--method {method}` again.")
            continue
        attacks[method] = record
    return attacks, notes
