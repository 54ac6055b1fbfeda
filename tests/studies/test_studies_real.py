"""The depth study on real MNIST, small: the residual nets learn, the deep plain sigmoid MLP does not."""

from __future__ import annotations

import pytest

from archlab.studies.depth import run_depth_study, study_config


@pytest.mark.slow
def test_small_real_study_shows_residual_learning(tmp_path):
    """Budget: 300 MLP steps and 200 conv steps of batch 128 (about a minute on one core).

    Bars: residual nets ≥ 88% test accuracy (MLP-10 sigmoid, ResNet-8 at half width); the plain 10-layer
    sigmoid MLP stays under 20% and its first/last gradient-norm ratio at initialisation is under 1e-5.
    """
    config = study_config("quick", data="mnist", mlp_depths=[10], mlp_activations=["sigmoid"], conv_depths=[8],
                          conv_steps=200, attack_images=200, attack_eps=[0.1])
    study = run_depth_study(config, tmp_path / "study")
    results = {r["name"]: r for r in study["results"]}
    assert results["mlp-residual-10-sigmoid"]["test_accuracy"] >= 0.88
    assert results["conv-residual-8-relu"]["test_accuracy"] >= 0.88
    plain = results["mlp-plain-10-sigmoid"]
    assert plain["test_accuracy"] < 0.2 and plain["grad_ratio"]["first"] < 1e-5
    assert "vanishing" in plain["diagnoses"]
    assert results["mlp-residual-10-sigmoid"]["grad_ratio"]["first"] > 1e-2
    for result in results.values():  # FGSM at ε = 0.1 costs accuracy
        assert result["robust"]["0.1"] <= result["robust"]["0"]
    assert (tmp_path / "study" / "report.html").is_file()
