"""td-cnn: the time-distributed CNN, padding that changes nothing, attention over real frames, greedy decoding."""

from __future__ import annotations

import pytest
import torch

from archlab.errors import ConfigError
from archlab.models import create_model, get_model_info
from archlab.models.cnn import ConvNet
from archlab.models.seq2seq import TimeDistributed

TINY = get_model_info("td-cnn").tiny
ATTENTIONS = ("bahdanau", "luong", "none")
EOS = 10


def tiny(**overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("td-cnn", **{**TINY, **overrides})


def batch(size: int = 4, steps: int = 5):
    torch.manual_seed(1)
    lengths = torch.tensor([5, 2, 3, 4])[:size]
    return torch.randn(size, steps, 1, 28, 28), lengths, torch.randint(0, 11, (size, 3))


def test_time_distributed_is_the_cnn_frame_by_frame():
    torch.manual_seed(0)
    cnn = ConvNet(num_classes=7, channels=(4, 8)).eval()
    frames = torch.randn(3, 4, 1, 28, 28)
    distributed = TimeDistributed(cnn)
    expected = torch.stack([torch.stack([cnn(frames[b, t : t + 1])[0] for t in range(4)]) for b in range(3)])
    with torch.no_grad():
        torch.testing.assert_close(distributed(frames), expected)
        lengths = torch.tensor([4, 1, 2])
        masked = distributed(frames, lengths)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(masked[b, :n], expected[b, :n])
        assert (masked[b, n:] == 0).all()


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_padded_frames_do_not_change_the_output(attention, training):
    """Even in training mode: padded frames never reach the CNN's batch-norm statistics or the encoder."""
    model = tiny(attention=attention).train(training)
    frames, lengths, targets = batch()
    noisy = frames.clone()
    for b, n in enumerate(lengths.tolist()):
        noisy[b, n:] = 100 * torch.randn_like(noisy[b, n:])
    with torch.no_grad():
        logits, weights = model(frames, lengths, targets)
        logits_noisy, weights_noisy = model(noisy, lengths, targets)
        shorter = model(frames[:, :4][1:], lengths[1:], targets[1:])[0]  # batch trimmed to its longest
    torch.testing.assert_close(logits, logits_noisy)
    if weights is not None:
        torch.testing.assert_close(weights, weights_noisy)
    if not training:  # batch-norm statistics are per batch in training, so only eval compares across batches
        torch.testing.assert_close(shorter, logits[1:])
    changed = frames.clone()
    changed[0, 0] += 1.0  # a real frame does change it
    with torch.no_grad():
        assert not torch.allclose(model(changed, lengths, targets)[0][0], logits[0])


@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_attention_is_a_distribution_over_the_real_frames(attention):
    model = tiny(attention=attention).eval()
    frames, lengths, targets = batch()
    with torch.no_grad():
        _, weights = model(frames, lengths, targets)
        _, greedy_weights = model.greedy_decode(frames, lengths)
    for w in (weights, greedy_weights):
        assert w.shape[0] == 4 and w.shape[2] == 5
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:2]))
        for b, n in enumerate(lengths.tolist()):
            assert (w[b, :, n:] == 0).all()


def test_each_paper_queries_with_its_own_state():
    """Bahdanau's step u attends with s_{u-1}, which has not read y_{u-1}; Luong's with s_u, which has."""
    frames, lengths, targets = batch()
    other = targets.clone()
    other[:, 0] = (targets[:, 0] + 1) % 10
    for attention, step_one_changes in (("bahdanau", False), ("luong", True)):
        model = tiny(attention=attention).eval()
        with torch.no_grad():
            first, second = model(frames, lengths, targets)[1], model(frames, lengths, other)[1]
        torch.testing.assert_close(first[:, 0], second[:, 0])
        assert (not torch.allclose(first[:, 1], second[:, 1])) == step_one_changes
        assert not torch.allclose(first[:, 2], second[:, 2])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_greedy_decoding_is_teacher_forcing_on_its_own_output(attention, cell):
    model = tiny(attention=attention, cell=cell).eval()
    frames, lengths, _ = batch()
    tokens, weights = model.greedy_decode(frames, lengths, max_len=4)
    assert tokens.shape[0] == 4 and 1 <= tokens.shape[1] <= 4
    assert (weights is None) == (attention == "none")
    with torch.no_grad():
        logits, forced = model(frames, lengths, tokens)
    torch.testing.assert_close(logits.argmax(-1), tokens)
    if weights is not None:
        torch.testing.assert_close(forced, weights)
    for row in tokens.tolist():  # <eos> repeats once written
        if EOS in row:
            assert all(token == EOS for token in row[row.index(EOS):])


def test_greedy_decoding_stops_when_every_sequence_has_ended():
    model = tiny().eval()
    with torch.no_grad():  # make <eos> the only answer
        model.output.bias.fill_(-50.0)
        model.output.bias[EOS] = 50.0
    frames, lengths, _ = batch()
    tokens, _ = model.greedy_decode(frames, lengths, max_len=6)
    assert tokens.tolist() == [[EOS]] * 4


def test_without_attention_the_decoder_has_no_attention_weights():
    plain, attending = tiny(attention="none"), tiny(attention="bahdanau")
    assert plain.attention is None and attending.attention is not None
    assert sum(p.numel() for p in plain.parameters()) < sum(p.numel() for p in attending.parameters())


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="attention must be one of"):
        create_model("td-cnn", attention="dot")
    with pytest.raises(ConfigError, match="cell must be one of"):
        create_model("td-cnn", cell="transformer")
    with pytest.raises(ConfigError, match="sos_token and eos_token"):
        create_model("td-cnn", sos_token=10, eos_token=10)
    model = tiny()
    frames, lengths, targets = batch()
    with pytest.raises(ValueError, match="lengths must be in"):
        model(frames, torch.tensor([6, 2, 3, 4]), targets)
    with pytest.raises(ValueError, match="frames must be"):
        model(frames[:, 0], lengths, targets)


def test_registered_as_the_seq2seq_model():
    info = get_model_info("td-cnn")
    assert info.task == "seq2seq" and info.input_kind == "image-sequence"
    frames, lengths, targets = info.example_inputs(3)
    assert frames.shape == (3, 5, 1, 28, 28) and lengths.max() == 5 and lengths.min() >= 2
