"""``archlab.forecast(run_dir, horizon)``: a trained forecaster's forecast of the future, beside the baselines.

Everything comes from the run directory (``meta.json``: the series, the window, the fitted scaler, the split;
the weights) and the data cache (the series itself). Two things are computed:

* the *future*: the ``horizon`` values after the last point of the series, from the network and from each
  baseline (fitted on the training part, as in the evaluation);
* the *test* comparison: network and baselines forecasting ``horizon`` steps from every origin of the test
  part, scored at leads 1 and ``horizon`` (see ``tasks/forecast_eval.py``), so the future forecast comes
  with the evidence of how good such forecasts were.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archlab.data.temporal import Scaler, TemporalSplit
from archlab.data.timeseries import load_series
from archlab.errors import RunError
from archlab.io import atomic_path
from archlab.metrics.forecast import BASELINES
from archlab.runs import load_model
from archlab.tasks.forecast_eval import ForecastEvaluation, evaluate, network_forecasts

MONTHLY = {"MS": "M", "M": "M", "YS": "Y", "Y": "Y", "A": "Y"}


@dataclass
class ForecastResult:
    """The future forecast (``timestamps`` [h], ``network`` [h], ``baselines`` label → [h]) and the test table."""

    run_dir: Path
    horizon: int
    timestamps: np.ndarray
    network: np.ndarray
    baselines: dict[str, np.ndarray]
    test: ForecastEvaluation

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.test.rows


def future_timestamps(timestamps: np.ndarray, frequency: str, count: int) -> np.ndarray:
    """The ``count`` time steps after the last one: calendar months or years, else the last step repeated."""
    unit = MONTHLY.get(frequency)
    last = timestamps[-1]
    if unit:
        return (last.astype(f"datetime64[{unit}]") + np.arange(1, count + 1)).astype("datetime64[s]")
    step = timestamps[-1] - timestamps[-2]
    return last + step * np.arange(1, count + 1)


def _forecast_meta(meta: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    info = meta.get("forecast")
    if not isinstance(info, dict):
        raise RunError(f"{run_dir} is not a forecasting run (its meta.json has no 'forecast' entry); train one with "
                       "`archlab train lstm-forecast --data co2`.")
    return info


def forecast(run_dir: str | Path, horizon: int | None = None, data_dir: str | Path | None = None) -> ForecastResult:
    """Forecast ``horizon`` steps (default: the run's own) after the end of the run's series, and score
    forecasts of that horizon on the test part against the baselines."""
    run_dir = Path(run_dir)
    loaded = load_model(run_dir)
    info = _forecast_meta(loaded.meta, run_dir)
    horizon = int(horizon or info["horizon"])
    if horizon < 1:
        raise RunError(f"--horizon must be ≥ 1, got {horizon}.")
    series = load_series(info["series"], data_dir)
    bounds = info["split"]
    split = TemporalSplit(*(range(*bounds[name]) for name in ("train", "val", "test")))
    if len(series) < split.length:
        raise RunError(f"The cached series {info['series']!r} has {len(series)} points, fewer than the {split.length} "
                       "the run was trained on; fetch it again with `archlab data fetch`.")
    target, end = int(info["target_index"]), split.length
    scaler = Scaler.from_state(info["scaler"])
    scaled = scaler.transform(series.values[:end])
    common = {"window": int(info["window"]), "stateful": bool(info["stateful"])}
    test = evaluate(loaded.model, series_name=series.name, target=info["target"], timestamps=series.timestamps[:end],
                    actual=series.values[:end, target], observed=series.observed[:end, target], scaled=scaled,
                    scaler=scaler, target_index=target, split=split, horizon=horizon, period=info["period"], **common)
    future_scaled = network_forecasts(loaded.model, scaled, np.array([end]), horizon=horizon, **common)[0]
    offset, unit = float(np.ravel(scaler.offset)[target]), float(np.ravel(scaler.scale)[target])
    history = series.values[:end, target].astype(np.float64)
    baselines = {}
    for builder in BASELINES.values():
        baseline = builder(info["period"], None)
        if baseline is not None:
            baseline.fit(split.take(history, "train"))
            baselines[baseline.label] = baseline.predict(history[None, -baseline.history :, None], horizon)[0, :, 0]
    return ForecastResult(run_dir, horizon, future_timestamps(series.timestamps[:end], info["frequency"], horizon),
                          (future_scaled * unit + offset).astype(np.float32), baselines, test)


def forecast_figure(evaluation: ForecastEvaluation, future: ForecastResult | None = None, history: int | None = None):
    """The actual series over the test part (and ``history`` points before it), the network's and the
    baselines' forecasts at the longest lead from every test origin, and the future forecast when given."""
    from archlab.report.figures import new_figure

    figure = new_figure(11, 4.2)
    axes = figure.subplots()
    split, lead = evaluation.split, evaluation.horizon
    first = max(0, split.test.start - (history if history is not None else len(split.test) // 2))
    times = evaluation.timestamps
    axes.plot(times[first:], evaluation.actual[first:], color="black", linewidth=1.2, label="actual")
    at = times[evaluation.origins + lead - 1]
    for index, (label, values) in enumerate(evaluation.baselines.items()):
        if label != "mean":
            axes.plot(at, values[:, lead - 1], linestyle="--", linewidth=0.8, color=f"C{index + 1}", label=label)
    axes.plot(at, evaluation.network[:, lead - 1], color="C0", linewidth=1.2, label=f"network ({lead}-step ahead)")
    axes.axvline(times[split.test.start], color="grey", linewidth=0.8)
    if future is not None:
        axes.plot(future.timestamps, future.network, color="C0", marker="o", markersize=3, label="network: future")
    axes.set_title(f"{evaluation.series}: test forecasts {lead} step(s) ahead (left of the line: validation)",
                   fontsize=10)
    axes.set_ylabel(evaluation.target)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, ncol=3)
    return figure


def save_forecast_plot(result: ForecastResult, path: str | Path) -> Path:
    """Draw :func:`forecast_figure` (with the future forecast) into a PNG file, atomically."""
    from archlab.report.figures import figure_to_png

    path = Path(path)
    png = figure_to_png(forecast_figure(result.test, result))
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)
    return path
