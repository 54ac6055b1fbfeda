"""Honest validation of forecasts: splits, scaling and windows that never let the future leak into the past.

A forecast made at time ``t`` may use the values before ``t`` and nothing else. Random splits and k-fold
cross-validation break that rule for time series (a model trained on Tuesday and Thursday "predicts" Wednesday),
so every tool here keeps time order (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed.,
2021, section 5.8 "Evaluating point forecast accuracy" and 5.10 "Time series cross-validation"; Bergmeir &
Benitez, "On the use of cross-validation for time series predictor evaluation", Information Sciences 191, 2012):

* :func:`temporal_split` cuts ``[0, T)`` into train ``[0, a)``, validation ``[a, b)`` and test ``[b, T)``, so
  ``max(train) < min(val) <= max(val) < min(test)``.
* :class:`Scaler` takes its statistics from the training part only; the same numbers are then applied to every
  part (a scaler fitted on all of the series would know the level of the test years).
* :func:`sliding_windows` cuts ``(inputs, targets)`` pairs, ``inputs = x[t-L : t]`` and
  ``targets = x[t : t+H]``, for the origins ``t`` whose targets lie inside one part. At a boundary, a validation
  or test window's *inputs* may reach back into the parts before it (those values are known when the forecast
  is made: this is how the model would be used), but its *targets* never leave their part, and a training
  window's targets never reach into validation. So every value is a target of exactly one part.
* :func:`rolling_origin_folds` gives the "evaluation on a rolling forecasting origin" of Hyndman &
  Athanasopoulos (Tashman, "Out-of-sample tests of forecasting accuracy", IJF 16, 2000): train on
  ``[0, t_k)``, test on ``[t_k, t_k + H)``, move the origin on by ``H``.

Every index range is a Python ``range`` (``stop`` excluded), so ``values[part.start:part.stop]`` is the part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from archlab.errors import ConfigError

PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class TemporalSplit:
    """Three consecutive index ranges of one series: ``train`` then ``val`` then ``test``."""

    train: range
    val: range
    test: range

    @property
    def length(self) -> int:
        return self.test.stop

    def part(self, name: str) -> range:
        """The range called ``name`` (``train``, ``val`` or ``test``)."""
        if name not in PARTS:
            raise ConfigError(f"Unknown split part {name!r}; choose one of {', '.join(PARTS)}.")
        return getattr(self, name)

    def take(self, values: np.ndarray, name: str) -> np.ndarray:
        """The values of part ``name`` (a view along the first axis)."""
        chosen = self.part(name)
        return values[chosen.start : chosen.stop]


def temporal_split(length: int, val_fraction: float = 0.15, test_fraction: float = 0.15) -> TemporalSplit:
    """Split ``[0, length)`` in time order: the last ``test_fraction`` is test, the ``val_fraction`` before it val.

    Sizes are rounded to whole points (a non-zero fraction gets at least one point); the training part gets the
    rest and must keep at least one point.
    """
    for label, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= fraction < 1:
            raise ConfigError(f"{label} must be in [0, 1), got {fraction}.")
    n_test = _part_size(length, test_fraction)
    n_val = _part_size(length, val_fraction)
    n_train = length - n_val - n_test
    if n_train < 1:
        raise ConfigError(
            f"A series of {length} points leaves no training data with val_fraction={val_fraction} and "
            f"test_fraction={test_fraction}; use smaller fractions."
        )
    val_start, test_start = n_train, n_train + n_val
    return TemporalSplit(range(0, val_start), range(val_start, test_start), range(test_start, length))


def _part_size(length: int, fraction: float) -> int:
    return 0 if fraction == 0 else max(1, round(length * fraction))


# --- scaling --------------------------------------------------------------------------------------------------

def _standard(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return train.mean(axis=0), train.std(axis=0)


def _minmax(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    low = train.min(axis=0)
    return low, train.max(axis=0) - low


SCALERS: dict[str, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]] = {
    "standard": _standard,  # z = (x - mean) / std
    "minmax": _minmax,  # z = (x - min) / (max - min), in [0, 1] on the training part
}


@dataclass(frozen=True)
class Scaler:
    """An affine map ``z = (x - offset) / scale`` per feature (last axis), fitted on training values only.

    ``kind`` is ``standard`` (offset = mean, scale = std) or ``minmax`` (offset = min, scale = max - min). A
    feature that is constant on the training part gets scale 1, so it is shifted but never divided by zero.
    ``state()`` / ``from_state()`` give plain lists, so the numbers can travel with a trained model.
    """

    kind: str
    offset: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, train_values: np.ndarray, kind: str = "standard") -> Scaler:
        """Statistics of ``train_values`` ([T] or [T, F]) along time; pass the training part and only that."""
        if kind not in SCALERS:
            raise ConfigError(f"Unknown scaler {kind!r}; choose one of {', '.join(sorted(SCALERS))}.")
        train = np.asarray(train_values, dtype=np.float64)
        if train.shape[0] == 0 or not np.isfinite(train).all():
            raise ConfigError("A scaler needs a non-empty training part without NaN or infinite values.")
        offset, scale = SCALERS[kind](train)
        scale = np.where(scale > 0, scale, 1.0)
        return cls(kind, offset, scale)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """``(values - offset) / scale``, broadcast over the last axis, as float32."""
        return ((np.asarray(values, dtype=np.float64) - self.offset) / self.scale).astype(np.float32)

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        """``values * scale + offset``: back to the original units (e.g. a network's forecasts)."""
        return (np.asarray(values, dtype=np.float64) * self.scale + self.offset).astype(np.float32)

    def state(self) -> dict:
        """``{kind, offset, scale}`` as JSON-ready lists."""
        return {"kind": self.kind, "offset": np.asarray(self.offset).tolist(), "scale": np.asarray(self.scale).tolist()}

    @classmethod
    def from_state(cls, state: dict) -> Scaler:
        """The scaler that :meth:`state` described."""
        offset, scale = (np.asarray(state[key], dtype=np.float64) for key in ("offset", "scale"))
        return cls(state["kind"], offset, scale)


# --- windows --------------------------------------------------------------------------------------------------

def window_origins(input_length: int, horizon: int, start: int, stop: int, stride: int = 1) -> np.ndarray:
    """Origins ``t`` (index of the first target) of the windows whose targets lie in ``[start, stop)``.

    ``t`` runs from ``max(start, input_length)`` (the inputs ``[t - input_length, t)`` must exist; they may lie
    before ``start``) to ``stop - horizon`` (the last target ``t + horizon - 1`` must be before ``stop``).
    """
    if input_length < 1 or horizon < 1 or stride < 1:
        raise ConfigError(
            f"input_length, horizon and stride must be >= 1, got {input_length}, {horizon} and {stride}."
        )
    first = max(start, input_length)
    return np.arange(first, stop - horizon + 1, stride, dtype=np.int64)


def sliding_windows(
    values: np.ndarray,
    input_length: int,
    horizon: int,
    stride: int = 1,
    part: range | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``inputs`` [N, input_length, F] and ``targets`` [N, horizon, F] (float32) cut from ``values`` [T] or [T, F].

    Window ``i`` has origin ``t_i`` (see :func:`window_origins`): ``inputs[i] = values[t_i - input_length : t_i]``
    and ``targets[i] = values[t_i : t_i + horizon]``. With ``part`` (a range of a :class:`TemporalSplit`) only
    windows whose targets lie inside ``part`` are made; their inputs may come from earlier parts, never their
    targets. A 1-d series is treated as one feature. A part too short for one window gives N = 0.
    """
    array = np.asarray(values, dtype=np.float32)
    if array.ndim == 1:
        array = array[:, None]
    part = part if part is not None else range(0, array.shape[0])
    if part.start < 0 or part.stop > array.shape[0]:
        raise ConfigError(f"The part {part} does not fit in a series of {array.shape[0]} points.")
    origins = window_origins(input_length, horizon, part.start, part.stop, stride)
    features = array.shape[1]
    if origins.size == 0:
        return np.zeros((0, input_length, features), np.float32), np.zeros((0, horizon, features), np.float32)
    # view[s] = values[s : s + L + H] as [F, L + H]; window i starts at s = t_i - L.
    view = sliding_window_view(array, input_length + horizon, axis=0)[origins - input_length]
    windows = np.ascontiguousarray(view.transpose(0, 2, 1))
    return windows[:, :input_length], windows[:, input_length:]


def split_windows(
    values: np.ndarray, split: TemporalSplit, input_length: int, horizon: int, stride: int = 1
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{part: (inputs, targets)}`` for train, val and test: :func:`sliding_windows` once per part."""
    return {name: sliding_windows(values, input_length, horizon, stride, split.part(name)) for name in PARTS}


# --- rolling origin -------------------------------------------------------------------------------------------

class Fold(NamedTuple):
    """One rolling-origin fold: train on ``[0, train_end)``, test on ``[test_start, test_end)``."""

    train_end: int
    test_start: int
    test_end: int


def rolling_origin_folds(length: int, folds: int, horizon: int, min_train: int) -> list[Fold]:
    """``folds`` expanding-window folds whose test parts tile the end of ``[0, length)``, ``horizon`` points each.

    Fold ``k`` (k = 0 .. folds-1) trains on ``[0, t_k)`` and tests on ``[t_k, t_k + horizon)`` with
    ``t_k = length - (folds - k) * horizon``: the origins move forward by ``horizon``, so the test parts are
    ordered, disjoint, and each starts right after its training part; the last one ends at ``length``. To keep
    a final test split untouched, pass the length of the train + validation part only.
    """
    if folds < 1 or horizon < 1 or min_train < 1:
        raise ConfigError(f"folds, horizon and min_train must be >= 1, got {folds}, {horizon} and {min_train}.")
    first_origin = length - folds * horizon
    if first_origin < min_train:
        raise ConfigError(
            f"{folds} folds of horizon {horizon} after at least {min_train} training points need "
            f"{min_train + folds * horizon} points, but the series has {length}; use fewer folds or a shorter "
            f"horizon."
        )
    origins = (first_origin + k * horizon for k in range(folds))
    return [Fold(origin, origin, origin + horizon) for origin in origins]
