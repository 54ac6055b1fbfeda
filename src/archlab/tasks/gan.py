"""The ``gan`` task wired into a run: adversarial training of a GAN model on MNIST / Fashion-MNIST images in [-1, 1].

    archlab train dcgan --data mnist -t instance_noise=0.1 -t lr_d=1e-4
    archlab train cgan --data mnist -t holdout_class=9            (labels are used by conditional models only)

The adversarial loss comes from the model (``default_loss``: ``bce``, ``wgan-gp`` or ``seed``; ``-t loss=...``
overrides it); the losses, the gradient penalty and the schedules are in ``gan_losses.py``, the training step in
``gan_module.py``, sampling and ``archlab eval`` in ``gan_sampling.py``, the monitor in ``monitor/gan.py``.

There is no validation loss for a GAN: validation scores ``val_samples`` generated images by FID against the
validation split (on the judge's features), and the lowest ``val_fid`` is kept as ``best.ckpt``. The test pass
scores ``eval_samples`` (10,000) images against the test split: FID, KID, IS and class coverage (headline: FID).
A data set without a judge trains without any of these scores.

Outputs for the report: ``samples.png`` (64 samples), ``class_grid.png`` (conditional models: one row per class),
``interpolation.png`` (latent walks) and ``gan_history.json`` (the monitor's history, warnings, test scores).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from archlab.config import TrainConfig
from archlab.data import BatchLoader, ImageData, TensorSplit, load_image_data
from archlab.data.splits import holding_out, signed
from archlab.data.fetch import get_spec
from archlab.errors import ArchlabError, ConfigError
from archlab.io import atomic_write_json
from archlab.models import get_model_info
from archlab.tasks.base import OptimSettings, TaskDef, register_task
from archlab.tasks.gan_losses import LOSSES, get_loss
from archlab.tasks.gan_module import GanSettings, GanTask
from archlab.tasks.gan_sampling import class_rows, interpolate

SAMPLES_PNG = "samples.png"
CLASS_GRID_PNG = "class_grid.png"
INTERPOLATION_PNG = "interpolation.png"
HISTORY_JSON = "gan_history.json"
MEAN = STD = 0.5  # uint8/255 → [-1, 1]: every generative model's convention


@dataclass
class GanOptions:
    """Settings of ``--task gan`` (``-t key=value``)."""

    loss: str | None = None  # bce | seed | wgan-gp; None: the model's own (default_loss)
    d_steps: int | None = None  # discriminator (critic) updates per generator update; None: the loss's (wgan-gp 5)
    gp_weight: float | None = None  # gradient penalty λ; None: the loss's (wgan-gp 10, others 0)
    lr_g: float | None = None  # generator learning rate (TTUR); None: the run's optimizer lr
    lr_d: float | None = None  # discriminator learning rate; None: the run's optimizer lr
    betas: tuple[float, float] | None = None  # Adam betas of both; None: the run's optimizer betas
    instance_noise: float = 0.0  # σ of Gaussian noise on D's inputs at the start, annealed linearly to 0
    label_smoothing: float = 0.0  # one-sided: real target 1 − s (bce, seed)
    pretrain_d_steps: int = 0  # steps of D trained as a classifier of the real labels before the game
    holdout_class: int | None = None  # train on every class but this one
    grow_every: int | None = None  # pggan: iterations per stage; None: a third of the run (of its steps or its time)
    fade_steps: int | None = None  # pggan: iterations of fade-in of a new stage; None: half a stage
    monitor_every: int = 200  # iterations between monitor checks (0: off)
    monitor_samples: int = 500  # generated images per monitor check (coverage, small-sample FID)
    val_samples: int = 2000  # generated and real images compared at validation (val_fid)
    eval_samples: int = 10_000  # generated images scored at test

    def __post_init__(self) -> None:
        if self.loss is not None and self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.betas is not None:
            if len(self.betas) != 2:
                raise ValueError(f"betas must be two numbers, e.g. [0.5, 0.999], got {self.betas}")
            self.betas = (float(self.betas[0]), float(self.betas[1]))
        checks = [
            (self.d_steps is None or self.d_steps >= 1, f"d_steps must be ≥ 1, got {self.d_steps}"),
            (self.gp_weight is None or self.gp_weight >= 0, f"gp_weight must be ≥ 0, got {self.gp_weight}"),
            (self.instance_noise >= 0, f"instance_noise must be ≥ 0, got {self.instance_noise}"),
            (0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.pretrain_d_steps >= 0, f"pretrain_d_steps must be ≥ 0, got {self.pretrain_d_steps}"),
            (self.grow_every is None or self.grow_every >= 1, f"grow_every must be ≥ 1, got {self.grow_every}"),
            (self.fade_steps is None or self.fade_steps >= 0, f"fade_steps must be ≥ 0, got {self.fade_steps}"),
            (self.monitor_every >= 0, f"monitor_every must be ≥ 0, got {self.monitor_every}"),
            (min(self.monitor_samples, self.val_samples, self.eval_samples) >= 2,
             "monitor_samples, val_samples and eval_samples must be ≥ 2"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass
class GanData:
    """The run's images (training and validation splits without the held-out class) and what decides the model."""

    images: ImageData
    model: str
    train_classes: tuple[int, ...]
    holdout_class: int | None


_JUDGES: dict[str, Any] = {}


def judge_or_none(data: str) -> Any:
    """The data set's judge, or None (with a warning saying what is lost) when there is none."""
    if data not in _JUDGES:
        from archlab.metrics.generative import judge_for

        try:
            _JUDGES[data] = judge_for(data)
        except ArchlabError as err:
            warnings.warn(f"GAN training without FID, IS or class coverage: {err}", RuntimeWarning, stacklevel=2)
            _JUDGES[data] = None
    return _JUDGES[data]


@register_task
class GanDef(TaskDef):
    name: ClassVar[str] = "gan"
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    description: ClassVar[str] = ("images from noise: a generator against a discriminator (FID, KID, IS and class "
                                  "coverage by the data set's judge)")
    options: ClassVar[type] = GanOptions
    monitor: ClassVar[tuple[str, str]] = ("val_fid", "min")
    headline: ClassVar[str] = "fid"

    def check(self, config: TrainConfig, data_kind: str) -> None:
        super().check(config, data_kind)
        o = self.settings(config)
        if config.grad_clip:
            raise ConfigError("A GAN run updates two networks by hand (manual optimization), which Lightning cannot "
                              "clip; drop --grad-clip (a gradient penalty, -t gp_weight=10, bounds D's gradients).")
        classes = get_spec(config.data).classes
        if o.holdout_class is not None and not 0 <= o.holdout_class < len(classes):
            raise ConfigError(f"holdout_class={o.holdout_class} is outside --data {config.data}: valid classes are "
                              f"0..{len(classes) - 1}.")
        loss = get_loss(o.loss or get_model_info(config.model).builder.default_loss)
        if o.label_smoothing and not loss.smoothing:
            raise ConfigError("label_smoothing changes a real target of 1; the wgan-gp critic has no targets. "
                              "Drop -t label_smoothing, or use -t loss=bce.")
        if o.pretrain_d_steps and not classes:
            raise ConfigError(f"pretrain_d_steps trains D as a classifier, but --data {config.data} has no labels.")

    # --- data -------------------------------------------------------------------------------------------
    def load(self, config: TrainConfig) -> GanData:
        o = self.settings(config)
        data = load_image_data(config.data, config.data_dir, config.val_size, config.seed)
        if tuple(data.train.images.shape[1:]) != (1, 28, 28):
            raise ConfigError(f"GAN models draw 1×28×28 images; --data {config.data} has images of shape "
                              f"{tuple(data.train.images.shape[1:])}.")
        images = holding_out(data, o.holdout_class)
        present = tuple(int(c) for c in torch.unique(images.train.labels).tolist())
        return GanData(images, config.model, present, o.holdout_class)

    def model_args(self, config: TrainConfig, data: GanData) -> dict[str, Any]:
        return {"num_classes": len(data.images.classes)}

    def _d_steps(self, config: TrainConfig) -> int:
        o = self.settings(config)
        return o.d_steps or get_loss(o.loss or get_model_info(config.model).builder.default_loss).d_steps

    def loaders(self, config: TrainConfig, data: GanData, rank: int, world_size: int):
        images = data.images
        common = {"mean": MEAN, "std": STD, "rank": rank, "world_size": world_size}
        # One training batch feeds one iteration: d_steps slices of batch_size real images, one per D update.
        train = BatchLoader(images.train, config.batch_size * self._d_steps(config), shuffle=True, drop_last=True,
                            seed=config.seed, **common)
        validate = len(images.val) >= 2 and judge_or_none(config.data) is not None
        val = BatchLoader(images.val, config.eval_batch_size, shuffle=False, **common) if validate else None
        # The test pass only generates and scores; one batch of real images keeps Lightning's loop honest.
        one_batch = images.test.subset(torch.arange(min(len(images.test), config.eval_batch_size)))
        return train, val, BatchLoader(one_batch, config.eval_batch_size, shuffle=False, mean=MEAN, std=STD)

    def example_input(self, data: GanData) -> tuple[torch.Tensor, ...]:
        return get_model_info(data.model).example_inputs(1)

    # --- training ---------------------------------------------------------------------------------------
    def resolve(self, config: TrainConfig, data: GanData, model: torch.nn.Module) -> GanSettings:
        o = self.settings(config)
        loss_name = o.loss or model.default_loss
        loss = get_loss(loss_name)
        return GanSettings(
            loss=loss, loss_name=loss_name, d_steps=self._d_steps(config),
            gp_weight=o.gp_weight if o.gp_weight is not None else loss.gp_weight,
            lr_g=o.lr_g or config.optimizer.lr, lr_d=o.lr_d or config.optimizer.lr,
            betas=o.betas or tuple(config.optimizer.betas), instance_noise=o.instance_noise,
            label_smoothing=o.label_smoothing, pretrain_d_steps=o.pretrain_d_steps, grow_every=o.grow_every,
            fade_steps=o.fade_steps if o.fade_steps is not None else (o.grow_every or 0) // 2,
            monitor_every=o.monitor_every, monitor_samples=o.monitor_samples, val_samples=o.val_samples,
            eval_samples=o.eval_samples, num_classes=len(data.images.classes), train_classes=data.train_classes,
            data=config.data, data_dir=config.data_dir, seed=config.seed, max_time=config.max_time)

    def build(self, config: TrainConfig, data: GanData, model, optim: OptimSettings) -> GanTask:
        check_players(model, config.model)
        settings = self.resolve(config, data, model)
        reference = data.images.val if len(data.images.val) >= 2 else data.images.train
        picked = reference.images[: settings.monitor_samples]
        return GanTask(model, optim, settings, judge_or_none(config.data), signed(picked))

    # --- artifacts --------------------------------------------------------------------------------------
    def meta(self, config: TrainConfig, data: GanData) -> dict[str, Any]:
        return {"classes": list(data.images.classes), "train_classes": list(data.train_classes),
                "holdout_class": data.holdout_class, "normalization": {"mean": MEAN, "std": STD},
                "input_shape": [1, 28, 28], "input_kind": "latent"}

    def save_outputs(self, run_dir: Path, config: TrainConfig, data: GanData, module: GanTask) -> dict[str, Any]:
        from archlab.report.image_grid import save_image_grid

        model, s = module.model, module.settings
        save_image_grid(module.sample(64, seed=s.seed), run_dir / SAMPLES_PNG, nrow=8)
        if getattr(model, "num_classes", 0):
            save_image_grid(class_rows(model, 10, seed=s.seed), run_dir / CLASS_GRID_PNG, nrow=10)
        save_image_grid(interpolate(model, 8, 10, seed=s.seed), run_dir / INTERPOLATION_PNG, nrow=10)
        settings = {"loss": s.loss_name, "d_steps": s.d_steps, "gp_weight": s.gp_weight, "lr_g": s.lr_g,
                    "lr_d": s.lr_d, "betas": list(s.betas), "instance_noise": s.instance_noise,
                    "label_smoothing": s.label_smoothing, "pretrain_d_steps": s.pretrain_d_steps}
        if model.progressive:
            settings.update(grow_every=s.grow_every or "a third of the run", fade_steps=s.fade_steps or "half a stage")
        atomic_write_json(run_dir / HISTORY_JSON, {"settings": settings, "history": module.monitor.history,
                                                   "warnings": module.gan_warnings, "test": module.test_scores})
        extra: dict[str, Any] = {"gan": settings, "gan_warnings": list(module.gan_warnings)}
        if module.test_scores:
            extra["class_histogram"] = module.test_scores["class_histogram"]
        return extra


def check_players(model: torch.nn.Module, name: str) -> None:
    """Every parameter belongs to exactly one player: each optimizer must see its own network whole."""
    generator = {id(p) for p in model.generator.parameters()}
    discriminator = {id(p) for p in model.discriminator.parameters()}
    loose = [n for n, p in model.named_parameters() if (id(p) in generator) == (id(p) in discriminator)]
    if loose:
        raise ConfigError(f"Model {name!r}: parameters {', '.join(loose[:4])} belong to neither or both of its "
                          "generator and discriminator; a GAN model must split them (see models/gan.py).")

