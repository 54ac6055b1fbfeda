"""Weight histograms in TensorBoard at the end of every N-th training epoch."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger


class WeightHistogramMonitor(L.Callback):
    """Add one histogram per weight tensor to TensorBoard every ``every_n_epochs`` epochs (0: off)."""

    def __init__(self, every_n_epochs: int = 1) -> None:
        self.every_n_epochs = every_n_epochs

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.every_n_epochs or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        writers = [lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        for writer in writers:
            for name, param in pl_module.named_parameters():
                writer.add_histogram(f"weights/{name.removeprefix('model.')}", param.detach().float().cpu(),
                                     trainer.global_step)
