"""A tiny fake run directory, shaped like the one the training engine writes, for the report tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

CLASSES = [str(digit) for digit in range(10)]
STEPS_PER_EPOCH = 10
EPOCHS = 3
LAYERS = ["conv1.weight", "conv2.weight", "fc.weight"]
CONFIG_TEXT = "model: cnn\ndata: mnist\nnote: \"a < b & c\"\noptimizer:\n  lr: 0.001\n"


def summary_dict(created: str = "2026-11-23T10:00:00", cv: bool = True) -> dict:
    """A complete summary.json."""
    summary = {
        "model": "cnn", "data": "mnist", "recipe": "mnist-fast",
        "test_metrics": {"accuracy": 0.991, "loss": 0.03},
        "best_val": {"val_acc": 0.989, "val_loss": 0.041, "epoch": 2},
        "wall_seconds": 12.3, "train_images_per_second": 25000.0, "epochs": EPOCHS,
        "params": 123456, "mflops": 4.2, "precision": "bf16-mixed", "created": created,
    }
    if cv:
        folds = [{"val_acc": 0.98 + 0.002 * fold, "val_loss": 0.05 - 0.002 * fold} for fold in range(5)]
        summary["cv"] = {"k": 5, "val_acc_mean": 0.984, "val_acc_std": 0.0028,
                         "val_loss_mean": 0.046, "val_loss_std": 0.0028, "folds": folds}
    return summary


def metrics_rows(grad_norms: bool = True) -> list[dict]:
    """Sparse rows as Lightning's CSVLogger writes them: train every step, lr/grad every 5, val per epoch."""
    rows = []
    for step in range(STEPS_PER_EPOCH * EPOCHS):
        epoch = step // STEPS_PER_EPOCH
        rows.append({"step": step, "epoch": epoch, "train_loss": 2.3 * 0.9 ** step,
                     "train_acc": 1 - 0.9 * 0.9 ** step, "l2_penalty": 0.01})
        if step % 5 == 0:
            rows.append({"step": step, "lr-Adam": 1e-3 * 0.5 ** epoch})
            if grad_norms:
                rows.append({"step": step, **{f"grad_norm/{layer}": (index + 1) * 0.1 * 0.95 ** step
                                              for index, layer in enumerate(LAYERS)}})
        if step % STEPS_PER_EPOCH == STEPS_PER_EPOCH - 1:
            rows.append({"step": step, "epoch": epoch, "val_loss": 0.2 / (epoch + 1), "val_acc": 0.95 + 0.01 * epoch})
    rows.append({"step": STEPS_PER_EPOCH * EPOCHS, "epoch": EPOCHS - 1, "test_loss": 0.03, "test_acc": 0.991})
    return rows


def write_metrics_csv(path: Path, rows: list[dict]) -> None:
    """Write rows with empty strings in the cells a row did not log."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def write_predictions(path: Path, count: int = 50, mistakes: int = 5) -> None:
    """test_predictions.npz with ``count`` predictions, the first ``mistakes`` of them wrong."""
    generator = np.random.default_rng(0)
    labels = generator.integers(0, 10, size=count).astype(np.int64)
    preds = labels.copy()
    preds[:mistakes] = (labels[:mistakes] + 1) % 10
    logits = generator.normal(size=(count, 10))
    logits[np.arange(count), preds] += 4.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    images = generator.integers(0, 256, size=(mistakes, 1, 28, 28)).astype(np.uint8)
    np.savez(path, labels=labels, preds=preds, probs=probs.astype(np.float16),
             mistake_index=np.arange(mistakes, dtype=np.int64), mistake_images=images)


def make_run(folder: Path, predictions: bool = True, grad_norms: bool = True, **summary_options) -> Path:
    """Create a complete fake run in ``folder`` and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(summary_dict(**summary_options)), encoding="utf-8")
    meta = {"model": "cnn", "model_args": {"channels": 8}, "classes": CLASSES,
            "normalization": {"mean": 0.1307, "std": 0.3081}, "input_shape": [1, 28, 28], "versions": {}}
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    (folder / "config.yaml").write_text(CONFIG_TEXT, encoding="utf-8")
    write_metrics_csv(folder / "metrics.csv", metrics_rows(grad_norms=grad_norms))
    if predictions:
        write_predictions(folder / "test_predictions.npz")
    return folder


@pytest.fixture
def fake_run(tmp_path: Path) -> Path:
    """A complete fake run directory."""
    return make_run(tmp_path / "run")


@pytest.fixture(scope="session")
def make_fake_run():
    """The factory ``make_run(folder, predictions=True, grad_norms=True, created=..., cv=True)``."""
    return make_run


@pytest.fixture(scope="session")
def fake_metrics_rows():
    """The factory ``metrics_rows(grad_norms=True)`` of sparse metrics rows (as dicts of numbers)."""
    return metrics_rows
