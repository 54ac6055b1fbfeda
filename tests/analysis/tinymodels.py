"""Tiny models and data for the analysis tests (importable as ``tinymodels`` from tests/analysis).

- ``bars``: class 0 = a horizontal bar, class 1 = a vertical bar, anywhere on noise (position says nothing).
- ``GapNet``: conv → conv → global average pooling → linear, the structure CAM needs (Zhou et al. 2016).
- ``fit``: a plain PyTorch training loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

MEAN, STD = 0.15, 0.2  # normalization of the test models: (pixel / 255 − MEAN) / STD


@contextmanager
def one_thread() -> Iterator[None]:
    """One PyTorch thread inside the block: the 2 cores are shared, and two threads fighting other processes
    for them make tiny models many times slower, not faster."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def bars(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 images [n, 1, 28, 28] of a 3×12 bar, horizontal (class 0) or vertical (class 1), on noise."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 2).astype(np.int64)
    images = rng.integers(0, 60, size=(n, 1, 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        top, left = rng.integers(2, 14, size=2)
        height, width = (3, 12) if label == 0 else (12, 3)
        images[i, 0, top : top + height, left : left + width] = 255
    return images, labels


class GapNet(nn.Module):
    """conv → ReLU → conv → ReLU → global average pool → linear: CAM's structure (Zhou et al. 2016)."""

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


def normalize(images: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(images).float() / 255 - MEAN) / STD


def fit(model: nn.Module, images: np.ndarray, labels: np.ndarray, steps: int, lr: float = 0.01) -> nn.Module:
    """A plain training loop: Adam, batches of 32, seeded, on one thread."""
    with one_thread():
        return _fit(model, images, labels, steps, lr)


def _fit(model: nn.Module, images: np.ndarray, labels: np.ndarray, steps: int, lr: float) -> nn.Module:
    torch.manual_seed(0)
    x, y = normalize(images), torch.from_numpy(labels).long()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    for step in range(steps):
        batch = order[(step * 32) % len(x):][:32]
        loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.zero_grad(set_to_none=True)
    return model.eval()
