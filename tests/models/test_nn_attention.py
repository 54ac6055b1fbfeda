"""Additive and multiplicative attention: the papers' scores, a distribution over the real keys only."""

from __future__ import annotations

import pytest
import torch

from archlab.nn import ATTENTIONS, BahdanauAttention, LuongAttention, masked_softmax

KINDS = sorted(ATTENTIONS)


def inputs(batch: int = 3, steps: int = 5, query_size: int = 6, key_size: int = 4):
    torch.manual_seed(0)
    lengths = torch.tensor([5, 2, 1])[:batch]
    mask = torch.arange(steps)[None, :] < lengths[:, None]
    return torch.randn(batch, query_size), torch.randn(batch, steps, key_size), mask


@pytest.mark.parametrize("kind", KINDS)
def test_weights_are_a_distribution_over_the_unmasked_keys(kind):
    query, keys, mask = inputs()
    attention = ATTENTIONS[kind](6, 4, 8)
    context, weights = attention(query, keys, mask)
    assert context.shape == (3, 4) and weights.shape == (3, 5)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3))
    assert (weights[~mask] == 0).all()
    assert (weights[mask] > 0).all()
    torch.testing.assert_close(weights[2], torch.tensor([1.0, 0, 0, 0, 0]))  # one key: all the weight


@pytest.mark.parametrize("kind", KINDS)
def test_padded_keys_do_not_change_the_context(kind):
    query, keys, mask = inputs()
    attention = ATTENTIONS[kind](6, 4)
    changed = keys.clone()
    changed[~mask] = 1e3 * torch.randn(int((~mask).sum()), 4)
    for original, other in zip(attention(query, keys, mask), attention(query, changed, mask)):
        torch.testing.assert_close(original, other)
    # ...while a real key does change it
    changed = keys.clone()
    changed[0, 0] += 3.0
    assert not torch.allclose(attention(query, keys, mask)[0][0], attention(query, changed, mask)[0][0])


def test_bahdanau_score_is_additive():
    query, keys, mask = inputs()
    attention = BahdanauAttention(6, 4, 8)
    projected_query = query @ attention.query_projection.weight.T  # W_q q, [B, hidden]
    projected_keys = keys @ attention.key_projection.weight.T + attention.key_projection.bias  # W_k k, [B, T, hidden]
    expected = torch.tanh(projected_query[:, None, :] + projected_keys) @ attention.score.weight[0]  # vᵀ tanh(...)
    torch.testing.assert_close(attention.scores(query, keys), expected)
    context, weights = attention(query, keys, mask)
    torch.testing.assert_close(weights, masked_softmax(expected, mask))
    torch.testing.assert_close(context, (weights[:, :, None] * keys).sum(dim=1))


def test_luong_score_is_bilinear():
    query, keys, mask = inputs()
    attention = LuongAttention(6, 4)
    matrix = attention.key_projection.weight  # [query_size, key_size]: score = qᵀ W k
    expected = torch.stack([torch.stack([query[b] @ matrix @ keys[b, t] for t in range(5)]) for b in range(3)])
    torch.testing.assert_close(attention.scores(query, keys), expected)


def test_values_can_differ_from_the_keys():
    query, keys, mask = inputs()
    values = torch.randn(3, 5, 7)
    context, weights = BahdanauAttention(6, 4)(query, keys, mask, values)
    assert context.shape == (3, 7)
    torch.testing.assert_close(context, torch.einsum("bt,btf->bf", weights, values))


def test_papers_differ_in_which_state_queries():
    assert BahdanauAttention.query_is_previous_state and not LuongAttention.query_is_previous_state


def test_masked_softmax_stays_finite_and_checks_shapes():
    scores = torch.randn(2, 4)
    weights = masked_softmax(scores, torch.zeros(2, 4, dtype=torch.bool))  # no valid key: uniform, not NaN
    torch.testing.assert_close(weights, torch.full((2, 4), 0.25))
    torch.testing.assert_close(masked_softmax(scores, None), scores.softmax(-1))
    with pytest.raises(ValueError, match="mask shape"):
        masked_softmax(scores, torch.ones(2, 3, dtype=torch.bool))
