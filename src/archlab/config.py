"""Typed training configuration, resolved once: recipe YAML → ``--config`` file → CLI flags.

Every default lives here or in a named recipe (``src/archlab/recipes/*.yaml``). The fully resolved
configuration is written to the run directory as ``config.yaml``, so ``archlab train --config
RUN_DIR/config.yaml`` re-runs a run exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from archlab.errors import ConfigError

PRECISIONS = ("32", "bf16-mixed", "16-mixed")


@dataclass
class OptimizerConfig:
    """Optimizer by name (see ``archlab.tasks.optim.OPTIMIZERS``) and its hyper-parameters."""

    name: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    alpha: float = 0.99  # RMSprop smoothing constant


@dataclass
class ScheduleConfig:
    """Learning-rate schedule by name (see ``archlab.tasks.optim.SCHEDULES``)."""

    name: str = "constant"
    warmup_fraction: float = 0.25  # one-cycle: fraction of steps spent rising to the peak
    step_epochs: float = 1.0  # step: decay every this many epochs
    gamma: float = 0.1  # step: multiplicative decay
    final_lr_fraction: float = 0.0  # cosine: final lr as a fraction of the peak


@dataclass
class MonitorConfig:
    """The gradient-flow monitor: what it measures, how often, and when it raises a diagnosis.

    See ``archlab.monitor.GradientFlowMonitor`` for what each diagnosis means.
    """

    every_n_steps: int = 100  # per-layer gradient/weight/update norms and dead units (0: off)
    vanish_ratio: float = 1e-3  # first-layer / last-layer gradient norm under this: vanishing
    tiny_norm: float = 1e-8  # a layer gradient norm under this: vanishing in that layer
    explode_norm: float = 1e3  # a layer gradient norm over this: exploding
    dead_fraction: float = 0.5  # fraction of a ReLU layer's units never active over this: dead ReLUs
    plateau_patience: int = 5  # loss windows (or evaluations) without progress: plateau
    min_delta: float = 0.01  # relative loss change that counts as progress
    check_finite: bool = True  # stop cleanly when the loss or a gradient becomes NaN/Inf
    auto_clip_percentile: float | None = None  # AutoClip: clip at this percentile of past gradient norms
    print_diagnoses: bool = True  # print the first finding of each kind (they always go to diagnostics.log)


CV_METHODS = ("kfold", "rolling")


@dataclass
class TrainConfig:
    """Everything that defines a training run (any task: classify, language, forecast, seq2seq...)."""

    model: str = "cnn"
    model_args: dict[str, Any] = field(default_factory=dict)
    data: str = "mnist"
    task: str | None = None  # None: the model's default task for this kind of data (see ``archlab tasks``)
    task_args: dict[str, Any] = field(default_factory=dict)  # the task's own settings (e.g. horizon=12)
    init_from: str | None = None  # a run directory or .safetensors file: start from its weights where names fit
    data_dir: str | None = None
    recipe: str | None = None
    val_size: int = 5000
    batch_size: int = 128
    eval_batch_size: int = 1000
    epochs: float = 3.0
    max_steps: int | None = None  # optimizer steps; when set it replaces ``epochs`` as the training length
    max_time: float | None = None  # seconds of training wall time; stops early when reached
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    weight_decay: float = 0.0  # L2 as decoupled/coupled weight decay inside the optimizer
    l2_penalty: float = 0.0  # L2 as an explicit loss term: l2_penalty * sum(w^2)
    l1_penalty: float = 0.0  # L1 as an explicit loss term: l1_penalty * sum(|w|)
    label_smoothing: float = 0.0
    augment: dict[str, Any] = field(default_factory=dict)
    normalize_mean: float | None = None  # None: the training split's own statistics
    normalize_std: float | None = None
    grad_clip: float | None = None  # None: the model's default (recurrent models 1.0, others none); 0: off
    grad_clip_algorithm: str = "norm"
    early_stopping_patience: int | None = None
    precision: str = "32"
    channels_last: bool = False
    seed: int = 0
    deterministic: bool = False
    cv: int = 0  # folds of cross-validation (0: off)
    cv_method: str = "kfold"  # kfold (shuffled folds of the training split) or rolling (time series: rolling origin)
    log_every_n_steps: int = 50
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    histogram_every_n_epochs: int = 1
    checkpoint_every_n_steps: int | None = None
    checkpoint_every_minutes: float | None = 5.0
    accelerator: str = "auto"
    devices: int = 1
    num_threads: int | None = None
    eval_test: bool = True
    progress: bool = True

    def validate(self) -> "TrainConfig":
        """Reject values that cannot work, with the reason and the accepted range."""
        checks = [
            (self.batch_size >= 1, f"batch_size must be ≥ 1, got {self.batch_size}"),
            (self.epochs > 0, f"epochs must be > 0, got {self.epochs}"),
            (self.max_steps is None or self.max_steps >= 1, f"max_steps must be ≥ 1, got {self.max_steps}"),
            (self.optimizer.lr > 0, f"learning rate must be > 0, got {self.optimizer.lr}"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"),
            (0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.val_size >= 0, f"val_size must be ≥ 0, got {self.val_size}"),
            (self.cv == 0 or self.cv >= 2, f"cv must be 0 (off) or ≥ 2 folds, got {self.cv}"),
            (self.cv_method in CV_METHODS, f"cv_method must be one of {', '.join(CV_METHODS)}, got {self.cv_method!r}"),
            (self.grad_clip_algorithm in ("norm", "value"), "grad_clip_algorithm must be 'norm' or 'value'"),
            (self.grad_clip is None or self.grad_clip >= 0, f"grad_clip must be ≥ 0 (0: off), got {self.grad_clip}"),
            (min(self.weight_decay, self.l1_penalty, self.l2_penalty) >= 0, "weight decay and penalties must be ≥ 0"),
            (self.max_time is None or self.max_time > 0, f"max_time must be > 0 seconds, got {self.max_time}"),
            *self.monitor_checks(),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self

    def monitor_checks(self) -> list[tuple[bool, str]]:
        m = self.monitor
        percentile = m.auto_clip_percentile
        return [
            (m.every_n_steps >= 0, f"monitor.every_n_steps must be ≥ 0 (0 turns it off), got {m.every_n_steps}"),
            (m.vanish_ratio > 0 and m.tiny_norm >= 0 and m.explode_norm > 0, "monitor thresholds must be > 0"),
            (0 < m.dead_fraction <= 1, f"monitor.dead_fraction must be in (0, 1], got {m.dead_fraction}"),
            (m.plateau_patience >= 2, f"monitor.plateau_patience must be ≥ 2, got {m.plateau_patience}"),
            (percentile is None or 0 < percentile <= 100,
             f"monitor.auto_clip_percentile must be in (0, 100], got {percentile}"),
            (percentile is None or not self.grad_clip,
             "choose one gradient clipping: grad_clip (a fixed value) or monitor.auto_clip_percentile (AutoClip)"),
        ]

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    """Tuples → lists, recursively, so the YAML is plain and safe_load-able."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


FREE_FORM = ("model_args", "task_args")  # dicts merged key by key, checked by the model / the task


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in FREE_FORM:
            merged[key] = _merge(merged[key], value)
        elif key in FREE_FORM and isinstance(value, dict):
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    return merged


SUBCONFIGS: dict[str, type] = {"optimizer": OptimizerConfig, "schedule": ScheduleConfig, "monitor": MonitorConfig}


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """Instantiate a config dataclass from a dict, rejecting unknown keys with the known ones."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"Unknown setting(s) {', '.join(unknown)} in {where}. Known: {', '.join(known)}.")
    kwargs = {}
    for name, value in values.items():
        if name in SUBCONFIGS and cls is TrainConfig:
            sub = SUBCONFIGS[name]
            value = value if isinstance(value, sub) else _build(sub, value or {}, f"{where}.{name}")
        elif name == "betas" and value is not None:
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def list_recipes() -> list[str]:
    """Names of the recipes shipped with archlab."""
    folder = resources.files("archlab.recipes")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_recipe(name: str) -> dict[str, Any]:
    """The settings of a shipped recipe, as a dict."""
    if name not in list_recipes():
        raise ConfigError(f"Unknown recipe {name!r}. Known recipes: {', '.join(list_recipes())}.")
    text = resources.files("archlab.recipes").joinpath(f"{name}.yaml").read_text()
    return yaml.safe_load(text) or {}


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a YAML file (a recipe of one's own, or a run's config.yaml)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist. Pass a YAML file, e.g. RUN_DIR/config.yaml.")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"Config file {path} is not valid YAML: {err}") from err
    if not isinstance(values, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of settings, not {type(values).__name__}.")
    return values


def resolve_config(
    recipe: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """Recipe, then config file, then explicit overrides (None values are ignored), validated."""
    values: dict[str, Any] = {}
    if recipe:
        values = _merge(values, load_recipe(recipe))
    if config_file:
        values = _merge(values, load_config_file(config_file))
    clean = {k: v for k, v in (overrides or {}).items() if v is not None}
    values = _merge(values, clean)
    if recipe:
        values["recipe"] = recipe
    return _build(TrainConfig, values, "the configuration").validate()


def save_config(config: TrainConfig, path: Path) -> None:
    """Write the resolved configuration as YAML, atomically."""
    from archlab.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
