"""The seed listing's training loop, as the course material writes it: the baseline archlab is measured against.

Per-sample transforms (uint8 → PIL image → float tensor in [0, 1] → Normalize(0.5, 0.5)) in a map-style
Dataset, a DataLoader with batch 64 and shuffling, the ``seed-cnn`` model, Adam 1e-3, fp32, and the test
accuracy measured after every epoch. No archlab machinery is used for the loop itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from archlab.data import TensorSplit
from archlab.models import create_model


class PerSampleMNIST(Dataset):
    """What ``torchvision.datasets.MNIST(transform=Compose([ToTensor(), Normalize((0.5,), (0.5,))]))`` does."""

    def __init__(self, split: TensorSplit) -> None:
        self.images = split.images[:, 0].numpy()
        self.labels = split.labels.numpy()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        image = Image.fromarray(self.images[i], mode="L")
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).unsqueeze(0)
        return (x - 0.5) / 0.5, int(self.labels[i])


def test_accuracy(model: torch.nn.Module, loader: DataLoader) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    model.train()
    return correct / total


def run_seed_loop(train: TensorSplit, test: TensorSplit, target: float = 0.99, max_epochs: int = 5,
                  seed: int = 0, log=print) -> dict:
    """Train until test accuracy ≥ ``target`` (checked after each epoch) or ``max_epochs``.

    Returns per-epoch accuracies and seconds (training + evaluation, the way a user of the listing waits).
    """
    torch.manual_seed(seed)
    model = create_model("seed-cnn")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_loader = DataLoader(PerSampleMNIST(train), batch_size=64, shuffle=True)
    test_loader = DataLoader(PerSampleMNIST(test), batch_size=1000)
    epochs, elapsed, reached = [], 0.0, None
    for epoch in range(1, max_epochs + 1):
        start = time.perf_counter()
        for x, y in train_loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        train_seconds = time.perf_counter() - start
        accuracy = test_accuracy(model, test_loader)
        elapsed += time.perf_counter() - start
        epochs.append({"epoch": epoch, "test_acc": accuracy, "train_seconds": train_seconds, "elapsed": elapsed})
        log(f"  seed loop epoch {epoch}: test acc {accuracy:.4f}, {train_seconds:.1f} s training, {elapsed:.1f} s total")
        if reached is None and accuracy >= target:
            reached = elapsed
            break
    return {"epochs": epochs, "time_to_target": reached, "final_acc": epochs[-1]["test_acc"]}


def run_seed_loop_in_subprocess(target: float = 0.99, max_epochs: int = 5) -> dict:
    """The seed loop as a user runs it: its own plain Python process, glibc's default allocator settings.

    (archlab raises glibc's malloc thresholds in its own process; the listing's users do not.)
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    command = [sys.executable, str(Path(__file__).resolve()), "--target", str(target), "--max-epochs", str(max_epochs)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    for line in done.stdout.splitlines():
        if not line.startswith("RESULT "):
            print(line)
    return json.loads(next(line[7:] for line in done.stdout.splitlines() if line.startswith("RESULT ")))


def main() -> None:
    import argparse

    from archlab.data import load_raw

    parser = argparse.ArgumentParser(description="The seed listing's training loop.")
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--max-epochs", type=int, default=5)
    args = parser.parse_args()
    train, test, _ = load_raw("mnist")
    result = run_seed_loop(train, test, target=args.target, max_epochs=args.max_epochs,
                           log=lambda text: print(text, flush=True))
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
