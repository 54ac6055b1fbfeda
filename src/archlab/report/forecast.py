"""The "Forecasts" section of a forecasting run's report, from ``forecast.npz`` and ``forecast.json``.

A table of the network's test errors beside each baseline's (same origins, leads 1 and H; MAE, RMSE, MAPE,
MASE; the best MAE of each lead in bold), a plot of the actual series with the forecasts of every model H
steps ahead, and, for a cross-validated run, the rolling-origin folds' test errors with their mean ± std.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from archlab.data.temporal import TemporalSplit
from archlab.report.run_files import RunFiles
from archlab.report.sections import Embed, fmt_number, note, section, table
from archlab.tasks.forecast_eval import FORECAST_JSON, FORECAST_NPZ, ForecastEvaluation

COLUMNS = ("MAE", "RMSE", "MAPE", "MASE")


def read_evaluation(run_dir: Path) -> ForecastEvaluation:
    """The :class:`ForecastEvaluation` saved after training (raises OSError/KeyError/ValueError if unreadable)."""
    summary = json.loads((run_dir / FORECAST_JSON).read_text(encoding="utf-8"))
    with np.load(run_dir / FORECAST_NPZ, allow_pickle=False) as arrays:
        start, val_start, test_start, stop = (int(value) for value in arrays["split"])
        names = [str(name) for name in arrays["baseline_names"]]
        baselines = {name: arrays["baselines"][index] for index, name in enumerate(names)}
        return ForecastEvaluation(
            summary["series"], summary["target"], int(summary["horizon"]),
            arrays["timestamps"].astype("datetime64[s]"), arrays["actual"], arrays["observed"],
            TemporalSplit(range(start, val_start), range(val_start, test_start), range(test_start, stop)),
            arrays["origins"], arrays["network"], baselines, summary["rows"], summary.get("part", "test"))


def rows_table(rows: list[dict[str, Any]]) -> str:
    best: dict[Any, float] = {}
    for row in rows:
        mae = row.get("MAE")
        if isinstance(mae, (int, float)) and not np.isnan(mae):
            best[row.get("horizon")] = min(best.get(row.get("horizon"), np.inf), mae)
    cells = []
    for row in sorted(rows, key=lambda r: (r.get("horizon", 0), r.get("model") != "network")):
        values = [fmt_number(row.get(column)) for column in COLUMNS]
        if row.get("MAE") == best.get(row.get("horizon")):
            values[0] = f"<strong>{values[0]}</strong>"
        cells.append([escape(str(row.get("model"))), f"1–{escape(str(row.get('horizon')))}", *values])
    return table(["model", "leads", "MAE", "RMSE", "MAPE (%)", "MASE"], cells)


def folds_table(summary: dict[str, Any]) -> str:
    """Per-fold test errors of a rolling-origin cross-validation (``summary["cv"]``), when there is one."""
    cv = summary.get("cv")
    if not isinstance(cv, dict) or not isinstance(cv.get("folds"), list):
        return ""
    keys = [key for key in ("mae", "rmse", "mape") if any(key in fold for fold in cv["folds"] if isinstance(fold, dict))]
    if not keys:
        return ""
    rows = [[escape(str(fold.get("fold", index)))] + [fmt_number(fold.get(key)) for key in keys]
            for index, fold in enumerate(cv["folds"]) if isinstance(fold, dict)]
    rows.append(["<strong>mean ± std</strong>"] + [f"{fmt_number(cv.get(f'{key}_mean'))} ± "
                                                   f"{fmt_number(cv.get(f'{key}_std'))}" for key in keys])
    return ("<p>Rolling-origin cross-validation: each fold trains on the series up to its origin and is tested "
            "on the points right after it.</p>" + table(["fold", *(key.upper() for key in keys)], rows))


def forecast_section(run: RunFiles, embed: Embed) -> str:
    """The section, or nothing for a run that wrote no forecasts (not a forecasting run)."""
    run_dir = Path(run.run_dir)
    folds = folds_table(run.summary)
    if not (run_dir / FORECAST_NPZ).is_file():
        return section("forecasts", "Forecasts", folds) if folds else ""
    try:
        evaluation = read_evaluation(run_dir)
    except (OSError, KeyError, ValueError, json.JSONDecodeError) as error:
        return section("forecasts", "Forecasts", note(f"The forecast files could not be read ({error}); train the "
                                                      "run again to recreate them."))
    from archlab.forecasting import forecast_figure

    caption = (f'<p class="caption">{escape(evaluation.series)}: the network and the baselines forecasting '
               f"{evaluation.horizon} step(s) from each of {evaluation.origins.size} test origins; baselines fitted "
               "on the training part. MASE below 1 beats the in-sample naive forecast.</p>")
    figure = embed("forecast", forecast_figure(evaluation), "test forecasts beside the actual series")
    return section("forecasts", "Forecasts", rows_table(evaluation.rows) + caption + figure + folds)
