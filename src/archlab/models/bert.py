"""BERT: a bidirectional Transformer encoder pre-trained by masked-language modelling, then fine-tuned.

Devlin, Chang, Lee & Toutanova 2019, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding". A text of word ids ``w_1 .. w_T`` (``<pad>`` = 0 after its length) is read as::

    x_0 = [CLS],  x_t = w_t                                   ([CLS] prepended inside ``forward``)
    h⁰_t = Dropout(LN(E[x_t] + P[t]))                         token + learned position embeddings (no segments)
    h^l  = h^{l-1} + Dropout(MHA(LN(h^{l-1}); mask))          pre-LN blocks (Xiong et al. 2020), l = 1..L
    h^l  = h^l + Dropout(W₂ GELU(W₁ LN(h^l)))
    h    = LN(h^L)
    MHA: softmax(Q Kᵀ / √d_head + M) V,  M = −∞ on padded keys, 0 elsewhere (bidirectional: no causal mask)

Two heads read ``h``:

- masked-LM (pre-training, task ``mlm``): ``p(w_t | corrupted text) = softmax(E[:V] · LN(GELU(W h_t)) + b)``,
  the decoder tied to the token embedding (the same matrix, used transposed: ``E[:V]``, the real words);
- classification (fine-tuning, task ``classify``): ``logits = W_c Dropout(tanh(W_p h_0) )`` on the [CLS]
  position: BERT's pooler (dense + tanh) and a linear layer, both created only when ``num_classes > 0``.

Both heads share the encoder's parameter names, so ``archlab train bert --task classify --init-from
PRETRAIN_RUN`` copies the embeddings, the blocks and the MLM head of a pre-training run; the classifier (absent
from a pre-training model, ``num_classes = 0``) starts fresh.

Special tokens: archlab's word tokenizer uses 0 = ``<pad>`` and 1 = ``<unk>``; the model reserves two more ids,
``[MASK] = vocab_size`` and ``[CLS] = vocab_size + 1`` (the embedding has ``vocab_size + 2`` rows). The masked-LM
task writes ``mask_token_id`` into its corrupted inputs; ``[CLS]`` is added by the model itself, never by data.

Deviations from the paper: pre-LN instead of post-LN blocks by default (``pre_norm=False`` gives the paper's
``h = LN(h + sublayer(h))``; pre-LN trains stably without a long warm-up, which short CPU runs cannot
afford); no segment embeddings and no next-sentence prediction (one text per example); the masked-LM decoder
bias covers the real words only (``[MASK]`` and ``[CLS]`` are never predicted). Initialisation as BERT's:
weights ``N(0, 0.02²)``, biases 0, LayerNorm 1/0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.registry import register_model
from archlab.nn.init import transformer_init


def padding_mask(ids: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """``[B, T]`` True at real tokens: ``t < lengths`` (or ``ids != <pad>`` when lengths are not given)."""
    if lengths is None:
        return ids != 0
    return torch.arange(ids.shape[1], device=ids.device) < lengths.to(ids.device)[:, None]


class EncoderBlock(nn.Module):
    """Bidirectional self-attention + GELU MLP, each in a residual branch (pre-LN or post-LN)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, dropout: float, pre_norm: bool) -> None:
        super().__init__()
        self.heads, self.pre_norm, self.dropout = heads, pre_norm, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))
        self.drop = nn.Dropout(dropout)

    def split_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``[B, T, D]`` → q, k, v each ``[B, heads, T, D / heads]``."""
        batch, steps, dim = x.shape
        qkv = self.qkv(x).view(batch, steps, 3, self.heads, dim // self.heads)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)

    def attention(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        q, k, v = self.split_heads(x)
        # keep [B, 1, 1, T]: every query attends to the real keys only (padding is never read).
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).flatten(2))

    def attention_weights(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``softmax(QKᵀ/√d + M)`` ``[B, heads, T, T]`` as the block computes it (for inspection)."""
        q, k, _ = self.split_heads(self.norm1(x) if self.pre_norm else x)
        scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
        return scores.masked_fill(~keep, float("-inf")).softmax(-1)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.drop(self.attention(self.norm1(x), keep))
            return x + self.drop(self.mlp(self.norm2(x)))
        x = self.norm1(x + self.drop(self.attention(x, keep)))
        return self.norm2(x + self.drop(self.mlp(x)))


def _example(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Word ids of the tiny variant (vocabulary 64), ragged lengths, padding after each text's end."""
    lengths = torch.arange(batch) % 6 + 5
    ids = torch.randint(2, 64, (batch, 10)) * (torch.arange(10) < lengths[:, None])
    return ids, lengths


@register_model("bert", family="transformer", input_kind="tokens", input_shape=(10,), task="mlm",
                tasks=("mlm", "classify"), example=_example,
                tiny={"vocab_size": 64, "dim": 16, "layers": 1, "heads": 2, "max_positions": 16})
class Bert(nn.Module):
    """BERT encoder (pre-LN) with a tied masked-LM head and a [CLS] classifier: pre-train (mlm), fine-tune (classify)."""

    def __init__(self, vocab_size: int = 20000, num_classes: int = 0, dim: int = 128, layers: int = 2,
                 heads: int = 4, mlp_ratio: int = 4, dropout: float = 0.1, max_positions: int = 512,
                 pre_norm: bool = True) -> None:
        super().__init__()
        checks = [(vocab_size >= 3, f"vocab_size must be ≥ 3, got {vocab_size}"),
                  (num_classes >= 0, f"num_classes must be ≥ 0 (0: no classifier), got {num_classes}"),
                  (layers >= 1 and heads >= 1 and mlp_ratio >= 1, "layers, heads and mlp_ratio must be ≥ 1"),
                  (dim % heads == 0, f"dim ({dim}) must be a multiple of heads ({heads})"),
                  (0.0 <= dropout < 1.0, f"dropout must be in [0, 1), got {dropout}"),
                  (max_positions >= 2, f"max_positions must be ≥ 2 ([CLS] and one word), got {max_positions}")]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self.vocab_size, self.num_classes, self.max_positions = vocab_size, num_classes, max_positions
        self.mask_token_id, self.cls_token_id = vocab_size, vocab_size + 1
        self.token_embedding = nn.Embedding(vocab_size + 2, dim)
        self.position_embedding = nn.Embedding(max_positions, dim)
        self.embedding_norm = nn.LayerNorm(dim)
        self.embedding_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, mlp_ratio, dropout, pre_norm) for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim) if pre_norm else nn.Identity()
        # Masked-LM head: transform, then the decoder E[:V]ᵀ (tied: no matrix of its own) and a bias per word.
        self.mlm_transform = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.LayerNorm(dim))
        self.mlm_bias = nn.Parameter(torch.zeros(vocab_size))
        if num_classes:
            self.classifier = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Dropout(dropout),
                                            nn.Linear(dim, num_classes))
        self.apply(transformer_init)  # BERT's: N(0, 0.02²) weights, zero biases

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states ``[B, 1 + T, dim]``: position 0 is [CLS], position t the t-th word."""
        batch, steps = ids.shape
        if steps + 1 > self.max_positions:
            raise ValueError(f"a text of {steps} tokens plus [CLS] needs {steps + 1} positions; this model has "
                             f"{self.max_positions}. Shorten the texts (-t max_length={self.max_positions - 1}) or "
                             f"build the model with -m max_positions={steps + 1}.")
        x, keep = self._embed(ids, lengths)
        for block in self.blocks:
            x = block(x, keep)
        return self.final_norm(x)

    def _embed(self, ids: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        cls = torch.full((ids.shape[0], 1), self.cls_token_id, dtype=ids.dtype, device=ids.device)
        tokens = torch.cat([cls, ids], dim=1)
        positions = torch.arange(tokens.shape[1], device=ids.device)
        x = self.embedding_dropout(self.embedding_norm(self.token_embedding(tokens) + self.position_embedding(positions)))
        real = padding_mask(ids, lengths)
        keep = torch.cat([torch.ones_like(real[:, :1]), real], dim=1)[:, None, None, :]
        return x, keep

    def masked_lm(self, ids: torch.Tensor, lengths: torch.Tensor | None = None,
                  positions: torch.Tensor | None = None) -> torch.Tensor:
        """Word logits: ``[B, T, vocab_size]`` at every position, or ``[N, vocab_size]`` at the N positions
        where the bool mask ``positions [B, T]`` is True (the head then runs on those N states only)."""
        hidden = self.encode(ids, lengths)[:, 1:]
        if positions is not None:
            hidden = hidden[positions]
        return F.linear(self.mlm_transform(hidden), self.token_embedding.weight[: self.vocab_size], self.mlm_bias)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits ``[B, num_classes]`` from the [CLS] state; a model without a classifier
        (``num_classes = 0``, pre-training) returns the masked-LM logits ``[B, T, vocab_size]``."""
        if not self.num_classes:
            return self.masked_lm(ids, lengths)
        return self.classifier(self.encode(ids, lengths)[:, 0])

    @torch.no_grad()
    def attention_maps(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Attention weights ``[layers, heads, 1 + T, 1 + T]`` of the first text of the batch ([CLS] first)."""
        x, keep = self._embed(ids[:1], None if lengths is None else lengths[:1])
        maps = []
        for block in self.blocks:
            maps.append(block.attention_weights(x, keep)[0])
            x = block(x, keep)
        return torch.stack(maps)


