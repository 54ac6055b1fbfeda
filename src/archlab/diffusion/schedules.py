"""Noise schedules of the forward (noising) process of a diffusion model, looked up by name.

Forward process (Ho et al. 2020, "Denoising Diffusion Probabilistic Models")::

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)
    alpha_t = 1 - beta_t,   abar_t = prod_{s <= t} alpha_s
    q(x_t | x_0)     = N(sqrt(abar_t) x_0, (1 - abar_t) I)
    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,    eps ~ N(0, I)

A schedule is the sequence beta_1 .. beta_T. Timesteps are 0-based indices ``t = 0 .. T-1`` here (index ``t``
is the paper's step ``t + 1``), which is what the networks receive. The registry:

- ``linear``     beta linear from 1e-4 to 0.02 (Ho et al. 2020), both ends scaled by 1000 / T so that other
                 lengths T keep the same total noise (Nichol & Dhariwal 2021, section 2.2)
- ``quadratic``  sqrt(beta) linear between the same ends ("quadratic" in the DDPM code base)
- ``cosine``     abar(t) = f(t) / f(0), f(t) = cos²((t/T + s) / (1 + s) · π/2), s = 0.008, each beta clipped
                 at 0.999 (Nichol & Dhariwal 2021, "Improved Denoising Diffusion Probabilistic Models")
- ``log-snr``    the "logarithmic" schedule: log SNR(t) = log(abar_t / (1 - abar_t)) linear in t from
                 ``log_snr_max`` (10) down to ``log_snr_min`` (-10), i.e. abar_t = sigmoid(log SNR(t))
                 (the log-SNR view of Kingma et al. 2021, "Variational Diffusion Models")

A :class:`NoiseSchedule` holds the tensors as buffers (no parameters: nothing to learn) and serializes as its
name plus arguments (``to_dict`` / ``from_dict``), which is what a run's ``meta.json`` stores.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn

from archlab.errors import ConfigError

ScheduleFn = Callable[..., torch.Tensor]
SCHEDULES: dict[str, ScheduleFn] = {}


def register_schedule(name: str) -> Callable[[ScheduleFn], ScheduleFn]:
    """Decorator: ``fn(timesteps, **args) -> betas [T]`` (float64) becomes reachable as ``name``."""

    def decorate(fn: ScheduleFn) -> ScheduleFn:
        if name in SCHEDULES:
            raise ValueError(f"noise schedule {name!r} registered twice")
        SCHEDULES[name] = fn
        return fn

    return decorate


@register_schedule("linear")
def linear_betas(timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    scale = 1000.0 / timesteps
    return torch.linspace(beta_start * scale, beta_end * scale, timesteps, dtype=torch.float64)


@register_schedule("quadratic")
def quadratic_betas(timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    scale = 1000.0 / timesteps
    return torch.linspace(math.sqrt(beta_start * scale), math.sqrt(beta_end * scale), timesteps,
                          dtype=torch.float64) ** 2


def _betas_from_abar(abar: torch.Tensor, max_beta: float = 0.999) -> torch.Tensor:
    """beta_t = 1 - abar_t / abar_{t-1} (abar_0 = 1), clipped at ``max_beta``."""
    previous = torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]])
    return (1.0 - abar / previous).clamp(max=max_beta)


@register_schedule("cosine")
def cosine_betas(timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    abar = f[1:] / f[0]
    return _betas_from_abar(abar, max_beta)


@register_schedule("log-snr")
def log_snr_betas(timesteps: int, log_snr_max: float = 10.0, log_snr_min: float = -10.0,
                  max_beta: float = 0.999) -> torch.Tensor:
    if not log_snr_max > log_snr_min:
        raise ValueError(f"log_snr_max ({log_snr_max}) must exceed log_snr_min ({log_snr_min})")
    log_snr = torch.linspace(log_snr_max, log_snr_min, timesteps, dtype=torch.float64)
    return _betas_from_abar(torch.sigmoid(log_snr), max_beta)


def _gather(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values[t]`` shaped to broadcast over ``like`` ([B] → [B, 1, 1, 1]), on ``like``'s device and dtype."""
    out = values.to(like.device)[t.to(like.device).long()]
    return out.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


class NoiseSchedule(nn.Module):
    """betas, alphas and abar (``alphas_cumprod``) of one schedule, as non-persistent float64 buffers.

    Build with :func:`make_schedule`; ``to_dict()`` gives what rebuilds it. Indexing helpers return float32
    tensors on the device of the input, so the same object serves CPU and GPU code.
    """

    def __init__(self, name: str, timesteps: int, **args: Any) -> None:
        super().__init__()
        if name not in SCHEDULES:
            raise ConfigError(f"Unknown noise schedule {name!r}. Known schedules: {', '.join(sorted(SCHEDULES))}.")
        if int(timesteps) < 2:
            raise ConfigError(f"A diffusion needs at least 2 timesteps, got {timesteps}.")
        try:
            betas = SCHEDULES[name](int(timesteps), **args)
        except TypeError as err:
            raise ConfigError(f"Noise schedule {name!r} does not take {args}: {err}") from err
        self.name, self.timesteps, self.args = name, int(timesteps), dict(args)
        alphas = 1.0 - betas
        self.register_buffer("betas", betas, persistent=False)
        self.register_buffer("alphas", alphas, persistent=False)
        self.register_buffer("alphas_cumprod", torch.cumprod(alphas, 0), persistent=False)

    # --- serialization ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "timesteps": self.timesteps, **self.args}

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> "NoiseSchedule":
        spec = dict(spec)
        return cls(spec.pop("name"), spec.pop("timesteps"), **spec)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.to_dict().items())

    # --- lookups ----------------------------------------------------------------------------------------
    def abar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """abar_t for a batch of indices ``t`` ([B]); ``t = -1`` means "no noise" (abar = 1)."""
        padded = torch.cat([self.alphas_cumprod, self.alphas_cumprod.new_ones(1)])  # index -1 → 1
        return _gather(padded, t, like)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise (the closed form of q(x_t | x_0))."""
        abar = self.abar(t, x0)
        return abar.sqrt() * x0 + (1.0 - abar).sqrt() * noise

    def index_for_noise_level(self, sigma: float) -> int:
        """The t whose x_t / sqrt(abar_t) = x_0 + sigma · eps: sigma² = (1 - abar_t) / abar_t, the nearest t."""
        target = 1.0 / (1.0 + sigma**2)
        return int((self.alphas_cumprod - target).abs().argmin())


def make_schedule(name: str = "linear", timesteps: int = 1000, **args: Any) -> NoiseSchedule:
    """The registered schedule ``name`` with ``timesteps`` steps (extra ``args`` go to its function)."""
    return NoiseSchedule(name, timesteps, **args)
