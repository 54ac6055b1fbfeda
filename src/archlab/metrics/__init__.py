"""archlab.metrics: what torchmetrics lacks. ``forecast``: forecast errors (MAE, RMSE, MAPE, sMAPE, MASE) and the
simple baselines (mean, naive, seasonal naive, least-squares AR(p)) that a forecasting network must beat."""

from archlab.metrics.forecast import (
    BASELINES,
    METRICS,
    AutoRegressive,
    LastValue,
    SeasonalNaive,
    TrainMean,
    baseline_table,
    forecast_at,
    mae,
    mape,
    rmse,
    smape,
)

__all__ = [
    "BASELINES",
    "METRICS",
    "AutoRegressive",
    "LastValue",
    "SeasonalNaive",
    "TrainMean",
    "baseline_table",
    "forecast_at",
    "mae",
    "mape",
    "rmse",
    "smape",
]
