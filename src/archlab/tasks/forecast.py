"""Time-series forecasting (many-to-many, equal lengths) as a LightningModule, and its wiring into a run.

Objective, in scaled units (``z = (x - offset) / scale``, the scaler fitted on the training part only)::

    loss = mean over steps i >= warmup, leads h = 1..H, observed targets of (yhat[i, h] - z[p_i + h])^2
           + l1 · Σ|w| + l2 · Σ w²

The first ``warmup`` steps of a sequence that starts from a zero state are not scored: the network has
seen almost nothing there. Validation and test errors are reported in the series' own units, for the
forecast made at each origin of the part (the last step of a window, or in stateful mode the step before
the origin, after the whole history): ``MAE``, ``RMSE`` and ``MAPE`` over leads ``1..H``.

Honest validation (see ``data/temporal.py``): a temporal split (train, then validation, then test; every
target of a later part after every target of an earlier part), the scaler fitted on training values only,
and, for ``--cv K --cv-method rolling``, rolling-origin folds (Tashman, IJF 16, 2000; Hyndman &
Athanasopoulos, FPP3 section 5.10) over the training + validation part, the final test part left untouched.

Stateful training (``stateful=true``): the training part is read as ``batch_size`` consecutive streams in
chunks of ``window`` steps; the state at the end of a chunk starts the next chunk, detached (truncated
backpropagation through time, Williams & Peng 1990), and is reset at the first chunk of every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torchmetrics import MeanMetric, MeanSquaredError

from archlab.config import TrainConfig
from archlab.data.series_batches import (
    OneBatch,
    SeriesArrays,
    SeriesBatch,
    StreamLoader,
    WindowLoader,
    full_series_batch,
)
from archlab.data.temporal import Scaler, TemporalSplit, rolling_origin_folds, temporal_split
from archlab.data.timeseries import Series, load_series
from archlab.errors import ConfigError
from archlab.models.forecast import detach_state
from archlab.tasks.base import OptimSettings, TaskDef, TaskModule, register_task


@dataclass
class ForecastOptions:
    """The settings of the forecast task (``--task-arg key=value``)."""

    horizon: int = 1  # values forecast at once: y[t .. t+horizon-1] from the values before t
    window: int | None = None  # steps per training sequence (None: two seasonal periods, at least 16)
    stride: int = 1  # steps between the origins of consecutive training windows
    stateful: bool = False  # carry the state across consecutive chunks of the series (batch_size streams)
    scaler: str = "standard"  # standard or minmax, fitted on the training part only
    target: str | None = None  # the column forecast (None: the first); the other columns are inputs too
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    warmup: int | None = None  # first steps of a zero-state sequence left out of the loss (None: window // 4)
    fold_size: int | None = None  # rolling CV: points in each fold's test part (None: val points // folds)

    def __post_init__(self) -> None:
        checks = [
            (self.horizon >= 1, f"horizon must be ≥ 1, got {self.horizon}"),
            (self.window is None or self.window >= 2, f"window must be ≥ 2 steps, got {self.window}"),
            (self.stride >= 1, f"stride must be ≥ 1, got {self.stride}"),
            (self.warmup is None or self.warmup >= 0, f"warmup must be ≥ 0, got {self.warmup}"),
            (self.fold_size is None or self.fold_size >= self.horizon, "fold_size must be ≥ horizon"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass
class ForecastData:
    """One series ready for training: scaled values, the split, the scaler and the resolved settings."""

    series: Series
    split: TemporalSplit
    scaler: Scaler
    scaled: np.ndarray  # [T, F] float32, every column scaled with training statistics
    target_index: int
    window: int
    warmup: int
    options: ForecastOptions
    fold: int | None = None

    @property
    def horizon(self) -> int:
        return self.options.horizon

    @property
    def arrays(self) -> SeriesArrays:
        observed = self.series.observed[: len(self.scaled), self.target_index]
        return SeriesArrays(self.scaled, observed, self.target_index, self.horizon)

    def target_units(self) -> tuple[float, float]:
        """(offset, scale) of the target column: ``x = z · scale + offset``."""
        return float(np.ravel(self.scaler.offset)[self.target_index]), float(np.ravel(self.scaler.scale)[self.target_index])


def prepare(series: Series, split: TemporalSplit, options: ForecastOptions, fold: int | None = None) -> ForecastData:
    """Scale ``series`` (cut at the end of ``split``) with statistics of its training part only."""
    target = options.target or series.columns[0]
    if target not in series.columns:
        raise ConfigError(f"Series {series.name!r} has no column {target!r}; its columns: {', '.join(series.columns)}.")
    window = options.window or max(16, 2 * (series.period or 8))
    values = series.values[: split.length]
    scaler = Scaler.fit(split.take(values, "train"), options.scaler)
    warmup = options.warmup if options.warmup is not None else window // 4
    if warmup >= window:
        raise ConfigError(f"warmup ({warmup}) must be smaller than the window ({window}).")
    return ForecastData(series, split, scaler, scaler.transform(values), series.columns.index(target), window,
                        warmup, options, fold)


class ForecastTask(TaskModule):
    """MSE on every scored step of the sequence; MAE/RMSE/MAPE in original units at the forecast origins."""

    def __init__(self, model: nn.Module, optim: OptimSettings, *, offset: float, scale: float, warmup: int = 0,
                 stateful: bool = False) -> None:
        super().__init__(model, optim)
        self.offset, self.scale, self.warmup, self.stateful = offset, scale, warmup, stateful
        self.state = None  # stateful training: the state carried into the next chunk (detached)
        self.metrics = nn.ModuleDict({
            f"{stage}_{name}": metric() for stage in ("val", "test")
            for name, metric in (("mae", MeanMetric), ("rmse", lambda: MeanSquaredError(squared=False)),
                                 ("mape", MeanMetric))
        })

    def loss_mask(self, batch: SeriesBatch) -> torch.Tensor:
        mask = batch.observed.clone()
        if self.warmup and batch.start:  # a zero state: the first steps have seen (almost) nothing
            mask[:, : self.warmup] = False
        return mask

    def training_step(self, batch: SeriesBatch, batch_idx: int) -> torch.Tensor:
        if self.stateful:
            if batch.start or self.state is None:
                self.state = None
            forecast, state = self.model.step(batch.inputs, self.state)
            self.state = detach_state(state)  # the next chunk's gradient stops here: no graph growth
        else:
            forecast = self.model(batch.inputs)
        mask = self.loss_mask(batch)
        loss = masked_mse(forecast, batch.targets, mask)
        metrics = {"train_loss": loss.detach()}
        loss = self.penalized(loss, metrics)
        if self.should_log():
            self.log_dict(metrics, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def on_train_epoch_start(self) -> None:
        self.state = None

    def _evaluate(self, batch: SeriesBatch, stage: str) -> None:
        forecast = self.model(batch.inputs)
        scored = batch.scored
        self.log(f"{stage}_loss", masked_mse(forecast, batch.targets, scored), on_epoch=True, prog_bar=True,
                 batch_size=int(scored.sum()), sync_dist=True)
        predicted = forecast[scored] * self.scale + self.offset
        actual = batch.targets[scored] * self.scale + self.offset
        error = (predicted - actual).float()
        nonzero = actual != 0  # MAPE in %, over the non-zero targets (as metrics/forecast.py)
        self.metrics[f"{stage}_mae"].update(error.abs())
        self.metrics[f"{stage}_rmse"].update(predicted.float(), actual.float())
        self.metrics[f"{stage}_mape"].update(100 * error[nonzero].abs() / actual[nonzero].abs())
        for name in ("mae", "rmse", "mape"):
            self.log(f"{stage}_{name}", self.metrics[f"{stage}_{name}"], on_epoch=True, prog_bar=name == "mae")

    def validation_step(self, batch: SeriesBatch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: SeriesBatch, batch_idx: int) -> None:
        self._evaluate(batch, "test")


def masked_mse(forecast: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``(forecast - targets)^2`` over the True entries of ``mask`` (0 when none)."""
    squared = (forecast.float() - targets.float()).pow(2) * mask
    return squared.sum() / mask.sum().clamp(min=1)


@register_task
class ForecastDef(TaskDef):
    name = "forecast"
    data_kinds = ("series",)
    description = "forecast the next H values of a series at every step (many-to-many), beside naive/seasonal/AR"
    options = ForecastOptions
    monitor = ("val_loss", "min")
    headline = "mae"
    cv_methods = ("rolling",)
    cv_scores_test = True  # a fold is scored on the points right after its training part

    def load(self, config: TrainConfig) -> ForecastData:
        options = self.settings(config)
        series = load_series(config.data, config.data_dir)
        split = temporal_split(len(series), options.val_fraction, options.test_fraction)
        return prepare(series, split, options)

    def model_args(self, config: TrainConfig, data: ForecastData) -> dict[str, Any]:
        return {"input_size": data.scaled.shape[1], "horizon": data.horizon, "target_index": data.target_index}

    def loaders(self, config: TrainConfig, data: ForecastData, rank: int, world_size: int):
        arrays, split, options = data.arrays, data.split, data.options
        if options.stateful:
            train = StreamLoader(arrays, split.train, data.window, config.batch_size, rank=rank, world_size=world_size)
            val = OneBatch(full_series_batch(arrays, split.val)) if len(split.val) else None
            return train, val, OneBatch(full_series_batch(arrays, split.test))
        count = len(window_count_range(data))
        train = WindowLoader(arrays, split.train, data.window, config.batch_size, stride=options.stride,
                             shuffle=True, drop_last=count > config.batch_size, seed=config.seed, rank=rank,
                             world_size=world_size)
        evaluation = {"batch_size": config.eval_batch_size, "shuffle": False}
        val = WindowLoader(arrays, split.val, data.window, rank=rank, world_size=world_size,
                           **evaluation) if len(split.val) else None
        return train, val, WindowLoader(arrays, split.test, data.window, **evaluation)

    def example_input(self, data: ForecastData) -> tuple[int, ...]:
        return (data.window, data.scaled.shape[1])

    def build(self, config: TrainConfig, data: ForecastData, model: nn.Module, optim: OptimSettings) -> ForecastTask:
        offset, scale = data.target_units()
        return ForecastTask(model, optim, offset=offset, scale=scale, warmup=data.warmup,
                            stateful=data.options.stateful)

    def cv_summary(self, fold_summaries: list[dict[str, Any]]) -> dict[str, Any]:
        """The network and every baseline averaged over the folds (same origins in each fold for all of them)."""
        tables = [s["forecast"] for s in fold_summaries if isinstance(s.get("forecast"), dict)]
        if not tables:
            return {}
        groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for table in tables:
            for row in table["rows"]:
                # Each fold picks its own AR order by AIC: one "AR" row, not one per order.
                model = "AR (order by AIC)" if row["model"].startswith("AR(") else row["model"]
                groups.setdefault((model, row["horizon"]), []).append(row)
        rows = [{"model": model, "horizon": horizon, "windows": sum(r["windows"] for r in members),
                 **{key: float(np.mean([r[key] for r in members])) for key in ("MAE", "RMSE", "MAPE", "sMAPE", "MASE")}}
                for (model, horizon), members in groups.items()]
        first = tables[0]
        return {"forecast": {"series": first["series"], "target": first["target"], "horizon": first["horizon"],
                             "part": f"mean of {len(tables)} rolling-origin folds",
                             "windows": sum(t["windows"] for t in tables), "rows": rows}}

    def cv_folds(self, config: TrainConfig, data: ForecastData) -> list[ForecastData]:
        """Rolling origin over train + validation: fold k trains on ``[0, t_k - m)``, validates on
        ``[t_k - m, t_k)`` and tests on ``[t_k, t_k + m)`` (``m`` = fold_size); the scaler is refitted per fold."""
        options, folds = data.options, config.cv
        history = data.split.val.stop
        fold_size = options.fold_size or max(options.horizon, len(data.split.val) // max(folds, 1))
        minimum = data.window + options.horizon + fold_size  # a training window and a validation part
        result = []
        for k, fold in enumerate(rolling_origin_folds(history, folds, fold_size, minimum)):
            split = TemporalSplit(range(0, fold.train_end - fold_size), range(fold.train_end - fold_size,
                                  fold.train_end), range(fold.test_start, fold.test_end))
            result.append(prepare(data.series, split, options, fold=k))
        return result

    def meta(self, config: TrainConfig, data: ForecastData) -> dict[str, Any]:
        split = data.split
        return {"forecast": {
            "series": data.series.name, "columns": list(data.series.columns),
            "target": data.series.columns[data.target_index], "target_index": data.target_index,
            "horizon": data.horizon, "window": data.window, "stateful": data.options.stateful,
            "period": data.series.period, "frequency": data.series.frequency, "scaler": data.scaler.state(),
            "split": {name: [part.start, part.stop] for name, part in
                      (("train", split.train), ("val", split.val), ("test", split.test))},
            "fold": data.fold,
        }}

    def save_outputs(self, run_dir: Path, config: TrainConfig, data: ForecastData, module: TaskModule) -> dict[str, Any]:
        from archlab.tasks.forecast_eval import evaluate_run_data, write_outputs

        evaluation = evaluate_run_data(module.model, data)
        write_outputs(run_dir, evaluation)
        return {"forecast": evaluation.summary()}


def window_count_range(data: ForecastData) -> range:
    """The training origins (to know whether there is more than one batch of them)."""
    start = max(data.split.train.start, data.window)
    return range(start, data.split.train.stop - data.horizon + 1, data.options.stride)


__all__ = ["ForecastData", "ForecastDef", "ForecastOptions", "ForecastTask", "masked_mse", "prepare"]
