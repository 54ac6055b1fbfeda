"""Recurrent classifiers: the seed listing's shapes, views, bidirectional sizes, IRNN, dropout, readouts."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import nn

import archlab
from archlab.config import resolve_config
from archlab.engine.train import with_model_defaults
from archlab.errors import ConfigError
from archlab.models import count_parameters, create_model
from archlab.models.rnn import image_to_sequence


def test_seed_lstm_has_the_listings_exact_shapes():
    model = create_model("seed-lstm")
    lstm = model.lstm
    assert (lstm.input_size, lstm.hidden_size, lstm.num_layers, lstm.batch_first) == (28, 128, 2, True)
    assert not lstm.bidirectional and lstm.dropout == 0
    assert (model.fc.in_features, model.fc.out_features) == (128, 10)
    assert count_parameters(model) == 214_282  # 4·128·(28+128+2) + 4·128·(128+128+2) + 129·10
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize("view, steps, features", [("rows", 28, 28), ("pixels", 784, 1), ("permuted", 784, 1)])
def test_views_turn_an_image_into_a_sequence(view, steps, features):
    model = create_model("gru", hidden=8, view=view)
    assert model.layers[0].input_size == features
    assert model.sequence_outputs(torch.rand(2, 1, 28, 28)).shape == (2, steps, 8)


def test_permutation_is_fixed_by_its_seed_and_saved_with_the_weights():
    a, b = (create_model("lstm", hidden=8, view="permuted", permutation_seed=s) for s in (1, 1))
    assert torch.equal(a.permutation, b.permutation) and sorted(a.permutation.tolist()) == list(range(784))
    other = create_model("lstm", hidden=8, view="permuted", permutation_seed=2)
    assert not torch.equal(a.permutation, other.permutation)
    assert "permutation" in a.state_dict()
    x = torch.rand(2, 1, 28, 28)
    pixels = x.reshape(2, 784, 1)
    assert torch.equal(image_to_sequence(x, "permuted", a.permutation), pixels[:, a.permutation])


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_bidirectional_sizes(cell):
    model = create_model(cell, hidden=16, layers=2, bidirectional=True)
    assert model.layers[1].input_size == 32 and model.classifier.in_features == 32
    x = torch.rand(4, 1, 28, 28)
    assert model.sequence_outputs(x).shape == (4, 28, 32)
    assert model(x).shape == (4, 10)


def test_bidirectional_readout_takes_each_directions_final_state():
    model = create_model("gru", hidden=8, bidirectional=True).eval()
    x = torch.rand(2, 1, 28, 28)
    _, h_n = model.layers[0](x.reshape(2, 28, 28))  # h_n: [directions, B, hidden]
    expected = model.classifier(torch.cat([h_n[0], h_n[1]], dim=1))
    torch.testing.assert_close(model(x), expected)


def test_irnn_starts_from_the_identity():
    model = create_model("rnn", hidden=16, nonlinearity="relu")
    layer = model.layers[0]
    assert torch.equal(layer.weight_hh_l0, torch.eye(16)) and not layer.bias_hh_l0.any()
    assert layer.weight_ih_l0.std() < 0.01 and layer.nonlinearity == "relu"


def test_variational_dropout_uses_one_mask_per_sequence():
    model = create_model("lstm", hidden=8, variational_dropout=0.5).train()
    torch.manual_seed(0)
    ones = torch.ones(3, 28, 28)
    masks = model._variational_masks(ones)
    dropped = model._drop(ones, 0, masks)
    zeros = dropped == 0
    assert zeros.any() and (zeros == zeros[:, :1]).all()  # the same units are dropped at every time step
    model.eval()
    assert torch.equal(model._drop(ones, 0, model._variational_masks(ones)), ones)


def test_attention_readout_weights_sum_to_one_and_learned_state_learns():
    model = create_model("lstm", hidden=8, readout="attention", initial_state="learned")
    outputs = model.sequence_outputs(torch.rand(2, 1, 28, 28))
    weights = model.attention.weights(outputs)
    assert weights.shape == (2, 28) and torch.allclose(weights.sum(1), torch.ones(2))
    model(torch.rand(2, 1, 28, 28)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.initial_state)


@pytest.mark.parametrize("args, message", [({"nonlinearity": "relu"}, "cell='rnn' only"), ({"view": "cols"}, "view"),
                                           ({"readout": "mean"}, "readout"), ({"dropout": 1.0}, "dropout")])
def test_bad_arguments_are_clear_errors(args, message):
    with pytest.raises(ConfigError, match=message):
        create_model("lstm", **args)


def test_recurrent_models_clip_gradients_by_default():
    assert with_model_defaults(resolve_config(overrides={"model": "lstm"})).grad_clip == 1.0
    assert with_model_defaults(resolve_config(overrides={"model": "cnn"})).grad_clip is None
    assert with_model_defaults(resolve_config(overrides={"model": "gru", "grad_clip": 0})).grad_clip == 0
    auto = resolve_config(overrides={"model": "gru", "monitor": {"auto_clip_percentile": 10}})
    assert with_model_defaults(auto).grad_clip is None


def test_clipping_bounds_the_gradient_norm(tiny_blobs, tmp_path):
    seen = []

    class Record(L.Callback):
        def on_before_zero_grad(self, trainer, pl_module, optimizer):
            grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
            seen.append(float(torch.nn.utils.get_total_norm(grads)))

    archlab.train("gru", run_dir=tmp_path / "run", report=False, epochs=1, grad_clip=0.05,
                  model_args={"hidden": 16}, callbacks=[Record()], **tiny_blobs)
    assert seen and max(seen) <= 0.05 * 1.001


@pytest.mark.slow
def test_row_wise_recipe_learns_mnist(tmp_path):
    """Bar: ≥97% MNIST test accuracy after one epoch of the mnist-rows recipe (budget: about 25 s)."""
    run = archlab.train(recipe="mnist-rows", epochs=1, run_dir=tmp_path / "run", progress=False, report=False)
    assert run.test_accuracy >= 0.97, run.summary


def test_layers_are_separate_modules_for_dropout_between_them():
    model = create_model("lstm", hidden=8, layers=3, dropout=0.2)
    assert len(model.layers) == 3 and all(isinstance(layer, nn.LSTM) and layer.num_layers == 1 for layer in model.layers)


def test_principal_projection_finds_the_dominant_direction():
    from archlab.monitor.hidden_states import principal_projection

    generator = torch.Generator().manual_seed(0)
    direction = torch.tensor([3.0, 4.0, 0.0]) / 5
    states = torch.randn(50, 6, 1, generator=generator) * 10 * direction + 0.01 * torch.randn(50, 6, 3, generator=generator)
    projections, explained = principal_projection(states)
    assert projections.shape == (50, 6, 2) and explained[0] > 0.99 and explained.sum() <= 1.0001


def test_recurrent_run_saves_hidden_states_and_reports_them(tiny_blobs, tmp_path):
    run = archlab.train("lstm", run_dir=tmp_path / "run", epochs=1, model_args={"hidden": 16}, **tiny_blobs)
    import numpy as np

    with np.load(run.path / "hidden_states.npz") as arrays:
        assert arrays["projections"].shape == (100, 28, 2) and arrays["labels"].shape == (100,)
        assert list(arrays["padding_kinds"]) == ["zeros", "noise"] and int(arrays["padding_steps"]) == 4
        assert ((arrays["padding_distance"] >= 0) & (arrays["padding_distance"] <= 1)).all()
        assert arrays["padding_distance"].max() > 0  # a last-step readout does move when steps are appended
    html = (run.path / "report.html").read_text()
    assert '<section id="hidden-states">' in html and "100 test sequences over 28 time steps" in html
    assert "Padding robustness" in html


def test_non_recurrent_runs_have_no_hidden_state_section(tiny_blobs, tmp_path):
    run = archlab.train("mlp", run_dir=tmp_path / "run", epochs=1, model_args={"hidden": [16]}, **tiny_blobs)
    assert not (run.path / "hidden_states.npz").exists()
    assert 'id="hidden-states"' not in (run.path / "report.html").read_text()


def test_truncated_bptt_keeps_outputs_and_cuts_gradients():
    torch.manual_seed(0)
    full = create_model("lstm", hidden=8, layers=2, view="pixels", input_size=6)
    truncated = create_model("lstm", hidden=8, layers=2, view="pixels", input_size=6, bptt=10)
    truncated.load_state_dict(full.state_dict())
    x = torch.rand(2, 1, 6, 6, requires_grad=True)  # 36 steps, chunks of 10
    torch.testing.assert_close(truncated(x), full(x))
    truncated(x).sum().backward()
    grad = x.grad.reshape(2, 36)
    assert grad[:, :30].abs().sum() == 0 and grad[:, 30:].abs().sum() > 0  # only the last chunk gets gradient
    with pytest.raises(ConfigError, match="bptt"):
        create_model("gru", bptt=5, bidirectional=True)


def test_bptt_flag_reaches_the_model_and_is_refused_where_it_means_nothing(tiny_blobs, tmp_path):
    from typer.testing import CliRunner

    from archlab.cli import app

    common = ["--data", tiny_blobs["data"], "--epochs", "1", "--val-size", "60", "--no-progress"]
    result = CliRunner().invoke(app, ["train", "gru", "--bptt", "7", "-m", "hidden=8", "--run-dir",
                                      str(tmp_path / "run"), *common])
    assert result.exit_code == 0, result.output
    assert "bptt: 7" in (tmp_path / "run" / "config.yaml").read_text()
    result = CliRunner().invoke(app, ["train", "cnn", "--bptt", "7", "--run-dir", str(tmp_path / "bad"), *common])
    assert result.exit_code == 2 and "does not accept argument(s) bptt" in result.output


@pytest.mark.parametrize("name", ["seed-lstm", "lstm", "gru", "rnn"])
def test_recurrent_flops_are_counted_from_the_weight_shapes(name):
    from archlab.models import forward_mflops

    model = create_model(name) if name == "seed-lstm" else create_model(name, hidden=16, layers=2)
    weights = sum(p.numel() for n, p in model.named_parameters() if ".weight_" in n or n.startswith("lstm.weight"))
    classifier = sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight") and p.ndim == 2
                     and ("classifier" in n or n.startswith("fc")))
    expected = (2 * 28 * weights + 2 * classifier) / 1e6  # 28 steps (rows), one sample
    assert forward_mflops(model, (1, 28, 28)) == pytest.approx(expected, rel=0.02)
