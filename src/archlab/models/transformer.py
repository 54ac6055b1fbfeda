"""GPT: a decoder-only Transformer language model (Radford et al. 2018/2019, "Language Models are Unsupervised
Multitask Learners", the GPT-2 layout).

For tokens ``x_1 .. x_T`` (T ≤ context)::

    h_0 = E[x_t] + P[t]                              token embedding E [V, D] + learned position table P [context, D]
    a_l = h_{l-1} + Attn(LN(h_{l-1}))                pre-LayerNorm block, causal multi-head self-attention
    h_l = a_l + MLP(LN(a_l))                         MLP: D → 4D → GELU → D
    p(x_{t+1} | x_≤t) = softmax(LN(h_L) Eᵀ)          the read-out is tied to the token embedding (Press & Wolf 2017)

    Attn(x) = concat_h softmax(Q_h K_hᵀ / √d_h + M) V_h · W_o        M: 0 where query i may see key j, −∞ elsewhere

``attention`` picks the pattern of M (``archlab.nn.sparse_attention``): "dense" (j ≤ i, run through
``torch.nn.functional.scaled_dot_product_attention`` with its causal flag), "local" (i − window < j ≤ i) or
"strided" (Child et al. 2019). Dropout on the attention weights, after each residual branch and on the
embeddings; initialisation as GPT-2: N(0, 0.02), residual output projections N(0, 0.02 / √(2·layers)).

Language-model contract (``tasks/language.py``, ``generation.py``)::

    logits [B, T, V], state = model(tokens [B, T], state=None)

``state`` is a :class:`KVCache`: every layer's keys and values of the positions read so far. A call with a
state reads only the new tokens at positions n .. n+T−1 and attends over the cached keys, so generating one
token costs one position's work per layer (plus attention over ≤ context cached keys). The learned position
table has ``context`` rows; when a call would pass it, the cache is rebuilt: the last ``max(T, context // 2)``
tokens (kept in the cache) are re-read from position 0, exactly as a fresh window would be. Past the context
every new token therefore sees between context/2 and context previous tokens, always at positions the model
was trained on, and the rebuild (context/2 positions every context/2 tokens) adds one position's work per token
on average: O(1) amortised. Training never passes a state (``carries_memory`` is False: the cache is not a
memory to carry between training windows).

``attention_maps(tokens)`` returns the attention weights ``[layers, heads, T, T]`` of one sequence for the
report (computed through the same attention function with the identity as values, so any pattern is drawn
as it is computed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.registry import register_model
from archlab.nn.init import transformer_init
from archlab.nn.sparse_attention import PATTERNS, causal_attention

@dataclass
class KVCache:
    """Keys and values ``[B, H, n, d_h]`` of each layer for the ``n`` tokens ``[B, n]`` read so far."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    tokens: torch.Tensor

    @property
    def length(self) -> int:
        return self.tokens.shape[1]


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention whose queries are the last T of the (cached + new) key positions."""

    def __init__(self, dim: int, heads: int, dropout: float, attention: str, window: int, stride: int) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.pattern = {"pattern": attention, "window": window, "stride": stride}
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.resid_dropout = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, length, dim = x.shape
        q, k, v = self.qkv(x).split(dim, dim=-1)
        return tuple(t.view(batch, length, self.heads, dim // self.heads).transpose(1, 2) for t in (q, k, v))

    def forward(self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None):
        q, k, v = self._split(x)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        y = causal_attention(q, k, v, **self.pattern, dropout_p=self.dropout, training=self.training)
        y = y.transpose(1, 2).reshape(x.shape)
        return self.resid_dropout(self.proj(y)), (k, v)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Attention weights ``[B, H, T, T]``: the attention of the identity matrix as values gives A itself."""
        q, k, _ = self._split(x)
        eye = torch.eye(x.shape[1], dtype=q.dtype, device=q.device).expand(*q.shape[:2], -1, -1)
        return causal_attention(q, k, eye, **self.pattern, dropout_p=0.0, training=False)


class Block(nn.Module):
    """Pre-LN Transformer block: x + Attn(LN(x)), then + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, dropout: float, attention: str, window: int, stride: int) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads, dropout, attention, window, stride)
        self.ln_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, past=None):
        update, kv = self.attn(self.ln_attn(x), past)
        x = x + update
        return x + self.mlp(self.ln_mlp(x)), kv


class GPT(nn.Module):
    """Token + learned position embeddings → pre-LN blocks → final LN → logits tied to the token embedding."""

    carries_memory = False

    def __init__(self, vocab_size: int = 65, context: int = 128, layers: int = 4, heads: int = 4, dim: int = 128,
                 dropout: float = 0.1, attention: str = "dense", window: int = 32, stride: int = 32) -> None:
        super().__init__()
        checks = [
            (vocab_size >= 2, f"vocab_size must be ≥ 2, got {vocab_size}"),
            (min(context, layers, heads, dim) >= 1, "context, layers, heads and dim must be ≥ 1"),
            (dim % heads == 0, f"dim must be a multiple of heads (each head gets dim / heads), got {dim} and {heads}"),
            (0 <= dropout < 1, f"dropout must be in [0, 1), got {dropout}"),
            (attention in PATTERNS, f"attention must be one of {', '.join(PATTERNS)}, got {attention!r}"),
            (window >= 1 and stride >= 1, f"window and stride must be ≥ 1, got {window} and {stride}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self.vocab_size, self.context, self.layers = vocab_size, context, layers
        self.token_embedding = nn.Embedding(vocab_size, dim)
        self.position_embedding = nn.Embedding(context, dim)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, dropout, attention, window, stride) for _ in range(layers))
        self.ln_final = nn.LayerNorm(dim)
        self.apply(transformer_init)
        for block in self.blocks:  # GPT-2: scale the residual projections by depth
            for projection in (block.attn.proj, block.mlp[2]):
                nn.init.normal_(projection.weight, std=0.02 / math.sqrt(2 * layers))

    def _embed(self, tokens: torch.Tensor, offset: int) -> torch.Tensor:
        positions = torch.arange(offset, offset + tokens.shape[1], device=tokens.device)
        return self.dropout(self.token_embedding(tokens) + self.position_embedding(positions))

    def forward(self, tokens: torch.Tensor, state: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
        """Next-token logits ``[B, T, vocab_size]`` and the key/value cache after the last token."""
        if tokens.ndim != 2:
            raise ValueError(f"tokens must be [batch, time] integer ids, got shape {tuple(tokens.shape)}")
        if tokens.shape[1] > self.context:
            raise ValueError(f"{tokens.shape[1]} tokens in one call, but the model has {self.context} positions; "
                             f"feed at most {self.context} (e.g. the last {self.context}) at a time")
        if state is not None and state.length + tokens.shape[1] > self.context:
            # Rebuild: re-read the most recent tokens from position 0 (see the module docstring).
            kept = torch.cat([state.tokens, tokens], dim=1)[:, -max(tokens.shape[1], self.context // 2):]
            logits, cache = self.forward(kept)
            return logits[:, -tokens.shape[1]:], cache
        offset = 0 if state is None else state.length
        x = self._embed(tokens, offset)
        keys, values = [], []
        for index, block in enumerate(self.blocks):
            past = None if state is None else (state.keys[index], state.values[index])
            x, (k, v) = block(x, past)
            keys.append(k)
            values.append(v)
        history = tokens if state is None else torch.cat([state.tokens, tokens], dim=1)
        return self.read_out(self.ln_final(x)), KVCache(keys, values, history)

    def read_out(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits ``hidden · Eᵀ``: the read-out *is* the token embedding (one tensor in the weights file)."""
        return F.linear(hidden, self.token_embedding.weight)

    @torch.no_grad()
    def pruning_groups(self) -> dict:
        """For structured pruning (``archlab.export.prune``): each block's MLP expansion and its attention."""
        return {"neurons": [block.mlp[0] for block in self.blocks],
                "heads": [(block.attn.qkv, block.attn.proj, block.attn.heads) for block in self.blocks]}

    def attention_maps(self, tokens: torch.Tensor) -> torch.Tensor:
        """Attention weights ``[layers, heads, T, T]`` of one sequence ``[T]`` or ``[1, T]`` (row: query, column: key)."""
        tokens = tokens.reshape(1, -1)[:, -self.context:]
        was_training = self.training
        self.eval()
        try:
            x, maps = self._embed(tokens, 0), []
            for block in self.blocks:
                maps.append(block.attn.weights(block.ln_attn(x))[0])
                x, _ = block(x)
        finally:
            self.train(was_training)
        return torch.stack(maps)


def _example(batch: int) -> tuple[torch.Tensor]:
    return (torch.randint(0, 16, (batch, 20)),)


register_model("gpt", family="transformer", task="language", tasks=("language",), input_kind="tokens",
               input_shape=(20,), example=_example,
               tiny={"vocab_size": 16, "context": 32, "layers": 2, "heads": 2, "dim": 16, "window": 4, "stride": 4},
               description="decoder-only Transformer LM (GPT-2 layout: pre-LN, learned positions, tied read-out, "
                           "KV cache)")(GPT)
