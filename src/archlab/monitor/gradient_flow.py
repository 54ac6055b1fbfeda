"""Gradient flow: what reaches each layer, what the optimizer does to it, and what it means.

At the first optimizer step and every ``every_n_steps`` steps the monitor logs, for each weight tensor W (in forward order, to
every logger — CSV and TensorBoard):

    grad_norm/<layer>    = ‖∂L/∂W‖₂                   (before clipping)
    weight_norm/<layer>  = ‖W‖₂
    update_ratio/<layer> = ‖W_after − W_before‖₂ / ‖W_before‖₂   (≈1e-3 is healthy; Karpathy's rule of thumb)
    dead_units/<relu>    = fraction of a ReLU layer's units never active on the last sampled batches
    grad_first_last      = ‖∂L/∂W_first‖ / ‖∂L/∂W_last‖  (the signature of vanishing gradients when tiny)
    grad_total           = ‖∂L/∂θ‖₂ over all parameters

and checks them (see ``archlab.monitor.diagnosis``): vanishing, exploding, dead ReLUs, and a loss that
plateaus or oscillates (mean training loss over each window of ``every_n_steps`` steps, and the
validation loss at each evaluation). Each kind of finding is printed once, with the layer names and a
suggestion, and every finding is appended to ``diagnostics.log``; ``summary()`` gives them all.

On every step (``check_finite``) it checks that the loss and the gradients are finite. If not, it drops
the step's gradients (the optimizer skips parameters without a gradient, so the weights stay those of
the last good step), stops the run cleanly and says why. ``auto_clip_percentile`` enables AutoClip
(Seetharaman et al. 2020): gradients are clipped to that percentile of all gradient norms seen so far.

It works with any LightningModule: layer names are parameter names without a leading ``model.``.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from rich.console import Console
from rich.markup import escape
from torch import nn

from archlab.config import MonitorConfig
from archlab.monitor.diagnosis import (
    Diagnosis,
    check_dead_units,
    check_exploding,
    check_loss_curve,
    check_vanishing,
)

LOG_FILE = "diagnostics.log"
RELUS = (nn.ReLU, nn.ReLU6)
DEAD_WINDOW = 3  # sampled batches a unit must stay silent in to count as dead


def layer_name(name: str) -> str:
    return name.removeprefix("model.").removesuffix(".weight")


def scaled_norm(tensor: torch.Tensor) -> torch.Tensor:
    """‖t‖₂ computed as max|t| · ‖t / max|t|‖₂, so that it does not underflow.

    The gradient reaching the first layer of a deep plain net can be ~1e-22 per element: its squares
    (1e-44) are below float32's smallest normal number and would sum to 0 (or be flushed to 0).
    """
    values = tensor.detach().float()
    peak = values.abs().amax()
    return torch.where(peak > 0, peak * (values / peak.clamp_min(torch.finfo(torch.float32).tiny)).norm(), peak)


class DeadUnitTracker:
    """Forward hooks on ReLU modules that record which units (channels, or features) ever fire."""

    def __init__(self) -> None:
        self.history: dict[str, deque[torch.Tensor]] = {}
        self._batch: dict[str, torch.Tensor] = {}
        self._calls: dict[str, int] = {}
        self._handles: list[Any] = []

    def attach(self, module: nn.Module) -> None:
        for name, child in module.named_modules():
            if isinstance(child, RELUS):
                self._handles.append(child.register_forward_hook(self._hook(layer_name(name))))

    def _hook(self, name: str):
        def record(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            calls = self._calls.get(name, 0)
            self._calls[name] = calls + 1
            key = name if calls == 0 else f"{name}#{calls}"  # a module applied twice per forward
            with torch.no_grad():
                active = output.detach() > 0
                if active.ndim == 4:  # [B, C, H, W]: a unit is a channel
                    fired = active.flatten(2).any(-1).any(0)
                else:  # [B, F] or [B, T, F]: a unit is a feature
                    fired = active.reshape(-1, active.shape[-1]).any(0)
            self._batch[key] = fired if key not in self._batch else self._batch[key] | fired

        return record

    def detach(self) -> dict[str, float]:
        """Remove the hooks; return the dead fraction of each layer over the last ``DEAD_WINDOW`` batches."""
        for handle in self._handles:
            handle.remove()
        self._handles, self._calls = [], {}
        fractions = {}
        for key, fired in self._batch.items():
            window = self.history.setdefault(key, deque(maxlen=DEAD_WINDOW))
            window.append(fired)
            ever = torch.stack(list(window)).any(0) if len(window) > 1 else window[0]
            fractions[key] = 1.0 - ever.float().mean().item()
        self._batch = {}
        return fractions


class GradientFlowMonitor(L.Callback):
    """Per-layer gradient flow, update ratios and dead units, with diagnoses; stops cleanly on NaN/Inf.

    ``GradientFlowMonitor(every_n_steps=50)`` (any field of :class:`archlab.config.MonitorConfig`), or
    ``GradientFlowMonitor(config)``. ``log_file`` defaults to ``<trainer.default_root_dir>/diagnostics.log``.
    """

    def __init__(self, config: MonitorConfig | None = None, *, log_file: str | Path | None = None,
                 console: Console | None = None, **settings: Any) -> None:
        self.config = config or MonitorConfig(**settings)
        self.log_file = Path(log_file) if log_file else None
        self.console = console or Console(stderr=True)
        self.diagnoses: list[Diagnosis] = []
        self.counts: dict[str, int] = {}
        self.stopped: str | None = None
        self.train_losses: list[float] = []  # mean training loss of each window
        self.val_losses: list[float] = []
        self.norm_history: list[float] = []
        self.layers: list[str] = []  # weight tensors in parameter (forward) order
        self._dead = DeadUnitTracker()
        self._loss: torch.Tensor | None = None
        self._loss_sum: torch.Tensor | None = None
        self._loss_steps = 0
        self._before: list[torch.Tensor] | None = None
        self._pending: dict[str, float] = {}  # metrics of this sampling step, logged once the step is done

    # --- when ---------------------------------------------------------------------------------------

    def _sampling(self, step: int) -> bool:
        every = self.config.every_n_steps  # the first step too: the network as initialised
        return bool(every) and (step == 1 or step % every == 0)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.log_file is None:
            self.log_file = Path(trainer.default_root_dir) / LOG_FILE

    # --- measurements -------------------------------------------------------------------------------

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if self._sampling(trainer.global_step + 1):
            self._dead.attach(pl_module)

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        self._loss = loss.detach()

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer) -> None:
        step = trainer.global_step + 1
        params = [p for p in pl_module.parameters() if p.grad is not None]
        if not params:
            return
        grads = [p.grad for p in params]
        if self.config.check_finite or self.config.auto_clip_percentile:
            total = torch.nn.utils.get_total_norm(grads)
            loss = self._loss if self._loss is not None else torch.zeros((), device=total.device)
            loss_value, total_value = torch.stack([loss.float(), total.float()]).tolist()
            if self.config.check_finite and self._nonfinite(trainer, pl_module, step, loss_value, total_value):
                for p in params:
                    p.grad = None  # the optimizer skips parameters without gradients: weights stay good
                return
            if self.config.auto_clip_percentile:
                self._auto_clip(params, total, total_value)
        if self._sampling(step):
            self._sample_gradients(trainer, pl_module, step)

    def _nonfinite(self, trainer: L.Trainer, pl_module: L.LightningModule, step: int, loss: float,
                   total: float) -> bool:
        # Under fp16 mixed precision an overflowing step is normal: the grad scaler skips it and rescales.
        fp16 = str(trainer.precision).startswith("16")
        if np.isfinite(loss) and (np.isfinite(total) or fp16):
            return False
        bad = [layer_name(n) for n, p in pl_module.named_parameters()
               if p.grad is not None and not torch.isfinite(p.grad).all()]
        what = f"the loss is {loss}" if not np.isfinite(loss) else "the gradients are not finite"
        where = f" (non-finite gradients in {', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''})" if bad else ""
        self.stopped = f"{what} at step {step}{where}; training stopped, the weights of step {step - 1} are kept"
        self.report(trainer, Diagnosis("nonfinite", step, self.stopped, bad))
        trainer.should_stop = True
        return True

    def _auto_clip(self, params: list[torch.Tensor], total: torch.Tensor, total_value: float) -> None:
        self.norm_history.append(total_value)
        threshold = float(np.percentile(self.norm_history, self.config.auto_clip_percentile))
        torch.nn.utils.clip_grads_with_norm_(params, threshold, total)

    def _weights(self, pl_module: L.LightningModule) -> list[tuple[str, nn.Parameter]]:
        return [(layer_name(n), p) for n, p in pl_module.named_parameters() if p.ndim >= 2]

    def _sample_gradients(self, trainer: L.Trainer, pl_module: L.LightningModule, step: int) -> None:
        weights = [(name, p) for name, p in self._weights(pl_module) if p.grad is not None]
        if not weights:
            return
        with torch.no_grad():
            grad = torch.stack([scaled_norm(p.grad) for _, p in weights]).tolist()
            norm = torch.stack([scaled_norm(p) for _, p in weights]).tolist()
            self._before = [p.detach().float().clone() for _, p in weights]
        grads = {name: g for (name, _), g in zip(weights, grad)}
        self.layers = list(grads)
        metrics = {f"grad_norm/{name}": g for name, g in grads.items()}
        metrics.update({f"weight_norm/{name}": w for (name, _), w in zip(weights, norm)})
        metrics["grad_total"] = float(np.sqrt(np.sum(np.square(grad))))
        if grad[-1] > 0:
            metrics["grad_first_last"] = grad[0] / grad[-1]
        self._pending = metrics
        if all(np.isfinite(grad)):
            for found in (check_vanishing(grads, step, self.config.vanish_ratio, self.config.tiny_norm),
                          check_exploding(grads, step, self.config.explode_norm)):
                self.report(trainer, found)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and self.stopped is None:
            loss = loss.detach().float()
            self._loss_sum = loss if self._loss_sum is None else self._loss_sum + loss
            self._loss_steps += 1
        step = trainer.global_step
        if not self._sampling(step):
            return
        metrics, self._pending = self._pending, {}
        if self._before is not None:
            metrics.update(self._update_ratios(pl_module))
        dead = self._dead.detach()
        metrics.update({f"dead_units/{name}": value for name, value in dead.items()})
        self._log(trainer, metrics, step)
        self.report(trainer, check_dead_units(dead, step, self.config.dead_fraction))
        if self._loss_sum is not None and self._loss_steps:
            self.train_losses.append(self._loss_sum.item() / self._loss_steps)
            self._loss_sum, self._loss_steps = None, 0
            self.report(trainer, check_loss_curve(self.train_losses, step, "training loss (mean per window)",
                                                  self.config.plateau_patience, self.config.min_delta))

    def _update_ratios(self, pl_module: L.LightningModule) -> dict[str, float]:
        weights = [(name, p) for name, p in self._weights(pl_module) if p.grad is not None]
        before, self._before = self._before, None
        if len(before) != len(weights):
            return {}
        with torch.no_grad():
            ratios = torch.stack([(p.float() - b).norm() / b.norm().clamp_min(1e-12)
                                  for (_, p), b in zip(weights, before)]).tolist()
        return {f"update_ratio/{name}": r for (name, _), r in zip(weights, ratios)}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get("val_loss")
        if value is None or trainer.sanity_checking:
            return
        self.val_losses.append(float(value))
        self.report(trainer, check_loss_curve(self.val_losses, trainer.global_step, "validation loss",
                                              self.config.plateau_patience, self.config.min_delta))

    # --- output -------------------------------------------------------------------------------------

    @staticmethod
    def _log(trainer: L.Trainer, metrics: dict[str, float], step: int) -> None:
        # Straight to the loggers: this monitor keeps its own interval, independent of log_every_n_steps.
        if metrics:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step)

    def report(self, trainer: L.Trainer, diagnosis: Diagnosis | None) -> None:
        """Count a finding; the first of each kind is printed and kept, every one goes to the log file."""
        if diagnosis is None:
            return
        first = diagnosis.kind not in self.counts
        self.counts[diagnosis.kind] = self.counts.get(diagnosis.kind, 0) + 1
        if not trainer.is_global_zero:
            return
        if first:
            self.diagnoses.append(diagnosis)
        if first and self.config.print_diagnoses:
            self.console.print(f"[bold yellow]diagnosis[/] {escape(diagnosis.text())}", highlight=False)
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_file, "a", encoding="utf-8") as handle:
                handle.write(diagnosis.text() + "\n")

    def summary(self) -> dict[str, Any]:
        """The first finding of each kind, how often each kind was found, and why the run stopped (if so)."""
        return {"diagnoses": [d.to_dict() for d in self.diagnoses], "counts": dict(self.counts),
                "stopped": self.stopped, "layers": list(self.layers)}

    # --- resume -------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"train_losses": list(self.train_losses), "val_losses": list(self.val_losses),
                "norm_history": list(self.norm_history), "counts": dict(self.counts),
                "diagnoses": [d.to_dict() for d in self.diagnoses]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.train_losses = list(state_dict.get("train_losses", []))
        self.val_losses = list(state_dict.get("val_losses", []))
        self.norm_history = list(state_dict.get("norm_history", []))
        self.counts = dict(state_dict.get("counts", {}))
        self.diagnoses = [Diagnosis(**d) for d in state_dict.get("diagnoses", [])]
