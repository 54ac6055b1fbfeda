"""Engine-internal callbacks: exact resume of random state, and the timing/validation record of a run."""

from __future__ import annotations

import time
from typing import Any

import torch
import lightning as L


class RandomStateCallback(L.Callback):
    """Store the global torch RNG state in every checkpoint and restore it on resume.

    Dropout draws from the global generator; without this a resumed run would draw different masks
    than the uninterrupted one and end with different weights even in deterministic mode.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        state = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Applied here, after Lightning's own set-up, so nothing consumes random numbers in between.
        if self._pending is not None:
            torch.set_rng_state(self._pending["torch"])
            if "cuda" in self._pending and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(self._pending["cuda"])
            self._pending = None


def batch_samples(batch: Any) -> int:
    """Samples in a batch: the leading size of its first tensor (batches may nest tuples of tensors)."""
    while isinstance(batch, (tuple, list)) and batch:
        batch = batch[0]
    return int(batch.shape[0]) if isinstance(batch, torch.Tensor) and batch.ndim else 0


class RunRecord(L.Callback):
    """Training wall time, samples seen, and the validation metrics of every evaluation.

    ``best_val`` is the evaluation with the best ``monitor`` metric (``(name, "min" | "max")``).
    """

    def __init__(self, monitor: tuple[str, str] = ("val_acc", "max")) -> None:
        self.monitor = monitor
        self.train_seconds = 0.0
        self.samples = 0
        self.val_history: list[dict[str, float]] = []
        self.first_step = 0  # the global step training started from (> 0 after a resume)
        self._started: float | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.first_step = trainer.global_step
        self._started = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._started is not None:
            self.train_seconds += time.perf_counter() - self._started

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.samples += batch_samples(batch)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After the module's own epoch-end hook: metrics it logs there are in callback_metrics by now.
        if trainer.sanity_checking:
            return
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items()
                   if name.startswith("val_") and value.numel() == 1}
        if self.monitor[0] in metrics:
            self.val_history.append({"epoch": trainer.current_epoch, "step": trainer.global_step, **metrics})

    @property
    def best_val(self) -> dict[str, float] | None:
        if not self.val_history:
            return None
        metric, mode = self.monitor
        pick = max if mode == "max" else min
        return pick(self.val_history, key=lambda row: row[metric])
