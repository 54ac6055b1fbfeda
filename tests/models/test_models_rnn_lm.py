"""The recurrent language models: the state contract, tied embeddings, argument checks, and that they learn."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from archlab.errors import ConfigError
from archlab.models import create_model, get_model_info

NAMES = ("rnn-lm", "lstm-lm", "gru-lm")


@pytest.mark.parametrize("name", NAMES)
def test_feeding_in_pieces_with_the_state_equals_reading_the_whole_sequence(name):
    torch.manual_seed(0)
    model = create_model(name, vocab_size=30, embedding_dim=12, hidden=16, layers=2, dropout=0.3).eval()
    tokens = torch.randint(0, 30, (3, 17))
    whole, _ = model(tokens)
    state, pieces = None, []
    for start, stop in ((0, 5), (5, 6), (6, 17)):  # a prompt, one token, the rest
        logits, state = model(tokens[:, start:stop], state)
        pieces.append(logits)
    assert whole.shape == (3, 17, 30)
    torch.testing.assert_close(torch.cat(pieces, dim=1), whole, rtol=1e-5, atol=1e-5)
    # Without the state, the second piece is read from scratch: different logits.
    assert not torch.allclose(model(tokens[:, 5:6])[0], pieces[1], atol=1e-4)


def test_lstm_state_is_hidden_and_cell_per_layer():
    model = create_model("lstm-lm", vocab_size=20, embedding_dim=8, hidden=10, layers=3)
    _, (h, c) = model(torch.randint(0, 20, (4, 6)))
    assert h.shape == c.shape == (3, 4, 10)
    _, h = create_model("gru-lm", vocab_size=20, embedding_dim=8, hidden=10, layers=3)(torch.randint(0, 20, (4, 6)))
    assert h.shape == (3, 4, 10)


def test_tied_embeddings_share_one_matrix_and_need_equal_sizes():
    model = create_model("lstm-lm", vocab_size=40, embedding_dim=24, hidden=24, tie_weights=True)
    assert model.decoder.weight is model.embedding.weight
    untied = create_model("lstm-lm", vocab_size=40, embedding_dim=24, hidden=24)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(untied) - count(model) == 40 * 24
    with pytest.raises(ConfigError, match="embedding_dim must equal hidden"):
        create_model("lstm-lm", vocab_size=40, embedding_dim=16, hidden=24, tie_weights=True)


@pytest.mark.parametrize("args, message", [({"cell": "transformer"}, "cell must be one of"),
                                           ({"dropout": 1.0}, "dropout"), ({"vocab_size": 1}, "vocab_size"),
                                           ({"nonlinearity": "relu"}, "cell='rnn' only")])
def test_bad_arguments_are_refused_with_the_reason(args, message):
    with pytest.raises(ConfigError, match=message):
        create_model("lstm-lm", **args)


def test_tokens_must_be_batch_by_time():
    with pytest.raises(ValueError, match=r"\[batch, time\]"):
        create_model("gru-lm", vocab_size=10)(torch.zeros(5, dtype=torch.long))


@pytest.mark.parametrize("name", NAMES)
def test_registered_for_the_language_task_with_token_examples(name):
    info = get_model_info(name)
    assert info.family == "rnn" and info.task == "language" and info.tasks == ("language",)
    (tokens,) = info.example_inputs(2)
    assert tokens.dtype == torch.long and int(tokens.max()) < create_model(name).vocab_size


@pytest.mark.parametrize("name", NAMES)
def test_memorizes_a_short_periodic_text(name):
    """Each cell learns to predict "abcabc..." shifted: the loss falls from ~ln 3 to a fraction of it."""
    torch.manual_seed(0)
    model = create_model(name, **get_model_info(name).tiny)
    tokens = torch.tensor([[1, 2, 3] * 8]).repeat(4, 1)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(inputs)[0].flatten(0, 1), targets.flatten())
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0], f"{name}: {losses[0]:.3f} → {losses[-1]:.3f}"
