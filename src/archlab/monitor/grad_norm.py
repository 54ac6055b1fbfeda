"""Per-layer gradient norms, logged every N optimizer steps (to every logger: CSV and TensorBoard).

For each weight tensor W the monitor logs ``grad_norm/<name> = ||dL/dW||_2`` just before the optimizer
step (after gradient clipping would be applied), plus ``grad_norm/total``. A first-layer norm orders of
magnitude below the last layer's is the signature of vanishing gradients.
"""

from __future__ import annotations

import torch
import lightning as L


class GradNormMonitor(L.Callback):
    """Log the L2 norm of each weight's gradient every ``every_n_steps`` steps (0 turns it off)."""

    def __init__(self, every_n_steps: int = 100) -> None:
        self.every_n_steps = every_n_steps

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer) -> None:
        step = trainer.global_step + 1  # this step, counted from 1
        if not self.every_n_steps or step % self.every_n_steps:
            return
        norms = {}
        for name, param in pl_module.named_parameters():
            if param.grad is not None and param.ndim >= 2:
                norms[f"grad_norm/{name.removeprefix('model.')}"] = param.grad.detach().float().norm()
        if norms:
            norms["grad_norm/total"] = torch.stack(list(norms.values())).norm()
            # Straight to the loggers: this monitor keeps its own interval, independent of log_every_n_steps.
            values = {name: float(value) for name, value in norms.items()}
            for logger in trainer.loggers:
                logger.log_metrics(values, step=step)
