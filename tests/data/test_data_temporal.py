"""Honest temporal validation: splits, windows, scaler and rolling-origin folds never let the future leak back."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archlab.data.temporal import (
    Fold,
    Scaler,
    TemporalSplit,
    rolling_origin_folds,
    sliding_windows,
    split_windows,
    temporal_split,
    window_origins,
)
from archlab.errors import ConfigError


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(3, 5000),
    val_fraction=st.floats(0.0, 0.4),
    test_fraction=st.floats(0.01, 0.4),
)
def test_temporal_split_has_no_leakage(length, val_fraction, test_fraction):
    split = temporal_split(length, val_fraction, test_fraction)
    train, val, test = split.train, split.val, split.test
    assert len(train) + len(val) + len(test) == length and split.length == length
    assert train.start == 0 and train.stop == val.start and val.stop == test.start and test.stop == length
    assert len(train) >= 1 and len(test) >= 1
    if len(val):
        assert max(train) < min(val) <= max(val) < min(test)
    assert max(train) < min(test)


def test_temporal_split_sizes_and_errors():
    split = temporal_split(100, 0.1, 0.2)
    assert (split.train, split.val, split.test) == (range(0, 70), range(70, 80), range(80, 100))
    assert temporal_split(10, 0.0, 0.1).val == range(9, 9)
    with pytest.raises(ConfigError, match="no training data"):
        temporal_split(2, 0.5, 0.5)
    with pytest.raises(ConfigError, match="test_fraction"):
        temporal_split(10, 0.1, 1.0)
    with pytest.raises(ConfigError, match="Unknown split part"):
        split.part("dev")
    np.testing.assert_array_equal(split.take(np.arange(100), "val"), np.arange(70, 80))


@settings(max_examples=40, deadline=None)
@given(
    length=st.integers(20, 400),
    input_length=st.integers(1, 12),
    horizon=st.integers(1, 6),
    stride=st.integers(1, 3),
)
def test_window_targets_stay_inside_their_split(length, input_length, horizon, stride):
    values = np.arange(length, dtype=np.float32)  # a value is its own index
    split = temporal_split(length, 0.2, 0.2)
    windows = split_windows(values, split, input_length, horizon, stride)
    for name, (inputs, targets) in windows.items():
        part = split.part(name)
        assert inputs.shape[1:] == (input_length, 1) and targets.shape[1:] == (horizon, 1)
        assert inputs.shape[0] == targets.shape[0]
        if targets.size:
            assert targets.min() >= part.start and targets.max() < part.stop
            assert np.all(inputs.max(axis=(1, 2)) < targets.min(axis=(1, 2))), "inputs come before the targets"
            np.testing.assert_array_equal(inputs[:, -1, 0] + 1, targets[:, 0, 0])
            np.testing.assert_array_equal(np.diff(targets[:, 0, 0]), stride)


def test_validation_inputs_may_reach_back_into_training_but_targets_may_not():
    values = np.arange(30, dtype=np.float32)
    split = TemporalSplit(range(0, 20), range(20, 25), range(25, 30))
    inputs, targets = sliding_windows(values, 4, 2, part=split.val)
    assert targets[:, :, 0].tolist() == [[20, 21], [21, 22], [22, 23], [23, 24]]
    assert inputs[0, :, 0].tolist() == [16, 17, 18, 19]  # all training values: known at the origin
    train_inputs, train_targets = sliding_windows(values, 4, 2, part=split.train)
    assert train_targets.max() == 19 and train_inputs.min() == 0  # the first origin is 4: the inputs must exist


def test_windows_of_a_multivariate_series_and_edge_cases():
    values = np.stack([np.arange(10), 100 + np.arange(10)], axis=1)
    inputs, targets = sliding_windows(values, 3, 2)
    assert inputs.shape == (6, 3, 2) and targets.shape == (6, 2, 2) and inputs.dtype == np.float32
    np.testing.assert_array_equal(inputs[2], values[2:5])
    np.testing.assert_array_equal(targets[2], values[5:7])
    empty_inputs, empty_targets = sliding_windows(values, 8, 5)
    assert empty_inputs.shape == (0, 8, 2) and empty_targets.shape == (0, 5, 2)
    assert window_origins(3, 2, start=0, stop=10).tolist() == [3, 4, 5, 6, 7, 8]
    with pytest.raises(ConfigError, match=">= 1"):
        window_origins(0, 1, 0, 10)
    with pytest.raises(ConfigError, match="does not fit"):
        sliding_windows(values, 2, 1, part=range(0, 11))


def test_scaler_is_fitted_on_the_training_part_only():
    rng = np.random.default_rng(0)
    values = rng.normal(5.0, 2.0, size=(200, 3))
    split = temporal_split(200, 0.2, 0.2)
    scaler = Scaler.fit(split.take(values, "train"))
    changed = values.copy()
    changed[split.test.start :] *= 1000.0  # whatever happens later must not move the statistics
    changed[split.val.start : split.val.stop] += 50.0
    again = Scaler.fit(split.take(changed, "train"))
    np.testing.assert_array_equal(scaler.offset, again.offset)
    np.testing.assert_array_equal(scaler.scale, again.scale)
    train_z = scaler.transform(split.take(values, "train"))
    np.testing.assert_allclose(train_z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(train_z.std(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(values)), values, rtol=1e-5)


def test_minmax_scaler_constant_feature_and_state_round_trip():
    train = np.array([[0.0, 7.0], [2.0, 7.0], [4.0, 7.0]])
    scaler = Scaler.fit(train, kind="minmax")
    np.testing.assert_allclose(scaler.transform(train), [[0, 0], [0.5, 0], [1, 0]])
    restored = Scaler.from_state(scaler.state())
    np.testing.assert_array_equal(restored.transform(train), scaler.transform(train))
    assert Scaler.fit(np.arange(5.0)).transform(np.arange(5.0)).shape == (5,)
    with pytest.raises(ConfigError, match="Unknown scaler"):
        Scaler.fit(train, kind="robust")
    with pytest.raises(ConfigError, match="NaN"):
        Scaler.fit(np.array([1.0, np.nan]))


@settings(max_examples=60, deadline=None)
@given(length=st.integers(10, 2000), folds=st.integers(1, 8), horizon=st.integers(1, 24), min_train=st.integers(1, 50))
def test_rolling_origin_folds_are_ordered_disjoint_and_after_their_training(length, folds, horizon, min_train):
    if length - folds * horizon < min_train:
        with pytest.raises(ConfigError, match="points"):
            rolling_origin_folds(length, folds, horizon, min_train)
        return
    result = rolling_origin_folds(length, folds, horizon, min_train)
    assert len(result) == folds and all(isinstance(fold, Fold) for fold in result)
    for fold in result:
        assert min_train <= fold.train_end <= fold.test_start < fold.test_end <= length
        assert fold.test_end - fold.test_start == horizon
    for before, after in zip(result, result[1:]):
        assert before.test_end <= after.test_start, "test parts are ordered and disjoint"
        assert before.train_end < after.train_end, "the origin rolls forward"
    assert result[-1].test_end == length


def test_rolling_origin_example():
    assert rolling_origin_folds(10, 3, 2, 3) == [(4, 4, 6), (6, 6, 8), (8, 8, 10)]
