"""The judges (archlab.metrics.judge): committed, checksummed artifacts; accurate; refusing damaged files."""

from __future__ import annotations

import shutil

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

import archlab.cli
from archlab.errors import ConfigError
from archlab.metrics.judge import (
    INDEX,
    JUDGES_DIR,
    RECIPES,
    Judge,
    JudgeError,
    judge_accuracy,
    load_judge,
    read_index,
    sha256,
    write_judge,
)
from archlab.models import create_model


@pytest.fixture
def judges_copy(tmp_path):
    folder = tmp_path / "judges"
    shutil.copytree(JUDGES_DIR, folder)
    return folder


@pytest.mark.parametrize("data", sorted(RECIPES))
def test_committed_judge_is_recorded_small_and_checksummed(data):
    entry = read_index()["judges"][data]
    weights = JUDGES_DIR / entry["file"]
    assert weights.is_file() and weights.stat().st_size < 2_000_000
    assert sha256(weights) == entry["sha256"]
    assert entry["recipe"]["name"] == RECIPES[data] and entry["recipe"]["seed"] == 0
    assert {"train", "noise"} <= set(entry["reference"])
    judge = load_judge(data)
    assert judge.num_features == entry["num_features"] and judge.num_classes == 10
    # the recorded floor and ceiling are far apart: the judge tells digits (clothes) from noise
    assert entry["reference"]["noise"]["fid"] > 50 * entry["reference"]["train"]["fid"]


def test_mnist_judge_reaches_99_3_percent_on_the_test_split():
    """Bar: ≥ 99.3% MNIST test accuracy with the committed weights (one pass over 10,000 images, a few seconds)."""
    accuracy = judge_accuracy(load_judge("mnist"), "mnist")
    assert accuracy >= 0.993
    assert accuracy == pytest.approx(read_index()["judges"]["mnist"]["test_accuracy"], abs=1e-4)


def test_changed_weights_are_refused_with_the_rebuild_command(judges_copy):
    weights = judges_copy / read_index(judges_copy)["judges"]["mnist"]["file"]
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in the last weight
    weights.write_bytes(bytes(data))
    with pytest.raises(JudgeError, match=r"checksum.*archlab judge build --data mnist"):
        load_judge("mnist", judges_copy)


def test_missing_weights_or_record_are_refused_with_the_rebuild_command(judges_copy, tmp_path):
    (judges_copy / read_index(judges_copy)["judges"]["mnist"]["file"]).unlink()
    with pytest.raises(JudgeError, match=r"missing.*archlab judge build --data mnist"):
        load_judge("mnist", judges_copy)
    with pytest.raises(JudgeError, match=r"No judge for 'fashion-mnist'.*judge build --data fashion-mnist"):
        load_judge("fashion-mnist", tmp_path / "empty")
    with pytest.raises(ConfigError, match="no judge for 'spam'"):
        load_judge("spam")


def test_judge_maps_minus_one_one_to_its_training_normalization():
    judge = Judge(create_model("cnn", channels=(4, 8)), mean=0.25, std=0.5, data="mnist")
    x = torch.tensor([-1.0, 0.0, 1.0])
    assert judge.normalize(x).tolist() == pytest.approx([-0.5, 0.5, 1.5])  # ((x + 1) / 2 - 0.25) / 0.5


def test_features_are_the_input_of_the_last_linear_layer_and_eval_mode_sticks():
    judge = Judge(create_model("cnn", channels=(4, 8), dropout=0.5), mean=0.1, std=0.3, data="mnist")
    judge.train()
    assert not judge.network.training and not any(p.requires_grad for p in judge.parameters())
    images = torch.rand(5, 1, 28, 28) * 2 - 1
    features, logits = judge.embed(images, batch_size=2)
    assert features.shape == (5, judge.num_features) and logits.shape == (5, 10)
    assert torch.allclose(judge.head(features), logits, atol=1e-5)
    assert torch.equal(judge(images), judge.features(images))  # forward = features, for torchmetrics


def test_write_judge_round_trips_and_records_the_checksum(tmp_path):
    network = create_model("cnn", channels=(4, 8)).eval()
    entry = {"version": 1, "data": "mnist", "model": "cnn", "model_args": {"channels": [4, 8]},
             "normalization": {"mean": 0.13, "std": 0.31}}
    written = write_judge("mnist", network, entry, tmp_path)
    assert written["sha256"] == sha256(tmp_path / "mnist-v1.safetensors")
    assert read_index(tmp_path)["judges"]["mnist"]["sha256"] == written["sha256"]
    assert not list(tmp_path.glob(".*.tmp")) and (tmp_path / INDEX).is_file()
    images = torch.rand(3, 1, 28, 28) * 2 - 1
    expected = Judge(network, 0.13, 0.31, "mnist").logits(images)
    assert torch.allclose(load_judge("mnist", tmp_path).logits(images), expected, atol=1e-6)


def test_judge_show_prints_accuracy_and_reference_scores(monkeypatch):
    monkeypatch.setattr(archlab.cli, "console", Console(width=200))
    result = CliRunner().invoke(archlab.cli.app, ["judge", "show", "--data", "mnist"])
    assert result.exit_code == 0, result.output
    accuracy = read_index()["judges"]["mnist"]["test_accuracy"]
    assert f"{accuracy:.4f}" in result.output
    assert "training split (floor)" in result.output and "uniform noise (ceiling)" in result.output
    bad = CliRunner().invoke(archlab.cli.app, ["judge", "show", "--data", "spam"])
    assert bad.exit_code == 2 and "no judge for 'spam'" in bad.output
