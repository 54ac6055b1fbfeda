"""CLI of the forecast task: ``archlab forecast RUN_DIR --horizon H``, and the network-vs-baselines table that
``archlab train`` prints after a forecasting run (``SUMMARY_PRINTERS["forecast"]``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from archlab import cli

COLUMNS = ("MAE", "RMSE", "MAPE", "MASE")


def _number(value: Any) -> str:
    return "—" if not isinstance(value, (int, float)) or math.isnan(value) else f"{value:.4g}"


def comparison_table(rows: list[dict[str, Any]], title: str) -> Table:
    """One line per model and lead: MAE, RMSE, MAPE (%), MASE; the best MAE of each lead in bold."""
    table = Table(title=title)
    for column in ("model", "leads", *COLUMNS):
        table.add_column(column, justify="left" if column == "model" else "right")
    best = {}
    for row in rows:
        lead, mae = row.get("horizon"), row.get("MAE")
        if isinstance(mae, (int, float)) and not math.isnan(mae) and mae < best.get(lead, math.inf):
            best[lead] = mae
    for row in sorted(rows, key=lambda r: (r.get("horizon", 0), r.get("model") != "network")):
        bold = row.get("MAE") == best.get(row.get("horizon"))
        cells = [_number(row.get(column)) for column in COLUMNS]
        if bold:
            cells[0] = f"[bold]{cells[0]}[/]"
        table.add_row(escape(str(row.get("model"))), f"1–{row.get('horizon')}", *cells)
    return table


def print_forecast_summary(summary: dict[str, Any]) -> None:
    """After ``archlab train``: the test errors of the network beside each baseline, on the same windows."""
    forecast = summary.get("forecast")
    if not isinstance(forecast, dict) or not forecast.get("rows"):
        return
    title = (f"{forecast.get('series')}: {forecast.get('part', 'test')} forecasts, {forecast.get('windows')} origins "
             f"(MAPE in %, MASE < 1 beats the in-sample naive)")
    cli.console.print(comparison_table(forecast["rows"], title))


cli.SUMMARY_PRINTERS["forecast"] = print_forecast_summary


@cli.command(name="forecast")
def forecast_command(
    run_dir: Path = typer.Argument(..., help="A forecasting run directory (archlab train lstm-forecast --data co2)."),
    horizon: Optional[int] = typer.Option(None, help="Steps to forecast (default: the run's horizon; longer ones "
                                                     "feed forecasts back, univariate series only)."),
    output: Optional[Path] = typer.Option(None, help="Plot file (default RUN_DIR/forecast-h<H>.png)."),
    data_dir: Optional[Path] = typer.Option(None, help="Data cache folder."),
) -> None:
    """Forecast the steps after the end of a run's series, and compare such forecasts with the baselines on the
    test part (last value, seasonal naive, autoregression); save a plot with the actual series.

    Example: archlab forecast runs/lstm-forecast-co2/20261123-101500 --horizon 12
    """
    from archlab.forecasting import forecast, save_forecast_plot

    result = forecast(run_dir, horizon=horizon, data_dir=data_dir)
    table = Table(title=f"{result.test.series}: the next {result.horizon} step(s) after the series")
    names = [name for name in result.baselines if name != "mean"]
    for column in ("time", "network", *names):
        table.add_column(escape(column), justify="left" if column == "time" else "right")
    for step, when in enumerate(result.timestamps):
        values = [result.network[step], *(result.baselines[name][step] for name in names)]
        table.add_row(str(when).replace("T00:00:00", ""), *(f"{value:.4g}" for value in values))
    cli.console.print(table)
    cli.console.print(comparison_table(result.rows, f"the same horizon on the test part: {result.test.origins.size} "
                                                     "origins (MAPE in %)"))
    path = save_forecast_plot(result, output or Path(run_dir) / f"forecast-h{result.horizon}.png")
    cli.console.print(f"plot: [bold]{escape(str(path))}[/]")
