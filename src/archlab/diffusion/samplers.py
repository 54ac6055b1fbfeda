"""Reverse-process samplers, looked up by name; each works with any trained network and any schedule.

A sampler walks a *plan* of timestep pairs (t → t_prev, t_prev = -1 meaning "clean image") and makes one
update per pair from the network's estimate of (eps, x_0) at x_t:

- ``ddpm`` (Ho et al. 2020, algorithm 2): ancestral sampling through all T steps, the posterior
  q(x_{t-1} | x_t, x_0) with x_0 replaced by its estimate::

      x_{t-1} = sqrt(abar_{t-1}) beta_t / (1 - abar_t) · x0_hat + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) · x_t
                + sigma_t z,       sigma_t² = beta_tilde_t = (1 - abar_{t-1}) / (1 - abar_t) · beta_t

  (the "fixed small" variance; no noise on the last step).
- ``ddim`` (Song et al. 2021, "Denoising Diffusion Implicit Models", eq. 12): S ≤ T evenly spaced steps::

      x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma²) eps_hat + sigma z,
      sigma  = eta · sqrt((1 - abar_prev) / (1 - abar_t)) · sqrt(1 - abar_t / abar_prev)

  eta = 0: deterministic given x_T; eta = 1 with S = T: exactly the ddpm update above.

``temperature`` multiplies x_T and every added z (below 1: fewer, cleaner, less varied samples).
Classifier-free guidance (Ho & Salimans 2021) lives in :class:`Denoiser`: ``eps = eps_u + w (eps_c - eps_u)``,
with ``eps_u`` the network's output for the null class; w = 0 is unconditional, w = 1 plain conditional.
x0_hat is clipped to [-1, 1] (the data range) and eps_hat recomputed from it, as in the DDPM reference code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from archlab.diffusion.predictions import eps_from_x0, get_prediction
from archlab.diffusion.schedules import NoiseSchedule
from archlab.errors import ConfigError

Tensor = torch.Tensor
Plan = list[tuple[int, int]]


@dataclass
class Denoiser:
    """The network seen by a sampler: ``(x_t, t) → (eps_hat, x0_hat)``, guided when ``guidance`` is set."""

    network: nn.Module
    schedule: NoiseSchedule
    prediction: str = "eps"
    labels: Tensor | None = None
    guidance: float | None = None
    clip: bool = True

    def __post_init__(self) -> None:
        classes = int(getattr(self.network, "num_classes", 0) or 0)
        if self.labels is not None and classes == 0:
            raise ConfigError("This diffusion model is unconditional: it cannot generate a chosen class. "
                              "Train a conditional one (-m num_classes=10, recipe mnist-ddpm-cond) or drop the class.")
        if self.guidance is not None and classes == 0:
            raise ConfigError("A guidance scale needs a class-conditional model (classifier-free guidance mixes the "
                              "conditional and unconditional predictions); this model is unconditional. Drop --guidance.")
        if self.guidance is not None and self.labels is None:
            raise ConfigError("A guidance scale needs a class to guide towards: give --class as well.")
        if self.labels is not None and ((self.labels < 0) | (self.labels >= classes)).any():
            raise ConfigError(f"Class labels must be in 0..{classes - 1} for this model, got "
                              f"{sorted(set(self.labels.tolist()))}.")
        self.split = get_prediction(self.prediction).split

    def output(self, x: Tensor, t: Tensor) -> Tensor:
        if self.labels is None:
            return self.network(x, t)
        if self.guidance is None:
            return self.network(x, t, self.labels)
        null = torch.full_like(self.labels, int(self.network.null_class))
        both = self.network(torch.cat([x, x]), torch.cat([t, t]), torch.cat([self.labels, null]))
        conditional, unconditional = both.float().chunk(2)
        return unconditional + self.guidance * (conditional - unconditional)

    def __call__(self, x: Tensor, t: int) -> tuple[Tensor, Tensor]:
        t_batch = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        abar = self.schedule.abar(t_batch, x)
        eps, x0 = self.split(x, self.output(x, t_batch).float(), abar)
        if self.clip:
            x0 = x0.clamp(-1.0, 1.0)
            eps = eps_from_x0(x, x0, abar)
        return eps, x0


class Sampler:
    """One reverse-process update rule; ``plan`` says which timesteps it visits."""

    name: str = ""

    def plan(self, timesteps: int, steps: int | None, start: int | None = None) -> Plan:
        raise NotImplementedError

    def step(self, denoise: Denoiser, x: Tensor, t: int, t_prev: int, noise: Tensor) -> Tensor:
        raise NotImplementedError


def _abar(schedule: NoiseSchedule, t: int) -> float:
    return 1.0 if t < 0 else float(schedule.alphas_cumprod[t])


class DDPMSampler(Sampler):
    name = "ddpm"

    def plan(self, timesteps: int, steps: int | None, start: int | None = None) -> Plan:
        start = timesteps - 1 if start is None else start
        if steps is not None and steps != start + 1:
            raise ConfigError(f"The ddpm sampler takes every one of the {start + 1} steps (asked for {steps}). "
                              "For fewer steps use the ddim sampler (--sampler ddim --steps S).")
        return [(t, t - 1) for t in range(start, -1, -1)]

    def step(self, denoise: Denoiser, x: Tensor, t: int, t_prev: int, noise: Tensor) -> Tensor:
        schedule = denoise.schedule
        abar_t, abar_prev, beta = _abar(schedule, t), _abar(schedule, t_prev), float(schedule.betas[t])
        _, x0 = denoise(x, t)
        mean = (math.sqrt(abar_prev) * beta / (1 - abar_t)) * x0 \
            + (math.sqrt(1 - beta) * (1 - abar_prev) / (1 - abar_t)) * x
        if t_prev < 0:
            return mean
        return mean + math.sqrt((1 - abar_prev) / (1 - abar_t) * beta) * noise


class DDIMSampler(Sampler):
    name = "ddim"

    def __init__(self, eta: float = 0.0) -> None:
        if not 0.0 <= eta <= 1.0:
            raise ConfigError(f"DDIM's eta must be in [0, 1] (0: deterministic, 1: as much noise as ddpm), got {eta}.")
        self.eta = float(eta)

    def plan(self, timesteps: int, steps: int | None, start: int | None = None) -> Plan:
        start = timesteps - 1 if start is None else start
        steps = start + 1 if steps is None else int(steps)
        if not 1 <= steps <= start + 1:
            raise ConfigError(f"DDIM can take 1 to {start + 1} steps here (the model was trained with T = "
                              f"{timesteps} timesteps), asked for {steps}.")
        visited = torch.linspace(0, start, steps, dtype=torch.float64).round().long().unique().flip(0).tolist()
        return list(zip(visited, [*visited[1:], -1]))

    def step(self, denoise: Denoiser, x: Tensor, t: int, t_prev: int, noise: Tensor) -> Tensor:
        abar_t, abar_prev = _abar(denoise.schedule, t), _abar(denoise.schedule, t_prev)
        eps, x0 = denoise(x, t)
        sigma = self.eta * math.sqrt((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev))
        direction = math.sqrt(max(1 - abar_prev - sigma**2, 0.0))
        return math.sqrt(abar_prev) * x0 + direction * eps + sigma * noise


SAMPLERS: dict[str, Callable[..., Sampler]] = {"ddpm": DDPMSampler, "ddim": DDIMSampler}


def make_sampler(name: str, **options: float) -> Sampler:
    """The sampler ``name`` (options: ddim's ``eta``); unknown names and options are refused clearly."""
    if name not in SAMPLERS:
        raise ConfigError(f"Unknown sampler {name!r}. Known samplers: {', '.join(SAMPLERS)}.")
    try:
        return SAMPLERS[name](**options)
    except TypeError as err:
        raise ConfigError(f"Sampler {name!r} takes no option(s) {', '.join(options)} "
                          "(eta is ddim's; ddpm always adds its full noise).") from err


def renoise(x: Tensor, schedule: NoiseSchedule, t_from: int, t_to: int, noise: Tensor) -> Tensor:
    """A draw of q(x_{t_to} | x_{t_from}) for t_to > t_from: N(sqrt(abar_to / abar_from) x, 1 - abar_to / abar_from)."""
    ratio = _abar(schedule, t_to) / _abar(schedule, t_from)
    return math.sqrt(ratio) * x + math.sqrt(1 - ratio) * noise


Project = Callable[[Tensor, int], Tensor]


@torch.no_grad()
def reverse(denoise: Denoiser, sampler: Sampler, x: Tensor, plan: Plan, *, temperature: float = 1.0,
            generator: torch.Generator | None = None, project: Project | None = None, resample: int = 1,
            record: dict[int, Tensor] | None = None, progress: bool = False) -> Tensor:
    """Run ``plan`` from ``x`` (x_t at the plan's first t) down to x_0.

    ``project(x_prev, t_prev)`` is applied after every update (enhancement: paste known pixels, restore the
    low-pass part); with ``resample`` > 1 each step is redone after re-noising x_prev back to x_t (RePaint,
    Lugmayr et al. 2022), so the generated part can agree with the projected one. ``record`` collects x at
    each visited t_prev (and at the start, under the first t).
    """
    from rich.progress import track

    def draw() -> Tensor:
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)

    if record is not None:
        record[plan[0][0]] = x.detach().cpu().clone()
    for t, t_prev in track(plan, description=f"{sampler.name} sampling", disable=not progress, transient=True):
        for round_ in range(max(1, resample)):
            x_prev = sampler.step(denoise, x, t, t_prev, temperature * draw())
            if project is not None:
                x_prev = project(x_prev, t_prev)
            if round_ + 1 >= resample or t_prev < 0:
                break
            x = renoise(x_prev, denoise.schedule, t_prev, t, draw())
        x = x_prev
        if record is not None:
            record[t_prev] = x.detach().cpu().clone()
    return x
