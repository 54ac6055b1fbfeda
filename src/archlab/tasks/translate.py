"""The ``translate`` task: unpaired image-to-image translation between two domains, trained as a CycleGAN.

Zhu, Park, Isola and Efros 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks". With a from domain A, b from domain B (disjoint images, see ``archlab.data.domains``) and the
least-squares GAN loss (Mao et al. 2017) the paper uses::

    generators:      L_G = (D_B(G_AB(a)) - 1)² + (D_A(G_BA(b)) - 1)²
                           + λ_cycle · (|G_BA(G_AB(a)) - a|₁ + |G_AB(G_BA(b)) - b|₁)
                           + λ_identity · (|G_AB(b) - b|₁ + |G_BA(a) - a|₁)
    discriminators:  L_D = ½ [(D_B(b) - 1)² + D_B(pool_B(G_AB(a)))²] + ½ [(D_A(a) - 1)² + D_A(pool_A(G_BA(b)))²]

(means over the patch maps and the batch). λ_cycle = 10, λ_identity = 0.5 · λ_cycle as in the paper's code.
Each training step updates the generators first, then both discriminators, with manual optimization and Adam
(lr 2e-4, β = (0.5, 0.999)); the learning rate stays constant for the first half of the run and decays
linearly to 0 over the second, as in the paper. The discriminators see generated images drawn from a pool of
the last 50 (``ImagePool``, Shrivastava et al. 2017) so they do not forget earlier generator modes.

Validation: the cycle-consistency error |G_BA(G_AB(a)) - a|₁ and |G_AB(G_BA(b)) - b|₁ (``val_cycle``, their
mean). Test (``translate_eval.py``): FID of G_AB(test A) against domain B's test images with the judge of B's
source data set, and "content kept": the judge's accuracy on G_BA(G_AB(a)) and, when both domains share their
classes (mnist ↔ mnist-thick), on G_AB(a), read against a's own label.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from archlab.config import TrainConfig
from archlab.data.batches import IndexedBatchLoader
from archlab.data.fetch import get_spec
from archlab.data.domains import DOMAINS, DomainPair, get_domain, load_domain_pair
from archlab.data.splits import TensorSplit
from archlab.errors import ArchlabError, ConfigError
from archlab.tasks.base import OptimSettings, TaskDef, TaskModule, register_task

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # a, label of a, b, label of b


class ImagePool:
    """A buffer of up to ``size`` past generated images (Shrivastava et al. 2017; CycleGAN's ``ImagePool``).

    ``query(images)`` returns a batch of the same size: while the pool is not full each image is stored and
    returned as it is; afterwards each image is, with probability ½, swapped for a random stored one (which it
    replaces in the pool), else returned as it is. ``size`` 0 turns the pool off (images returned unchanged).
    """

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        if size < 0:
            raise ConfigError(f"the image pool size must be ≥ 0, got {size}")
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator) < 0.5:
                slot = int(torch.randint(self.size, (), generator=self.generator))
                out.append(self.images[slot])
                self.images[slot] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)


def cycle_error(model: nn.Module, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(|G_BA(G_AB(a)) - a|₁, |G_AB(G_BA(b)) - b|₁), each a mean over pixels and images."""
    return F.l1_loss(model.g_ba(model.g_ab(a)), a), F.l1_loss(model.g_ab(model.g_ba(b)), b)


def lsgan_loss(scores: torch.Tensor, target: float) -> torch.Tensor:
    """Least-squares GAN loss: mean (score - target)² over the patch map and the batch."""
    return (scores.float() - target).pow(2).mean()


class UnpairedBatchLoader(IndexedBatchLoader):
    """Batches ``(a, label_a, b, label_b)`` in [-1, 1]: A by the loader's order, B by its own permutation.

    Each epoch pairs A's images with a fresh, seeded permutation of B's, so an image of A never has a fixed
    partner. ``len`` follows A; B's images are reused (modulo its size) when B is smaller.
    """

    def __init__(self, split_a: TensorSplit, split_b: TensorSplit, batch_size: int, **kwargs: Any) -> None:
        if not len(split_a) or not len(split_b):
            raise ConfigError("Both domains need images in every split; use a larger --val-size or none at all.")
        super().__init__(len(split_a), batch_size, **kwargs)
        self.split_a, self.split_b = split_a, split_b
        self.b_order = torch.arange(len(split_b))

    def epoch_order(self, epoch: int) -> torch.Tensor:
        if self.shuffle:
            generator = torch.Generator().manual_seed(10_007 * (self.seed + 1) + epoch)
            self.b_order = torch.randperm(len(self.split_b), generator=generator)
        return super().epoch_order(epoch)

    def _make_batch(self, index: torch.Tensor, seed: int) -> Batch:
        b_index = self.b_order[index % len(self.split_b)]
        a = self.split_a.images[index].float().div_(127.5).sub_(1.0)
        b = self.split_b.images[b_index].float().div_(127.5).sub_(1.0)
        return a, self.split_a.labels[index], b, self.split_b.labels[b_index]


@dataclass
class TranslateOptions:
    """Settings of ``--task translate`` (``-t key=value``)."""

    domain_a: str = "mnist"
    domain_b: str = "mnist-thick"
    lambda_cycle: float = 10.0
    lambda_identity: float | None = None  # None: 0.5 · lambda_cycle (the paper's code); 0 turns it off
    lr: float = 2e-4
    beta1: float = 0.5
    decay_from: float = 0.5  # fraction of the run after which the learning rate decays linearly to 0
    pool_size: int = 50
    eval_samples: int = 10_000  # test images translated for FID and content kept (at most the test split)

    def __post_init__(self) -> None:
        for name in (self.domain_a, self.domain_b):
            if name not in DOMAINS:
                raise ValueError(f"unknown domain {name!r}; known: {', '.join(sorted(DOMAINS))}")
        if self.lambda_identity is None:
            self.lambda_identity = 0.5 * self.lambda_cycle
        if self.lambda_cycle < 0 or self.lambda_identity < 0 or self.lr <= 0 or not 0 <= self.decay_from <= 1:
            raise ValueError("lambda_cycle and lambda_identity must be ≥ 0, lr > 0 and decay_from in [0, 1]")
        if self.eval_samples < 2:
            raise ValueError(f"eval_samples must be ≥ 2, got {self.eval_samples}")


def constant_then_linear(total_steps: int, decay_from: float):
    """lr factor: 1 until ``decay_from · total_steps``, then linear to 0 at ``total_steps``."""
    start = int(decay_from * total_steps)

    def factor(step: int) -> float:
        if step < start:
            return 1.0
        return max(0.0, 1.0 - (step - start) / max(1, total_steps - start))

    return factor


class TranslateTask(TaskModule):
    """CycleGAN training (see the module docstring) around any model with g_ab, g_ba, d_a, d_b."""

    def __init__(self, model: nn.Module, optim: OptimSettings, options: TranslateOptions, seed: int = 0,
                 data_dir: str | None = None) -> None:
        super().__init__(model, optim)
        self.data_dir = data_dir
        for part in ("g_ab", "g_ba", "d_a", "d_b"):
            if not hasattr(model, part):
                raise ConfigError(f"--task translate needs a model with generators g_ab, g_ba and discriminators "
                                  f"d_a, d_b (cyclegan); {type(model).__name__} has no {part}.")
        self.automatic_optimization = False
        self.options = options
        self.pool_a, self.pool_b = ImagePool(options.pool_size, seed), ImagePool(options.pool_size, seed + 1)
        self.test_outputs: list[tuple[torch.Tensor, ...]] = []

    def configure_optimizers(self):
        betas = (self.options.beta1, 0.999)
        generators = [*self.model.g_ab.parameters(), *self.model.g_ba.parameters()]
        discriminators = [*self.model.d_a.parameters(), *self.model.d_b.parameters()]
        opt_g = torch.optim.Adam(generators, lr=self.options.lr, betas=betas)
        opt_d = torch.optim.Adam(discriminators, lr=self.options.lr, betas=betas)
        factor = constant_then_linear(self.optim.total_steps, self.options.decay_from)
        schedules = [torch.optim.lr_scheduler.LambdaLR(opt, factor) for opt in (opt_g, opt_d)]
        return [opt_g, opt_d], schedules

    def generator_loss(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor], tuple]:
        m, o = self.model, self.options
        fake_b, fake_a = m.g_ab(a), m.g_ba(b)
        adversarial = lsgan_loss(m.d_b(fake_b), 1.0) + lsgan_loss(m.d_a(fake_a), 1.0)
        cycle = F.l1_loss(m.g_ba(fake_b), a) + F.l1_loss(m.g_ab(fake_a), b)
        loss = adversarial + o.lambda_cycle * cycle
        parts = {"train_g_adv": adversarial.detach(), "train_cycle": cycle.detach()}
        if o.lambda_identity:
            identity = F.l1_loss(m.g_ab(b), b) + F.l1_loss(m.g_ba(a), a)
            loss = loss + o.lambda_identity * identity
            parts["train_identity"] = identity.detach()
        return loss, parts, (fake_a.detach(), fake_b.detach())

    def discriminator_loss(self, a: torch.Tensor, b: torch.Tensor, fake_a: torch.Tensor,
                           fake_b: torch.Tensor) -> torch.Tensor:
        m = self.model
        loss_b = 0.5 * (lsgan_loss(m.d_b(b), 1.0) + lsgan_loss(m.d_b(self.pool_b.query(fake_b)), 0.0))
        loss_a = 0.5 * (lsgan_loss(m.d_a(a), 1.0) + lsgan_loss(m.d_a(self.pool_a.query(fake_a)), 0.0))
        return loss_a + loss_b

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        a, _, b, _ = batch
        opt_g, opt_d = self.optimizers()
        self.toggle_optimizer(opt_g)  # the discriminators' weights get no gradient from the generator step
        loss_g, metrics, (fake_a, fake_b) = self.generator_loss(a, b)
        opt_g.zero_grad()
        self.manual_backward(self.penalized(loss_g, metrics))
        opt_g.step()
        self.untoggle_optimizer(opt_g)

        self.toggle_optimizer(opt_d)
        loss_d = self.discriminator_loss(a, b, fake_a, fake_b)
        opt_d.zero_grad()
        self.manual_backward(loss_d)
        opt_d.step()
        self.untoggle_optimizer(opt_d)
        for schedule in self.lr_schedulers():
            schedule.step()
        if self.should_log():
            metrics.update({"train_loss_g": loss_g.detach(), "train_loss_d": loss_d.detach()})
            self.log_dict(metrics, on_step=True, on_epoch=False, prog_bar=True)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        a, _, b, _ = batch
        error_a, error_b = cycle_error(self.model, a, b)
        self.log_dict({"val_cycle_a": error_a, "val_cycle_b": error_b, "val_cycle": (error_a + error_b) / 2},
                      on_epoch=True, prog_bar=True, sync_dist=True)

    def on_test_epoch_start(self) -> None:
        self.test_outputs = []

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        a, label_a, b, _ = batch
        fake_b = self.model.g_ab(a)
        rec_a = self.model.g_ba(fake_b)
        error_a, error_b = cycle_error(self.model, a, b)
        self.log_dict({"test_cycle_a": error_a, "test_cycle_b": error_b, "test_cycle": (error_a + error_b) / 2},
                      on_epoch=True, sync_dist=True)
        self.test_outputs.append((a.cpu(), label_a.cpu(), fake_b.float().cpu(), rec_a.float().cpu()))

    def on_test_epoch_end(self) -> None:
        from archlab.tasks.translate_eval import score_translation

        if not self.test_outputs:
            return
        _, labels, fake_b, rec_a = (torch.cat(parts) for parts in zip(*self.test_outputs))
        try:
            scores = score_translation(fake_b, rec_a, labels, self.options.domain_a, self.options.domain_b,
                                       self.data_dir)
        except ArchlabError as error:  # no judge artifact for the data set: the run is complete without it
            warnings.warn(f"translation not scored: {error}", stacklevel=1)
            return
        self.log_dict({f"test_{key}": value for key, value in scores.items()})


@register_task
class TranslateDef(TaskDef):
    name: ClassVar[str] = "translate"
    data_kinds: ClassVar[tuple[str, ...]] = ("image",)
    description: ClassVar[str] = ("unpaired image translation A ↔ B (CycleGAN: LSGAN + cycle + identity losses); "
                                  "FID of G_AB(A) against B, judge accuracy on the translated digits")
    options: ClassVar[type] = TranslateOptions
    monitor: ClassVar[tuple[str, str]] = ("val_cycle", "min")
    headline: ClassVar[str] = "fid"

    def check(self, config: TrainConfig, data_kind: str) -> None:
        super().check(config, data_kind)
        options = self.settings(config)
        sources = {get_domain(options.domain_a).source, get_domain(options.domain_b).source}
        if config.data not in sources:
            raise ConfigError(f"--data {config.data} is neither domain's source ({', '.join(sorted(sources))}); "
                              f"the domains come from -t domain_a=... -t domain_b=...; pass --data "
                              f"{get_domain(options.domain_a).source}.")

    def load(self, config: TrainConfig) -> DomainPair:
        options = self.settings(config)
        return load_domain_pair(options.domain_a, options.domain_b, config.data_dir, config.val_size, config.seed)

    def loaders(self, config: TrainConfig, data: DomainPair, rank: int, world_size: int):
        common = {"rank": rank, "world_size": world_size}
        train = UnpairedBatchLoader(data.train_a, data.train_b, config.batch_size, shuffle=True,
                                    drop_last=len(data.train_a) > config.batch_size, seed=config.seed, **common)
        val = UnpairedBatchLoader(data.val_a, data.val_b, config.eval_batch_size, shuffle=False,
                                  **common) if len(data.val_a) and len(data.val_b) else None
        n = min(self.settings(config).eval_samples, len(data.test_a))
        test_a = data.test_a.subset(torch.arange(n))
        return train, val, UnpairedBatchLoader(test_a, data.test_b, config.eval_batch_size, shuffle=False)

    def example_input(self, data: DomainPair) -> tuple[torch.Tensor, ...]:
        return (torch.zeros(1, *data.train_a.images.shape[1:]), torch.zeros(1, *data.train_b.images.shape[1:]))

    def build(self, config: TrainConfig, data: DomainPair, model: nn.Module, optim: OptimSettings) -> TranslateTask:
        return TranslateTask(model, optim, self.settings(config), seed=config.seed, data_dir=config.data_dir)

    def test_metrics(self, results: dict[str, float]) -> dict[str, float]:
        return {key.removeprefix("test_"): float(value) for key, value in results.items()}

    def meta(self, config: TrainConfig, data: DomainPair) -> dict[str, Any]:
        options = self.settings(config)
        return {"domain_a": options.domain_a, "domain_b": options.domain_b, "input_kind": "image",
                "input_shape": list(data.train_a.images.shape[1:]), "normalization": {"mean": 0.5, "std": 0.5},
                "classes": list(get_spec(data.domain_a.source).classes)}

    def save_outputs(self, run_dir: Path, config: TrainConfig, data: DomainPair, module: TranslateTask) -> dict[str, Any]:
        from archlab.tasks.translate_eval import translation_outputs

        return translation_outputs(run_dir, data, module.model, module.test_outputs, config.data_dir)
