"""Finding and tabulating runs under a folder."""

import json
import os
from datetime import datetime

from archlab.report.runs import find_runs, runs_table


def test_runs_table_orders_runs_newest_first(tmp_path, make_fake_run):
    older = make_fake_run(tmp_path / "runs" / "a", created="2026-11-20T09:00:00", predictions=False)
    newer = make_fake_run(tmp_path / "runs" / "nested" / "b", created="2026-11-23T10:00:00", predictions=False)
    (tmp_path / "runs" / "not_a_run").mkdir()
    assert find_runs(tmp_path / "runs") == [newer, older]
    table = runs_table(tmp_path / "runs")
    assert [row["path"] for row in table] == [newer, older]
    assert table[0] == {
        "path": newer, "model": "cnn", "data": "mnist", "task": "classify", "recipe": "mnist-fast",
        "test_accuracy": 0.991, "test_loss": 0.03, "headline": ("accuracy", 0.991), "wall_seconds": 12.3,
        "epochs": 3, "created": "2026-11-23T10:00:00",
    }


def test_the_runs_table_shows_each_task_s_headline_metric(tmp_path):
    folder = tmp_path / "lm"
    folder.mkdir()
    summary = {"model": "lstm-lm", "task": "language", "headline": "bits_per_char",
               "test_metrics": {"loss": 1.6, "bits_per_char": 2.31}}
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (row,) = runs_table(tmp_path)
    assert row["task"] == "language" and row["headline"] == ("bits_per_char", 2.31) and row["test_accuracy"] is None


def test_runs_without_created_fall_back_to_modification_time(tmp_path):
    for name, mtime in (("old", 1_000_000_000), ("new", 2_000_000_000)):
        (tmp_path / name).mkdir()
        summary = tmp_path / name / "summary.json"
        summary.write_text(json.dumps({"model": name}), encoding="utf-8")
        os.utime(summary, (mtime, mtime))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text("{", encoding="utf-8")
    os.utime(tmp_path / "broken" / "summary.json", (1_500_000_000, 1_500_000_000))
    table = runs_table(tmp_path)
    assert [row["path"].name for row in table] == ["new", "broken", "old"]
    assert table[1]["model"] is None
    assert table[1]["created"] == datetime.fromtimestamp(1_500_000_000).isoformat(timespec="seconds")


def test_missing_root_has_no_runs(tmp_path):
    assert find_runs(tmp_path / "absent") == []
    assert runs_table(tmp_path / "absent") == []
