"""Forecast metrics on hand-computed examples; baselines exact on toy series; no look-ahead; the table."""

import math

import numpy as np
import pytest

from archlab.data.temporal import TemporalSplit, sliding_windows, temporal_split
from archlab.errors import ConfigError
from archlab.metrics.forecast import (
    AutoRegressive,
    LastValue,
    SeasonalNaive,
    TrainMean,
    baseline_table,
    forecast_at,
    mae,
    mape,
    naive_scale,
    rmse,
    smape,
)


def test_metrics_on_a_hand_computed_example():
    actual, predicted = [1.0, 2.0, 4.0], [2.0, 2.0, 2.0]  # errors 1, 0, 2
    assert mae(actual, predicted) == pytest.approx(1.0)
    assert rmse(actual, predicted) == pytest.approx(math.sqrt(5 / 3))
    assert mape(actual, predicted) == pytest.approx(100 * (1 / 1 + 0 + 2 / 4) / 3)
    assert smape(actual, predicted) == pytest.approx(200 * (1 / 3 + 0 + 2 / 6) / 3)
    assert mae(actual, predicted, mask=[True, False, True]) == pytest.approx(1.5)


def test_percentage_errors_are_guarded_against_zeros():
    assert mape([0.0, 2.0], [1.0, 1.0]) == pytest.approx(50.0)  # the zero target is skipped
    assert math.isnan(mape([0.0, 0.0], [1.0, 2.0]))
    assert smape([0.0, 0.0], [0.0, 1.0]) == pytest.approx(100.0)  # 0/0 counts as 0, 1/1 as 200
    with pytest.raises(ConfigError, match="same shape"):
        mae([1.0, 2.0], [1.0])


def test_naive_scale_is_the_in_sample_seasonal_naive_error():
    assert naive_scale([1.0, 2.0, 4.0, 7.0]) == pytest.approx((1 + 2 + 3) / 3)
    assert naive_scale([1.0, 2.0, 1.0, 3.0], period=2) == pytest.approx((0 + 1) / 2)


def test_last_value_on_a_constant_series_is_exact():
    values = np.full(50, 3.5)
    forecasts = forecast_at(LastValue().fit(values[:30]), values, np.arange(30, 45), horizon=5)
    assert forecasts.shape == (15, 5, 1) and mae(values[30:35], forecasts[0, :, 0]) == 0.0
    np.testing.assert_array_equal(forecasts, 3.5)


def test_seasonal_naive_on_a_periodic_series_is_exact_beyond_one_season():
    period, pattern = 7, np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0])
    values = np.tile(pattern, 20)
    origins = np.arange(period, 120)
    forecasts = forecast_at(SeasonalNaive(period).fit(values), values, origins, horizon=17)
    targets = values[origins[:, None] + np.arange(17)]
    np.testing.assert_array_equal(forecasts[:, :, 0], targets)
    inputs = np.arange(10.0).reshape(1, 10, 1)
    assert SeasonalNaive(3).predict(inputs, 5)[0, :, 0].tolist() == [7, 8, 9, 7, 8]  # y[t-3], y[t-2], ...


def test_ar1_recovers_its_coefficient_and_forecasts_recursively():
    rng = np.random.default_rng(0)
    phi, intercept, length = 0.7, 2.0, 4000
    values = np.empty(length)
    values[0] = intercept / (1 - phi)
    for t in range(1, length):
        values[t] = intercept + phi * values[t - 1] + rng.normal()
    model = AutoRegressive(order=1).fit(values)
    assert model.coefficients[0, 0] == pytest.approx(phi, abs=0.03)
    assert model.intercept[0] == pytest.approx(intercept, abs=0.3)
    # recursive multi-step: yhat[t+h-1] = c (1 + phi + .. + phi^(h-1)) + phi^h y[t-1]
    forecasts = model.predict(np.array([[[10.0]]]), horizon=3)[0, :, 0]
    c, a = model.intercept[0], model.coefficients[0, 0]
    np.testing.assert_allclose(forecasts, [c + a * 10, c + a * (c + a * 10), c + a * (c + a * (c + a * 10))], rtol=1e-5)


def test_ar_order_is_chosen_by_aic_when_not_given():
    rng = np.random.default_rng(1)
    values = np.zeros(3000)
    for t in range(2, 3000):
        values[t] = 0.5 * values[t - 1] - 0.4 * values[t - 2] + rng.normal()
    model = AutoRegressive().fit(values)
    assert 2 <= model.order <= 4 and model.label == f"AR({model.order})" and model.history == model.order
    np.testing.assert_allclose(model.coefficients[:2, 0], [0.5, -0.4], atol=0.06)
    multi = AutoRegressive(order=2).fit(np.stack([values, 2 * values], axis=1))
    np.testing.assert_allclose(multi.coefficients[:, 0], multi.coefficients[:, 1], atol=1e-8)


def test_baselines_never_read_past_the_origin():
    rng = np.random.default_rng(2)
    values = rng.normal(size=200).cumsum()
    origins = np.arange(150, 190)
    for baseline in (TrainMean(), LastValue(), SeasonalNaive(12), AutoRegressive(order=5)):
        baseline.fit(values[:150])
        before = forecast_at(baseline, values, origins, horizon=6)
        for origin_index, t in enumerate(origins):
            future_changed = values.copy()
            future_changed[t:] = 1e6
            again = forecast_at(baseline, future_changed, origins[origin_index : origin_index + 1], horizon=6)
            np.testing.assert_array_equal(again[0], before[origin_index])


def test_predict_checks_its_inputs():
    with pytest.raises(ConfigError, match="needs inputs"):
        SeasonalNaive(12).predict(np.zeros((2, 5, 1)), 3)
    with pytest.raises(ConfigError, match="needs 12 values"):
        forecast_at(SeasonalNaive(12), np.zeros(40), np.array([5]), 3)


def test_baseline_table_scores_the_windows_a_network_is_scored_on():
    values = np.sin(np.arange(400) * 2 * np.pi / 24) + 0.01 * np.arange(400)
    split = temporal_split(400, 0.15, 0.15)
    rows = baseline_table(values, split, horizon=12, period=24, input_length=48)
    _, network_targets = sliding_windows(values, 48, 12, part=split.test)
    assert {row["baseline"] for row in rows} == {"mean", "naive", "seasonal-naive(24)", rows[-1]["baseline"]}
    assert rows[-1]["baseline"].startswith("AR(")
    assert [row["horizon"] for row in rows] == [1, 12] * 4
    assert {row["windows"] for row in rows} == {network_targets.shape[0]}
    assert set(rows[0]) == {"baseline", "horizon", "MAE", "RMSE", "MAPE", "sMAPE", "MASE", "windows"}
    by_name = {(row["baseline"], row["horizon"]): row for row in rows}
    seasonal = by_name[("seasonal-naive(24)", 12)]
    assert seasonal["MAE"] == pytest.approx(0.24, abs=1e-5)  # the trend moves 0.01 per step, 24 steps a season
    assert by_name[("mean", 12)]["MAE"] > seasonal["MAE"]
    assert all(row["RMSE"] >= row["MAE"] - 1e-12 for row in rows)


def test_baseline_table_skips_filled_targets_and_uses_the_series_period():
    class FakeSeries:  # what load_series returns, reduced to what the table reads
        def __init__(self, filled_is_marked: bool) -> None:
            self.values, self.observed, self.period = np.ones((60, 1)), np.ones((60, 1), dtype=bool), 5
            self.values[59, 0] = 100.0  # a badly filled last point: a target of lead 3 only
            self.observed[59, 0] = not filled_is_marked

    split = TemporalSplit(range(0, 40), range(40, 50), range(50, 60))
    rows = baseline_table(FakeSeries(True), split, horizon=3, baselines=("naive", "seasonal-naive"))
    assert [row["baseline"] for row in rows] == ["naive", "naive", "seasonal-naive(5)", "seasonal-naive(5)"]
    assert all(row["MAE"] == 0.0 for row in rows), "the filled target is not scored"
    unmarked = baseline_table(FakeSeries(False), split, horizon=3, baselines=("naive",))
    assert unmarked[0]["MAE"] == 0.0 and unmarked[1]["MAE"] > 0.0
    with pytest.raises(ConfigError, match="Unknown baselines"):
        baseline_table(FakeSeries(True), split, horizon=3, baselines=("prophet",))
    with pytest.raises(ConfigError, match="too short"):
        baseline_table(FakeSeries(True), split, horizon=11)
