"""U-Net parts for denoising networks: a continuous sinusoidal time embedding, residual blocks with group norm
and time conditioning, down/up sampling and self-attention over a feature map (Ho et al. 2020, appendix B,
after the PixelCNN++ / Wide-ResNet U-Net).

Time embedding::

    emb(t) = MLP([sin(t · w_i), cos(t · w_i)]_{i < d/2}),  w_i = 10000^(-i / (d/2))     (Vaswani et al. 2017)

the same frequencies as ``positional.sinusoidal_table`` but for any real t (a batch of timesteps, not a table
of positions). Residual block::

    h = conv(SiLU(GN(x)));  h = h + Linear(SiLU(emb))[:, :, None, None];  h = conv(dropout(SiLU(GN(h))))
    out = skip(x) + h           (skip: identity, or a 1×1 conv when the width changes)

Every layer keeps PyTorch's default initialisation. (The DDPM code starts the last convolution of each block at
zero, so each block starts as the identity; then the first step gives every layer before it a zero gradient,
which archlab's gradient monitor would rightly report as vanishing; these small networks train well without
it.) Attention: multi-head scaled dot product over the H·W positions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """``[B] → [B, dim]``: sines then cosines of ``t`` at ``dim / 2`` geometric frequencies (``dim`` even)."""
    if dim % 2 or dim < 2:
        raise ValueError(f"the time embedding pairs sines and cosines, so dim must be even and ≥ 2, got {dim}")
    half = dim // 2
    frequency = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * frequency[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class TimeEmbedding(nn.Module):
    """Sinusoid of width ``dim`` → Linear → SiLU → Linear, to width ``out_dim``."""

    def __init__(self, dim: int, out_dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.dim))


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with ``groups`` groups, or the largest divisor of ``channels`` below it."""
    groups = max(g for g in range(1, min(groups, channels) + 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class TimeResBlock(nn.Module):
    """The residual block above: two 3×3 convolutions, the time (and class) embedding added in between."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int, groups: int = 8,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1, self.conv1 = group_norm(in_channels, groups), nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.embed = nn.Linear(embed_dim, out_channels)
        self.norm2, self.dropout = group_norm(out_channels, groups), nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.embed(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention2d(nn.Module):
    """``x + proj(softmax(q kᵀ / sqrt(d)) v)`` over the H·W positions of a feature map, ``heads`` heads."""

    def __init__(self, channels: int, heads: int = 4, groups: int = 8) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention over {channels} channels cannot split into {heads} heads")
        self.heads = heads
        self.norm = group_norm(channels, groups)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(batch, 3, self.heads, channels // self.heads, height * width) \
            .transpose(-1, -2).unbind(1)  # each [B, heads, HW, d]
        out = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(out.transpose(-1, -2).reshape(batch, channels, height, width))


class Downsample(nn.Module):
    """3×3 convolution with stride 2 (28 → 14 → 7)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour ×2 to ``size`` (so odd sizes such as 7 → 14 round-trip), then a 3×3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=size, mode="nearest"))
