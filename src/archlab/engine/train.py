"""``train``: one configuration → one run directory, through the straight path of ARCHITECTURE.md.

data (cache → the task's splits → its batch loaders) → model (registry) → task module (LightningModule) →
Lightning Trainer → run directory (config, metrics, checkpoints, safetensors weights, summary, outputs,
report). The task (``archlab.tasks``: classify, language, forecast, seq2seq...) decides the data, the
batches, the objective and the outputs; this module only drives the path.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import lightning as L

from archlab.config import TrainConfig, resolve_config, save_config
from archlab.data import AugmentConfig
from archlab.data.fetch import get_spec
from archlab.engine.callbacks import RunRecord
from archlab.engine.trainer import (
    CHECKPOINTS,
    build_trainer,
    check_devices,
    keep_freed_memory,
    quiet_lightning,
    total_steps_for,
)
from archlab.errors import ConfigError, RunError
from archlab.io import atomic_write_json
from archlab.monitor import GradientFlowMonitor
from archlab.models import count_parameters, create_model, forward_mflops, get_model_info, resolve_model_args
from archlab.runs import (
    CONFIG,
    SUMMARY,
    Run,
    check_same_vocabulary,
    default_run_dir,
    load_pretrained,
    merge_metrics,
    save_model,
    stash_metrics,
)
from archlab.tasks import OptimSettings, TaskDef, get_task, list_tasks
from archlab.tasks.optim import check_names


def resolve_task(config: TrainConfig) -> TaskDef:
    """The run's task: ``config.task``, else the model's first task that takes this kind of data.

    Unknown combinations (a forecasting task on an image data set, an image model on a text data set...)
    are refused with what would work instead.
    """
    kind = get_spec(config.data).kind
    info = get_model_info(config.model)
    if config.task is None:
        fitting = [name for name in info.tasks if kind in get_task(name).data_kinds]
        if not fitting:
            tasks = [t for t in list_tasks() if kind in t.data_kinds]
            suggestions = "; ".join(f"{t.name}: {', '.join(models_for(t.name)) or '—'}" for t in tasks)
            raise ConfigError(f"Model {config.model!r} ({', '.join(info.tasks)}) cannot learn from --data "
                              f"{config.data}, a {kind} data set. Models for {kind} data by task: {suggestions}.")
        task = get_task(fitting[0])
    else:
        task = get_task(config.task)
        if task.name not in info.tasks:
            raise ConfigError(f"Model {config.model!r} does not do --task {task.name} (it does: "
                              f"{', '.join(info.tasks)}). Models for {task.name}: {', '.join(models_for(task.name))}.")
        if kind not in task.data_kinds:
            raise ConfigError(f"--task {task.name} takes {' or '.join(task.data_kinds)} data; --data {config.data} "
                              f"is a {kind} data set. Run `archlab tasks` for what each task takes.")
    task.check(config, kind)
    return task


def models_for(task: str) -> list[str]:
    from archlab.models import list_models

    return [info.name for info in list_models() if task in info.tasks]


def model_args_for(config: TrainConfig, task: TaskDef, data: Any) -> dict[str, Any]:
    """The model's constructor arguments: what the data decides (e.g. classes, vocabulary), then ``model_args``."""
    info = get_model_info(config.model)
    accepted = inspect.signature(info.builder).parameters
    args = {k: v for k, v in task.model_args(config, data).items() if k in accepted}
    args.update(config.model_args)
    return resolve_model_args(config.model, **args)


def run_summary(config: TrainConfig, task: TaskDef, trainer: L.Trainer, record: RunRecord, model: torch.nn.Module,
                example: Any, per_epoch: int, test_metrics: dict[str, float], started: datetime) -> dict[str, Any]:
    seconds = record.train_seconds
    monitor = next((cb for cb in trainer.callbacks if isinstance(cb, GradientFlowMonitor)), None)
    rate = round(record.samples / seconds, 1) if seconds else None
    summary = {
        "model": config.model, "data": config.data, "task": task.name, "headline": task.headline,
        "recipe": config.recipe, "test_metrics": test_metrics, "best_val": record.best_val,
        "wall_seconds": round(seconds, 3), "train_samples_per_second": rate,
        "epochs": round(trainer.global_step / per_epoch, 3), "steps": trainer.global_step,
        "params": count_parameters(model),
        "mflops": round(forward_mflops(model, example), 3) if example is not None else None,
        "precision": config.precision, "seed": config.seed, "created": started.isoformat(timespec="seconds"),
        "threads": torch.get_num_threads(),
        "diagnostics": monitor.summary() if monitor else None,
    }
    if get_spec(config.data).kind == "image" and task.name == "classify":
        summary["train_images_per_second"] = rate
    return summary


def fit(
    config: TrainConfig,
    task: TaskDef,
    data: Any,
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
    record = RunRecord(task.monitor)
    # Steps per epoch of one process (the training split is sharded across config.devices processes).
    first_train, first_val, _ = task.loaders(config, data, 0, config.devices)
    per_epoch = max(1, len(first_train))
    trainer = build_trainer(config, run_dir, total_steps=total_steps_for(config, per_epoch), record=record,
                            validate=first_val is not None, monitor=task.monitor, steps_per_epoch=per_epoch,
                            extra_callbacks=callbacks)
    # Loaders are made again once the trainer knows this process's rank, so that each takes its own shard.
    train_loader, val_loader, test_loader = task.loaders(config, data, trainer.global_rank, trainer.world_size)
    model_args = model_args_for(config, task, data)
    model = create_model(config.model, **model_args)
    pretrained = None
    if config.init_from:
        check_same_vocabulary(config.init_from, task.meta(config, data))
        pretrained = load_pretrained(model, config.init_from)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    module = task.build(config, data, model, OptimSettings.from_config(config, total_steps_for(config, per_epoch),
                                                                       per_epoch))

    stashed = stash_metrics(run_dir) if resume else None
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if resume else None, weights_only=True)
    trainer.save_checkpoint(last, weights_only=False)
    test_metrics: dict[str, float] = {}
    if config.eval_test:
        test_metrics = task.test_metrics(trainer.test(module, test_loader, verbose=False)[0])
    if stashed is not None:
        # After the test pass, once the CSV logger has written its last row: it rewrites the file with only
        # the columns it has seen itself, so merging earlier would lose the interrupted run's columns.
        merge_metrics(run_dir, stashed, record.first_step)
    if not trainer.is_global_zero:  # only rank 0 writes the run directory
        return {}

    meta = {"model": config.model, "model_args": model_args, "task": task.name, "data": config.data,
            **task.meta(config, data)}
    save_model(run_dir, model.float(), meta)
    extra = task.save_outputs(run_dir, config, data, module) if config.eval_test else {}
    summary = run_summary(config, task, trainer, record, model, task.example_input(data), per_epoch,
                          test_metrics, started)
    summary.update(extra)
    if pretrained is not None:
        summary["init_from"] = pretrained
    atomic_write_json(run_dir / SUMMARY, summary)
    return summary


def with_model_defaults(config: TrainConfig) -> TrainConfig:
    """Fill what the configuration leaves to the model: its default gradient clipping (registry ``grad_clip``)."""
    clip = get_model_info(config.model).grad_clip
    if config.grad_clip is None and clip is not None and config.monitor.auto_clip_percentile is None:
        return dataclasses.replace(config, grad_clip=clip)
    return config


def check_settings(config: TrainConfig) -> TaskDef:
    """Every name and argument a run will look up, checked before anything is fetched or written."""
    resolve_model_args(config.model, **config.model_args)
    check_names(config.optimizer, config.schedule)
    AugmentConfig.from_dict(config.augment)
    task = resolve_task(config)
    check_devices(config)
    return task


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


def cross_validate(config: TrainConfig, task: TaskDef, data: Any, run_dir: Path) -> dict[str, Any]:
    """One sub-run per fold of ``task.cv_folds`` (``fold-K/``); each metric's per-fold values, mean and std.

    A fold is scored on its test part when the task says so (rolling origin: the window after the fold's
    training part), else on its best validation metrics (k-fold: the held-out fold).
    """
    folds, fold_summaries = [], []
    fold_config = dataclasses.replace(config, cv=0, eval_test=task.cv_scores_test)
    for k, fold_data in enumerate(task.cv_folds(config, data)):
        fold_dir = run_dir / f"fold-{k}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        _prepare(fold_config)
        summary = fit(fold_config, task, fold_data, fold_dir)
        fold_summaries.append(summary)
        scores = summary["test_metrics"] if task.cv_scores_test else {
            key: value for key, value in (summary["best_val"] or {}).items() if key.startswith("val_")}
        folds.append({"fold": k, **scores})
    cv = {"k": config.cv, "method": config.cv_method, "folds": folds}
    for key in sorted({key for fold in folds for key in fold if key != "fold"}):
        values = np.array([fold.get(key, np.nan) for fold in folds], dtype=float)
        cv[f"{key}_mean"], cv[f"{key}_std"] = float(np.nanmean(values)), float(np.nanstd(values, ddof=1))
    summary = {"model": config.model, "data": config.data, "task": task.name, "headline": task.headline,
               "recipe": config.recipe, "cv": cv, "created": datetime.now().isoformat(timespec="seconds"),
               "test_metrics": {}, "wall_seconds": round(sum(f["wall_seconds"] for f in fold_summaries), 3),
               **task.cv_summary(fold_summaries)}
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
        task = resolve_task(config)
    else:
        if model is not None:
            overrides["model"] = model
        config = with_model_defaults(resolve_config(recipe, config_file, overrides))
        task = check_settings(config)  # fail fast, before any data is fetched or any folder is made
        run_path = Path(run_dir) if run_dir else default_run_dir(config.model, config.data)
        run_path.mkdir(parents=True, exist_ok=True)
        save_config(config, run_path / CONFIG)
    _prepare(config)
    data = task.load(config)
    t0 = time.perf_counter()
    with flushing_denormals():
        if config.cv:
            cross_validate(config, task, data, run_path)
        else:
            fit(config, task, data, run_path, resume=resume is not None, callbacks=callbacks)
    run = Run.open(run_path)
    if report:
        run.report()
    run.summary.setdefault("total_seconds", round(time.perf_counter() - t0, 3))
    return run
