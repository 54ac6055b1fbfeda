"""CycleGAN's networks for 28×28 images: two ResNet-style generators and two PatchGAN discriminators.

Zhu, Park, Isola and Efros 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks". G_AB maps domain A to B, G_BA maps B to A; D_A tells real A images from G_BA's, D_B real B from
G_AB's. The objective (written in ``archlab.tasks.translate``) is least-squares GAN plus cycle consistency::

    L = (D_B(G_AB(a)) - 1)² + (D_A(G_BA(b)) - 1)²
        + λ_cycle (|G_BA(G_AB(a)) - a|₁ + |G_AB(G_BA(b)) - b|₁)
        + λ_identity (|G_AB(b) - b|₁ + |G_BA(a) - a|₁)

Scaled to 28×28 (the paper's networks are for 128×128 and 256×256):

- generator: c7s1-w (7×7 conv, instance norm, ReLU) → d2w (3×3 stride-2 conv to 14×14) → ``blocks`` residual
  blocks of two 3×3 convs at 14×14 → u-w (3×3 stride-2 transposed conv back to 28×28) → c7s1-1 → tanh.
  The paper has two down-samplings and 6 or 9 blocks; one and 4 suit a 28×28 image (receptive field of the
  blocks alone already covers the whole 14×14 map).
- discriminator (PatchGAN): C-w (4×4 stride 2, no norm, LeakyReLU 0.2) → C-2w (4×4 stride 2, instance norm)
  → C-4w (3×3 stride 1) → 3×3 conv to one channel: a 7×7 map of scores, each judging an overlapping patch of
  the image (receptive field 22×22 pixels) instead of the whole image. No sigmoid: the least-squares loss takes
  the raw score.

Instance normalisation without affine parameters, as in the paper's code. Inputs and outputs are images
[N, 1, 28, 28] in [-1, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from archlab.models.registry import register_model


class ResidualBlock(nn.Module):
    """x + conv-IN-ReLU-conv-IN(x), with reflection padding (as in the paper's generator)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """28×28 image → 28×28 image in [-1, 1]: encode to 14×14, residual blocks, decode."""

    def __init__(self, channels: int = 1, width: int = 32, blocks: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(channels, width, 7), nn.InstanceNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.InstanceNorm2d(2 * width), nn.ReLU(inplace=True),
            *(ResidualBlock(2 * width) for _ in range(blocks)),
            nn.ConvTranspose2d(2 * width, width, 3, stride=2, padding=1, output_padding=1),
            nn.InstanceNorm2d(width), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(3), nn.Conv2d(width, channels, 7), nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """28×28 image → a 7×7 map of real/fake scores (raw, for the least-squares loss)."""

    def __init__(self, channels: int = 1, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.InstanceNorm2d(2 * width),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.InstanceNorm2d(4 * width), nn.LeakyReLU(0.2, inplace=True),
        )
        self.head = nn.Conv2d(4 * width, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model("cyclegan", family="gan", task="translate", tasks=("translate",),
                tiny={"width": 4, "disc_width": 4, "blocks": 1},
                example=lambda batch: (torch.rand(batch, 1, 28, 28) * 2 - 1, torch.rand(batch, 1, 28, 28) * 2 - 1))
class CycleGAN(nn.Module):
    """CycleGAN (Zhu et al. 2017): generators G_AB, G_BA (ResNet-style) and PatchGAN discriminators D_A, D_B.

    ``forward(a, b)`` translates both ways: (G_AB(a), G_BA(b)); ``discriminate(G_AB(a), b)`` gives the patch
    scores D_B(G_AB(a)) and D_A(G_BA(b)); ``translate(x, "ab"|"ba")`` one direction.
    """

    def __init__(self, channels: int = 1, width: int = 32, blocks: int = 4, disc_width: int = 32) -> None:
        super().__init__()
        if width < 1 or disc_width < 1 or blocks < 0:
            raise ValueError(f"width and disc_width must be ≥ 1 and blocks ≥ 0, got {width}, {disc_width}, {blocks}")
        self.g_ab = ResnetGenerator(channels, width, blocks)
        self.g_ba = ResnetGenerator(channels, width, blocks)
        self.d_a = PatchDiscriminator(channels, disc_width)
        self.d_b = PatchDiscriminator(channels, disc_width)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.g_ab(a), self.g_ba(b)

    def discriminate(self, images_b: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        """The generators' adversarial view of a batch: D_B's patch scores of ``images_b`` (e.g. G_AB(a)), and,
        given real B images ``b``, D_A's scores of their translation G_BA(b) as a second channel.

        [N, 1, 7, 7] or [N, 2, 7, 7]; the generators' LSGAN loss is mean (scores - 1)². (The task calls
        d_a/d_b itself, to reuse the translations it needs for the cycle loss anyway.)
        """
        scores = self.d_b(images_b)
        return scores if b is None else torch.cat([scores, self.d_a(self.g_ba(b))], dim=1)

    def translate(self, images: torch.Tensor, direction: str = "ab") -> torch.Tensor:
        """G_AB (``ab``) or G_BA (``ba``) of ``images``."""
        generators = {"ab": self.g_ab, "ba": self.g_ba}
        if direction not in generators:
            raise ValueError(f"direction must be 'ab' or 'ba', got {direction!r}")
        return generators[direction](images)
