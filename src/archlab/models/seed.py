"""The course material's reference listings, kept faithful (specification: shared SEEDS.md).

These are deliberately *not* improved: they are the textbook baselines that archlab's own models are
measured against. Deviations from the listing would make the comparison meaningless.
"""

from __future__ import annotations

import torch
from torch import nn

from archlab.models.registry import register_model


@register_model("seed-cnn", family="seed", tiny={},
                description="the seed listing, faithful: conv32-conv64-pool-fc128 (1.6M params)")
class SeedCNN(nn.Module):
    """The seed CNN listing: conv32 → conv64 → max-pool → dropout .25 → fc128 → dropout .5 → fc10.

    Conv2d(1→32, 3×3, pad 1) → ReLU → Conv2d(32→64, 3×3, pad 1) → ReLU → MaxPool2d(2) → Dropout(0.25)
    → flatten (64·14·14 = 12,544) → Linear(12,544→128) → ReLU → Dropout(0.5) → Linear(128→10).
    1,625,866 parameters. Trained in the listing with batch 64, Adam 1e-3, inputs normalized to [-1, 1]
    (recipe ``seed-cnn``).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=1, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Dropout(0.25),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * 14 * 14, 128),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model("seed-lstm", family="seed", tiny={}, grad_clip=None,
                description="the seed listing, faithful: LSTM(28→128, 2 layers) over rows, last step → fc10")
class SeedLSTM(nn.Module):
    """The seed LSTM listing: each image is 28 time steps of 28 pixels (its rows).

    LSTM(input 28, hidden 128, 2 layers, batch_first) → output of the last time step → Linear(128→10).
    214,282 parameters. Trained in the listing with batch 64, Adam 1e-3, 10 epochs, inputs as tensors
    in [0, 1] with no normalization (recipe ``seed-lstm``); the listing clips no gradients.
    """

    def __init__(self, num_classes: int = 10, input_size: int = 28) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, 128, 2, batch_first=True)
        self.fc = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x.reshape(x.shape[0], -1, x.shape[-1]))  # [B, 1, 28, 28] → [B, 28 rows, 28]
        return self.fc(out[:, -1, :])
