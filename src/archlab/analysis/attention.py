"""Attention rollout: how much each input token contributes to each token's output, through all layers.

Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers". A layer's attention matrix alone ignores
the residual connection, which carries half of the signal past the attention; rollout adds it as an identity
and multiplies the layers together:

    A_l = 0.5 · mean_heads(attention_l) + 0.5 · I,   each row renormalised to sum to 1
    R   = A_L · A_{L-1} ⋯ A_1

Row i of ``R`` is a distribution over the input tokens: how much of token i's representation after the
last layer comes from each input token. For a ViT, the class token's row over the patch tokens, reshaped to
the patch grid and upsampled to the image, shows where the classifier looked.

Pure functions on the maps (``[layers, B, heads, N, N]``, e.g. from ``ViT.attention_maps``): no model, no
hooks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from archlab.errors import ConfigError


def attention_rollout(maps: torch.Tensor, residual: float = 0.5) -> torch.Tensor:
    """``R = A_L ⋯ A_1`` with ``A_l = (1 - residual) · mean_heads(maps[l]) + residual · I``, rows renormalised.

    ``maps``: ``[layers, B, heads, N, N]`` (or ``[layers, heads, N, N]`` for one input) of row-stochastic
    attention weights. Returns ``[B, N, N]`` (or ``[N, N]``), each row summing to 1.
    """
    if not 0.0 <= residual <= 1.0:
        raise ConfigError(f"residual must be in [0, 1] (0.5 in the paper), got {residual}")
    single = maps.dim() == 4
    if single:
        maps = maps.unsqueeze(1)
    if maps.dim() != 5 or maps.shape[-1] != maps.shape[-2]:
        raise ConfigError(f"attention maps must be [layers, B, heads, N, N] (square in the last two), "
                          f"got shape {tuple(maps.shape)}")
    maps = maps.double()
    identity = torch.eye(maps.shape[-1], dtype=maps.dtype, device=maps.device)
    rollout = identity.expand(maps.shape[1], -1, -1)
    for layer in maps:
        mixed = (1 - residual) * layer.mean(dim=1) + residual * identity
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        rollout = mixed @ rollout  # the later layer on the left: R_l = A_l · R_{l-1}
    rollout = rollout.float()
    return rollout[0] if single else rollout


def class_token_map(rollout: torch.Tensor, grid: int | tuple[int, int],
                    size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """The class token's (token 0) rollout row over the patches, ``[B, gh, gw]``, upsampled (bilinear) to
    ``size`` when given. Values are the fractions of the class token's input that come from each patch (their
    sum is 1 minus the class token's share of itself)."""
    gh, gw = (grid, grid) if isinstance(grid, int) else grid
    single = rollout.dim() == 2
    if single:
        rollout = rollout.unsqueeze(0)
    if rollout.shape[-1] != gh * gw + 1:
        raise ConfigError(f"a {gh}×{gw} patch grid needs {gh * gw + 1} tokens (class token first); "
                          f"the rollout has {rollout.shape[-1]}")
    heat = rollout[:, 0, 1:].reshape(-1, gh, gw)
    if size is not None:
        size = (size, size) if isinstance(size, int) else tuple(size)
        heat = F.interpolate(heat.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)
    return heat[0] if single else heat


def class_attention_by_layer(maps: torch.Tensor, grid: int | tuple[int, int]) -> torch.Tensor:
    """Each layer's head-averaged attention of the class token over the patches, ``[layers, B, gh, gw]``
    (no residual, no product: what that layer alone reads)."""
    gh, gw = (grid, grid) if isinstance(grid, int) else grid
    if maps.dim() != 5 or maps.shape[-1] != gh * gw + 1:
        raise ConfigError(f"attention maps must be [layers, B, heads, N, N] with N = {gh * gw + 1} tokens for a "
                          f"{gh}×{gw} grid, got shape {tuple(maps.shape)}")
    return maps.mean(dim=2)[:, :, 0, 1:].reshape(maps.shape[0], maps.shape[1], gh, gw)
