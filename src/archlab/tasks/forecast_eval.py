"""A trained forecaster beside the baselines, on the same forecast origins, in the series' own units.

For each origin ``t`` of a part (those of ``window_origins(window, H, part)``, the windows the network is
scored on) the network forecasts ``y[t .. t+h-1]`` from the values before ``t``: the last step of the window
``x[t-window .. t-1]``, or for a stateful network the step ``t-1`` of one pass over the whole history. The
baselines of ``metrics/forecast.py`` (train mean, last value, seasonal naive, AR with AIC order), fitted on
the training part, forecast from the same origins; every row scores leads ``1 .. h`` with MAE, RMSE, MAPE,
sMAPE and MASE (filled values are not scored).

Horizons beyond the network's own ``H`` are made recursively: the forecasts are appended to the inputs and
the window moves on (univariate inputs only; the other columns would have no future values to feed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import nn

from archlab.data.temporal import Scaler, TemporalSplit, window_origins
from archlab.errors import ConfigError
from archlab.io import atomic_path, atomic_write_json
from archlab.metrics.forecast import BASELINES, METRICS, baseline_table, forecast_at, naive_scale

FORECAST_NPZ = "forecast.npz"
FORECAST_JSON = "forecast.json"
NETWORK = "network"


@dataclass
class ForecastEvaluation:
    """Network and baseline forecasts at the origins of one part, and the table comparing them."""

    series: str
    target: str
    horizon: int
    timestamps: np.ndarray  # datetime64[s] [T]
    actual: np.ndarray  # [T] original units
    observed: np.ndarray  # [T] bool
    split: TemporalSplit
    origins: np.ndarray  # [N]
    network: np.ndarray  # [N, horizon] original units
    baselines: dict[str, np.ndarray] = field(default_factory=dict)  # label -> [N, horizon]
    rows: list[dict[str, Any]] = field(default_factory=list)
    part: str = "test"

    def summary(self) -> dict[str, Any]:
        return {"series": self.series, "target": self.target, "part": self.part, "horizon": self.horizon,
                "windows": int(self.origins.size), "rows": self.rows}


@torch.no_grad()
def network_forecasts(model: nn.Module, scaled: np.ndarray, origins: np.ndarray, window: int, horizon: int,
                      stateful: bool = False, batch: int = 512) -> np.ndarray:
    """Scaled forecasts [N, horizon] of the target column from each origin (see the module docstring)."""
    model.eval()
    device = next(model.parameters()).device
    values = torch.as_tensor(scaled, dtype=torch.float32, device=device)
    trained = int(model.horizon)
    if horizon > trained and values.shape[1] != 1:
        raise ConfigError(f"The network forecasts {trained} steps; longer horizons are made by feeding forecasts "
                          f"back, which needs a univariate series, but this one has {values.shape[1]} columns. "
                          f"Ask for --horizon {trained} or less.")
    if stateful and horizon <= trained:
        every_step = model(values[: int(origins.max())].unsqueeze(0))[0]  # step p forecasts from origin p + 1
        return every_step[torch.as_tensor(origins - 1, device=device), :horizon].cpu().numpy()
    offsets = torch.arange(-window, 0, device=device)
    chunks = []
    for first in range(0, origins.size, batch):
        index = torch.as_tensor(origins[first : first + batch], device=device).unsqueeze(1) + offsets
        inputs, made = values[index], []
        while sum(step.shape[1] for step in made) < horizon:
            step = model(inputs)[:, -1]  # [B, trained]
            made.append(step)
            inputs = torch.cat([inputs, step.unsqueeze(-1)], dim=1)[:, -window:]
        chunks.append(torch.cat(made, dim=1)[:, :horizon])
    return torch.cat(chunks).cpu().numpy()


def score(forecasts: np.ndarray, targets: np.ndarray, observed: np.ndarray, leads: list[int], scale: float,
          label: str) -> list[dict[str, Any]]:
    """Rows ``{model, horizon, MAE, RMSE, MAPE, sMAPE, MASE, windows}`` (leads 1..h) as ``baseline_table``'s."""
    rows = []
    for lead in leads:
        pair = targets[:, :lead], forecasts[:, :lead], observed[:, :lead]
        row: dict[str, Any] = {"model": label, "horizon": lead}
        row.update({name: metric(*pair) for name, metric in METRICS.items()})
        row["MASE"] = row["MAE"] / scale if scale > 0 else float("nan")
        row["windows"] = int(targets.shape[0])
        rows.append(row)
    return rows


def evaluate(model: nn.Module, *, series_name: str, target: str, timestamps: np.ndarray, actual: np.ndarray,
             observed: np.ndarray, scaled: np.ndarray, scaler: Scaler, target_index: int, split: TemporalSplit,
             window: int, horizon: int, period: int | None, stateful: bool, part: str = "test") -> ForecastEvaluation:
    """The network and every baseline on the origins of ``part``, scored at leads 1 and ``horizon``."""
    chosen = split.part(part)
    origins = window_origins(window, horizon, chosen.start, chosen.stop)
    if origins.size == 0:
        raise ConfigError(f"The {part} part ({len(chosen)} points) holds no forecast of horizon {horizon} after "
                          f"a window of {window}; ask for a shorter horizon.")
    scaled_forecasts = network_forecasts(model, scaled, origins, window, horizon, stateful)
    offset = float(np.ravel(scaler.offset)[target_index])
    unit = float(np.ravel(scaler.scale)[target_index])
    network = (scaled_forecasts.astype(np.float64) * unit + offset).astype(np.float32)
    index = origins[:, None] + np.arange(horizon)
    leads = sorted({1, horizon})
    train = split.take(actual, "train")
    rows = score(network, actual[index], observed[index], leads, naive_scale(train, period), NETWORK)
    column = SimpleNamespace(values=actual, observed=observed, period=period)
    for row in baseline_table(column, split, horizon, part=part, horizons=tuple(leads), input_length=window):
        rows.append({"model": row.pop("baseline"), **row})
    baselines = {}
    for builder in BASELINES.values():
        baseline = builder(period, None)
        if baseline is not None:
            baseline.fit(train)
            baselines[baseline.label] = forecast_at(baseline, actual, origins, horizon)[..., 0]
    return ForecastEvaluation(series_name, target, horizon, timestamps, actual, observed, split, origins, network,
                              baselines, rows, part)


def evaluate_run_data(model: nn.Module, data: Any, part: str = "test") -> ForecastEvaluation:
    """:func:`evaluate` on a task's ``ForecastData`` (the model as trained, right after the test pass)."""
    end = len(data.scaled)
    return evaluate(model, series_name=data.series.name, target=data.series.columns[data.target_index],
                    timestamps=data.series.timestamps[:end], actual=data.series.values[:end, data.target_index],
                    observed=data.series.observed[:end, data.target_index], scaled=data.scaled, scaler=data.scaler,
                    target_index=data.target_index, split=data.split, window=data.window, horizon=data.horizon,
                    period=data.series.period, stateful=data.options.stateful, part=part)


def write_outputs(run_dir: Path, evaluation: ForecastEvaluation) -> None:
    """``forecast.npz`` (the series, the origins, every forecast) and ``forecast.json`` (the table)."""
    split = evaluation.split
    names = list(evaluation.baselines)
    with atomic_path(Path(run_dir) / FORECAST_NPZ) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(
                handle, timestamps=evaluation.timestamps.astype("datetime64[s]").astype(np.int64),
                actual=evaluation.actual, observed=evaluation.observed, origins=evaluation.origins,
                split=np.array([split.train.start, split.train.stop, split.val.stop, split.test.stop]),
                network=evaluation.network, baseline_names=np.array(names, dtype=str),
                baselines=np.stack([evaluation.baselines[name] for name in names]) if names else np.zeros((0,)))
    atomic_write_json(Path(run_dir) / FORECAST_JSON, evaluation.summary())
