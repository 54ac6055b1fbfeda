"""Transformer-XL: a decoder with segment-level recurrence and relative positional encoding.

Dai, Yang, Yang, Carbonell, Le & Salakhutdinov 2019, "Transformer-XL: Attentive Language Models Beyond a
Fixed-Length Context". A text is read as consecutive segments; every layer ``n`` of segment ``τ + 1`` attends
over the hidden states of the previous segment, kept as a memory, and its own::

    h~^{n-1}  = [ SG(m^{n-1}_τ) ∘ h^{n-1}_{τ+1} ]        memory (M positions, no gradient) then the segment (T)
    q, k, v   = LN(h^{n-1}) W_q,  LN(h~^{n-1}) W_k,  LN(h~^{n-1}) W_v
    A_{i,j}   = (q_i + u)ᵀ k_j  +  (q_i + v)ᵀ W_R R_{i-j}       j ≤ i (positions counted over memory + segment)
    h^n       = h^{n-1} + Attn·W_o  then  + FF(LN(·))          (pre-LN residual blocks; see deviations below)
    m^{n-1}_{τ+1} = the last M positions of h~^{n-1}           (detached: truncated backpropagation)

``R_k`` is the sinusoidal encoding (``nn/positional.py``) of the *distance* ``k = i - j``, projected by each
layer's ``W_R``; ``u`` and ``v`` are learned per head (they replace the query at absolute positions, which
do not exist here). The four terms of the paper's eq. are the two products above: content (a), content ×
position (b), global content bias (c), global position bias (d). ``A`` is scaled by 1/√d_head.

The relative shift: the position term is computed once against all distances ``R_{Tk-1} .. R_0`` as a
``[Tq, Tk]`` matrix ``BD[i, c] = (q_i + v)ᵀ W_R R_{Tk-1-c}``; padding one zero column in front, viewing the
result as ``[Tk + 1, Tq]`` and dropping its first row moves row ``i`` left by ``Tq - 1 - i`` places, so that
entry ``[i, j]`` holds distance ``M + i - j`` (:func:`relative_shift`, the paper's appendix B trick, O(Tq·Tk)).

Contract of the ``language`` task: ``logits, state = model(tokens [B, T], state=None)`` where ``state`` is the
tuple of every layer's memory ``[B, M', dim]`` (M' ≤ ``mem_len``), already detached. Passing it back makes the
next segment continue the same text; generation feeds one token at a time with the state, so each new token
attends over ``mem_len + 1`` positions per layer: O(mem_len) work, independent of the text's length. The class
attribute ``carries_memory = True`` tells the language task to carry the state from one training batch to the
next when it streams consecutive segments (``--task-arg stream=true``).

Deviations from the paper, on purpose: pre-LayerNorm blocks with a final LayerNorm (the paper is post-LN) so that
it trains like ``gpt`` with the same recipe; ``u``, ``v`` and ``W_R`` per layer (the paper's code ``untie_r``);
input and output embeddings tied, the embedding scaled by √dim as in the paper's code; GELU in the feed-forward
(the paper: ReLU); no adaptive softmax (character vocabularies are small).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.registry import register_model
from archlab.nn.init import transformer_init
from archlab.nn.positional import sinusoidal_table

Memory = tuple[torch.Tensor, ...]


def relative_shift(scores: torch.Tensor) -> torch.Tensor:
    """``scores [.., Tq, Tk]`` against distances ``Tk-1 .. 0`` (column c: distance Tk-1-c) → ``[.., Tq, Tk]``
    whose entry ``[i, j]`` is the score of distance ``(Tk - Tq) + i - j`` (entries with j > Tk - Tq + i are
    junk: mask them)."""
    *batch, query_length, key_length = scores.shape
    padded = F.pad(scores, (1, 0))  # [.., Tq, Tk + 1]
    shifted = padded.reshape(*batch, key_length + 1, query_length)[..., 1:, :]
    return shifted.reshape(*batch, query_length, key_length)


class RelativeAttention(nn.Module):
    """Multi-head attention over [memory ; segment] with the relative scores of Dai et al. (2019)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim, self.dropout = heads, dim // heads, dropout
        self.query = nn.Linear(dim, dim, bias=False)
        self.key_value = nn.Linear(dim, 2 * dim, bias=False)
        self.position = nn.Linear(dim, dim, bias=False)  # W_R
        self.content_bias = nn.Parameter(torch.zeros(heads, self.head_dim))  # u
        self.position_bias = nn.Parameter(torch.zeros(heads, self.head_dim))  # v
        self.out = nn.Linear(dim, dim)
        self.out_dropout = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, self.head_dim)).transpose(-3, -2)  # [.., H, L, d]

    def scores(self, x: torch.Tensor, context: torch.Tensor,
               distances: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked, scaled scores ``[B, H, Tq, Tk]`` and values ``[B, H, Tk, d]`` for queries ``x`` over ``context``."""
        query_length, key_length = x.shape[1], context.shape[1]
        q = self._heads(self.query(x))  # [B, H, Tq, d]
        k, v = (self._heads(part) for part in self.key_value(context).chunk(2, dim=-1))
        r = self._heads(self.position(distances.to(x.dtype)))  # [H, Tk, d]: R_{Tk-1} .. R_0, projected
        content = (q + self.content_bias[:, None]) @ k.transpose(-1, -2)
        position = relative_shift((q + self.position_bias[:, None]) @ r.transpose(-1, -2))
        memory = key_length - query_length
        causal = torch.ones(query_length, key_length, dtype=torch.bool, device=x.device).tril(memory)
        scores = (content + position) / math.sqrt(self.head_dim)
        return scores.masked_fill(~causal, float("-inf")), v

    def forward(self, x: torch.Tensor, context: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
        scores, v = self.scores(x, context, distances)
        weights = F.dropout(torch.softmax(scores, dim=-1), self.dropout, self.training)
        out = (weights @ v).transpose(1, 2).flatten(2)
        return self.out_dropout(self.out(out))


class XLBlock(nn.Module):
    """Pre-LN block: h + RelAttn(LN(h) over LN([memory ; h])), then + FF(LN(·))."""

    def __init__(self, dim: int, heads: int, dropout: float, ff_mult: int) -> None:
        super().__init__()
        self.norm_attention = nn.LayerNorm(dim)
        self.attention = RelativeAttention(dim, heads, dropout)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Linear(ff_mult * dim, dim),
                                nn.Dropout(dropout))

    def forward(self, h: torch.Tensor, memory: torch.Tensor | None, distances: torch.Tensor) -> torch.Tensor:
        context = h if memory is None else torch.cat([memory.detach(), h], dim=1)  # SG(m): no gradient back
        normed = self.norm_attention(context)
        h = h + self.attention(normed[:, context.shape[1] - h.shape[1]:], normed, distances)
        return h + self.ff(self.norm_ff(h))


class TransformerXL(nn.Module):
    """Embedding · √dim → pre-LN relative-attention blocks with memory → LN → logits tied to the embedding."""

    carries_memory = True  # the language task carries ``state`` across consecutive training segments

    def __init__(self, vocab_size: int = 65, dim: int = 128, layers: int = 4, heads: int = 4, mem_len: int = 64,
                 dropout: float = 0.1, ff_mult: int = 4) -> None:
        super().__init__()
        checks = [
            (vocab_size >= 2, f"vocab_size must be ≥ 2, got {vocab_size}"),
            (min(dim, layers, heads, ff_mult) >= 1, "dim, layers, heads and ff_mult must be ≥ 1"),
            (dim % heads == 0, f"dim must be divisible by heads, got dim={dim}, heads={heads}"),
            (dim % 2 == 0, f"dim must be even (sines and cosines of the relative encoding pair up), got {dim}"),
            (mem_len >= 0, f"mem_len must be ≥ 0 (0: no memory), got {mem_len}"),
            (0 <= dropout < 1, f"dropout must be in [0, 1), got {dropout}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self.vocab_size, self.dim, self.mem_len = vocab_size, dim, mem_len
        self.embedding = nn.Embedding(vocab_size, dim)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(XLBlock(dim, heads, dropout, ff_mult) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.apply(transformer_init)

    def no_weight_decay(self) -> set[str]:
        """The u and v biases of every layer are biases: the optimizer does not decay them."""
        return {name for name, _ in self.named_parameters() if name.endswith(("content_bias", "position_bias"))}

    def distances(self, key_length: int, device: torch.device) -> torch.Tensor:
        """``R_{Tk-1} .. R_0``: the sinusoidal encodings of the distances, longest first ``[Tk, dim]``."""
        return sinusoidal_table(key_length, self.dim).flip(0).to(device)

    def hidden(self, tokens: torch.Tensor, state: Memory | None = None) -> tuple[torch.Tensor, Memory]:
        """Final hidden states ``[B, T, dim]`` and the new memories (each layer's input over the last mem_len)."""
        if tokens.ndim != 2:
            raise ValueError(f"tokens must be [batch, time] integer ids, got shape {tuple(tokens.shape)}")
        if state is not None and len(state) != len(self.blocks):
            raise ValueError(f"state must hold one memory per layer ({len(self.blocks)}), got {len(state)}")
        memories = state if state is not None else (None,) * len(self.blocks)
        remembered = 0 if memories[0] is None else memories[0].shape[1]
        distances = self.dropout(self.distances(remembered + tokens.shape[1], tokens.device))
        h = self.dropout(self.embedding(tokens) * math.sqrt(self.dim))
        new_memories = []
        for block, memory in zip(self.blocks, memories):
            new_memories.append(self._next_memory(memory, h))
            h = block(h, memory, distances)
        return self.norm(h), tuple(new_memories)

    def _next_memory(self, memory: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
        joined = h if memory is None else torch.cat([memory, h], dim=1)
        return joined[:, joined.shape[1] - min(self.mem_len, joined.shape[1]):].detach()

    @torch.no_grad()
    def attention_maps(self, tokens: torch.Tensor) -> torch.Tensor:
        """Attention weights ``[layers, heads, T, T]`` of one sequence ``[T]`` or ``[1, T]`` read without memory
        (row: query, column: key), for the report's attention figure."""
        tokens = tokens.reshape(1, -1)
        was_training = self.training
        self.eval()
        try:
            distances = self.distances(tokens.shape[1], tokens.device)
            h, maps = self.embedding(tokens) * math.sqrt(self.dim), []
            for block in self.blocks:
                normed = block.norm_attention(h)
                scores, _ = block.attention.scores(normed, normed, distances)
                maps.append(torch.softmax(scores, dim=-1)[0])
                h = block(h, None, distances)
        finally:
            self.train(was_training)
        return torch.stack(maps)

    def forward(self, tokens: torch.Tensor, state: Memory | None = None) -> tuple[torch.Tensor, Memory | None]:
        """Next-token logits ``[B, T, vocab_size]`` and the memories to pass with the next segment."""
        h, memories = self.hidden(tokens, state)
        logits = h @ self.embedding.weight.t()
        return logits, (memories if self.mem_len > 0 else None)


def _example(batch: int) -> tuple[torch.Tensor]:
    return (torch.randint(0, 16, (batch, 20)),)


register_model("transformer-xl", family="transformer", task="language", tasks=("language",), input_kind="tokens",
               input_shape=(20,), example=_example, grad_clip=1.0,
               tiny={"vocab_size": 16, "dim": 32, "layers": 2, "heads": 2, "mem_len": 8},
               description="Transformer-XL character LM: segment memory + relative positions (Dai et al. 2019)")(
    TransformerXL)
