"""Classification as a LightningModule (the *system* around any registered classifier), for images and texts.

Objective::

    loss = CE(model(x), y; label_smoothing) + l1 · Σ|w| + l2 · Σ w²

where the sums run over weight tensors only; ``weight_decay`` (L2 inside the optimizer) is the other way
to regularize. The task owns the loss, the optimizer and schedule, and the metrics; it never defines
layers, so any ``nn.Module`` mapping its input to ``[B, num_classes]`` logits fits. An input is one tensor
(images ``[B, C, H, W]``) or a tuple passed as positional arguments (texts: ``(token ids [B, T], lengths
[B])``, so a recurrent model can pack the sequences and never read the padding).

Test metrics: accuracy and loss, and precision / recall / F1 averaged over classes (macro), each class's
precision / recall / F1 in ``per_class``, and the confusion matrix through the saved predictions.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MulticlassPrecision, MulticlassRecall

from archlab.tasks.base import OptimSettings, TaskModule


def _call(model: nn.Module, x: Any) -> torch.Tensor:
    return model(*x) if isinstance(x, (tuple, list)) else model(x)


class ClassifyTask(TaskModule):
    """Cross-entropy classification with optional explicit L1/L2 penalties and label smoothing."""

    def __init__(self, model: nn.Module, optim: OptimSettings, *, num_classes: int, label_smoothing: float = 0.0) -> None:
        super().__init__(model, optim)
        self.label_smoothing = label_smoothing
        self.val_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.test_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.test_scores = MetricCollection({
            "precision": MulticlassPrecision(num_classes, average="macro"),
            "recall": MulticlassRecall(num_classes, average="macro"),
            "f1": MulticlassF1Score(num_classes, average="macro"),
        })
        self.test_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def training_step(self, batch: tuple[Any, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = _call(self.model, x)
        metrics: dict[str, torch.Tensor] = {}
        loss = self.penalized(F.cross_entropy(logits, y, label_smoothing=self.label_smoothing), metrics)
        if self.should_log():
            metrics.update({"train_loss": loss.detach(), "train_acc": (logits.argmax(1) == y).float().mean()})
            self.log_dict(metrics, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Any, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = _call(self.model, x)
        self.val_accuracy(logits, y)
        self.log("val_loss", F.cross_entropy(logits, y), on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("val_acc", self.val_accuracy, on_epoch=True, prog_bar=True)

    def test_step(self, batch: tuple[Any, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = _call(self.model, x)
        self.test_accuracy(logits, y)
        self.test_scores.update(logits, y)
        self.log("test_loss", F.cross_entropy(logits, y), on_epoch=True, sync_dist=True)
        self.log("test_acc", self.test_accuracy, on_epoch=True)
        self.test_outputs.append((y.cpu(), logits.float().softmax(1).cpu()))

    def on_test_epoch_start(self) -> None:
        self.test_outputs = []
        self.test_scores.reset()

    def on_test_epoch_end(self) -> None:
        self.log_dict({f"test_{name}": value for name, value in self.test_scores.compute().items()})
