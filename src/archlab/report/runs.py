"""Find the runs under a folder and tabulate them (what ``archlab runs`` prints).

A run is any folder holding a ``summary.json``. Runs are ordered newest first by the summary's ``created``
time, or by the file's modification time when that is missing or unreadable.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from archlab.report.run_files import SUMMARY_FILE


def find_runs(root: Path) -> list[Path]:
    """Every folder under ``root`` (``root`` included) that holds a ``summary.json``, newest first.

    A missing ``root`` has no runs: the result is empty.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    folders = [summary.parent for summary in root.rglob(SUMMARY_FILE) if summary.is_file()]
    return sorted(folders, key=lambda folder: _created_timestamp(folder, _read_summary(folder)), reverse=True)


def runs_table(root: Path) -> list[dict]:
    """One row per run under ``root``, newest first.

    Keys: ``path``, ``model``, ``data``, ``task``, ``recipe``, ``test_accuracy``, ``test_loss``, ``headline``
    (the task's main test metric, ``(name, value)``), ``wall_seconds``, ``epochs``, ``created``. Values missing from a run's summary (old or partial runs) are None; the
    caller chooses how to show them.
    """
    return [_run_row(folder) for folder in find_runs(root)]


def _run_row(folder: Path) -> dict:
    """The table row of one run folder."""
    summary = _read_summary(folder)
    test = summary.get("test_metrics") if isinstance(summary.get("test_metrics"), dict) else {}
    return {
        "path": folder,
        "model": summary.get("model"),
        "data": summary.get("data"),
        "recipe": summary.get("recipe"),
        "task": summary.get("task", "classify"),
        "test_accuracy": test.get("accuracy"),
        "test_loss": test.get("loss"),
        "headline": (summary.get("headline", "accuracy"), test.get(summary.get("headline", "accuracy"))),
        "wall_seconds": summary.get("wall_seconds"),
        "epochs": summary.get("epochs"),
        "created": summary.get("created") or _mtime_iso(folder),
    }


def _read_summary(folder: Path) -> dict:
    """The folder's summary as a dict; an unreadable one (a run still being written) counts as empty."""
    try:
        content = json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return content if isinstance(content, dict) else {}


def _created_timestamp(folder: Path, summary: dict) -> float:
    """Seconds since the epoch at which the run was created: ``created`` if parseable, else the file mtime."""
    created = summary.get("created")
    if isinstance(created, str):
        try:
            return datetime.fromisoformat(created).timestamp()
        except ValueError:
            pass
    return (folder / SUMMARY_FILE).stat().st_mtime


def _mtime_iso(folder: Path) -> str:
    """The summary file's modification time, ISO formatted to the second."""
    return datetime.fromtimestamp((folder / SUMMARY_FILE).stat().st_mtime).isoformat(timespec="seconds")
