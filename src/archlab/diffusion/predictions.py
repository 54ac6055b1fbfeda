"""What the denoising network predicts, and how its output turns back into (eps, x_0), by name.

- ``eps`` (Ho et al. 2020): the network predicts the noise eps of ``x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps``;
  x_0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar).
- ``v`` (Salimans & Ho 2022, "Progressive Distillation for Fast Sampling of Diffusion Models"): the velocity
  ``v = sqrt(abar) eps - sqrt(1 - abar) x_0``; then x_0 = sqrt(abar) x_t - sqrt(1 - abar) v and
  eps = sqrt(1 - abar) x_t + sqrt(abar) v (exact, also at abar → 0 where the eps form divides by ~0).

Both conversions are linear in the network's output, so classifier-free guidance may mix outputs before them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from archlab.errors import ConfigError

Tensor = torch.Tensor


@dataclass(frozen=True)
class Prediction:
    """``target(x0, eps, abar)``: the regression target; ``split(x_t, output, abar)`` → (eps, x0)."""

    target: Callable[[Tensor, Tensor, Tensor], Tensor]
    split: Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


def _eps_split(x_t: Tensor, eps: Tensor, abar: Tensor) -> tuple[Tensor, Tensor]:
    return eps, (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()


def _v_split(x_t: Tensor, v: Tensor, abar: Tensor) -> tuple[Tensor, Tensor]:
    return (1 - abar).sqrt() * x_t + abar.sqrt() * v, abar.sqrt() * x_t - (1 - abar).sqrt() * v


PREDICTIONS: dict[str, Prediction] = {
    "eps": Prediction(target=lambda x0, eps, abar: eps, split=_eps_split),
    "v": Prediction(target=lambda x0, eps, abar: abar.sqrt() * eps - (1 - abar).sqrt() * x0, split=_v_split),
}


def get_prediction(name: str) -> Prediction:
    if name not in PREDICTIONS:
        raise ConfigError(f"Unknown prediction {name!r}: a diffusion network predicts one of "
                          f"{', '.join(PREDICTIONS)} (eps: the noise; v: sqrt(abar) eps - sqrt(1 - abar) x_0).")
    return PREDICTIONS[name]


def eps_from_x0(x_t: Tensor, x0: Tensor, abar: Tensor) -> Tensor:
    """The noise that makes ``x_t`` from ``x0`` at level ``abar``."""
    return (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()
