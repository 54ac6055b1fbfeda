"""The ``reconstruct`` task: an autoencoder learns to give back its input, and its error scores anomalies.

Objective, for images x in [-1, 1]::

    loss = mean over pixels of (model(x) - x)²

With ``holdout_class=K`` the training and validation splits lose every image of class K; the test split keeps
them, and each test image's reconstruction error (mean squared, per image) is an anomaly score: the test
summary gives the ROC-AUC of "is class K" from that score (``anomaly_auc``; 0.5 is chance, 1 perfect). This
is the plain baseline next to the GAN scores of ``archlab anomaly`` (Schlegl et al. 2017 compare AnoGAN with
such autoencoders too).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archlab.config import TrainConfig
from archlab.data import BatchLoader, ImageData, TensorSplit, load_image_data
from archlab.data.splits import holding_out
from archlab.errors import ConfigError
from archlab.io import atomic_path
from archlab.tasks.base import OptimSettings, TaskDef, TaskModule, register_task

RECONSTRUCTIONS = "reconstructions.npz"  # test images, their reconstructions (first 16) and every error
# Images in [-1, 1]: pixel = 0.5 + 0.5 · x.
GENERATIVE_NORMALIZATION = {"mean": 0.5, "std": 0.5}


@dataclass
class ReconstructOptions:
    """Settings of ``--task reconstruct``."""

    holdout_class: int | None = None  # train and validate without this class; the test scores it as an anomaly


def per_image_error(reconstruction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error of each image [N]."""
    return (reconstruction.float() - x.float()).pow(2).flatten(1).mean(1)


class ReconstructTask(TaskModule):
    """Mean-squared reconstruction; keeps each test image's error (and the first images) for anomaly scores."""

    def __init__(self, model: nn.Module, optim: OptimSettings, *, holdout_class: int | None = None) -> None:
        super().__init__(model, optim)
        self.holdout_class = holdout_class
        self.test_errors: list[torch.Tensor] = []
        self.test_labels: list[torch.Tensor] = []
        self.test_examples: tuple[torch.Tensor, torch.Tensor] | None = None

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, _ = batch
        metrics: dict[str, torch.Tensor] = {}
        loss = self.penalized(F.mse_loss(self.model(x), x), metrics)
        if self.should_log():
            metrics["train_loss"] = loss.detach()
            self.log_dict(metrics, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, _ = batch
        self.log("val_loss", F.mse_loss(self.model(x), x), on_epoch=True, prog_bar=True, sync_dist=True)

    def on_test_epoch_start(self) -> None:
        self.test_errors, self.test_labels, self.test_examples = [], [], None

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        reconstruction = self.model(x)
        self.log("test_loss", F.mse_loss(reconstruction, x), on_epoch=True, sync_dist=True)
        self.test_errors.append(per_image_error(reconstruction, x).cpu())
        self.test_labels.append(y.cpu())
        if self.test_examples is None:
            self.test_examples = (x[:16].float().cpu(), reconstruction[:16].float().cpu())

    def on_test_epoch_end(self) -> None:
        if self.holdout_class is None or not self.test_errors:
            return
        from archlab.analysis.anomaly import roc_auc

        labels = torch.cat(self.test_labels)
        self.log("test_anomaly_auc", roc_auc(torch.cat(self.test_errors), labels == self.holdout_class))


@register_task
class ReconstructDef(TaskDef):
    name: ClassVar[str] = "reconstruct"
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    description: ClassVar[str] = ("image → the same image through a bottleneck (MSE); with holdout_class=K, "
                                  "ROC-AUC of the error as an anomaly score for class K")
    options: ClassVar[type] = ReconstructOptions
    monitor: ClassVar[tuple[str, str]] = ("val_loss", "min")
    headline: ClassVar[str] = "loss"

    def load(self, config: TrainConfig) -> ImageData:
        data = load_image_data(config.data, config.data_dir, config.val_size, config.seed)
        return holding_out(data, self.settings(config).holdout_class)

    def model_args(self, config: TrainConfig, data: ImageData) -> dict[str, Any]:
        _, channels, height, _ = data.train.images.shape
        return {"in_channels": channels, "input_size": height}

    def loaders(self, config: TrainConfig, data: ImageData, rank: int, world_size: int):
        common = {**GENERATIVE_NORMALIZATION, "channels_last": config.channels_last}
        train = BatchLoader(data.train, config.batch_size, shuffle=True, drop_last=len(data.train) > config.batch_size,
                            seed=config.seed, rank=rank, world_size=world_size, **common)
        val = BatchLoader(data.val, config.eval_batch_size, shuffle=False, rank=rank, world_size=world_size,
                          **common) if len(data.val) else None
        return train, val, BatchLoader(data.test, config.eval_batch_size, shuffle=False, **common)

    def example_input(self, data: ImageData) -> tuple[int, ...]:
        return tuple(data.train.images.shape[1:])

    def build(self, config: TrainConfig, data: ImageData, model: nn.Module, optim: OptimSettings) -> ReconstructTask:
        return ReconstructTask(model, optim, holdout_class=self.settings(config).holdout_class)

    def meta(self, config: TrainConfig, data: ImageData) -> dict[str, Any]:
        return {"classes": list(data.classes), "normalization": dict(GENERATIVE_NORMALIZATION),
                "input_shape": list(data.train.images.shape[1:]), "input_kind": "image",
                "holdout_class": self.settings(config).holdout_class}

    def save_outputs(self, run_dir: Path, config: TrainConfig, data: ImageData, module: ReconstructTask) -> dict[str, Any]:
        if module.test_examples is None:
            return {}
        images, reconstructions = module.test_examples
        errors, labels = torch.cat(module.test_errors), torch.cat(module.test_labels)
        with atomic_path(run_dir / RECONSTRUCTIONS) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, images=images.numpy(), reconstructions=reconstructions.numpy(),
                                errors=errors.numpy(), labels=labels.numpy())
        per_class = {data.classes[k]: float(errors[labels == k].mean()) for k in range(len(data.classes))
                     if bool((labels == k).any())}
        return {"reconstruction_error_by_class": per_class, "holdout_class": module.holdout_class}
