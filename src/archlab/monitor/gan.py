"""Watching a GAN train: the balance of its two players, what it draws, and the signs of a failing game.

Every ``every_n_steps`` iterations ``GanMonitor`` logs (to every logger) and keeps in ``history``:

    d_real, d_fake        D's mean probability that real / generated images are real (critic value for WGAN)
    d_loss, g_loss        the players' mean losses over the window; loss_balance = g_loss / d_loss
    coverage_entropy      entropy (bits) of the judge's classes over ``samples`` generated images: 3.32 = all ten
                          digits equally often, 0 = one digit only (mode collapse)
    monitor_fid           FID of those samples against real images of the validation split (small-sample FID is
                          biased upwards: compare it across steps, not with the 10,000-sample test FID)

and sends a grid of 64 samples (always the same z) to TensorBoard. Two rules raise a warning (printed once,
kept in ``warnings``, in the run's summary and in ``gan_history.json``):

- the discriminator overpowers the generator: D(x) > 0.95 and D(G(z)) < 0.05 for ``window`` checks in a row —
  G's gradients vanish (try instance noise, label smoothing, a lower lr_d or a gradient penalty);
- coverage collapses: entropy below ``min_entropy`` bits for ``window`` checks in a row (mode collapse).

Checks in the first fifth of the run are not judged: a fresh generator draws few classes, and D wins at first.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from rich.console import Console
from rich.markup import escape


def discriminator_overpowers(history: list[dict[str, Any]], window: int = 3, high: float = 0.95,
                             low: float = 0.05) -> str | None:
    """A warning when D told real from fake almost perfectly at the last ``window`` checks (probabilities only)."""
    recent = history[-window:]
    if len(recent) < window or any(h.get("d_real") is None or h.get("d_fake") is None or h.get("critic")
                                   for h in recent):
        return None
    if all(h["d_real"] > high and h["d_fake"] < low for h in recent):
        return (f"the discriminator overpowers the generator since step {recent[0]['step']}: D(x) = "
                f"{recent[-1]['d_real']:.3f}, D(G(z)) = {recent[-1]['d_fake']:.3f}; the generator's gradients vanish. "
                "Try -t instance_noise=0.1, -t label_smoothing=0.1, a lower -t lr_d, or -t gp_weight=10.")
    return None


def coverage_collapsed(history: list[dict[str, Any]], window: int = 3, min_entropy: float = 2.0) -> str | None:
    """A warning when the samples' class entropy stayed under ``min_entropy`` bits for ``window`` checks."""
    recent = [h for h in history if h.get("coverage_entropy") is not None][-window:]
    if len(recent) < window or not all(h["coverage_entropy"] < min_entropy for h in recent):
        return None
    return (f"class coverage collapsed since step {recent[0]['step']}: {recent[-1]['coverage_entropy']:.2f} bits of "
            "3.32 (the generator draws few classes: mode collapse). Try -t d_steps=2, a gradient penalty, "
            "spectral normalisation (-m spectral_norm=true) or the wgan-gp loss.")


class GanMonitor(L.Callback):
    """D(x), D(G(z)), loss balance, class coverage and FID every ``every_n_steps``; sample grids; warnings.

    ``reference`` are real images ([-1, 1]) for the small-sample FID; ``judge`` (None: no coverage or FID) is
    the data set's judge. It reads what ``GanTask`` records in each step (``take_window``).
    """

    def __init__(self, every_n_steps: int, judge: Any = None, reference: torch.Tensor | None = None,
                 samples: int = 500, window: int = 3, min_entropy: float = 2.0, seed: int = 0,
                 console: Console | None = None) -> None:
        self.every = every_n_steps
        self.judge, self.samples, self.seed = judge, samples, seed
        self.reference_features = None
        if judge is not None and reference is not None and len(reference) >= 2:
            self.reference_features = judge.embed(reference[:samples].float())[0].cpu()
        self.console = console or Console(stderr=True)
        self.rules = {"overpowered": partial(discriminator_overpowers, window=window),
                      "collapse": partial(coverage_collapsed, window=window, min_entropy=min_entropy)}
        self.history: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self._kinds: set[str] = set()
        self._last = -1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if not self.every or step == self._last or step % self.every:
            if not self.every:
                pl_module.take_window()  # nothing watches: keep no history of the steps
            return
        self._last = step
        entry = self.measure(pl_module, step)
        if entry is None:
            return
        self.history.append(entry)
        # The first fifth of a run is its opening: a fresh generator draws few classes, and D wins at first.
        judged = [h for h in self.history if h["step"] >= trainer.max_steps // 5] if trainer.max_steps > 0 else self.history
        metrics = {f"gan/{k}": v for k, v in entry.items() if k != "step" and isinstance(v, (int, float))}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)
        self._grid_to_tensorboard(trainer, pl_module, step)
        for kind, rule in self.rules.items():
            found = rule(judged)
            if found and kind not in self._kinds:
                self._kinds.add(kind)
                self.warnings.append(found)
                pl_module.gan_warnings.append(found)
                if trainer.is_global_zero:
                    self.console.print(f"[bold yellow]gan warning[/] {escape(found)}", highlight=False)

    def measure(self, pl_module: Any, step: int) -> dict[str, Any] | None:
        window = pl_module.take_window()
        if not window:
            return None
        entry: dict[str, Any] = {"step": step, **window}
        entry["critic"] = pl_module.settings.loss.scores == "critic"
        if window.get("d_loss"):
            entry["loss_balance"] = window.get("g_loss", 0.0) / window["d_loss"]
        if pl_module.model.progressive:
            entry["stage"], entry["alpha"] = pl_module.model.growth()
        if self.judge is not None:
            from archlab.metrics.generative import coverage, frechet_distance

            images = pl_module.sample(self.samples, seed=self.seed)
            features, logits = self.judge.embed(images)
            entry["class_histogram"], entry["coverage_entropy"] = coverage(logits)
            if self.reference_features is not None:
                entry["monitor_fid"] = frechet_distance(self.reference_features, features.cpu())
        return entry

    def _grid_to_tensorboard(self, trainer: L.Trainer, pl_module: Any, step: int) -> None:
        loggers = [logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]
        if not loggers or not trainer.is_global_zero:
            return
        from archlab.report.image_grid import grid_array

        grid = grid_array(pl_module.sample(64, seed=self.seed), nrow=8)
        for logger in loggers:
            logger.experiment.add_image("gan/samples", grid, step, dataformats="HWC")

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history), "warnings": list(self.warnings)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self.warnings = list(state_dict.get("warnings", []))
        self._kinds = set()
