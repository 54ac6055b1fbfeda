"""The recurrent forecaster: shapes, the residual start, differenced inputs, and state carried across chunks."""

import pytest
import torch

from archlab.errors import ConfigError
from archlab.models import create_model, get_model_info
from archlab.models.forecast import detach_state


@pytest.mark.parametrize("name", ["rnn-forecast", "lstm-forecast", "gru-forecast"])
def test_many_to_many_shapes_and_registry(name):
    info = get_model_info(name)
    assert info.task == "forecast" and info.input_kind == "series" and info.family == "rnn"
    model = create_model(name, input_size=3, horizon=5, hidden=8, target_index=2)
    forecast, state = model.step(torch.randn(4, 11, 3))
    assert forecast.shape == (4, 11, 5) and model(torch.randn(2, 7, 3)).shape == (2, 7, 5)
    assert (state[0] if isinstance(state, tuple) else state).shape == (1, 4, 8)


def test_residual_model_starts_as_the_naive_forecast_of_the_target_column():
    torch.manual_seed(0)
    model = create_model("lstm-forecast", input_size=2, horizon=3, hidden=8, target_index=1)
    x = torch.randn(2, 6, 2) * 5
    naive = x[..., 1:2].expand(-1, -1, 3)
    assert torch.allclose(model(x), naive, atol=0.05)
    level = create_model("lstm-forecast", input_size=2, horizon=3, hidden=8, residual=False)
    assert not torch.allclose(level(x), naive, atol=0.05)


def test_differenced_inputs_ignore_the_level():
    torch.manual_seed(0)
    model = create_model("gru-forecast", hidden=8, differences=True)
    x = torch.randn(3, 10, 1)
    shift = 100.0
    # the recurrent part sees the same changes, so the forecast moves with the level and nothing else
    assert torch.allclose(model(x + shift) - shift, model(x), atol=1e-4)
    plain = create_model("gru-forecast", hidden=8)
    assert not torch.allclose(plain(x + shift) - shift, plain(x), atol=1e-4)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_state_carried_across_chunks_equals_one_pass(cell):
    torch.manual_seed(0)
    model = create_model(f"{cell}-forecast", hidden=8, layers=2, horizon=2, residual=False)
    x = torch.randn(3, 20, 1)
    whole = model(x)
    first, state = model.step(x[:, :12])
    second, _ = model.step(x[:, 12:], detach_state(state))
    assert torch.allclose(torch.cat([first, second], dim=1), whole, atol=1e-5)
    assert not torch.allclose(model(x[:, 12:]), second, atol=1e-3)  # a zero state forgets the first chunk


def test_detach_state_cuts_the_graph():
    model = create_model("lstm-forecast", hidden=4)
    _, state = model.step(torch.randn(2, 5, 1))
    assert all(part.grad_fn is not None for part in state)
    assert all(part.grad_fn is None and not part.requires_grad for part in detach_state(state))
    assert detach_state(None) is None


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ConfigError, match="target_index"):
        create_model("lstm-forecast", input_size=2, target_index=2)
    with pytest.raises(ConfigError, match="nonlinearity applies to cell='rnn'"):
        create_model("lstm-forecast", nonlinearity="relu")
    with pytest.raises(ConfigError, match="horizon"):
        create_model("gru-forecast", horizon=0)
