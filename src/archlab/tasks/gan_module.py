"""The ``gan`` task's LightningModule: adversarial training with two optimizers (manual optimization).

One training step is one *iteration*: ``d_steps`` discriminator updates, each on its own slice of the batch
(the loader gives ``batch_size × d_steps`` real images), and one generator update; the ``seed`` loss updates the
generator first, as its listing does. ``--steps`` counts iterations (generator updates), as the GAN papers do:
the discriminator's updates are inner steps that Lightning does not count (see ``_inner_step``).

Stabilisers (all options of the task, see ``archlab.tasks.gan.GanOptions``): separate learning rates for G and D
(TTUR, Heusel et al. 2017), instance noise on every image D reads, σ annealed linearly to 0, one-sided label
smoothing, a gradient penalty on any loss, and D pre-trained as a classifier of the real labels (through a
temporary linear head on its features) before adversarial training.

Validation: FID (on the judge's features) of ``val_samples`` generated images, always from the same z, against
the validation split: ``val_fid`` picks ``best.ckpt``. Test: ``score_images`` of ``eval_samples`` generated
images against the test split (FID, KID, IS, class coverage).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archlab.monitor.gan import GanMonitor
from archlab.tasks.base import OptimSettings, TaskModule
from archlab.tasks.gan_losses import GanLoss, gradient_penalty, growth_at, noise_at_progress
from archlab.tasks.gan_sampling import generate
from archlab.tasks.optim import build_optimizer, build_schedule


@dataclass
class GanSettings:
    """The resolved settings of one GAN run (options with the model's and the loss's defaults filled in)."""

    loss: GanLoss
    loss_name: str
    d_steps: int
    gp_weight: float
    lr_g: float
    lr_d: float
    betas: tuple[float, float]
    instance_noise: float
    label_smoothing: float
    pretrain_d_steps: int
    grow_every: int | None  # None: the stages follow the run's progress (thirds of its steps or of its time)
    fade_steps: int | None
    monitor_every: int
    monitor_samples: int
    val_samples: int
    eval_samples: int
    num_classes: int  # classes of the data set (the judge's classes)
    train_classes: tuple[int, ...]  # the classes trained on (all but holdout_class): what a conditional G is asked for
    data: str
    data_dir: str | None
    seed: int
    max_time: float | None = None  # the run's wall budget: schedules follow time when it ends the run first


def _nothing() -> None:
    return None


def _inner_step(optimizer: Any) -> None:
    """``optimizer.step()`` without counting it as a trainer step.

    Under manual optimization Lightning counts every ``step()`` call as a global step; a discriminator update is
    one part of an iteration, so it runs through Lightning's precision plugin and callbacks like any step but
    leaves the counters alone (the hooks Lightning's manual loop attaches are suspended for the call).
    """
    before, after = getattr(optimizer, "_on_before_step", None), getattr(optimizer, "_on_after_step", None)
    if before is None:  # a plain torch optimizer (outside a Trainer)
        optimizer.step()
        return
    optimizer._on_before_step = optimizer._on_after_step = _nothing
    try:
        optimizer.step()
    finally:
        optimizer._on_before_step, optimizer._on_after_step = before, after


class GanTask(TaskModule):
    """Adversarial training of any registered GAN model (``forward(z, labels)``, ``discriminate(x, labels)``)."""

    def __init__(self, model: nn.Module, optim: OptimSettings, settings: GanSettings, judge: Any = None,
                 monitor_reference: torch.Tensor | None = None) -> None:
        super().__init__(model, optim)
        self.automatic_optimization = False
        self.settings = settings
        self.judge = [judge]  # in a list: the frozen judge is not a submodule (not trained, not checkpointed)
        self.conditional = bool(getattr(model, "num_classes", 0))
        self.pretrain_head = None
        if settings.pretrain_d_steps:
            with torch.no_grad():
                width = model.discriminator_features(torch.zeros(2, 1, 28, 28)).shape[1]
            self.pretrain_head = nn.Linear(width, settings.num_classes)
        self.register_buffer("pretrained_steps", torch.tensor(0))
        self.noise_sigma = settings.instance_noise
        self.window: dict[str, list[torch.Tensor]] = {}
        self.val_features: list[torch.Tensor] = []
        self.test_scores: dict[str, Any] = {}
        self.monitor_history: list[dict[str, Any]] = []
        self.gan_warnings: list[str] = []
        self.monitor = GanMonitor(settings.monitor_every, judge, monitor_reference, samples=settings.monitor_samples,
                                  seed=settings.seed)

    def configure_callbacks(self) -> list[Any]:
        # Called again by trainer.test: the monitor is attached once (Lightning would replace it, noisily).
        return [] if self._trainer is not None and self.monitor in self.trainer.callbacks else [self.monitor]

    # --- optimizers -----------------------------------------------------------------------------------
    def configure_optimizers(self):
        s, model = self.settings, self.model
        d_modules = nn.ModuleList([model.discriminator] + ([self.pretrain_head] if self.pretrain_head else []))
        mixed = self._trainer is not None and str(self.trainer.precision).endswith("mixed")
        result = []
        for module, lr in ((model.generator, s.lr_g), (d_modules, s.lr_d)):
            config = dataclasses.replace(self.optim.optimizer, lr=lr, betas=tuple(s.betas))
            optimizer = build_optimizer(module, config, self.optim.weight_decay, fused=not mixed)
            schedule = build_schedule(optimizer, self.optim.schedule, self.optim.total_steps, self.optim.steps_per_epoch)
            result.append({"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}})
        return result

    # --- pieces of a step -----------------------------------------------------------------------------
    def _seen_by_d(self, images: torch.Tensor) -> torch.Tensor:
        """Instance noise: x + σ·ε, ε ~ N(0, I), on every image the discriminator reads."""
        return images + self.noise_sigma * torch.randn_like(images) if self.noise_sigma > 0 else images

    def _labels(self, labels: torch.Tensor) -> torch.Tensor | None:
        return labels if self.conditional else None

    def _discriminate(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.model.discriminate(images, labels) if labels is not None else self.model.discriminate(images)

    def _generate(self, count: int, labels: torch.Tensor | None, device: torch.device) -> torch.Tensor:
        z = torch.randn(count, self.model.latent_dim, device=device)
        return self.model(z, labels) if labels is not None else self.model(z)

    def _d_step(self, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None) -> None:
        s = self.settings
        _, opt_d = self.optimizers()
        self.toggle_optimizer(opt_d)
        real_in, fake_in = self._seen_by_d(self.model.prepare_real(real)), self._seen_by_d(fake.detach())
        real_scores, fake_scores = self._discriminate(real_in, labels), self._discriminate(fake_in, labels)
        loss = s.loss.discriminator(real_scores, fake_scores, 1.0 - s.label_smoothing)
        if s.gp_weight:
            penalty = gradient_penalty(self.model.discriminate, real_in, fake_in, labels)
            loss = loss + s.gp_weight * penalty
            self._record(gradient_penalty=penalty)
        loss = self.penalized(loss)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        _inner_step(opt_d)
        self.untoggle_optimizer(opt_d)
        self._record(d_loss=loss, d_real=self._shown(real_scores), d_fake=self._shown(fake_scores))

    def _g_step(self, count: int, labels: torch.Tensor | None, device: torch.device) -> torch.Tensor:
        opt_g, _ = self.optimizers()
        self.toggle_optimizer(opt_g)
        fake = self._generate(count, labels, device)
        loss = self.penalized(self.settings.loss.generator(self._discriminate(self._seen_by_d(fake), labels)))
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt_g.step()
        self.untoggle_optimizer(opt_g)
        self._record(g_loss=loss)
        return fake.detach()

    def _shown(self, scores: torch.Tensor) -> torch.Tensor:
        """D's mean probability that images are real (logits, probabilities), or the mean critic value."""
        probability = self.settings.loss.probability(scores.detach().float())
        return (probability if probability is not None else scores.detach().float()).mean()

    def _record(self, **values: torch.Tensor) -> None:
        for name, value in values.items():
            self.window.setdefault(name, []).append(value.detach().float())

    def take_window(self) -> dict[str, float]:
        """Means of what was recorded since the last call (one host sync), then forget it."""
        names = sorted(self.window)
        if not names:
            return {}
        means = torch.stack([torch.stack(self.window[n]).mean() for n in names]).tolist()
        self.window = {}
        return dict(zip(names, means))

    def _pretrain_step(self, real: torch.Tensor, labels: torch.Tensor) -> None:
        """D's features + a temporary linear head, trained as a classifier of the real labels."""
        _, opt_d = self.optimizers()
        logits = self.pretrain_head(self.model.discriminator_features(real))
        loss = F.cross_entropy(logits, labels)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        _inner_step(opt_d)
        self.pretrained_steps += 1
        if self.should_log():
            self.log_dict({"pretrain_d_loss": loss.detach(), "pretrain_d_acc": (logits.argmax(1) == labels).float().mean()})

    def on_train_start(self) -> None:
        self._started = time.perf_counter()

    def progress(self, step: int) -> float:
        """The fraction of the run done: of its steps, or of its wall budget if that is further along."""
        done = step / max(1, self.optim.total_steps)
        if self.settings.max_time:
            done = max(done, (time.perf_counter() - getattr(self, "_started", time.perf_counter())) / self.settings.max_time)
        return min(1.0, done)

    def _schedules(self, step: int) -> None:
        s = self.settings
        progress = self.progress(step)
        self.noise_sigma = noise_at_progress(s.instance_noise, progress)
        if self.model.progressive:
            # Explicit steps per stage, else a third of the run per stage with half of each spent fading in.
            growth = growth_at(step, s.grow_every, s.fade_steps) if s.grow_every else growth_at(3 * progress, 1, 0.5)
            self.model.set_growth(*growth)

    # --- Lightning hooks ------------------------------------------------------------------------------
    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        real, labels = batch
        s = self.settings
        if int(self.pretrained_steps) < s.pretrain_d_steps:
            self._pretrain_step(real, labels)
            return
        self._schedules(self.global_step)
        chunks = list(zip(real.chunk(s.d_steps), labels.chunk(s.d_steps)))
        if s.loss.generator_first:  # the seed listing: G on fresh z, then D on real and on that same batch
            first_real, first_labels = chunks[0]
            fake = self._g_step(len(first_real), self._labels(first_labels), real.device)
            self._d_step(first_real, fake, self._labels(first_labels))
        else:
            for chunk_real, chunk_labels in chunks:
                with torch.no_grad():
                    fake = self._generate(len(chunk_real), self._labels(chunk_labels), real.device)
                self._d_step(chunk_real, fake, self._labels(chunk_labels))
            g_labels = self._labels(labels[torch.randperm(len(labels), device=labels.device)][:len(chunks[0][0])])
            self._g_step(len(chunks[0][0]), g_labels, real.device)
        for scheduler in self.lr_schedulers():
            scheduler.step()
        if self.should_log():
            last = {name: values[-1] for name, values in self.window.items()}
            self.log_dict({"train_" + name: value for name, value in last.items()}, prog_bar=False)
            if s.instance_noise:
                self.log("instance_noise", self.noise_sigma)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        judge = self.judge[0]
        have = sum(len(f) for f in self.val_features)
        if judge is None or have >= self.settings.val_samples:
            return
        images = batch[0][: self.settings.val_samples - have]
        self.val_features.append(judge.to(images.device).features(images).cpu())

    def on_validation_epoch_start(self) -> None:
        self.val_features = []

    def on_validation_epoch_end(self) -> None:
        from archlab.metrics.generative import coverage, frechet_distance

        judge = self.judge[0]
        if judge is None or not self.val_features:
            return
        real = torch.cat(self.val_features)
        samples = self.sample(len(real), seed=self.settings.seed + 1)
        features, logits = judge.embed(samples)
        self.log("val_fid", frechet_distance(real, features.cpu()), prog_bar=True)
        self.log("val_coverage_entropy", coverage(logits)[1])

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        return None  # the test split is the judge's reference; scoring happens once, at the end of the epoch

    def on_test_epoch_end(self) -> None:
        from archlab.metrics.generative import score_images

        if self.judge[0] is None:
            return
        s = self.settings
        samples = self.sample(s.eval_samples, seed=s.seed + 2)
        self.test_scores = score_images(samples.cpu(), s.data, data_dir=s.data_dir, seed=s.seed)
        self.log_dict({"test_fid": self.test_scores["fid"], "test_kid_mean": self.test_scores["kid_mean"],
                       "test_kid_std": self.test_scores["kid_std"],
                       "test_inception_score": self.test_scores["inception_score"],
                       "test_inception_score_std": self.test_scores["inception_score_std"],
                       "test_coverage_entropy": self.test_scores["coverage_entropy"]})

    # --- sampling -------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, count: int, seed: int, class_label: int | None = None, temperature: float = 1.0) -> torch.Tensor:
        """``count`` images from the generator in eval mode (classes spread evenly for a conditional model)."""
        return generate(self.model, count, classes=self.settings.train_classes, class_label=class_label,
                        temperature=temperature, seed=seed, device=self.device)
