"""Real-data learning tests: each states its bar and its budget. Marked slow (make test runs them)."""

from __future__ import annotations

import pytest

import archlab

pytestmark = pytest.mark.slow


def test_cnn_passes_98_5_percent_on_mnist_in_one_epoch(tmp_path):
    """Bar: ≥98.5% MNIST test accuracy after one epoch of `cnn` (budget: about 5 s of training)."""
    run = archlab.train("cnn", recipe="mnist-fast", epochs=1, run_dir=tmp_path / "run", progress=False)
    assert run.test_accuracy >= 0.985, run.summary
    assert run.summary["best_val"]["val_acc"] >= 0.98


def test_mnist_fast_recipe_reaches_99_percent(tmp_path):
    """Bar: the mnist-fast recipe's claim, ≥99.0% MNIST test accuracy (budget: about 5 s of training)."""
    run = archlab.train(recipe="mnist-fast", run_dir=tmp_path / "run", progress=False, report=False)
    assert run.test_accuracy >= 0.99, run.summary


def test_same_recipe_learns_fashion_mnist(tmp_path):
    """Bar: ≥87% Fashion-MNIST test accuracy with the MNIST recipe (budget: about 5 s).

    Only the recipe's centre crop is turned off: it suits digits, not clothes (85.9% with it).
    """
    run = archlab.train(recipe="mnist-fast", data="fashion-mnist", model_args={"crop": 0},
                        run_dir=tmp_path / "run", progress=False, report=False)
    assert run.test_accuracy >= 0.87, run.summary
    assert run.load_model().classes[0] == "T-shirt/top"
