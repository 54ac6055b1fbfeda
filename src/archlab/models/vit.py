"""Vision Transformer (ViT) for small images: patches as tokens, a class token, a Transformer encoder.

Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale".

The image is cut into non-overlapping ``patch × patch`` squares, each projected linearly to ``dim`` (one
Conv2d with kernel = stride = patch, which is exactly a shared linear map of each flattened patch); a learned
class token is put in front and learned positions are added:

    z_0 = [x_class; x_1 E; ...; x_N E] + E_pos              N = (input_size / patch)^2 tokens
    z'_l = z_{l-1} + MSA(LN(z_{l-1}))                        pre-LayerNorm blocks, l = 1..L
    z_l  = z'_l + MLP(LN(z'_l))                              MLP: Linear → GELU → Linear (hidden dim·mlp_ratio)
    logits = head(LN(z_L)[class token])

with multi-head self-attention MSA(x) = concat_h softmax(q_h k_hᵀ / sqrt(d_h)) v_h · W_o computed by
``torch.nn.functional.scaled_dot_product_attention`` (no mask: every token sees every token, nothing causal).
On 28×28 images, patch 4 gives 49 patches and patch 7 gives 16 (plus the class token).

Differences from the paper, all for small grey images trained from scratch: the head is one linear layer on
the class token (the paper pre-trains with an MLP head and fine-tunes with a linear one); dropout is applied
after the embedding, inside the MLP, on the attention weights and after each residual branch, at one rate.
``attention_maps(x)`` recomputes the softmax weights explicitly, since the fused kernel does not return them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.registry import register_model


class PatchEmbedding(nn.Module):
    """``[B, C, H, W]`` → ``[B, N, dim]``: each ``patch × patch`` square projected linearly, row by row."""

    def __init__(self, in_channels: int, input_size: int, patch: int, dim: int) -> None:
        super().__init__()
        if patch < 1 or input_size % patch:
            raise ValueError(f"patch must divide input_size={input_size} (e.g. 4 or 7 for 28×28 images), got {patch}")
        self.grid = input_size // patch
        self.projection = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.projection(images).flatten(2).transpose(1, 2)


class SelfAttention(nn.Module):
    """Multi-head self-attention over all tokens (no mask), fused through SDPA."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).view(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]  # each [B, heads, N, d_head]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(x)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).flatten(2))

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """The attention weights ``softmax(q kᵀ / sqrt(d_head))``, ``[B, heads, N, N]``; each row sums to 1."""
        q, k, _ = self._split(x)
        return torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, dim=-1)


class EncoderBlock(nn.Module):
    """Pre-LN Transformer block: x + MSA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = max(int(dim * mlp_ratio), 1)
        self.norm1 = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.norm1(x)))
        return x + self.dropout(self.mlp(self.norm2(x)))


@register_model(
    "vit",
    family="transformer",
    input_kind="image",
    input_shape=(1, 28, 28),
    task="classify",
    tiny={"dim": 32, "layers": 1, "heads": 2, "patch": 7, "mlp_ratio": 2.0, "dropout": 0.0},
)
class ViT(nn.Module):
    """Vision Transformer (Dosovitskiy et al. 2021): patch embedding, class token, learned positions, pre-LN encoder."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 28,
        patch: int = 4,
        dim: int = 64,
        layers: int = 6,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if layers < 1 or dim < 1:
            raise ValueError(f"layers and dim must be ≥ 1, got layers={layers}, dim={dim}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.patch_embedding = PatchEmbedding(in_channels, input_size, patch, dim)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.positions = nn.Parameter(torch.zeros(1, self.patch_embedding.num_patches + 1, dim))
        self.embedding_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, mlp_ratio, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self._initialise()

    def _initialise(self) -> None:
        # As in the reference ViT code: small truncated-normal positions and class token, Xavier-uniform
        # linear layers with zero bias, the patch projection like a linear layer on the flattened patch.
        nn.init.trunc_normal_(self.positions, std=0.02)
        nn.init.trunc_normal_(self.class_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        weight = self.patch_embedding.projection.weight
        nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))
        nn.init.zeros_(self.patch_embedding.projection.bias)

    @property
    def grid(self) -> int:
        """Patches per side: the class token's attention over the patches reshapes to ``grid × grid``."""
        return self.patch_embedding.grid

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``z_0``: ``[B, N + 1, dim]``, class token first, positions added."""
        patches = self.patch_embedding(images)
        tokens = torch.cat([self.class_token.expand(len(patches), -1, -1), patches], dim=1)
        return self.embedding_dropout(tokens + self.positions)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.embed(images)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0]))

    def no_weight_decay(self) -> set[str]:
        """The class token and the position table are not weights: the optimizer does not decay them."""
        return {"class_token", "positions"}

    @torch.no_grad()
    def attention_maps(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax attention weights of every layer and head, ``[layers, B, heads, N + 1, N + 1]`` (token 0 is
        the class token). Computed in the module's current mode; call ``eval()`` first for dropout-free maps."""
        x = self.embed(images)
        maps = []
        for block in self.blocks:
            maps.append(block.attention.weights(block.norm1(x)))
            x = block(x)
        return torch.stack(maps)
