"""The adversarial losses of the ``gan`` task (a registry), the gradient penalty, and the schedules of training.

Losses, with D's raw scores s = D(x) on real images and s̃ = D(G(z)) on generated ones:

- ``bce`` (Goodfellow et al. 2014, non-saturating form): scores are logits, σ = sigmoid,
      L_D = −log σ(s)·t − log(1 − σ(s̃))        t = 1 − label_smoothing (one-sided: fakes keep target 0)
      L_G = −log σ(s̃)                          (instead of log(1 − σ(s̃)), which saturates when D wins)
  the discriminator is updated first, then the generator on the same generated batch.
- ``seed``: the seed listing's BCELoss on probabilities (its discriminator ends in a Sigmoid), in its order of
  updates: the generator first (fresh z, target 1), then the discriminator on real (target 1) and on the same
  generated batch detached (target 0), L_D = ½ (BCE(D(x), 1) + BCE(D(G(z)), 0)).
- ``wgan-gp`` (Gulrajani et al. 2017): scores are critic values,
      L_D = E[s̃] − E[s] + λ · E[(‖∇_x̂ D(x̂)‖₂ − 1)²]      x̂ = ε x + (1 − ε) G(z), ε ~ U(0, 1) per sample
      L_G = −E[s̃]
  with 5 critic steps per generator step and λ = 10 by default.

Schedules: instance noise σ_t = σ_0 · max(0, 1 − t / T) (Sønderby et al. 2017; added to every image the
discriminator reads, real and fake), and progressive growing's stage and fade-in weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from archlab.errors import ConfigError


def _bce_d(real: torch.Tensor, fake: torch.Tensor, real_target: float) -> torch.Tensor:
    return (F.binary_cross_entropy_with_logits(real, torch.full_like(real, real_target))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def _bce_g(fake: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


def _seed_d(real: torch.Tensor, fake: torch.Tensor, real_target: float) -> torch.Tensor:
    return 0.5 * (F.binary_cross_entropy(real, torch.full_like(real, real_target))
                  + F.binary_cross_entropy(fake, torch.zeros_like(fake)))


def _seed_g(fake: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy(fake, torch.ones_like(fake))


def _wasserstein_d(real: torch.Tensor, fake: torch.Tensor, real_target: float) -> torch.Tensor:
    return fake.mean() - real.mean()


def _wasserstein_g(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


@dataclass(frozen=True)
class GanLoss:
    """One adversarial objective: D's and G's losses, the update order, and what D's scores mean.

    ``scores``: ``logit`` (σ(s) is D's probability that the image is real), ``probability`` (s is that
    probability), ``critic`` (an unbounded Wasserstein critic value: no probability).
    """

    discriminator: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
    generator: Callable[[torch.Tensor], torch.Tensor]
    scores: str
    generator_first: bool = False
    d_steps: int = 1  # discriminator (critic) steps per generator step, unless the run sets d_steps
    gp_weight: float = 0.0  # gradient-penalty λ, unless the run sets gp_weight
    smoothing: bool = True  # one-sided label smoothing applies

    def probability(self, scores: torch.Tensor) -> torch.Tensor | None:
        """D's probability that each image is real, or None for a critic."""
        return PROBABILITY[self.scores](scores)


PROBABILITY: dict[str, Callable[[torch.Tensor], torch.Tensor | None]] = {
    "logit": torch.sigmoid,
    "probability": lambda scores: scores,
    "critic": lambda scores: None,
}

LOSSES: dict[str, GanLoss] = {
    "bce": GanLoss(_bce_d, _bce_g, "logit"),
    "seed": GanLoss(_seed_d, _seed_g, "probability", generator_first=True),
    "wgan-gp": GanLoss(_wasserstein_d, _wasserstein_g, "critic", d_steps=5, gp_weight=10.0, smoothing=False),
}


def get_loss(name: str) -> GanLoss:
    if name not in LOSSES:
        raise ConfigError(f"Unknown GAN loss {name!r}. Choose one of: {', '.join(LOSSES)} (-t loss=NAME).")
    return LOSSES[name]


def gradient_penalty(discriminate: Callable[..., torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     labels: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """E[(‖∇_x̂ D(x̂)‖₂ − 1)²] at x̂ = ε·real + (1 − ε)·fake, ε ~ U(0, 1) per sample (Gulrajani et al. 2017).

    The graph is kept (``create_graph``) so that the penalty's own gradient reaches D's weights.
    """
    eps = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype,
                     generator=generator)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = discriminate(mixed, labels) if labels is not None else discriminate(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def instance_noise_sigma(initial: float, step: int, total_steps: int) -> float:
    """σ at ``step``: ``initial`` annealed linearly to 0 at ``total_steps``."""
    if initial <= 0 or total_steps <= 0:
        return 0.0
    return noise_at_progress(initial, step / total_steps)


def noise_at_progress(initial: float, progress: float) -> float:
    """σ when a fraction ``progress`` of the run is done: ``initial · (1 − progress)``, never below 0."""
    return max(0.0, initial * (1.0 - progress))


def growth_at(step: float, grow_every: float, fade_steps: float, stages: int = 3) -> tuple[int, float]:
    """(stage, fade-in α) of progressive growing at ``step``: a new stage every ``grow_every`` steps, α rising
    linearly 0 → 1 over its first ``fade_steps`` steps (stage 0 has nothing to fade from: α = 1). Steps may be
    fractions (e.g. the run's progress in thirds, for a run bounded by time)."""
    stage = int(min(stages - 1, step // grow_every))
    if stage == 0 or fade_steps <= 0:
        return stage, 1.0
    return stage, min(1.0, (step - stage * grow_every) / fade_steps)
