"""Forecast errors and the simple baselines a forecasting network has to beat.

A network's test error means little alone: on many series "tomorrow = today" is hard to beat (Hyndman &
Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed., 2021, section 5.2 "Some simple forecasting
methods"). :func:`baseline_table` scores these baselines on exactly the windows a network is scored on.

Baselines (each fitted on the training part only, each forecasting from the past of the origin only; origin
``t`` = index of the first forecast, history ``y[.. t-1]``, lead ``h = 1 .. H``):

* ``mean``:            ``yhat[t+h-1] = mean(y_train)``
* ``naive``:           ``yhat[t+h-1] = y[t-1]``  (random walk; the last value)
* ``seasonal-naive``:  ``yhat[t+h-1] = y[t+h-1 - m(k+1)]``, ``k = floor((h-1)/m)``  (the value one season ago)
* ``ar``:              ``y[t] = c + phi_1 y[t-1] + ... + phi_p y[t-p] + e[t]``, fitted by least squares
  (``numpy.linalg.lstsq``) on the training part; multi-step forecasts are recursive: each forecast is fed
  back as an input for the next lead. Order ``p``: the argument, else the ``p`` in ``1 .. P`` of least
  Akaike information criterion ``AIC(p) = n log(RSS_p / n) + 2 (p + 1)`` (Akaike, "A new look at the
  statistical model identification", IEEE TAC 19, 1974), all candidates fitted on the same ``n = T - P`` rows,
  with ``P = min(T - 1, floor(10 log10 T))`` as in R's ``stats::ar``. Several features: one AR per feature,
  one common order.

Metrics (``y`` actual, ``yhat`` forecast, averaged over every target point scored):

* ``MAE  = mean |y - yhat|``,  ``RMSE = sqrt(mean (y - yhat)^2)``
* ``MAPE = 100 mean |y - yhat| / |y|`` over the points with ``y != 0`` only (a zero target has no
  percentage error; near-zero targets still blow MAPE up, and for interval scales such as deg C/F it depends
  on the zero point: read sMAPE and MASE beside it). NaN when every target is zero.
* ``sMAPE = 200 mean |y - yhat| / (|y| + |yhat|)``, 0 where both are 0; range [0, 200].
* ``MASE = MAE / mean_t |y[t] - y[t-m]|`` on the training part (``m`` = seasonal period, else 1): below 1
  beats the in-sample one-step (seasonal) naive forecast (Hyndman & Koehler, "Another look at measures of
  forecast accuracy", IJF 22, 2006).

All errors are in the units of the values given: compare a network's forecasts after ``Scaler.inverse_transform``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from archlab.data.temporal import TemporalSplit, window_origins
from archlab.errors import ConfigError

Metric = Callable[..., float]


# --- metrics --------------------------------------------------------------------------------------------------

def _pairs(actual: Any, predicted: Any, mask: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Flat float64 arrays of the scored points (``mask`` True = scored); shapes must agree."""
    actual, predicted = np.asarray(actual, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    if actual.shape != predicted.shape:
        raise ConfigError(f"actual {actual.shape} and predicted {predicted.shape} must have the same shape.")
    if mask is None:
        return actual.ravel(), predicted.ravel()
    keep = np.broadcast_to(np.asarray(mask, dtype=bool), actual.shape)
    return actual[keep], predicted[keep]


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def mae(actual: Any, predicted: Any, mask: Any = None) -> float:
    """Mean absolute error."""
    y, yhat = _pairs(actual, predicted, mask)
    return _mean(np.abs(y - yhat))


def rmse(actual: Any, predicted: Any, mask: Any = None) -> float:
    """Root mean squared error."""
    y, yhat = _pairs(actual, predicted, mask)
    return float(np.sqrt(_mean((y - yhat) ** 2)))


def mape(actual: Any, predicted: Any, mask: Any = None) -> float:
    """Mean absolute percentage error (in %), over the non-zero targets only."""
    y, yhat = _pairs(actual, predicted, mask)
    nonzero = y != 0
    return 100.0 * _mean(np.abs(y[nonzero] - yhat[nonzero]) / np.abs(y[nonzero]))


def smape(actual: Any, predicted: Any, mask: Any = None) -> float:
    """Symmetric MAPE (in %, 0 .. 200), a point with ``y = yhat = 0`` counting as 0."""
    y, yhat = _pairs(actual, predicted, mask)
    denominator = np.abs(y) + np.abs(yhat)
    ratio = np.divide(np.abs(y - yhat), denominator, out=np.zeros_like(y), where=denominator > 0)
    return 200.0 * _mean(ratio)


def naive_scale(train: Any, period: int | None = None) -> float:
    """MASE's denominator: in-sample MAE of the one-step seasonal naive (``m = period``, else 1) forecast."""
    values = _as_2d(train)
    lag = period if period and period < values.shape[0] else 1
    return mae(values[lag:], values[:-lag]) if values.shape[0] > lag else float("nan")


METRICS: dict[str, Metric] = {"MAE": mae, "RMSE": rmse, "MAPE": mape, "sMAPE": smape}


# --- baselines ------------------------------------------------------------------------------------------------

def _as_2d(values: Any) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array[:, None] if array.ndim == 1 else array


class Baseline:
    """A forecaster: ``fit(train)`` on the training part, then ``predict(inputs, horizon)``.

    ``inputs`` [N, L, F] are the ``L >= history`` values before each origin (what ``sliding_windows`` gives a
    network); ``predict`` returns float32 [N, horizon, F]. Only the last ``history`` inputs are read.
    """

    name = "baseline"
    history = 1

    @property
    def label(self) -> str:
        return self.name

    def fit(self, train: Any) -> Baseline:
        return self

    def predict(self, inputs: Any, horizon: int) -> np.ndarray:
        past = np.asarray(inputs, dtype=np.float64)
        if past.ndim != 3 or past.shape[1] < self.history or horizon < 1:
            raise ConfigError(
                f"{self.label} needs inputs [N, L >= {self.history}, F] and horizon >= 1, got {past.shape} and "
                f"{horizon}."
            )
        return self._forecast(past[:, past.shape[1] - self.history :], horizon).astype(np.float32)

    def _forecast(self, past: np.ndarray, horizon: int) -> np.ndarray:
        raise NotImplementedError


class TrainMean(Baseline):
    """Every forecast is the mean of the training part."""

    name = "mean"

    def fit(self, train: Any) -> TrainMean:
        self.level = _as_2d(train).mean(axis=0)
        return self

    def _forecast(self, past: np.ndarray, horizon: int) -> np.ndarray:
        return np.broadcast_to(self.level, (past.shape[0], horizon, past.shape[2])).copy()


class LastValue(Baseline):
    """The naive forecast: every lead repeats the last observed value."""

    name = "naive"

    def _forecast(self, past: np.ndarray, horizon: int) -> np.ndarray:
        return np.repeat(past[:, -1:], horizon, axis=1)


class SeasonalNaive(Baseline):
    """Every lead repeats the value one season (``period`` steps) before it, within the last observed season."""

    name = "seasonal-naive"

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ConfigError(f"The seasonal period must be >= 1, got {period}.")
        self.history = period

    @property
    def label(self) -> str:
        return f"{self.name}({self.history})"

    def _forecast(self, past: np.ndarray, horizon: int) -> np.ndarray:
        return past[:, np.arange(horizon) % self.history]  # past = the last season y[t-m .. t-1]


def _lag_matrix(values: np.ndarray, order: int, first: int) -> tuple[np.ndarray, np.ndarray]:
    """Design ``[1, y[t-1], .., y[t-order]]`` and target ``y[t]`` for ``t = first .. T-1`` (one column)."""
    rows = np.arange(first, values.shape[0])
    lags = values[rows[:, None] - np.arange(1, order + 1)]
    return np.column_stack([np.ones(rows.size), lags]), values[rows]


class AutoRegressive(Baseline):
    """Linear AR(p) per feature, least squares on the training part; recursive multi-step forecasts."""

    name = "ar"

    def __init__(self, order: int | None = None, max_order: int | None = None) -> None:
        self.requested_order, self.max_order = order, max_order
        self.order = order  # the fitted order once fit() has run

    @property
    def label(self) -> str:
        return f"AR({self.order})" if self.order else "AR"

    def fit(self, train: Any) -> AutoRegressive:
        values = _as_2d(train)
        length = values.shape[0]
        order = self.requested_order or self._select_order(values)
        if not 1 <= order < length - 1:
            raise ConfigError(f"AR order {order} needs more than {order + 1} training points; got {length}.")
        columns = range(values.shape[1])
        fits = [np.linalg.lstsq(*_lag_matrix(values[:, f], order, order), rcond=None)[0] for f in columns]
        coefficients = np.stack(fits, axis=1)  # [1 + p, F]
        self.order, self.history = order, order
        self.intercept, self.coefficients = coefficients[0], coefficients[1:]  # coefficients[i]: lag i + 1
        return self

    def _select_order(self, values: np.ndarray) -> int:
        length = values.shape[0]
        largest = self.max_order or min(length - 1, int(np.floor(10 * np.log10(max(length, 1)))))
        largest = min(largest, length // 2)
        if largest < 1:
            raise ConfigError(f"{length} training points are too few to fit an autoregression.")
        rows = length - largest
        scores = []
        for order in range(1, largest + 1):
            rss = 0.0
            for f in range(values.shape[1]):
                design, target = _lag_matrix(values[:, f], order, largest)
                residual = target - design @ np.linalg.lstsq(design, target, rcond=None)[0]
                rss += max(float(residual @ residual), 1e-300)
            scores.append(rows * np.log(rss / rows) + 2 * (order + 1))
        return int(np.argmin(scores)) + 1

    def _forecast(self, past: np.ndarray, horizon: int) -> np.ndarray:
        window = past.copy()  # [N, p, F], oldest first
        steps = []
        for _ in range(horizon):
            lags = window[:, ::-1]  # lags[:, i] = y[t-1-i]
            step = self.intercept + np.einsum("npf,pf->nf", lags, self.coefficients)
            steps.append(step)
            window = np.concatenate([window[:, 1:], step[:, None]], axis=1)
        return np.stack(steps, axis=1)


BaselineBuilder = Callable[[int | None, int | None], Baseline | None]

# name -> builder(period, ar_order); None where the baseline does not apply (no seasonal period)
BASELINES: dict[str, BaselineBuilder] = {
    "mean": lambda period, ar_order: TrainMean(),
    "naive": lambda period, ar_order: LastValue(),
    "seasonal-naive": lambda period, ar_order: SeasonalNaive(period) if period and period > 1 else None,
    "ar": lambda period, ar_order: AutoRegressive(order=ar_order),
}


def forecast_at(baseline: Baseline, values: Any, origins: Any, horizon: int) -> np.ndarray:
    """Forecasts [N, horizon, F] of a fitted ``baseline`` from each origin ``t``, reading only ``values[:t]``."""
    series = _as_2d(values)
    origins = np.asarray(origins, dtype=np.int64)
    if origins.size and origins.min() < baseline.history:
        raise ConfigError(f"{baseline.label} needs {baseline.history} values before every origin.")
    return baseline.predict(series[origins[:, None] + np.arange(-baseline.history, 0)], horizon)


def _unpack(series: Any, period: int | None) -> tuple[np.ndarray, np.ndarray, int | None]:
    """(values [T, F], observed [T, F], period) of a Series or of a plain array."""
    values = _as_2d(getattr(series, "values", series))
    observed = getattr(series, "observed", None)
    observed = np.ones(values.shape, bool) if observed is None else np.asarray(observed, bool).reshape(values.shape)
    return values, observed, period if period is not None else getattr(series, "period", None)


def baseline_table(
    series: Any,
    split: TemporalSplit,
    horizon: int,
    *,
    part: str = "test",
    horizons: tuple[int, ...] | None = None,
    input_length: int | None = None,
    period: int | None = None,
    ar_order: int | None = None,
    baselines: tuple[str, ...] | None = None,
) -> list[dict]:
    """Rows ``{baseline, horizon, MAE, RMSE, MAPE, sMAPE, MASE, windows}`` on one part of ``split``.

    ``series`` is a ``Series`` (its period and its filled points are used) or an array [T] / [T, F]. Every
    baseline is fitted on the training part, then forecasts ``horizon`` steps from each origin of the part's
    windows (those of ``sliding_windows(values, input_length, horizon, part=...)``: the same windows a network
    with that input length is scored on). The row for ``horizon = h`` (default 1 and ``horizon``) averages the
    errors of leads ``1 .. h`` over all windows, skipping targets that were missing and filled.
    """
    values, observed, period = _unpack(series, period)
    train = split.take(values, "train")
    chosen = baselines or tuple(BASELINES)
    unknown = sorted(set(chosen) - set(BASELINES))
    if unknown:
        raise ConfigError(f"Unknown baselines {unknown}; choose from {', '.join(BASELINES)}.")
    built = (BASELINES[name](period, ar_order) for name in chosen)
    fitted = [baseline.fit(train) for baseline in built if baseline is not None]
    history = input_length or max(baseline.history for baseline in fitted)
    target_part = split.part(part)
    origins = window_origins(history, horizon, target_part.start, target_part.stop)
    if origins.size == 0:
        raise ConfigError(
            f"The {part} part ({len(target_part)} points) is too short for one window of horizon {horizon}."
        )
    target_index = origins[:, None] + np.arange(horizon)
    targets, scored = values[target_index], observed[target_index]
    scale = naive_scale(train, period)
    leads = sorted(set(horizons or (1, horizon)))
    if leads[0] < 1 or leads[-1] > horizon:
        raise ConfigError(f"horizons must lie in 1 .. {horizon}, got {leads}.")
    rows = []
    for baseline in fitted:
        forecasts = forecast_at(baseline, values, origins, horizon)
        for lead in leads:
            pair = targets[:, :lead], forecasts[:, :lead], scored[:, :lead]
            row = {"baseline": baseline.label, "horizon": lead}
            row.update({name: metric(*pair) for name, metric in METRICS.items()})
            row["MASE"] = row["MAE"] / scale if scale > 0 else float("nan")
            row["windows"] = int(origins.size)
            rows.append(row)
    return rows
