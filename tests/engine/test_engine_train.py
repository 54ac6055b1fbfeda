"""The training engine end to end on tiny learnable data: run directory, learning, options, CV."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

import archlab
from archlab.errors import ConfigError, RunError


def test_run_directory_is_complete_and_the_model_learns(tiny_blobs, tmp_path):
    run = archlab.train("cnn", run_dir=tmp_path / "run", epochs=4, optimizer={"lr": 0.01},
                        schedule={"name": "one-cycle"}, **tiny_blobs)
    for name in ("config.yaml", "meta.json", "weights.safetensors", "summary.json", "metrics.csv",
                 "test_predictions.npz", "report.html", "checkpoints/last.ckpt", "checkpoints/best.ckpt"):
        assert (run.path / name).is_file(), name
    assert list((run.path / "tb").glob("events.out.tfevents.*"))
    summary = json.loads((run.path / "summary.json").read_text())
    for key in ("model", "data", "test_metrics", "best_val", "wall_seconds", "train_images_per_second",
                "epochs", "params"):
        assert key in summary, key
    # Ten well-separated classes: chance is 10%; a CNN that learns is near-perfect after 4 tiny epochs.
    assert summary["test_metrics"]["accuracy"] >= 0.9
    assert summary["epochs"] == pytest.approx(4.0)
    metrics = (run.path / "metrics.csv").read_text().splitlines()[0]
    for column in ("train_loss", "val_acc", "lr-Adam", "grad_total"):
        assert column in metrics, column


def test_saved_model_reloads_without_pickle_and_predicts_the_same(tiny_blobs, tmp_path):
    run = archlab.train("mlp", run_dir=tmp_path / "run", epochs=1, **tiny_blobs)
    loaded = run.load_model()
    assert loaded.meta["model"] == "mlp" and loaded.classes == [str(c) for c in range(10)]
    metrics = archlab.evaluate(run.path)
    assert metrics["accuracy"] == pytest.approx(run.test_accuracy, abs=1e-6)


def test_options_reach_the_loss_and_the_optimizer(tiny_blobs, tmp_path):
    run = archlab.train("cnn", run_dir=tmp_path / "run", epochs=1, l1_penalty=1e-5, l2_penalty=1e-4,
                        weight_decay=1e-4, label_smoothing=0.1, grad_clip=1.0,
                        optimizer={"name": "sgd", "lr": 0.05, "nesterov": True},
                        schedule={"name": "cosine"}, augment={"rotate_deg": 10, "noise_std": 0.05},
                        **tiny_blobs)
    header = (run.path / "metrics.csv").read_text().splitlines()[0]
    assert "l1_penalty" in header and "l2_penalty" in header and "lr-SGD" in header
    config = yaml.safe_load((run.path / "config.yaml").read_text())
    assert config["optimizer"]["nesterov"] is True and config["augment"]["rotate_deg"] == 10


def test_config_file_reruns_a_run(tiny_blobs, tmp_path):
    first = archlab.train("mlp", run_dir=tmp_path / "a", epochs=1, seed=3, deterministic=True, **tiny_blobs)
    second = archlab.train(config_file=first.path / "config.yaml", run_dir=tmp_path / "b")
    assert second.test_accuracy == first.test_accuracy


def test_fractional_epochs_and_max_time(tiny_blobs, tmp_path):
    run = archlab.train("mlp", run_dir=tmp_path / "run", epochs=1.5, **tiny_blobs)
    assert run.summary["steps"] == 12  # 260 training images / 32 = 8 batches per epoch (last dropped)


def test_cross_validation_reports_mean_and_std(tiny_blobs, tmp_path):
    run = archlab.train("mlp", run_dir=tmp_path / "cv", epochs=1, cv=3, **tiny_blobs)
    cv = run.summary["cv"]
    assert cv["k"] == 3 and len(cv["folds"]) == 3
    assert 0 <= cv["val_acc_mean"] <= 1 and cv["val_acc_std"] >= 0
    assert "Cross-validation" in (run.path / "report.html").read_text() or "cross-validation" in (
        run.path / "report.html").read_text().lower()


def test_bad_settings_fail_before_training(tiny_blobs, tmp_path):
    with pytest.raises(ConfigError, match="Unknown model"):
        archlab.train("nope", run_dir=tmp_path / "x", **tiny_blobs)
    with pytest.raises(ConfigError, match="Unknown setting"):
        archlab.train("cnn", run_dir=tmp_path / "y", epoch=3, **tiny_blobs)
    with pytest.raises(ConfigError, match="Unknown optimizer"):
        archlab.train("cnn", run_dir=tmp_path / "z", optimizer={"name": "adamax"}, **tiny_blobs)
    with pytest.raises(RunError, match="config.yaml"):
        archlab.train(resume=tmp_path / "missing")


@pytest.mark.parametrize("model, name, message", [
    ("cnn", "spam", "'cnn' reads images, not words: --data spam is a text data set"),
    ("cnn", "shakespeare", "--data shakespeare has no labels to classify"),
    ("cnn", "co2", "'cnn' \\(classify\\) cannot learn from --data co2, a series data set"),
])
def test_a_model_on_data_it_cannot_read_is_a_clear_error(model, name, message, tmp_path):
    from archlab.data import load_image_data
    from archlab.errors import ConfigError, DataError

    with pytest.raises(ConfigError, match=message):
        archlab.train(model, data=name, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(DataError, match=f"'{name}' is a (text|series) data set"):
        load_image_data(name)


def test_unknown_task_and_wrong_task_for_the_data_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="Unknown task 'paint'. Known tasks: .*classify"):
        archlab.train("cnn", task="paint", run_dir=tmp_path / "a")
    with pytest.raises(ConfigError, match="Task 'classify' has no setting"):
        archlab.train("lstm", data="spam", task_args={"horizon": 3}, run_dir=tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_training_flushes_subnormals_only_while_it_runs(tiny_blobs, tmp_path):
    import torch

    from archlab.engine.train import flushing_denormals

    subnormal = torch.tensor([1e-40])
    assert (subnormal * 1.0).item() != 0.0
    with flushing_denormals():
        assert (subnormal * 1.0).item() == 0.0
    archlab.train("mlp", run_dir=tmp_path / "run", epochs=1, report=False, model_args={"hidden": [8]}, **tiny_blobs)
    assert (subnormal * 1.0).item() != 0.0  # the process's floating-point mode is as it was


def test_init_from_copies_the_matching_weights_and_keeps_a_new_head(tiny_blobs, tmp_path):
    from safetensors.torch import load_file

    first = archlab.train("mlp", run_dir=tmp_path / "a", epochs=1, model_args={"hidden": [16]}, report=False,
                          **tiny_blobs)
    second = archlab.train("mlp", run_dir=tmp_path / "b", max_steps=1, optimizer={"name": "sgd", "lr": 1e-9},
                           model_args={"hidden": [16]}, init_from=str(first.path), report=False, **tiny_blobs)
    loaded = second.summary["init_from"]
    assert loaded["loaded"] == loaded["of_source"] and loaded["new"] == []
    before, after = load_file(first.path / "weights.safetensors"), load_file(second.path / "weights.safetensors")
    for name, tensor in before.items():  # one SGD step at lr 1e-9 leaves them where they started
        torch.testing.assert_close(after[name], tensor, atol=1e-6, rtol=0)
    with pytest.raises(RunError, match="none of its .* tensors fits this model"):
        archlab.train("cnn", run_dir=tmp_path / "c", max_steps=1, init_from=str(first.path), **tiny_blobs)


def test_bf16_mixed_precision_with_gradient_clipping_trains(tiny_blobs, tmp_path):
    """Recurrent models clip by default; under autocast the optimizer must not be a fused one Lightning cannot clip."""
    run = archlab.train("gru", run_dir=tmp_path / "run", max_steps=3, precision="bf16-mixed", report=False,
                        model_args={"hidden": 16}, **tiny_blobs)
    assert run.summary["steps"] == 3 and run.summary["precision"] == "bf16-mixed"


def test_the_progress_bar_counts_epochs_against_the_runs_length(tmp_path):
    from archlab.config import TrainConfig
    from archlab.engine.callbacks import RunRecord
    from archlab.engine.trainer import RunProgressBar, build_trainer

    trainer = build_trainer(TrainConfig(progress=True), tmp_path, total_steps=25, record=RunRecord(("val_acc", "max")),
                            validate=False, steps_per_epoch=10, loggers=False)
    bar = next(cb for cb in trainer.callbacks if isinstance(cb, RunProgressBar))
    assert bar._get_train_description(0).strip() == "epoch 1 of 3"  # 25 steps of 10 per epoch: the last is partial
    assert bar._get_train_description(2).strip() == "epoch 3 of 3"
