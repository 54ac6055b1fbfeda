"""The depth study on the tiny learnable data set: plan, runs, study.json, report, resume, errors."""

from __future__ import annotations

import json

import pytest

import archlab
from archlab.errors import ConfigError
from archlab.studies.depth import Arm, arms, robustness_verdict, run_depth_study, study_config


def tiny_config(data: str, **overrides):
    settings = dict(data=data, conv_depths=[8], mlp_depths=[4], mlp_activations=["sigmoid"], conv_width=0.25,
                    conv_steps=4, mlp_steps=8, batch_size=32, attack_images=20, attack_eps=[0.1])
    return study_config("quick", **{**settings, **overrides})


def test_plan_pairs_every_plain_net_with_its_residual_twin():
    plan = arms(study_config("quick"))
    assert len(plan) == 2 * (3 * 2 + 3)  # MLP: 3 depths × 2 activations; conv: 3 depths × relu
    assert plan[0] == Arm("mlp", 10, "sigmoid", False) and plan[1] == Arm("mlp", 10, "sigmoid", True)
    assert {a.model for a in plan} == {"plain-mlp", "resmlp", "plain", "resnet"}
    deep = Arm("conv", 1202, "relu", True)
    assert deep.model_args(study_config("full"))["checkpoint"] is True
    assert "checkpoint" not in Arm("conv", 56, "relu", True).model_args(study_config("full"))


@pytest.mark.parametrize("overrides, message", [
    ({"conv_depths": [10]}, "6n\\+2"), ({"mlp_depths": [7]}, "even"), ({"mlp_activations": ["swish"]}, "unknown activation"),
    ({"conv_depths": [], "mlp_depths": []}, "at least one"), ({"attack_eps": [-0.1]}, "ε must be ≥ 0"),
    ({"conv_depths": [], "mlp_activations": []}, "at least one activation"),
])
def test_bad_settings_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        study_config("quick", **overrides)
    with pytest.raises(ConfigError, match="Unknown depth-study preset"):
        study_config("huge")


def test_study_runs_writes_results_and_report_and_resumes(tiny_blobs, tmp_path):
    config = tiny_config(tiny_blobs["data"])
    seen = []
    study = run_depth_study(config, tmp_path / "study", on_arm=lambda i, n, arm, r: seen.append((i, n, arm.name)))
    assert [name for _, _, name in seen] == [a.name for a in arms(config)] and seen[-1][:2] == (3, 4)
    stored = json.loads((tmp_path / "study" / "study.json").read_text())
    assert stored["results"] == study["results"]
    for result in study["results"]:
        assert 0 <= result["test_accuracy"] <= 1 and result["steps"] in (4, 8)
        assert result["grad_ratio"]["first"] is not None and result["grad_ratio"]["first"] > 0
        assert set(result["robust"]) == {"0", "0.1"}
        assert (tmp_path / "study" / result["run_dir"] / "weights.safetensors").is_file()
    assert any("conv depth 8 relu: plain" in line for line in study["findings"])
    assert study["findings"][-1].startswith("Robustness")
    html = (tmp_path / "study" / "report.html").read_text()
    for anchor in ("findings", "accuracy", "curves", "ratios", "heatmaps", "robustness"):
        assert f'<section id="{anchor}">' in html, anchor
    assert html.count("data:image/png;base64,") >= 6  # accuracy, curves, 4 heat maps, robustness

    # Finished networks are reused; an interrupted one (no summary.json) is trained again.
    finished = tmp_path / "study" / "runs" / "conv-plain-8-relu" / "summary.json"
    interrupted = tmp_path / "study" / "runs" / "conv-residual-8-relu"
    stamp = finished.stat().st_mtime_ns
    (interrupted / "summary.json").unlink()
    run_depth_study(config, tmp_path / "study", report=False)
    assert finished.stat().st_mtime_ns == stamp
    assert (interrupted / "summary.json").is_file()


def test_robustness_verdict_compares_matched_pairs_only():
    def result(residual, depth, clean, attacked):
        return {"family": "mlp", "activation": "relu", "depth": depth, "residual": residual,
                "robust": {"0": clean, "0.1": attacked}}

    matched = [result(False, 10, 0.95, 0.60), result(True, 10, 0.96, 0.40)]
    assert "MORE susceptible, by 21.0 points" in robustness_verdict(matched, [0.1], 0.02)
    unmatched = [result(False, 50, 0.10, 0.10), result(True, 50, 0.95, 0.40)]
    assert "not tested" in robustness_verdict(unmatched, [0.1], 0.02)
    assert "LESS susceptible" in robustness_verdict(
        [result(False, 10, 0.95, 0.40), result(True, 10, 0.95, 0.60)], [0.1], 0.02)


def test_python_api_and_cli(tiny_blobs, tmp_path):
    from typer.testing import CliRunner

    from archlab.cli import app

    result = CliRunner().invoke(app, ["study", "depth", "--conv-depths", "9"])
    assert result.exit_code == 2 and "6n+2" in result.output
    result = CliRunner().invoke(app, [
        "study", "depth", "--data", tiny_blobs["data"], "--conv-depths", "", "--mlp-depths", "4",
        "--mlp-activations", "relu", "--mlp-steps", "4", "--attack-images", "0", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "mlp-residual-4-relu" in result.output and (tmp_path / "s" / "report.html").is_file()
    study = archlab.study_depth("quick", tmp_path / "api", report=False, data=tiny_blobs["data"], conv_depths=[],
                                mlp_depths=[2], mlp_activations=["relu"], mlp_steps=2, attack_images=0)
    assert len(study["results"]) == 2 and study["path"] == str(tmp_path / "api")
