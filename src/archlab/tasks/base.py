"""What every task shares: the optimizer and its schedule (``TaskModule``), and how a task plugs into a run
(``TaskDef`` + the task registry).

A *task* is an objective on a kind of data: classify images or texts, model a language, forecast a series,
translate a sequence into another. Two objects make one:

- a ``TaskModule`` (a LightningModule): the loss, the metrics, the optimizer. It never defines layers: any
  registered model with the task's input/output contract fits.
- a ``TaskDef``: the wiring of that objective into ``archlab train`` -- which data sets it accepts, how it
  loads them into splits, which batches it feeds, which constructor arguments the data decides
  (``num_classes``, ``vocab_size``...), which metric picks the best checkpoint, and what it leaves in the run
  directory besides the weights (predictions, forecasts, samples).

The engine (``archlab.engine.train``) knows only the ``TaskDef`` interface, so a new objective is one module
in ``tasks/`` with one ``@register_task`` and nothing else changes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from torch import nn

from archlab.config import OptimizerConfig, ScheduleConfig, TrainConfig
from archlab.errors import ConfigError
from archlab.tasks.optim import build_optimizer, build_schedule, penalized_weights


@dataclass
class OptimSettings:
    """The optimizer, schedule and regularisation of a run, as a task module receives them."""

    optimizer: OptimizerConfig
    schedule: ScheduleConfig
    total_steps: int
    steps_per_epoch: int
    weight_decay: float = 0.0
    l1_penalty: float = 0.0
    l2_penalty: float = 0.0
    log_every_n_steps: int = 50

    @classmethod
    def from_config(cls, config: TrainConfig, total_steps: int, steps_per_epoch: int) -> "OptimSettings":
        return cls(config.optimizer, config.schedule, total_steps, steps_per_epoch, config.weight_decay,
                   config.l1_penalty, config.l2_penalty, config.log_every_n_steps)


class TaskModule(L.LightningModule):
    """A LightningModule around ``model`` with the run's optimizer, schedule and explicit L1/L2 penalties.

    Subclasses write the steps; ``penalized(loss)`` adds ``l1 · Σ|w| + l2 · Σ w²`` over weight tensors, and
    ``should_log()`` says whether this step's training metrics go to the loggers (logging costs a host sync).
    """

    def __init__(self, model: nn.Module, optim: OptimSettings) -> None:
        super().__init__()
        self.model = model
        self.optim = optim
        self.log_every_n_steps = max(1, optim.log_every_n_steps)

    def forward(self, *inputs: Any) -> Any:
        return self.model(*inputs)

    def should_log(self) -> bool:
        # Lightning hands on-step values to the loggers when (global_step + 1) % log_every_n_steps == 0.
        return (self.global_step + 1) % self.log_every_n_steps == 0

    def penalties(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        weights = list(penalized_weights(self.model))
        l1 = sum(w.abs().sum() for w in weights) if self.optim.l1_penalty else None
        l2 = sum(w.pow(2).sum() for w in weights) if self.optim.l2_penalty else None
        return l1, l2

    def penalized(self, loss: torch.Tensor, metrics: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``loss`` plus the explicit penalties; their values are added to ``metrics`` when given."""
        l1, l2 = self.penalties()
        if l1 is not None:
            loss = loss + self.optim.l1_penalty * l1
            if metrics is not None:
                metrics["l1_penalty"] = l1.detach()
        if l2 is not None:
            loss = loss + self.optim.l2_penalty * l2
            if metrics is not None:
                metrics["l2_penalty"] = l2.detach()
        return loss

    def configure_optimizers(self):
        mixed = self._trainer is not None and str(self.trainer.precision).endswith("mixed")
        optimizer = build_optimizer(self.model, self.optim.optimizer, self.optim.weight_decay, fused=not mixed)
        scheduler = build_schedule(optimizer, self.optim.schedule, self.optim.total_steps, self.optim.steps_per_epoch)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


@dataclass
class NoOptions:
    """A task without settings of its own."""


class TaskDef:
    """How one objective is wired into a run. Subclass, set the class attributes, register with ``@register_task``.

    Class attributes:
      name         the ``--task`` name
      data_kinds   the data-set kinds it accepts (``image``, ``text``, ``series``); ``check_data`` may narrow
      description  one line for ``archlab tasks``
      options      a dataclass of the task's own settings (``config.task_args``, ``--task-arg key=value``)
      monitor      (metric, "min"|"max"): picks ``best.ckpt`` and drives early stopping
      headline     the test metric shown first (summary tables, ``archlab runs``)
    """

    name: ClassVar[str]
    data_kinds: ClassVar[tuple[str, ...]]
    description: ClassVar[str] = ""
    options: ClassVar[type] = NoOptions
    monitor: ClassVar[tuple[str, str]] = ("val_loss", "min")
    headline: ClassVar[str] = "loss"

    # --- settings ---------------------------------------------------------------------------------------
    def settings(self, config: TrainConfig) -> Any:
        """``config.task_args`` as this task's options dataclass; unknown keys are rejected with the known ones."""
        known = {f.name for f in dataclasses.fields(self.options)}
        unknown = sorted(set(config.task_args) - known)
        if unknown:
            listed = ", ".join(sorted(known)) or "none"
            raise ConfigError(f"Task {self.name!r} has no setting(s) {', '.join(unknown)}. Its settings: {listed}.")
        try:
            return self.options(**config.task_args)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"Task {self.name!r}: invalid settings {config.task_args}: {err}") from err

    def check(self, config: TrainConfig, data_kind: str) -> None:
        """Everything that can be refused before data is loaded (settings, data set, cross-validation)."""
        self.settings(config)
        if config.cv and config.cv_method not in self.cv_methods:
            methods = ", ".join(self.cv_methods) or "none"
            raise ConfigError(f"Task {self.name!r} does not support --cv {config.cv_method}; it supports: {methods}.")

    cv_methods: ClassVar[tuple[str, ...]] = ()  # the --cv methods it supports (kfold, rolling)
    cv_scores_test: ClassVar[bool] = False  # a fold is scored on its test part (else: best validation)

    # --- data -------------------------------------------------------------------------------------------
    def load(self, config: TrainConfig) -> Any:
        """The run's data (splits, fitted tokenizer or scaler...), a pure function of the config and the cache."""
        raise NotImplementedError

    def model_args(self, config: TrainConfig, data: Any) -> dict[str, Any]:
        """Constructor arguments the data decides (the engine keeps those the model accepts)."""
        return {}

    def loaders(self, config: TrainConfig, data: Any, rank: int, world_size: int) -> tuple[Any, Any, Any]:
        """(train, validation or None, test) batch loaders for one process."""
        raise NotImplementedError

    def example_input(self, data: Any) -> tuple[int, ...] | tuple[torch.Tensor, ...] | None:
        """One sample's shape, or the input tensors of a batch of one (for MFLOPs/sample); None: not counted."""
        return None

    def cv_folds(self, config: TrainConfig, data: Any) -> list[Any]:
        """The data of each cross-validation fold (``config.cv`` folds by ``config.cv_method``)."""
        raise ConfigError(f"Task {self.name!r} has no cross-validation.")

    def cv_summary(self, fold_summaries: list[dict[str, Any]]) -> dict[str, Any]:
        """Extra summary fields of a cross-validated run, from its folds' summaries (e.g. baselines averaged)."""
        return {}

    # --- training ---------------------------------------------------------------------------------------
    def build(self, config: TrainConfig, data: Any, model: nn.Module, optim: OptimSettings) -> TaskModule:
        raise NotImplementedError

    def test_metrics(self, results: dict[str, float]) -> dict[str, float]:
        """``trainer.test``'s results (``test_*`` keys) as the summary's test metrics (prefix dropped)."""
        return {key.removeprefix("test_"): float(value) for key, value in results.items()}

    # --- artifacts --------------------------------------------------------------------------------------
    def meta(self, config: TrainConfig, data: Any) -> dict[str, Any]:
        """What inference needs beyond the model's name and arguments (classes, tokenizer, scaler...)."""
        return {}

    def save_outputs(self, run_dir: Path, config: TrainConfig, data: Any, module: TaskModule) -> dict[str, Any]:
        """Write the test outputs the report draws (after the test pass); returns extra summary fields."""
        return {}


_TASKS: dict[str, TaskDef] = {}


def register_task(cls: type[TaskDef]) -> type[TaskDef]:
    """Class decorator: make ``cls`` reachable as ``--task cls.name``."""
    if cls.name in _TASKS:
        raise ValueError(f"task name {cls.name!r} registered twice")
    _TASKS[cls.name] = cls()
    return cls


def _ensure_loaded() -> None:
    import archlab.tasks  # noqa: F401  (the package imports every task module, which registers it)


def get_task(name: str) -> TaskDef:
    _ensure_loaded()
    if name not in _TASKS:
        raise ConfigError(f"Unknown task {name!r}. Known tasks: {', '.join(sorted(_TASKS))}. "
                          "Run `archlab tasks` for what each does.")
    return _TASKS[name]


def list_tasks() -> list[TaskDef]:
    _ensure_loaded()
    return [_TASKS[name] for name in sorted(_TASKS)]
