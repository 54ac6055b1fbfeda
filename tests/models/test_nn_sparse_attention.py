"""Causal attention patterns: dense, local and strided equal a masked softmax reference, stay causal, serve a
key/value cache, and the block computations never hold a T × T matrix."""

from __future__ import annotations

import math

import pytest
import torch

from archlab.nn import PATTERNS, causal_attention, pattern_mask

CASES = [("dense", 0, 0), ("local", 1, 0), ("local", 5, 0), ("local", 8, 0), ("strided", 0, 3), ("strided", 0, 4)]


def allowed(pattern: str, position: int, key: int, window: int, stride: int) -> bool:
    """The definitions of the module docstring, one pair at a time."""
    distance = position - key
    if distance < 0:
        return False
    if pattern == "local":
        return distance < window
    if pattern == "strided":
        return distance < stride or distance % stride == 0
    return True


def loop_mask(pattern: str, query_length: int, key_length: int, window: int, stride: int) -> torch.Tensor:
    offset = key_length - query_length
    return torch.tensor([[allowed(pattern, offset + i, j, window, stride) for j in range(key_length)]
                         for i in range(query_length)])


def reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v


def qkv(query_length: int, key_length: int, seed: int = 0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(2, 3, query_length, 8, generator=generator, dtype=dtype)
    k, v = (torch.randn(2, 3, key_length, 8, generator=generator, dtype=dtype) for _ in range(2))
    return q, k, v


def test_the_registry_holds_the_three_patterns():
    assert set(PATTERNS) == {"dense", "local", "strided"}


@pytest.mark.parametrize("pattern,window,stride", CASES)
@pytest.mark.parametrize("length", [1, 4, 8, 23, 40])
def test_pattern_mask_matches_the_definition(pattern, window, stride, length):
    for query_length in {1, min(3, length), length}:
        expected = loop_mask(pattern, query_length, length, window, stride)
        assert torch.equal(pattern_mask(pattern, query_length, length, window=window, stride=stride), expected)


@pytest.mark.parametrize("pattern,window,stride", CASES)
@pytest.mark.parametrize("length", [3, 8, 23, 40])
def test_full_sequence_equals_the_masked_softmax_reference(pattern, window, stride, length):
    q, k, v = qkv(length, length)
    out = causal_attention(q, k, v, pattern=pattern, window=window, stride=stride)
    expected = reference(q, k, v, loop_mask(pattern, length, length, window, stride))
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("pattern,window,stride", CASES)
@pytest.mark.parametrize("query_length", [1, 6])
def test_queries_after_a_cache_equal_the_last_rows_of_the_full_computation(pattern, window, stride, query_length):
    q, k, v = qkv(29, 29, seed=1)
    full = causal_attention(q, k, v, pattern=pattern, window=window, stride=stride)
    last = causal_attention(q[:, :, -query_length:], k, v, pattern=pattern, window=window, stride=stride)
    torch.testing.assert_close(last, full[:, :, -query_length:], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("pattern,window,stride", CASES)
def test_changing_anything_after_t_never_changes_outputs_up_to_t(pattern, window, stride):
    length, t = 33, 14
    q, k, v = qkv(length, length, seed=2)
    before = causal_attention(q, k, v, pattern=pattern, window=window, stride=stride)
    changed = [x.clone() for x in (q, k, v)]
    for x in changed:
        x[:, :, t + 1:] = torch.randn_like(x[:, :, t + 1:]) * 5
    after = causal_attention(*changed, pattern=pattern, window=window, stride=stride)
    torch.testing.assert_close(after[:, :, : t + 1], before[:, :, : t + 1], rtol=0, atol=1e-12)
    assert not torch.allclose(after[:, :, t + 1:], before[:, :, t + 1:])


@pytest.mark.parametrize("pattern,window,stride", CASES)
def test_identity_values_give_the_attention_weights_zero_outside_the_pattern(pattern, window, stride):
    q, k, _ = qkv(19, 19, seed=3)
    eye = torch.eye(19, dtype=q.dtype).expand(2, 3, 19, 19)
    weights = causal_attention(q, k, eye, pattern=pattern, window=window, stride=stride)
    mask = loop_mask(pattern, 19, 19, window, stride)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 19, dtype=q.dtype))
    assert torch.all(weights[..., ~mask] == 0) and torch.all(weights[..., mask] > 0)


@pytest.mark.parametrize("pattern,window,stride", CASES)
def test_gradients_are_finite_and_reach_q_k_v_with_dropout(pattern, window, stride):
    q, k, v = (x.float().requires_grad_() for x in qkv(21, 21, seed=4))
    torch.manual_seed(0)
    out = causal_attention(q, k, v, pattern=pattern, window=window, stride=stride, dropout_p=0.2, training=True)
    out.pow(2).mean().backward()
    for x in (q, k, v):
        assert torch.isfinite(x.grad).all()
    assert v.grad.abs().sum() > 0
    # A window of 1 attends to itself only (out = v): the scores, hence q and k, have no gradient then.
    assert (q.grad.abs().sum() > 0) == (k.grad.abs().sum() > 0) == (pattern != "local" or window > 1)


@pytest.mark.parametrize("pattern,window,stride", CASES)
def test_dropout_acts_in_training_only(pattern, window, stride):
    q, k, v = qkv(16, 16, seed=5, dtype=torch.float32)
    plain = causal_attention(q, k, v, pattern=pattern, window=window, stride=stride)
    evaluated = causal_attention(q, k, v, pattern=pattern, window=window, stride=stride, dropout_p=0.5)
    torch.manual_seed(0)
    dropped = causal_attention(q, k, v, pattern=pattern, window=window, stride=stride, dropout_p=0.5, training=True)
    assert torch.equal(plain, evaluated) and not torch.allclose(plain, dropped)


def largest_saved(pattern: str, length: int, window: int, stride: int) -> int:
    """Elements of the largest tensor kept for the backward pass of one attention call."""
    sizes = []

    def pack(tensor):
        sizes.append(tensor.numel())
        return tensor

    q, k, v = (x.float().requires_grad_() for x in qkv(length, length, seed=6))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        causal_attention(q, k, v, pattern=pattern, window=window, stride=stride).sum().backward()
    return max(sizes)


def test_local_and_strided_never_hold_a_t_by_t_matrix():
    length, batch_heads = 1024, 2 * 3
    square = batch_heads * length * length
    local = largest_saved("local", length, 32, 0)
    strided = largest_saved("strided", length, 0, 32)
    assert local <= batch_heads * length * 2 * 32, local  # T × 2·window scores
    assert strided <= batch_heads * length * (2 * 32 + length // 32), strided  # T × (2·stride + T/stride)
    assert max(local, strided) < square / 8


def test_bad_settings_are_refused_with_what_to_pass():
    q, k, v = qkv(4, 4)
    with pytest.raises(ValueError, match="must be one of dense, local, strided"):
        causal_attention(q, k, v, pattern="sliding")
    with pytest.raises(ValueError, match="needs window ≥ 1"):
        causal_attention(q, k, v, pattern="local")
    with pytest.raises(ValueError, match="needs stride ≥ 1"):
        causal_attention(q, k, v, pattern="strided", stride=0)
    with pytest.raises(ValueError, match="last Tq of the Tk"):
        causal_attention(*qkv(5, 4)[:1], k, v)
