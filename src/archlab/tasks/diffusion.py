"""The ``diffusion`` task: train a denoising network on images, judge its samples by the offline FID.

Objective (Ho et al. 2020, algorithm 1; "simple" loss), for images x_0 in [-1, 1]::

    t ~ U{0..T-1},  eps ~ N(0, I),  x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps
    loss = || f(x_t, t, y) - target ||²,    target = eps (prediction=eps) or v = sqrt(abar) eps - sqrt(1 - abar) x_0

with the class y replaced by the null class with probability ``cond_drop`` for conditional networks, so one
network learns p(x | y) and p(x) for classifier-free guidance (Ho & Salimans 2021).

EMA weights (``ema_decay``): Lightning's ``WeightAveraging`` callback over ``torch.optim.swa_utils``'s
``AveragedModel``, attached by the module itself (``configure_callbacks``), because it already does what a run
needs with no change to the engine: validation runs on the averaged weights, checkpoints carry both sets (and a
resumed run restores both), and at the end of training the averaged weights are copied into the network, so
the test pass, ``weights.safetensors`` and every later ``archlab sample`` use them. The decay warms up as
``min(decay, (1 + n) / (10 + n))`` after n updates (as in diffusers' EMAModel): a fixed 0.999 would leave
13% of the random initial weights in the average after 2,000 steps, which is all a CPU run may take.

Validation: the loss at fixed, evenly spread t's with fixed noise (a seeded generator per batch), so its value
is comparable across epochs. Test: the same loss on the test split, then ``eval_samples`` samples
(``eval_sampler`` with ``eval_steps`` steps) scored against the test split by ``archlab.metrics.generative``
(FID, KID, Inception Score and class coverage on the judge network's features); the headline is FID. That
sampling shows no bar of its own (Lightning's rich bar is live during the test pass; rich allows one at a time).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn

from archlab.config import TrainConfig
from archlab.data import BatchLoader, ImageData, load_image_data
from archlab.data.fetch import get_spec
from archlab.diffusion.pipeline import DiffusionModel, generate
from archlab.diffusion.predictions import PREDICTIONS, get_prediction
from archlab.diffusion.samplers import SAMPLERS, make_sampler
from archlab.diffusion.schedules import SCHEDULES, make_schedule
from archlab.errors import ArchlabError, ConfigError
from archlab.tasks.base import OptimSettings, TaskDef, TaskModule, register_task

PIXEL_MEAN, PIXEL_STD = 0.5, 0.5  # every generative model here sees images in [-1, 1]


@dataclass
class DiffusionOptions:
    """Settings of ``--task diffusion`` (``-t key=value``)."""

    schedule: str = "linear"  # linear, quadratic, cosine, log-snr
    timesteps: int = 1000
    prediction: str = "eps"  # eps or v
    cond_drop: float = 0.1  # conditional networks: share of labels replaced by the null class
    ema_decay: float = 0.999  # 0: no EMA
    eval_samples: int = 10000  # samples scored at test time (0: none, only the test loss)
    eval_sampler: str = "ddim"
    eval_steps: int | None = 50  # None: every step
    eval_eta: float = 0.0
    eval_guidance: float = 1.0  # conditional networks: guidance scale of the scored samples (1: plain conditional)
    sample_seed: int = 0

    def __post_init__(self) -> None:
        for value, known, what in ((self.schedule, SCHEDULES, "schedule"), (self.prediction, PREDICTIONS, "prediction"),
                                   (self.eval_sampler, SAMPLERS, "eval_sampler")):
            if value not in known:
                raise ValueError(f"unknown {what} {value!r}; known: {', '.join(sorted(known))}")
        if self.timesteps < 2 or self.eval_samples < 0:
            raise ValueError("timesteps must be ≥ 2 and eval_samples ≥ 0")
        if not 0.0 <= self.cond_drop < 1.0 or not 0.0 <= self.ema_decay < 1.0:
            raise ValueError("cond_drop and ema_decay must be in [0, 1)")


def ema_multi_avg_fn(decay: float):
    """In-place EMA of a group of tensors with the warm-up ``min(decay, (1 + n) / (10 + n))``."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        n = float(num_averaged)
        weight = 1.0 - min(decay, (1.0 + n) / (10.0 + n))
        for average, value in zip(averaged, current):
            average.lerp_(value, weight)

    return update


class DiffusionTask(TaskModule):
    """The objective above around any network ``f(x_t, t[, labels])``; the schedule is a buffer-only module."""

    def __init__(self, model: nn.Module, optim: OptimSettings, *, options: DiffusionOptions, data_name: str,
                 data_dir: str | None = None, image_shape: tuple[int, ...] = (1, 28, 28)) -> None:
        super().__init__(model, optim)
        self.options, self.data_name, self.data_dir = options, data_name, data_dir
        self.image_shape = tuple(image_shape)
        self.schedule = make_schedule(options.schedule, options.timesteps)
        self.prediction = get_prediction(options.prediction)
        self.num_classes = int(getattr(model, "num_classes", 0) or 0)
        self.scores: dict[str, Any] = {}
        self.samples: torch.Tensor | None = None

    def configure_callbacks(self) -> list:
        # Lightning asks again at trainer.test(); the fitted callback stays, a second one would replace it.
        if not self.options.ema_decay or self.trainer.state.fn != TrainerFn.FITTING:
            return []
        return [WeightAveraging(multi_avg_fn=ema_multi_avg_fn(self.options.ema_decay))]

    def diffusion_model(self) -> DiffusionModel:
        return DiffusionModel(self.model, self.schedule, self.options.prediction,
                              {"image_shape": list(self.image_shape)})

    def _loss(self, x0: torch.Tensor, labels: torch.Tensor | None, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        x_t = self.schedule.q_sample(x0, t, noise)
        output = self.model(x_t, t, labels) if labels is not None else self.model(x_t, t)
        target = self.prediction.target(x0, noise, self.schedule.abar(t, x0))
        return F.mse_loss(output.float(), target)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x0, y = batch
        t = torch.randint(0, self.schedule.timesteps, (x0.shape[0],), device=x0.device)
        labels = None
        if self.num_classes:
            drop = torch.rand(y.shape, device=y.device) < self.options.cond_drop
            labels = torch.where(drop, torch.full_like(y, self.num_classes), y)
        metrics: dict[str, torch.Tensor] = {}
        loss = self.penalized(self._loss(x0, labels, t, torch.randn_like(x0)), metrics)
        if self.should_log():
            metrics["train_loss"] = loss.detach()
            self.log_dict(metrics, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def _fixed_loss(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x0, y = batch
        generator = torch.Generator().manual_seed(10_000 + batch_idx)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
        t = (torch.arange(x0.shape[0], device=x0.device) * self.schedule.timesteps) // x0.shape[0]
        return self._loss(x0, y if self.num_classes else None, t, noise)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.log("val_loss", self._fixed_loss(batch, batch_idx), on_epoch=True, prog_bar=True, sync_dist=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.log("test_loss", self._fixed_loss(batch, batch_idx), on_epoch=True, sync_dist=True)

    def draw_samples(self, n: int) -> torch.Tensor:
        """``n`` samples with the evaluation sampler (conditional networks: classes in turn)."""
        o = self.options
        labels = torch.arange(n) % self.num_classes if self.num_classes else None
        guidance = o.eval_guidance if self.num_classes and o.eval_guidance != 1.0 else None
        return generate(self.diffusion_model(), n, sampler=o.eval_sampler, steps=o.eval_steps, eta=o.eval_eta,
                        labels=labels, guidance=guidance, seed=o.sample_seed)

    def on_test_epoch_end(self) -> None:
        if not self.options.eval_samples:
            return
        from archlab.metrics.generative import score_images

        self.samples = self.draw_samples(self.options.eval_samples)
        self.scores = score_images(self.samples, self.data_name, data_dir=self.data_dir, seed=self.options.sample_seed)
        self.log_dict({f"test_{key}": float(value) for key, value in self.scores.items()
                       if isinstance(value, (int, float)) and key != "n"})


@register_task
class DiffusionDef(TaskDef):
    name: ClassVar[str] = "diffusion"
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    description: ClassVar[str] = ("generate images: a denoising network under a noise schedule, sampled by DDPM or "
                                  "DDIM (FID, KID, IS, class coverage by the offline judge)")
    options: ClassVar[type] = DiffusionOptions
    monitor: ClassVar[tuple[str, str]] = ("val_loss", "min")
    headline: ClassVar[str] = "fid"

    def check(self, config: TrainConfig, data_kind: str) -> None:
        super().check(config, data_kind)
        o = self.settings(config)
        make_sampler(o.eval_sampler, **({"eta": o.eval_eta} if o.eval_sampler == "ddim" else {})) \
            .plan(o.timesteps, o.eval_steps)
        classes = int(config.model_args.get("num_classes", 0) or 0)
        known = len(get_spec(config.data).classes or ())
        if classes and classes != known:
            raise ConfigError(f"-m num_classes={classes} but --data {config.data} has {known} classes: a conditional "
                              f"diffusion model takes one label per class (-m num_classes={known}), or 0 for none.")
        if o.eval_samples:
            check_judge(config.data)

    def load(self, config: TrainConfig) -> ImageData:
        return load_image_data(config.data, config.data_dir, config.val_size, config.seed)

    def model_args(self, config: TrainConfig, data: ImageData) -> dict[str, Any]:
        _, channels, height, _ = data.train.images.shape
        return {"in_channels": channels, "image_size": height}

    def loaders(self, config: TrainConfig, data: ImageData, rank: int, world_size: int):
        common = {"mean": PIXEL_MEAN, "std": PIXEL_STD, "channels_last": config.channels_last}
        train = BatchLoader(data.train, config.batch_size, shuffle=True, drop_last=len(data.train) > config.batch_size,
                            seed=config.seed, rank=rank, world_size=world_size, **common)
        val = BatchLoader(data.val, config.eval_batch_size, shuffle=False, rank=rank, world_size=world_size,
                          **common) if len(data.val) else None
        return train, val, BatchLoader(data.test, config.eval_batch_size, shuffle=False, **common)

    def example_input(self, data: ImageData) -> tuple[torch.Tensor, ...]:
        return torch.zeros(1, *data.train.images.shape[1:]), torch.tensor([500])

    def build(self, config: TrainConfig, data: ImageData, model: nn.Module, optim: OptimSettings) -> DiffusionTask:
        return DiffusionTask(model, optim, options=self.settings(config), data_name=config.data,
                             data_dir=config.data_dir, image_shape=tuple(data.train.images.shape[1:]))

    def meta(self, config: TrainConfig, data: ImageData) -> dict[str, Any]:
        o = self.settings(config)
        return {"classes": list(data.classes), "normalization": {"mean": PIXEL_MEAN, "std": PIXEL_STD},
                "input_kind": "image", "image_shape": list(data.train.images.shape[1:]),
                "schedule": make_schedule(o.schedule, o.timesteps).to_dict(), "prediction": o.prediction,
                "sampler": {"name": o.eval_sampler, "steps": o.eval_steps, "eta": o.eval_eta},
                "ema_decay": o.ema_decay}

    def save_outputs(self, run_dir: Path, config: TrainConfig, data: ImageData, module: DiffusionTask) -> dict[str, Any]:
        from archlab.diffusion.outputs import write_outputs

        o = module.options
        model = DiffusionModel(module.model, module.schedule, o.prediction, self.meta(config, data))
        scores = dict(module.scores)
        info = write_outputs(run_dir, model, sampler=o.eval_sampler, steps=o.eval_steps, eta=o.eval_eta,
                             seed=o.sample_seed, samples=module.samples,
                             scores=scores, extra={"eval_samples": o.eval_samples})
        extra: dict[str, Any] = {"diffusion": {k: info[k] for k in ("sampler", "steps", "eta", "eval_samples")}}
        if "class_histogram" in scores:
            extra["class_histogram"] = scores["class_histogram"]
        return extra


def check_judge(data: str) -> None:
    """Refuse, before training, a run whose samples cannot be scored (no judge network for its data set)."""
    try:
        from archlab.metrics.judge import load_judge
    except ImportError as err:
        raise ConfigError("Scoring samples needs the judge network (archlab.metrics.judge), which this installation "
                          "lacks; train with -t eval_samples=0 to skip the FID.") from err
    try:
        load_judge(data)
    except ArchlabError as err:  # the judge module's own errors say what is missing; add the way around
        raise ConfigError(f"Samples of --data {data} cannot be scored: {err} To train without scoring, add "
                          "-t eval_samples=0.") from err
