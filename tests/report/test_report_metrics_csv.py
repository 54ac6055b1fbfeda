"""Parsing Lightning's sparse metrics.csv."""

from pathlib import Path

import numpy as np
import pytest

from archlab.errors import RunError
from archlab.report import read_metrics_csv
from archlab.report.metrics_csv import columns_with_prefix, first_present, series

SPARSE_CSV = """step,epoch,train_loss,val_acc,lr-Adam,grad_norm/fc.weight
0,0,2.5,,0.001,
1,0,2.0,,,0.5
1,0,,0.8,,
2,1,1.5,,0.0005,nan
"""


@pytest.fixture
def sparse_csv(tmp_path: Path) -> Path:
    path = tmp_path / "metrics.csv"
    path.write_text(SPARSE_CSV, encoding="utf-8")
    return path


def test_empty_cells_are_dropped_and_numbers_parsed(sparse_csv):
    rows = read_metrics_csv(sparse_csv)
    assert len(rows) == 4
    assert rows[0] == {"step": 0.0, "epoch": 0.0, "train_loss": 2.5, "lr-Adam": 0.001}
    assert rows[2] == {"step": 1.0, "epoch": 0.0, "val_acc": 0.8}
    assert np.isnan(rows[3]["grad_norm/fc.weight"])


def test_series_returns_steps_and_values_of_rows_that_logged_the_key(sparse_csv):
    rows = read_metrics_csv(sparse_csv)
    steps, values = series(rows, "train_loss")
    np.testing.assert_array_equal(steps, [0, 1, 2])
    np.testing.assert_array_equal(values, [2.5, 2.0, 1.5])
    steps, values = series(rows, "absent")
    assert steps.size == 0 and values.size == 0


def test_series_uses_the_row_position_when_there_is_no_step_column():
    steps, values = series([{"loss": 1.0}, {}, {"loss": 0.5}], "loss")
    np.testing.assert_array_equal(steps, [0, 2])
    np.testing.assert_array_equal(values, [1.0, 0.5])


def test_column_helpers(sparse_csv):
    rows = read_metrics_csv(sparse_csv)
    assert columns_with_prefix(rows, "lr-") == ["lr-Adam"]
    assert first_present(rows, ["train_loss_step", "train_loss"]) == "train_loss"
    assert first_present(rows, ["train_acc"]) is None


def test_ragged_rows_and_text_cells_are_tolerated(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,loss\n0,1.0,extra\n1\n2,oops\n", encoding="utf-8")
    assert read_metrics_csv(path) == [{"step": 0.0, "loss": 1.0}, {"step": 1.0}, {"step": 2.0}]


def test_missing_file_raises_run_error(tmp_path):
    with pytest.raises(RunError, match="metrics"):
        read_metrics_csv(tmp_path / "metrics.csv")
