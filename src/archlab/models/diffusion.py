"""The ``ddpm`` denoising network: a small U-Net that predicts the noise (or v) of x_t at timestep t.

Ho et al. 2020, "Denoising Diffusion Probabilistic Models" (appendix B), sized for 28×28 images::

    prediction = UNet(x_t, emb(t) [+ class_emb(y)])

stem 3×3 conv → per resolution (28, 14, 7 with ``channel_mults`` (1, 2, 4): widths 16, 32, 64) ``blocks_per_level`` residual
blocks (group norm, SiLU, time conditioning; self-attention at the resolutions in ``attention_resolutions``,
7×7 by default), a stride-2 conv between resolutions → middle: residual block, self-attention, residual block →
the mirror path, each block fed the matching down-path features by concatenation, nearest ×2 upsampling →
group norm, SiLU, 3×3 conv to the image's channels.

Class-conditional when ``num_classes > 0`` (Ho & Salimans 2021, classifier-free guidance): a learned class
embedding is added to the time embedding; index ``num_classes`` is the *null* class (no label), which the task
feeds for a fraction of training images so the same network also models p(x) and can be guided. The network
knows nothing of schedules or samplers: it maps (x_t, t, label) to a prediction (``archlab.diffusion``).
"""

from __future__ import annotations

import torch
from torch import nn

from archlab.models.registry import register_model
from archlab.nn.unet import Downsample, SelfAttention2d, TimeEmbedding, TimeResBlock, Upsample, group_norm


def _example(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(batch, 1, 28, 28), torch.randint(0, 1000, (batch,))


class _Level(nn.Module):
    """Residual blocks at one resolution, each optionally followed by self-attention."""

    def __init__(self, widths: list[tuple[int, int]], embed_dim: int, attention: bool, heads: int, groups: int,
                 dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(TimeResBlock(a, b, embed_dim, groups, dropout) for a, b in widths)
        self.attention = nn.ModuleList(SelfAttention2d(b, heads, groups) if attention else nn.Identity()
                                       for _, b in widths)


@register_model("ddpm", family="diffusion", task="diffusion", tasks=("diffusion",), example=_example,
                tiny={"base_channels": 8, "channel_mults": (1, 2), "heads": 2, "groups": 4},
                description="DDPM U-Net (time embedding, residual blocks with group norm, self-attention at 7×7), "
                            "optionally class-conditional for classifier-free guidance")
class DDPMUNet(nn.Module):
    """The U-Net above; ``forward(x_t [B, C, H, W], t [B], labels [B] | None) → [B, C, H, W]``."""

    def __init__(self, in_channels: int = 1, base_channels: int = 16, channel_mults: tuple[int, ...] = (1, 2, 4),
                 blocks_per_level: int = 1, attention_resolutions: tuple[int, ...] = (7,), image_size: int = 28,
                 heads: int = 4, groups: int = 8, dropout: float = 0.0, num_classes: int = 0) -> None:
        super().__init__()
        if num_classes < 0 or blocks_per_level < 1 or not channel_mults:
            raise ValueError("num_classes must be ≥ 0, blocks_per_level ≥ 1 and channel_mults non-empty")
        self.num_classes, self.null_class = int(num_classes), int(num_classes)
        embed_dim = 4 * base_channels
        self.time_embed = TimeEmbedding(base_channels, embed_dim)
        self.class_embed = nn.Embedding(num_classes + 1, embed_dim) if num_classes else None
        self.stem = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        resolutions = [image_size]
        for _ in channel_mults[1:]:
            resolutions.append((resolutions[-1] + 1) // 2)
        widths = [base_channels * m for m in channel_mults]
        common = {"embed_dim": embed_dim, "heads": heads, "groups": groups, "dropout": dropout}

        self.down, self.downsample, skips, width = nn.ModuleList(), nn.ModuleList(), [], base_channels
        for level, (out, size) in enumerate(zip(widths, resolutions)):
            pairs = [(width if b == 0 else out, out) for b in range(blocks_per_level)]
            self.down.append(_Level(pairs, attention=size in attention_resolutions, **common))
            skips += [out] * blocks_per_level
            width = out
            self.downsample.append(Downsample(out) if level + 1 < len(widths) else nn.Identity())
        self.middle = _Level([(width, width), (width, width)], attention=False, **common)
        self.middle_attention = SelfAttention2d(width, heads, groups)

        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(len(widths))):
            out, pairs = widths[level], []
            for _ in range(blocks_per_level):
                pairs.append((width + skips.pop(), out))
                width = out
            self.up.append(_Level(pairs, attention=resolutions[level] in attention_resolutions, **common))
            self.upsample.append(Upsample(out) if level > 0 else nn.Identity())
        self.head = nn.Sequential(group_norm(width, groups), nn.SiLU(),
                                  nn.Conv2d(width, in_channels, 3, padding=1))

    def embedding(self, t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        emb = self.time_embed(t)
        if self.class_embed is None:
            if labels is not None:
                raise ValueError("this ddpm is unconditional (num_classes=0): it takes no labels")
            return emb
        if labels is None:
            labels = torch.full((t.shape[0],), self.null_class, dtype=torch.long, device=t.device)
        return emb + self.class_embed(labels)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embedding(t, labels)
        h, skips = self.stem(x_t), []
        for level, downsample in zip(self.down, self.downsample):
            for block, attention in zip(level.blocks, level.attention):
                h = attention(block(h, emb))
                skips.append(h)
            h = downsample(h)
        h = self.middle.blocks[0](h, emb)
        h = self.middle.blocks[1](self.middle_attention(h), emb)
        for level, upsample in zip(self.up, self.upsample):
            for block, attention in zip(level.blocks, level.attention):
                h = attention(block(torch.cat([h, skips.pop()], dim=1), emb))
            if not isinstance(upsample, nn.Identity):
                h = upsample(h, skips[-1].shape[-2:])
        return self.head(h)
