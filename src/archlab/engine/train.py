"""``train``: one configuration → one run directory, through the straight path of ARCHITECTURE.md.

data (cache → in-memory splits → batch loaders) → model (registry) → task (ClassifyTask) → Lightning
Trainer → run directory (config, metrics, checkpoints, safetensors weights, summary, predictions, report).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import math
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import lightning as L

from archlab.config import TrainConfig, resolve_config, save_config
from archlab.data import Augment, AugmentConfig, BatchLoader, ImageData, load_image_data
from archlab.engine.callbacks import RunRecord
from archlab.engine.trainer import (
    CHECKPOINTS,
    build_trainer,
    check_devices,
    keep_freed_memory,
    quiet_lightning,
    total_steps_for,
)
from archlab.data.fetch import get_spec
from archlab.errors import ConfigError, RunError
from archlab.io import atomic_write_json
from archlab.monitor import GradientFlowMonitor
from archlab.models import count_parameters, create_model, forward_mflops, get_model_info, resolve_model_args
from archlab.runs import (
    CONFIG,
    SUMMARY,
    Run,
    default_run_dir,
    merge_metrics,
    save_model,
    stash_metrics,
    write_predictions,
)
from archlab.tasks import ClassifyTask
from archlab.tasks.optim import check_names


def model_args_for(config: TrainConfig, data: ImageData) -> dict[str, Any]:
    """The model's constructor arguments: the data's shape and classes, then the user's ``model_args``."""
    info = get_model_info(config.model)
    accepted = inspect.signature(info.builder).parameters
    _, channels, height, _ = data.train.images.shape
    from_data = {"num_classes": len(data.classes), "in_channels": channels, "input_size": height}
    args = {k: v for k, v in from_data.items() if k in accepted}
    args.update(config.model_args)
    return resolve_model_args(config.model, **args)


def _drop_last(config: TrainConfig, data: ImageData) -> bool:
    """Every training step sees a full batch, unless the split is smaller than one batch."""
    return len(data.train) > config.batch_size


def make_loaders(config: TrainConfig, data: ImageData, rank: int, world_size: int):
    """Train (shuffled, augmented, sharded by rank), validation and test batch loaders."""
    mean = config.normalize_mean if config.normalize_mean is not None else data.mean
    std = config.normalize_std if config.normalize_std is not None else data.std
    augment_config = AugmentConfig.from_dict(config.augment)
    augment = Augment(augment_config) if augment_config.enabled else None
    common = {"mean": mean, "std": std, "channels_last": config.channels_last}
    train = BatchLoader(data.train, config.batch_size, shuffle=True, drop_last=_drop_last(config, data),
                        seed=config.seed, augment=augment, rank=rank, world_size=world_size, **common)
    val = BatchLoader(data.val, config.eval_batch_size, shuffle=False, rank=rank, world_size=world_size,
                      **common) if len(data.val) else None
    test = BatchLoader(data.test, config.eval_batch_size, shuffle=False, **common)
    return train, val, test, (mean, std)


def steps_per_epoch(config: TrainConfig, data: ImageData) -> int:
    """Optimizer steps per epoch for each process (the training split is sharded across processes)."""
    per_process = math.ceil(len(data.train) / config.devices)
    if _drop_last(config, data):
        return max(1, per_process // config.batch_size)
    return math.ceil(per_process / config.batch_size)


def build_task(config: TrainConfig, data: ImageData, model: torch.nn.Module, per_epoch: int) -> ClassifyTask:
    return ClassifyTask(
        model, num_classes=len(data.classes), optimizer=config.optimizer, schedule=config.schedule,
        total_steps=total_steps_for(config, per_epoch), steps_per_epoch=per_epoch,
        weight_decay=config.weight_decay, l1_penalty=config.l1_penalty, l2_penalty=config.l2_penalty,
        label_smoothing=config.label_smoothing, log_every_n_steps=config.log_every_n_steps,
    )


def run_summary(config: TrainConfig, trainer: L.Trainer, record: RunRecord, model: torch.nn.Module,
                input_shape: tuple[int, ...], per_epoch: int, test_metrics: dict[str, float],
                started: datetime) -> dict[str, Any]:
    seconds = record.train_seconds
    monitor = next((cb for cb in trainer.callbacks if isinstance(cb, GradientFlowMonitor)), None)
    return {
        "model": config.model, "data": config.data, "recipe": config.recipe,
        "test_metrics": test_metrics, "best_val": record.best_val, "wall_seconds": round(seconds, 3),
        "train_images_per_second": round(record.images / seconds, 1) if seconds else None,
        "epochs": round(trainer.global_step / per_epoch, 3), "steps": trainer.global_step,
        "params": count_parameters(model), "mflops": round(forward_mflops(model, input_shape), 3),
        "precision": config.precision, "seed": config.seed, "created": started.isoformat(timespec="seconds"),
        "threads": torch.get_num_threads(),
        "diagnostics": monitor.summary() if monitor else None,
    }


def fit(
    config: TrainConfig,
    data: ImageData,
    run_dir: Path,
    *,
    resume: bool = False,
    callbacks: list[L.Callback] | None = None,
) -> dict[str, Any]:
    """Train one model on ``data`` into ``run_dir``; returns the summary (also written to summary.json)."""
    started = datetime.now()
    last = run_dir / CHECKPOINTS / "last.ckpt"
    if resume and not last.is_file():
        raise RunError(f"Cannot resume {run_dir}: {last} does not exist (no checkpoint was written yet).")
    record = RunRecord()
    per_epoch = steps_per_epoch(config, data)
    trainer = build_trainer(config, run_dir, total_steps=total_steps_for(config, per_epoch), record=record,
                            validate=len(data.val) > 0, steps_per_epoch=per_epoch, extra_callbacks=callbacks)
    # Loaders are made once the trainer knows this process's rank, so that each takes its own shard.
    train_loader, val_loader, test_loader, (mean, std) = make_loaders(
        config, data, trainer.global_rank, trainer.world_size)
    model_args = model_args_for(config, data)
    model = create_model(config.model, **model_args)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    task = build_task(config, data, model, per_epoch)

    stashed = stash_metrics(run_dir) if resume else None
    trainer.fit(task, train_loader, val_loader, ckpt_path=str(last) if resume else None, weights_only=True)
    trainer.save_checkpoint(last, weights_only=False)
    test_metrics: dict[str, float] = {}
    if config.eval_test:
        results = trainer.test(task, test_loader, verbose=False)[0]
        test_metrics = {"accuracy": results["test_acc"], "loss": results["test_loss"]}
    if stashed is not None:
        # After the test pass, once the CSV logger has written its last row: it rewrites the file with only
        # the columns it has seen itself, so merging earlier would lose the interrupted run's columns.
        merge_metrics(run_dir, stashed, record.first_step)
    if not trainer.is_global_zero:  # only rank 0 writes the run directory
        return {}

    input_shape = tuple(data.train.images.shape[1:])
    meta = {"model": config.model, "model_args": model_args, "classes": list(data.classes),
            "normalization": {"mean": mean, "std": std}, "input_shape": list(input_shape), "data": config.data}
    save_model(run_dir, model.float(), meta)
    if config.eval_test:
        labels = torch.cat([y for y, _ in task.test_outputs])
        write_predictions(run_dir, labels, torch.cat([p for _, p in task.test_outputs]), data.test.images)
    summary = run_summary(config, trainer, record, model, input_shape, per_epoch, test_metrics, started)
    atomic_write_json(run_dir / SUMMARY, summary)
    return summary


def with_model_defaults(config: TrainConfig) -> TrainConfig:
    """Fill what the configuration leaves to the model: its default gradient clipping (registry ``grad_clip``)."""
    clip = get_model_info(config.model).grad_clip
    if config.grad_clip is None and clip is not None and config.monitor.auto_clip_percentile is None:
        return dataclasses.replace(config, grad_clip=clip)
    return config


def check_settings(config: TrainConfig) -> None:
    """Every name and argument a run will look up, checked before anything is fetched or written."""
    resolve_model_args(config.model, **config.model_args)
    check_names(config.optimizer, config.schedule)
    AugmentConfig.from_dict(config.augment)
    spec = get_spec(config.data)
    if spec.kind != "image":
        raise ConfigError(f"--data {config.data} is a {spec.kind} data set; `archlab train` classifies images "
                          f"(mnist, fashion-mnist). Its {spec.kind} loaders are in archlab.data.")
    check_devices(config)


@contextlib.contextmanager
def flushing_denormals() -> Iterator[None]:
    """Flush subnormal floats to zero on the CPU while inside, then restore the previous setting.

    Vanishing signals underflow into subnormal floats, which x86 CPUs handle tens of times slower: a deep
    plain MLP trained 6x slower for it. Flushing them changes nothing above 1e-38. The setting is global
    to the thread, so it is put back afterwards (other code may rely on IEEE subnormals).
    """
    was_flushing = bool((torch.tensor([1e-40]) * 1.0).item() == 0.0)
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(was_flushing)


def _prepare(config: TrainConfig) -> None:
    quiet_lightning()
    keep_freed_memory()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    L.seed_everything(config.seed, workers=False, verbose=False)


def cross_validate(config: TrainConfig, data: ImageData, run_dir: Path) -> dict[str, Any]:
    """K-fold cross-validation on the training split: one sub-run per fold, mean ± std of each metric."""
    from archlab.data import TensorSplit, kfold_splits

    full_train = TensorSplit(torch.cat([data.train.images, data.val.images]),
                             torch.cat([data.train.labels, data.val.labels]))
    folds = []
    fold_config = dataclasses.replace(config, cv=0, eval_test=False)
    for k, (train, val) in enumerate(kfold_splits(full_train, config.cv, config.seed)):
        fold_data = ImageData(data.name, train, val, data.test, data.classes, data.mean, data.std)
        fold_dir = run_dir / f"fold-{k}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        _prepare(fold_config)
        summary = fit(fold_config, fold_data, fold_dir)
        best = summary["best_val"] or {}
        folds.append({"fold": k, "val_acc": best.get("val_acc"), "val_loss": best.get("val_loss")})
    cv = {"k": config.cv, "folds": folds}
    for key in ("val_acc", "val_loss"):
        values = np.array([f[key] for f in folds], dtype=float)
        cv[f"{key}_mean"], cv[f"{key}_std"] = float(values.mean()), float(values.std(ddof=1))
    summary = {"model": config.model, "data": config.data, "recipe": config.recipe, "cv": cv,
               "created": datetime.now().isoformat(timespec="seconds"), "test_metrics": {},
               "wall_seconds": None, "epochs": config.epochs}
    atomic_write_json(run_dir / SUMMARY, summary)
    return summary


def train(
    model: str | None = None,
    *,
    recipe: str | None = None,
    config_file: str | Path | None = None,
    run_dir: str | Path | None = None,
    resume: str | Path | None = None,
    report: bool = True,
    callbacks: list[L.Callback] | None = None,
    **overrides: Any,
) -> Run:
    """Train ``model`` and return the finished :class:`Run` (Python twin of ``archlab train``).

    Settings come from ``recipe``, then ``config_file``, then keyword overrides (``epochs=2``,
    ``optimizer={"name": "sgd", "lr": 0.1}``...). ``resume=RUN_DIR`` continues an interrupted run from
    its last checkpoint with the configuration stored in it. ``callbacks`` are extra Lightning callbacks
    (monitors of one's own).
    """
    if resume is not None:
        run_path = Path(resume)
        if not (run_path / CONFIG).is_file():
            raise RunError(f"Cannot resume {run_path}: it has no {CONFIG}. Is it a run directory?")
        config = resolve_config(config_file=run_path / CONFIG)
    else:
        if model is not None:
            overrides["model"] = model
        config = with_model_defaults(resolve_config(recipe, config_file, overrides))
        check_settings(config)  # fail fast, before any data is fetched or any folder is made
        run_path = Path(run_dir) if run_dir else default_run_dir(config.model, config.data)
        run_path.mkdir(parents=True, exist_ok=True)
        save_config(config, run_path / CONFIG)
    _prepare(config)
    data = load_image_data(config.data, config.data_dir, config.val_size, config.seed)
    t0 = time.perf_counter()
    with flushing_denormals():
        if config.cv:
            cross_validate(config, data, run_path)
        else:
            fit(config, data, run_path, resume=resume is not None, callbacks=callbacks)
    run = Run.open(run_path)
    if report:
        run.report()
    run.summary.setdefault("total_seconds", round(time.perf_counter() - t0, 3))
    return run
