"""Causal self-attention with a choice of pattern: dense, local (sliding window) or strided (sparse).

For queries ``q [B, H, Tq, d]``, keys ``k [B, H, Tk, d]`` and values ``v [B, H, Tk, e]``, the queries being the
*last* ``Tq`` of the ``Tk`` positions (``Tq == Tk`` when a whole window is read, ``Tq == 1`` for one step of a key/value
cache), query ``i`` sits at position ``p_i = Tk - Tq + i`` and computes::

    out_i = Σ_{j ∈ A(p_i)} softmax_j(q_i · k_j / √d) v_j

where the allowed set ``A(p)`` of the pattern is (every pattern is causal, ``j ≤ p``):

- ``dense``   A(p) = {j : j ≤ p}                                  (Vaswani et al. 2017; the GPT decoder)
- ``local``   A(p) = {j : 0 ≤ p - j < window}                     the sliding window / local band of
              Beltagy, Peters & Cohan 2020 ("Longformer") and Child et al. 2019; ``window`` positions, the
              query's own included.
- ``strided`` A(p) = {j ≤ p : p - j < stride  or  (p - j) mod stride == 0}
              Child, Gray, Radford & Sutskever 2019 ("Generating Long Sequences with Sparse Transformers"),
              the strided pattern with its two factorised heads A(1) (the previous ``stride`` positions) and
              A(2) (every ``stride``-th position back) *merged* into one head that attends to their union
              (the paper's "merged" integration, sec. 4.3, applied in every head). ``window`` is not used:
              the band length is the stride ``l`` of the paper. With ``stride ≈ √T`` each query sees about
              ``2√T`` keys.

Cost (forward, one head; T = Tq = Tk):

- dense:   ``F.scaled_dot_product_attention`` with ``is_causal`` (fused kernels where the device has them; on a
  CPU its math path holds the T × T scores).
- local:   queries are cut into blocks of ``window``; block b attends to key blocks b-1 and b under a band mask,
  so the scores are ``T × 2·window``: O(T · window) memory and time, never a T × T matrix.
- strided: the same band blocks with block = ``stride``, plus, laid out as a (T/stride) × stride grid, every
  column attending to the earlier rows of the same column: ``T × (2·stride + T/stride)`` scores, one softmax
  over both parts. O(T · (stride + T/stride)) = O(T^1.5) at ``stride = √T``.
- ``Tq != Tk`` (a cached step or a chunk after a cache): an explicit ``Tq × Tk'`` boolean mask of the pattern
  (``Tk'`` = the last ``Tq + window - 1`` keys for local, all keys otherwise) — O(Tk) for the one-token step.
- When the pattern allows every causal pair (``window ≥ Tk``, ``stride ≥ Tk`` or ``stride == 1``) the dense
  path runs: it is the same attention.

Patterns are a registry (:data:`PATTERNS`); :func:`pattern_mask` gives the boolean ``[Tq, Tk]`` mask of any of
them (the reference the block computations are tested against, and what an attention-map figure shows).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Allowed = Callable[[torch.Tensor, int, int], torch.Tensor]
Attend = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int, int, float], torch.Tensor]


@dataclass(frozen=True)
class AttentionPattern:
    """One attention pattern: which key distances it allows, and how to compute it efficiently."""

    name: str
    description: str
    allowed: Allowed  # (distance p - j ≥ 0 [.., Tq, Tk] int64, window, stride) → bool, before causality
    attend: Attend  # (q, k, v, window, stride, dropout_p) with Tq == Tk → output [B, H, T, d]
    needs: str | None = None  # the argument that must be ≥ 1 ("window" / "stride"), None: nothing


PATTERNS: dict[str, AttentionPattern] = {}


def register_pattern(pattern: AttentionPattern) -> AttentionPattern:
    if pattern.name in PATTERNS:
        raise ValueError(f"attention pattern {pattern.name!r} registered twice")
    PATTERNS[pattern.name] = pattern
    return pattern


def check_pattern(pattern: str, window: int = 0, stride: int = 0) -> AttentionPattern:
    """The registered pattern ``pattern``; a ValueError saying what to pass when it or its settings are wrong."""
    if pattern not in PATTERNS:
        raise ValueError(f"attention pattern must be one of {', '.join(PATTERNS)}, got {pattern!r}")
    spec = PATTERNS[pattern]
    value = {"window": window, "stride": stride}.get(spec.needs or "", 1)
    if value < 1:
        raise ValueError(f"the {pattern!r} attention pattern needs {spec.needs} ≥ 1 (e.g. {spec.needs}=64), "
                         f"got {spec.needs}={value}")
    return spec


def pattern_mask(pattern: str, query_length: int, key_length: int, *, window: int = 0, stride: int = 0,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean ``[Tq, Tk]``: True where query ``i`` (position ``Tk - Tq + i``) may attend to key ``j``."""
    spec = check_pattern(pattern, window, stride)
    if query_length > key_length:
        raise ValueError(f"the queries must be the last Tq of the Tk key positions, got Tq={query_length} > "
                         f"Tk={key_length}")
    positions = torch.arange(key_length - query_length, key_length, device=device)
    distance = positions[:, None] - torch.arange(key_length, device=device)[None, :]
    return (distance >= 0) & spec.allowed(distance.clamp(min=0), window, stride)


def covers_all(pattern: str, length: int, window: int, stride: int) -> bool:
    """Whether the pattern allows every causal pair of a ``length``-long sequence (then it is dense)."""
    return (pattern == "dense" or (pattern == "local" and window >= length)
            or (pattern == "strided" and (stride >= length or stride == 1)))


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, pattern: str = "dense",
                     window: int = 0, stride: int = 0, dropout_p: float = 0.0, training: bool = False) -> torch.Tensor:
    """Causal attention of ``q [B, H, Tq, d]`` over ``k, v [B, H, Tk, d]`` with the pattern ``pattern``.

    The queries are the last ``Tq`` of the ``Tk`` positions. ``dropout_p`` drops attention weights in training
    only. ``v`` may have its own width ``e`` (values = the identity gives the attention weights themselves).
    Returns ``[B, H, Tq, e]``.
    """
    spec = check_pattern(pattern, window, stride)
    if q.ndim != 4 or k.shape[:-1] != v.shape[:-1] or q.shape[:2] != k.shape[:2] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"causal_attention needs q [B, H, Tq, d], k [B, H, Tk, d] and v [B, H, Tk, e]; got q "
                         f"{tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    query_length, key_length = q.shape[2], k.shape[2]
    if query_length > key_length:
        raise ValueError(f"the queries must be the last Tq of the Tk key positions, got Tq={query_length} > "
                         f"Tk={key_length}")
    dropout_p = dropout_p if training else 0.0
    if covers_all(pattern, key_length, window, stride):
        return _dense(q, k, v, dropout_p)
    if query_length == key_length:
        return spec.attend(q, k, v, window, stride, dropout_p)
    if pattern == "local":  # keys older than the first query's window are never seen: drop them first
        first = max(0, key_length - query_length - window + 1)
        k, v, key_length = k[:, :, first:], v[:, :, first:], key_length - first
    mask = pattern_mask(pattern, query_length, key_length, window=window, stride=stride, device=q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)


# --- dense ------------------------------------------------------------------------------------------------


def _dense(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float) -> torch.Tensor:
    query_length, key_length = q.shape[2], k.shape[2]
    if query_length == key_length:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
    if query_length == 1:  # the newest position sees every key
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    mask = pattern_mask("dense", query_length, key_length, device=q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)


def _dense_attend(q, k, v, window, stride, dropout_p):
    return _dense(q, k, v, dropout_p)


register_pattern(AttentionPattern("dense", "every earlier position (and itself)",
                                  lambda distance, window, stride: torch.ones_like(distance, dtype=torch.bool),
                                  _dense_attend))


# --- local: blocks of `window` queries against their block and the previous one ---------------------------


def _blocks(x: torch.Tensor, size: int) -> torch.Tensor:
    """``[B, H, T, d]`` → ``[B, H, n, size, d]``, zero-padded at the end to ``n · size`` positions."""
    length = x.shape[2]
    padded = F.pad(x, (0, 0, 0, -length % size))
    return padded.unflatten(2, (padded.shape[2] // size, size))


def _with_previous(blocks: torch.Tensor) -> torch.Tensor:
    """Each block preceded by the one before it (zeros before the first): ``[B, H, n, 2·size, d]``."""
    previous = F.pad(blocks, (0, 0, 0, 0, 1, 0))[:, :, :-1]
    return torch.cat([previous, blocks], dim=3)


def _band_mask(blocks: int, size: int, device: torch.device) -> torch.Tensor:
    """``[n, size, 2·size]``: query ``a`` of block b (position b·size + a) sees key ``c`` of blocks (b-1, b)
    (position (b-1)·size + c) when 0 ≤ distance = size + a - c < size, and the key is not before the text."""
    a = torch.arange(size, device=device)[:, None]
    c = torch.arange(2 * size, device=device)[None, :]
    distance = size + a - c
    band = (distance >= 0) & (distance < size)
    starts = torch.arange(blocks, device=device)[:, None, None] * size
    return band & (starts - size + c >= 0)


def _local(q, k, v, window, stride, dropout_p):
    length = q.shape[2]
    query_blocks = _blocks(q, window)
    blocks = query_blocks.shape[2]
    keys, values = _with_previous(_blocks(k, window)), _with_previous(_blocks(v, window))
    out = F.scaled_dot_product_attention(query_blocks, keys, values, dropout_p=dropout_p,
                                         attn_mask=_band_mask(blocks, window, q.device))
    return out.flatten(2, 3)[:, :, :length]


register_pattern(AttentionPattern("local", "the previous `window` positions, itself included",
                                  lambda distance, window, stride: distance < window, _local, needs="window"))


# --- strided: band blocks of `stride` + the earlier rows of the same column --------------------------------


def _strided(q, k, v, window, stride, dropout_p):
    length, scale = q.shape[2], 1.0 / math.sqrt(q.shape[-1])
    query_rows = _blocks(q, stride)  # [B, H, n, s, d]: position r·s + c is row r, column c
    rows = query_rows.shape[2]
    key_rows, value_rows = _blocks(k, stride), _blocks(v, stride)
    # Band: the previous `stride` positions (rows r-1 and r under the band mask).
    band_scores = (query_rows @ _with_previous(key_rows).transpose(-1, -2)) * scale  # [B, H, n, s, 2s]
    band_scores = band_scores.masked_fill(~_band_mask(rows, stride, q.device), float("-inf"))
    # Strides: position r·s + c sees (r'·s + c) for every earlier row r' < r (distance a multiple of s, ≥ s).
    by_column = (query_rows.transpose(2, 3) @ key_rows.permute(0, 1, 3, 4, 2)) * scale  # [B, H, s, n, n]
    earlier = torch.ones(rows, rows, dtype=torch.bool, device=q.device).tril(-1)
    column_scores = by_column.masked_fill(~earlier, float("-inf")).transpose(2, 3)  # [B, H, n, s, n]
    scores = torch.cat([band_scores, column_scores], dim=-1)
    weights = torch.softmax(scores, dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32)).to(q.dtype)
    weights = F.dropout(weights, dropout_p, training=dropout_p > 0)
    band_weights, column_weights = weights.split([2 * stride, rows], dim=-1)
    out = band_weights @ _with_previous(value_rows)  # [B, H, n, s, d]
    out = out + (column_weights.transpose(2, 3) @ value_rows.transpose(2, 3)).transpose(2, 3)
    return out.flatten(2, 3)[:, :, :length]


register_pattern(AttentionPattern(
    "strided", "the previous `stride` positions and every `stride`-th one before them (Child et al. 2019)",
    lambda distance, window, stride: (distance < stride) | (distance % stride == 0), _strided, needs="stride"))
