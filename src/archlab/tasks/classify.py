"""Image classification as a LightningModule (the *system* around any registered classifier).

Objective::

    loss = CE(model(x), y; label_smoothing) + l1 · Σ|w| + l2 · Σ w²

where the sums run over weight tensors only; ``weight_decay`` (L2 inside the optimizer) is the other way
to regularize. The task owns the loss, the optimizer and schedule, and the metrics; it never defines
layers, so any ``nn.Module`` mapping ``[B, C, H, W]`` images to ``[B, num_classes]`` logits fits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import lightning as L
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from archlab.config import OptimizerConfig, ScheduleConfig
from archlab.tasks.optim import build_optimizer, build_schedule, penalized_weights


class ClassifyTask(L.LightningModule):
    """Cross-entropy classification with optional explicit L1/L2 penalties and label smoothing."""

    def __init__(
        self,
        model: nn.Module,
        *,
        num_classes: int,
        optimizer: OptimizerConfig,
        schedule: ScheduleConfig,
        total_steps: int,
        steps_per_epoch: int,
        weight_decay: float = 0.0,
        l1_penalty: float = 0.0,
        l2_penalty: float = 0.0,
        label_smoothing: float = 0.0,
        log_every_n_steps: int = 50,
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizer_config = optimizer
        self.schedule_config = schedule
        self.total_steps = total_steps
        self.steps_per_epoch = steps_per_epoch
        self.weight_decay = weight_decay
        self.l1_penalty = l1_penalty
        self.l2_penalty = l2_penalty
        self.label_smoothing = label_smoothing
        self.log_every_n_steps = max(1, log_every_n_steps)
        self.val_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.test_accuracy = MulticlassAccuracy(num_classes, average="micro")
        self.test_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _penalties(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        weights = list(penalized_weights(self.model))
        l1 = sum(w.abs().sum() for w in weights) if self.l1_penalty else None
        l2 = sum(w.pow(2).sum() for w in weights) if self.l2_penalty else None
        return l1, l2

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self.model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        l1, l2 = self._penalties()
        if l1 is not None:
            loss = loss + self.l1_penalty * l1
        if l2 is not None:
            loss = loss + self.l2_penalty * l2
        # Logging costs a host sync; on a small CPU model every step it is a measurable share of the step.
        # Lightning hands on-step values to the loggers when (global_step + 1) % log_every_n_steps == 0.
        if (self.global_step + 1) % self.log_every_n_steps == 0:
            metrics = {"train_loss": loss.detach(), "train_acc": (logits.argmax(1) == y).float().mean()}
            if l1 is not None:
                metrics["l1_penalty"] = l1.detach()
            if l2 is not None:
                metrics["l2_penalty"] = l2.detach()
            self.log_dict(metrics, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.model(x)
        self.val_accuracy(logits, y)
        self.log("val_loss", F.cross_entropy(logits, y), on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("val_acc", self.val_accuracy, on_epoch=True, prog_bar=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.model(x)
        self.test_accuracy(logits, y)
        self.log("test_loss", F.cross_entropy(logits, y), on_epoch=True, sync_dist=True)
        self.log("test_acc", self.test_accuracy, on_epoch=True)
        self.test_outputs.append((y.cpu(), logits.float().softmax(1).cpu()))

    def on_test_epoch_start(self) -> None:
        self.test_outputs = []

    def configure_optimizers(self):
        optimizer = build_optimizer(self.model, self.optimizer_config, self.weight_decay)
        scheduler = build_schedule(optimizer, self.schedule_config, self.total_steps, self.steps_per_epoch)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
