"""Build Lightning's Trainer for a configuration: loggers, checkpoints, monitors, progress bar."""

from __future__ import annotations

import ctypes
import logging
import warnings
import ctypes.util
import math
from datetime import timedelta
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint, RichProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from archlab.config import TrainConfig
from archlab.engine.callbacks import RandomStateCallback, RunRecord
from archlab.errors import ConfigError
from archlab.monitor import GradientFlowMonitor, HiddenStateMonitor, WeightHistogramMonitor
from archlab.monitor.gradient_flow import LOG_FILE

CHECKPOINTS = "checkpoints"


def keep_freed_memory() -> None:
    """Ask glibc to keep freed activation buffers instead of returning them to the OS every step.

    By default glibc serves large allocations with mmap and unmaps them on free, so every training step
    pays page faults to re-map the same activation buffers; raising the thresholds keeps them in the heap.
    """
    path = ctypes.util.find_library("c")
    if not path:
        return
    libc = ctypes.CDLL(path)
    if not hasattr(libc, "mallopt"):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024)  # glibc's maximum on 64-bit
    libc.mallopt(m_trim_threshold, 2**30)


class _DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in record.getMessage()


def quiet_lightning() -> None:
    """Silence Lightning messages that say nothing about the run (adverts, its own deprecations).

    The CSV logger's "logs directory exists" warning is expected: config.yaml is written first, and a
    resume moves metrics.csv aside itself (see ``runs.stash_metrics``).
    """
    warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    # val_size=0 is a choice (e.g. the depth study), not a mistake.
    warnings.filterwarnings("ignore", message=r"You defined a `validation_step` but have no `val_dataloader`")
    # Short epochs (a time series' windows, a fold) are normal; archlab's steps log by global step anyway.
    warnings.filterwarnings("ignore", message=r"The number of training batches .* is smaller than the logging interval")
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropAdverts) for f in rank_zero.filters):
        rank_zero.addFilter(_DropAdverts())


def check_devices(config: TrainConfig) -> None:
    """GPU settings on a machine without CUDA: say so before Lightning fails with a traceback."""
    import torch

    has_cuda = torch.cuda.is_available()
    if config.accelerator in ("gpu", "cuda") and not has_cuda:
        raise ConfigError(f"--accelerator {config.accelerator} needs a CUDA GPU and PyTorch's CUDA build; "
                          "none is available here. Use --accelerator cpu (or auto).")
    if config.precision == "16-mixed" and (config.accelerator == "cpu" or not has_cuda):
        raise ConfigError("precision 16-mixed needs a CUDA GPU; on a CPU use --precision bf16-mixed (or 32).")


class RunProgressBar(RichProgressBar):
    """Rich's progress bar, its epoch counted against the run's own length.

    archlab runs a number of steps (``max_epochs=-1``), for which Lightning would print "Epoch 3/-2"; this bar
    prints "epoch 4 of 15" (1-based; the last epoch may be partial).
    """

    def __init__(self, epochs: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.epochs = epochs

    def _get_train_description(self, current_epoch: int) -> str:
        description = f"epoch {current_epoch + 1} of {self.epochs}"
        return f"{description:{len(self.validation_description)}}"


def periodic_checkpoint(config: TrainConfig, folder: Path) -> ModelCheckpoint:
    """``last.ckpt`` every N steps or every M minutes (Lightning writes it atomically)."""
    if config.checkpoint_every_n_steps:
        return ModelCheckpoint(dirpath=folder, save_top_k=0, save_last=True,
                               every_n_train_steps=config.checkpoint_every_n_steps)
    minutes = config.checkpoint_every_minutes or 5.0
    return ModelCheckpoint(dirpath=folder, save_top_k=0, save_last=True,
                           train_time_interval=timedelta(minutes=minutes))


def build_trainer(
    config: TrainConfig,
    run_dir: Path,
    *,
    total_steps: int,
    record: RunRecord,
    validate: bool,
    monitor: tuple[str, str] = ("val_acc", "max"),
    steps_per_epoch: int | None = None,
    loggers: bool = True,
    extra_callbacks: list[L.Callback] | None = None,
) -> L.Trainer:
    """A Trainer that runs ``total_steps`` optimizer steps (fractional epochs allowed).

    ``monitor`` = (validation metric, "min" | "max") picks ``best.ckpt`` and drives early stopping.
    """
    # The gradient-flow monitor comes first: on a non-finite step it drops the gradients before any
    # other callback (or the checkpoint of that step) can see them.
    callbacks: list[L.Callback] = [GradientFlowMonitor(config.monitor, log_file=run_dir / LOG_FILE), record,
                                   RandomStateCallback(), periodic_checkpoint(config, run_dir / CHECKPOINTS),
                                   HiddenStateMonitor(run_dir)]
    if validate:
        metric, mode = monitor
        callbacks.append(ModelCheckpoint(dirpath=run_dir / CHECKPOINTS, filename="best", monitor=metric,
                                         mode=mode, save_top_k=1, enable_version_counter=False))
        if config.early_stopping_patience:
            callbacks.append(EarlyStopping(monitor=metric, mode=mode, patience=config.early_stopping_patience))
    if loggers:
        callbacks += [LearningRateMonitor(logging_interval="step"), WeightHistogramMonitor(config.histogram_every_n_epochs)]
    callbacks += list(extra_callbacks or [])
    if config.progress:
        epochs = math.ceil(total_steps / steps_per_epoch) if steps_per_epoch else 1
        callbacks.append(RunProgressBar(epochs, refresh_rate=10, leave=True))
    logger_list = [CSVLogger(run_dir, name="", version=""), TensorBoardLogger(run_dir, name="tb", version="")]
    return L.Trainer(
        accelerator=config.accelerator,
        devices=config.devices,
        precision=config.precision,
        max_steps=total_steps,
        max_epochs=-1,
        max_time=timedelta(seconds=config.max_time) if config.max_time else None,
        deterministic=config.deterministic,
        gradient_clip_val=config.grad_clip or None,
        gradient_clip_algorithm=config.grad_clip_algorithm if config.grad_clip else None,
        callbacks=callbacks,
        logger=logger_list if loggers else False,
        log_every_n_steps=config.log_every_n_steps,
        enable_progress_bar=config.progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if validate else 0,
        **_validate_at_the_end(total_steps, steps_per_epoch),
        default_root_dir=run_dir,
    )


def _validate_at_the_end(total_steps: int, steps_per_epoch: int | None) -> dict[str, int]:
    """A run shorter than one epoch would never reach the end-of-epoch validation: validate at its end."""
    if steps_per_epoch and total_steps < steps_per_epoch:
        return {"val_check_interval": total_steps}
    return {}  # Lightning's default; passing 1.0 explicitly only makes it print a note


def total_steps_for(config: TrainConfig, steps_per_epoch: int) -> int:
    """``max_steps`` when set, else ``epochs`` worth of steps (at least one)."""
    return config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
