"""The diagnosis rules on plain numbers."""

from __future__ import annotations

import numpy as np

from archlab.monitor.diagnosis import (
    check_dead_units,
    check_exploding,
    check_loss_curve,
    check_vanishing,
    loss_trend,
)


def test_vanishing_from_first_last_ratio():
    norms = {"layer0": 1e-9, "layer1": 1e-5, "layer2": 0.5}
    found = check_vanishing(norms, step=7, vanish_ratio=1e-3, tiny_norm=1e-12)
    assert found.kind == "vanishing" and found.step == 7
    assert found.layers == ["layer0", "layer2"] and "layer0" in found.message and "skip connections" in found.suggestion


def test_vanishing_from_a_tiny_layer_and_quiet_when_healthy():
    assert check_vanishing({"a": 0.5, "b": 1e-10, "c": 0.4}, 1, 1e-3, 1e-8).layers == ["b"]
    assert check_vanishing({"a": 0.05, "b": 0.2, "c": 0.4}, 1, 1e-3, 1e-8) is None
    assert check_vanishing({"only": 1e-12}, 1, 1e-3, 0.0) is None  # one layer: nothing to compare


def test_exploding_names_the_largest_layer():
    found = check_exploding({"a": 2.0, "b": 5e4, "c": 2e3}, 3, explode_norm=1e3)
    assert found.kind == "exploding" and found.layers == ["b", "c"] and "largest: b" in found.message
    assert check_exploding({"a": 2.0}, 3, 1e3) is None


def test_dead_units_over_the_fraction():
    found = check_dead_units({"relu1": 0.9, "relu2": 0.1}, 5, dead_fraction=0.5)
    assert found.layers == ["relu1"] and "90%" in found.message
    assert check_dead_units({"relu1": 0.2}, 5, 0.5) is None


def test_loss_trend_falling_plateau_oscillating():
    falling = list(2.3 * np.exp(-0.3 * np.arange(12)))
    assert loss_trend(falling, patience=4, min_delta=0.01) is None
    flat = [2.0, 1.0, 0.5] + [0.5 + 0.001 * (i % 2) for i in range(6)]
    assert loss_trend(flat, patience=4, min_delta=0.01) == "plateau"
    swinging = [1.0, 0.8] + [0.6, 1.2] * 5
    assert loss_trend(swinging, patience=4, min_delta=0.01) == "oscillating"
    assert loss_trend([1.0, 0.9], patience=4, min_delta=0.01) is None  # too short to say
    assert loss_trend([1.0, float("nan")] * 5, patience=4, min_delta=0.01) is None


def test_noisy_but_falling_loss_is_not_oscillating():
    rng = np.random.default_rng(0)
    values = list(np.linspace(2.0, 0.4, 16) + rng.normal(0, 0.02, 16))
    assert check_loss_curve(values, 100, "training loss", patience=4, min_delta=0.01) is None


def test_loss_curve_diagnosis_text():
    found = check_loss_curve([1.0, 0.9] + [0.9] * 5, 50, "validation loss", patience=4, min_delta=0.01)
    assert found.kind == "plateau" and "validation loss" in found.message
    assert found.text().startswith("step 50: plateau:") and "Suggestion:" in found.text()
