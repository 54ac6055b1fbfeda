"""Sinusoidal positional encoding (Vaswani et al. 2017, "Attention Is All You Need", section 3.5).

A fixed table added to the token embeddings so that attention, which is blind to order, can tell positions
apart::

    PE[pos, 2i]     = sin(pos / 10000^(2i / d))
    PE[pos, 2i + 1] = cos(pos / 10000^(2i / d))          i = 0 .. d/2 - 1

Each pair of dimensions is a sinusoid of its own wavelength (2π up to 10000·2π), so PE[pos + k] is a linear
function of PE[pos] for any fixed offset k. The table is a buffer (no parameters), saved with the weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """The ``[length, dim]`` table PE above (``dim`` even)."""
    if dim % 2 or dim < 2:
        raise ValueError(f"the sinusoidal encoding pairs sines and cosines, so dim must be even and ≥ 2, got {dim}")
    position = torch.arange(length, dtype=torch.float64)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table.float()


class SinusoidalPositionalEncoding(nn.Module):
    """``x + PE[offset : offset + T]`` then dropout, for ``x`` of shape ``[B, T, dim]`` (or ``[T, B, dim]`` with
    ``batch_first=False``, the layout of the original Transformer listings)."""

    def __init__(self, dim: int, dropout: float = 0.1, max_len: int = 5000, batch_first: bool = True) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.batch_first = batch_first
        self.register_buffer("table", sinusoidal_table(max_len, dim), persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        length = x.shape[1] if self.batch_first else x.shape[0]
        if offset + length > self.table.shape[0]:
            raise ValueError(f"positions up to {offset + length} asked of a table of {self.table.shape[0]}; "
                             f"build the encoding with a larger max_len")
        pe = self.table[offset : offset + length].to(x.dtype)
        return self.dropout(x + (pe[None] if self.batch_first else pe[:, None]))
