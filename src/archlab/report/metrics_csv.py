"""Read Lightning's ``CSVLogger`` output (``metrics.csv``) into sparse rows of numbers.

Lightning writes one row per ``log`` call, with a column per metric ever logged; a row fills only the
columns logged at that moment (``train_loss`` on a training step, ``val_acc`` at the end of an epoch) and
leaves the others empty. Each row therefore becomes a small dict holding only the cells that were filled.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from archlab.errors import RunError

Row = dict[str, float]


def read_metrics_csv(path: str | Path) -> list[Row]:
    """Return the rows of a ``metrics.csv``, each a dict of its non-empty cells parsed as floats.

    Empty cells are dropped, so ``row.get("val_acc")`` is None on rows that did not log it. Cells that are
    not numbers (which Lightning never writes) are dropped too. A missing file raises :class:`RunError`.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return [_parse_row(row) for row in csv.DictReader(handle)]
    except FileNotFoundError as error:
        raise RunError(
            f"There is no metrics file at {path}. It is written by the CSV logger during training: "
            "train the model first with `archlab train ...`, then build the report again."
        ) from error


def _parse_row(row: Mapping[str | None, object]) -> Row:
    """Keep the filled cells of one ``csv.DictReader`` row, as floats."""
    parsed: Row = {}
    for key, text in row.items():
        # DictReader files surplus cells under the key None, and missing cells as the value None.
        if key is None or not isinstance(text, str) or not text.strip():
            continue
        try:
            parsed[key] = float(text)
        except ValueError:
            continue
    return parsed


def series(rows: Iterable[Row], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(steps, values)`` for the rows that logged ``key``, in file order.

    The step is the row's ``step`` cell; a row without one gets its position in the file instead.
    """
    steps: list[float] = []
    values: list[float] = []
    for position, row in enumerate(rows):
        if key in row:
            steps.append(row.get("step", float(position)))
            values.append(row[key])
    return np.asarray(steps, dtype=float), np.asarray(values, dtype=float)


def columns_with_prefix(rows: Iterable[Row], prefix: str) -> list[str]:
    """Return the column names starting with ``prefix``, in order of first appearance."""
    return list(dict.fromkeys(key for row in rows for key in row if key.startswith(prefix)))


def first_present(rows: list[Row], candidates: Iterable[str]) -> str | None:
    """Return the first candidate column that some row logged (e.g. ``train_loss`` or ``train_loss_step``)."""
    logged = {key for row in rows for key in row}
    return next((name for name in candidates if name in logged), None)
