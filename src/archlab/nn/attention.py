"""Attention of one query over a set of keys: additive (Bahdanau) and multiplicative (Luong).

Both compute a score per key, turn the scores into weights with a softmax over the keys that exist (padded
keys get weight exactly 0), and return the weighted sum of the values (the keys themselves by default)::

    Bahdanau (additive, Bahdanau, Cho & Bengio 2015):   score_t = vᵀ tanh(W_q q + W_k k_t)
    Luong ("general", Luong, Pham & Manning 2015):      score_t = qᵀ W k_t
    α = softmax_t(score) over the unmasked t,           context = Σ_t α_t v_t

In the papers the two also differ in *which* decoder state is the query: Bahdanau attends with the previous
state s_{t-1} and feeds the context into the recurrent cell, Luong attends with the new state s_t after the
cell. ``query_is_previous_state`` records that, so a decoder can follow the paper of the module it is given.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last dimension where ``mask`` is True; masked entries get weight 0.

    The most negative finite value (not -inf) fills masked scores, so the weights stay finite even for a
    row with no valid key (it becomes uniform instead of NaN); with one valid key the masked weights
    underflow to exactly 0.
    """
    if mask is not None:
        if mask.shape != scores.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} does not match the scores {tuple(scores.shape)}")
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return scores.softmax(dim=-1)


def _attend(scores: torch.Tensor, values: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    weights = masked_softmax(scores, mask)
    return torch.einsum("bt,btf->bf", weights, values), weights


class BahdanauAttention(nn.Module):
    """Additive attention: ``score_t = vᵀ tanh(W_q q + W_k k_t)`` (Bahdanau et al. 2015, "align" model a).

    ``forward(query [B, Q], keys [B, T, K], mask [B, T] bool, values [B, T, V] = keys)`` →
    ``(context [B, V], weights [B, T])``.
    """

    query_is_previous_state: ClassVar[bool] = True

    def __init__(self, query_size: int, key_size: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or key_size
        self.query_projection = nn.Linear(query_size, hidden, bias=False)
        self.key_projection = nn.Linear(key_size, hidden)
        self.score = nn.Linear(hidden, 1, bias=False)

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        energy = torch.tanh(self.query_projection(query).unsqueeze(1) + self.key_projection(keys))
        return self.score(energy).squeeze(-1)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = None,
                values: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return _attend(self.scores(query, keys), keys if values is None else values, mask)


class LuongAttention(nn.Module):
    """Multiplicative ("general") attention: ``score_t = qᵀ W k_t`` (Luong et al. 2015, eq. 8).

    ``forward(query [B, Q], keys [B, T, K], mask [B, T] bool, values [B, T, V] = keys)`` →
    ``(context [B, V], weights [B, T])``. ``hidden`` is accepted for a common signature and unused: the
    bilinear form maps keys straight into the query's space.
    """

    query_is_previous_state: ClassVar[bool] = False

    def __init__(self, query_size: int, key_size: int, hidden: int | None = None) -> None:
        super().__init__()
        del hidden
        self.key_projection = nn.Linear(key_size, query_size, bias=False)

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bq,btq->bt", query, self.key_projection(keys))

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = None,
                values: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return _attend(self.scores(query, keys), keys if values is None else values, mask)


ATTENTIONS: dict[str, type[nn.Module]] = {"bahdanau": BahdanauAttention, "luong": LuongAttention}
