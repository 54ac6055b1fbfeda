"""Transformer-XL: the relative shift, the segment memory (carried, detached, bounded) and causality."""

from __future__ import annotations

import pytest
import torch

from archlab.models import create_model
from archlab.models.transformer_xl import TransformerXL, relative_shift
from archlab.nn.positional import sinusoidal_table

VOCAB = 16


def model(mem_len: int = 12, seed: int = 0, dropout: float = 0.0) -> TransformerXL:
    torch.manual_seed(seed)
    return create_model("transformer-xl", vocab_size=VOCAB, dim=32, layers=2, heads=2, mem_len=mem_len,
                        dropout=dropout).eval()


def tokens(length: int, seed: int = 1, batch: int = 3) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def test_relative_shift_puts_distance_m_plus_i_minus_j_at_i_j():
    query_length, memory = 5, 7
    key_length = memory + query_length
    generator = torch.Generator().manual_seed(0)
    queries = torch.randn(2, query_length, 6, generator=generator, dtype=torch.float64)
    by_distance = torch.randn(key_length, 6, generator=generator, dtype=torch.float64)  # row k: distance k
    columns = by_distance.flip(0)  # column c of the input: distance Tk - 1 - c
    shifted = relative_shift(queries @ columns.t())
    for i in range(query_length):
        for j in range(memory + i + 1):  # the causal entries; the rest are masked by the attention
            direct = queries[:, i] @ by_distance[memory + i - j]
            torch.testing.assert_close(shifted[:, i, j], direct)


def test_relative_scores_equal_a_direct_computation_of_the_four_terms():
    xl = model()
    attention = xl.blocks[0].attention
    with torch.no_grad():
        attention.content_bias.normal_()
        attention.position_bias.normal_()
    generator = torch.Generator().manual_seed(2)
    memory, query_length = 4, 6
    context = torch.randn(2, memory + query_length, 32, generator=generator)
    x = context[:, memory:]
    distances = xl.distances(memory + query_length, x.device)
    scores, _ = attention.scores(x, context, distances)
    q = attention.query(x).unflatten(-1, (2, 16))
    k = attention.key_value(context)[..., :32].unflatten(-1, (2, 16))
    table = sinusoidal_table(memory + query_length, 32)  # R_k for distance k
    u, v = attention.content_bias, attention.position_bias
    for i in range(query_length):
        for j in range(memory + query_length):
            if j > memory + i:
                assert torch.isinf(scores[:, :, i, j]).all()
                continue
            r = attention.position(table[memory + i - j]).unflatten(-1, (2, 16))
            direct = ((q[:, i] + u) * k[:, j]).sum(-1) + ((q[:, i] + v) * r).sum(-1)
            torch.testing.assert_close(scores[:, :, i, j], direct / 4.0, rtol=1e-5, atol=1e-5)


def test_memory_carries_segment_one_into_segment_two_exactly_like_one_long_segment():
    xl, text = model(mem_len=12), tokens(20)
    with torch.no_grad():
        whole, _ = xl(text)
        first, state = xl(text[:, :12])
        second, _ = xl(text[:, 12:], state)
        alone, _ = xl(text[:, 12:])
        other_first = text.clone()
        other_first[:, :12] = (other_first[:, :12] + 1) % VOCAB
        _, other_state = xl(other_first[:, :12])
        second_after_other, _ = xl(text[:, 12:], other_state)
    torch.testing.assert_close(first, whole[:, :12], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(second, whole[:, 12:], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(second, alone, atol=1e-3)  # without the memory segment two is another prediction
    assert not torch.allclose(second, second_after_other, atol=1e-3)  # it depends on segment one's tokens


def test_one_token_at_a_time_with_memory_equals_the_full_forward():
    xl, text = model(mem_len=32), tokens(24)
    with torch.no_grad():
        whole, _ = xl(text)
        state, steps = None, []
        for t in range(text.shape[1]):
            logits, state = xl(text[:, t : t + 1], state)
            steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), whole, rtol=1e-5, atol=1e-5)


def test_memory_is_detached_and_no_gradient_reaches_the_previous_segment():
    xl, text = model(mem_len=8).train(), tokens(16)
    _, state = xl(text[:, :8])
    assert all(m.grad_fn is None and not m.requires_grad for m in state)
    leaves = tuple(m.clone().requires_grad_() for m in state)  # a memory that would take a gradient
    logits, _ = xl(text[:, 8:], leaves)
    logits.pow(2).mean().backward()
    assert all(m.grad is None for m in leaves)
    assert xl.embedding.weight.grad is not None and torch.isfinite(xl.embedding.weight.grad).all()


def test_memory_holds_each_layer_input_over_the_last_mem_len_positions():
    xl, text = model(mem_len=5), tokens(9)
    with torch.no_grad():
        _, state = xl(text[:, :3])
        assert [tuple(m.shape) for m in state] == [(3, 3, 32)] * 2  # fewer positions than mem_len so far
        _, state = xl(text[:, 3:], state)
        embedded = xl.embedding(text) * 32 ** 0.5
    assert [tuple(m.shape) for m in state] == [(3, 5, 32)] * 2
    torch.testing.assert_close(state[0], embedded[:, -5:])  # layer 0's input is the scaled embedding
    assert xl.carries_memory and model(mem_len=0)(text)[1] is None


def test_causal_within_a_segment_with_and_without_memory():
    xl, text = model(mem_len=6), tokens(18)
    t = 5
    with torch.no_grad():
        _, state = xl(text[:, :6])
        for memory in (None, state):
            segment = text[:, 6:].clone()
            before, _ = xl(segment, memory)
            segment[:, t + 1:] = (segment[:, t + 1:] + 3) % VOCAB
            after, _ = xl(segment, memory)
            torch.testing.assert_close(after[:, : t + 1], before[:, : t + 1], rtol=0, atol=1e-6)
            assert not torch.allclose(after[:, t + 1:], before[:, t + 1:])


def test_output_embedding_is_the_input_embedding_and_bad_arguments_are_refused():
    xl = model()
    hidden, _ = xl.hidden(tokens(4))
    torch.testing.assert_close(xl(tokens(4))[0], hidden @ xl.embedding.weight.t())
    for bad, message in (({"dim": 30, "heads": 4}, "divisible"), ({"mem_len": -1}, "mem_len must be ≥ 0"),
                         ({"dim": 9, "heads": 3}, "even")):
        with pytest.raises(ValueError, match=message):
            TransformerXL(**bad)


def test_attention_maps_are_causal_distributions_that_reproduce_the_first_layer():
    xl, text = model(), tokens(10, batch=1)
    maps = xl.attention_maps(text[0])
    assert maps.shape == (2, 2, 10, 10)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 2, 10))
    assert torch.all(maps.triu(1) == 0)
    block = xl.blocks[0]
    with torch.no_grad():
        normed = block.norm_attention(xl.embedding(text) * 32 ** 0.5)
        values = block.attention.key_value(normed)[..., 32:].unflatten(-1, (2, 16)).transpose(1, 2)
        mixed = (maps[0] @ values[0]).transpose(0, 1).flatten(1)  # the weights applied to the values
        expected = block.attention(normed, normed, xl.distances(10, text.device))[0]
    torch.testing.assert_close(block.attention.out(mixed), expected, rtol=1e-5, atol=1e-5)
