"""Recurrent language models: a vanilla RNN, LSTM or GRU that predicts the next token (one-to-many).

The model reads tokens one after another and, at every position, gives a distribution over the next one:

    e_t = E[x_t]                                 embedding of token x_t (E: [V, D])
    h_t = cell(e_t, h_{t-1})                     stacked RNN / LSTM / GRU layers (see ``models/rnn.py``)
    p(x_{t+1} | x_<=t) = softmax(W h_t + b)      W: [V, H], or W = E when the embeddings are tied

and is trained with the cross-entropy of the true next token at every position (``tasks/language.py``).
This is the character-level RNN language model of Sutskever, Martens & Hinton (2011, "Generating Text with
Recurrent Neural Networks") and Karpathy's char-rnn (2015), with dropout on the non-recurrent connections
(embedding output, between layers, before the read-out) as in Zaremba, Sutskever & Vinyals (2014,
"Recurrent Neural Network Regularization"). ``tie_weights`` shares the input embedding and the output
matrix (Press & Wolf 2017, "Using the Output Embedding to Improve Language Models"; Inan et al. 2017); it
needs ``embedding_dim == hidden``.

Contract shared by every language model of the ``language`` task (RNNs here, Transformers with a key/value
cache later)::

    logits, state = model(tokens [B, T] int64, state=None)      logits: [B, T, vocab_size]

``state`` is whatever lets the next call continue the same sequences where this one stopped: here the
recurrent state of every layer (``h`` of shape [layers, B, hidden]; ``(h, c)`` for an LSTM). Feeding a
sequence in pieces while passing the state along gives the same logits as feeding it whole, so generation
costs O(1) work per new token: the prompt is read once and never again.
"""

from __future__ import annotations

import torch
from torch import nn

from archlab.models.registry import register_model
from archlab.models.rnn import CELLS

RecurrentState = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class RecurrentLanguageModel(nn.Module):
    """Embedding → stacked RNN/LSTM/GRU → linear read-out to the vocabulary, at every position."""

    def __init__(
        self,
        vocab_size: int = 128,
        cell: str = "lstm",
        embedding_dim: int = 128,
        hidden: int = 256,
        layers: int = 2,
        dropout: float = 0.0,
        tie_weights: bool = False,
        nonlinearity: str = "tanh",
    ) -> None:
        super().__init__()
        checks = [
            (cell in CELLS, f"cell must be one of {sorted(CELLS)}, got {cell!r}"),
            (vocab_size >= 2, f"vocab_size must be ≥ 2, got {vocab_size}"),
            (min(embedding_dim, hidden, layers) >= 1,
             f"embedding_dim, hidden and layers must be ≥ 1, got {embedding_dim}, {hidden} and {layers}"),
            (0 <= dropout < 1, f"dropout must be in [0, 1), got {dropout}"),
            (not tie_weights or embedding_dim == hidden,
             f"tie_weights shares the embedding with the output layer, so embedding_dim must equal hidden; "
             f"got embedding_dim={embedding_dim}, hidden={hidden}"),
            (nonlinearity in ("tanh", "relu"), f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"),
            (nonlinearity == "tanh" or cell == "rnn", "nonlinearity applies to cell='rnn' only (LSTM/GRU gates are fixed)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self.cell, self.vocab_size = cell, vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        options = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        # One fused multi-layer module: its inter-layer dropout is exactly Zaremba et al.'s (non-recurrent only),
        # and cuDNN runs it as a single kernel on a GPU.
        self.recurrent = CELLS[cell](embedding_dim, hidden, num_layers=layers, batch_first=True,
                                     dropout=dropout if layers > 1 else 0.0, **options)
        self.dropout = nn.Dropout(dropout)
        self.decoder = nn.Linear(hidden, vocab_size)
        if tie_weights:
            self.decoder.weight = self.embedding.weight

    def forward(self, tokens: torch.Tensor, state: RecurrentState | None = None) -> tuple[torch.Tensor, RecurrentState]:
        """Next-token logits ``[B, T, vocab_size]`` for ``tokens [B, T]``, and the state after the last token."""
        if tokens.ndim != 2:
            raise ValueError(f"tokens must be [batch, time] integer ids, got shape {tuple(tokens.shape)}")
        embedded = self.dropout(self.embedding(tokens))
        outputs, state = self.recurrent(embedded, state)
        return self.decoder(self.dropout(outputs)), state


def _example(batch: int) -> tuple[torch.Tensor]:
    return (torch.randint(0, 16, (batch, 20)),)


_TINY = {"vocab_size": 16, "embedding_dim": 16, "hidden": 32, "layers": 2}
_COMMON = {"family": "rnn", "task": "language", "tasks": ("language",), "input_kind": "tokens",
           "input_shape": (20,), "tiny": _TINY, "example": _example, "grad_clip": 1.0}
register_model("rnn-lm", defaults={"cell": "rnn"}, **_COMMON,
               description="character RNN language model (tanh; one-to-many: generates text from a prompt)")(
    RecurrentLanguageModel)
register_model("lstm-lm", defaults={"cell": "lstm"}, **_COMMON,
               description="character LSTM language model (Zaremba et al. 2014 dropout; generates text)")(
    RecurrentLanguageModel)
register_model("gru-lm", defaults={"cell": "gru"}, **_COMMON,
               description="character GRU language model (generates text from a prompt)")(RecurrentLanguageModel)
