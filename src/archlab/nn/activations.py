"""The activation registry: one place that turns an activation's name into a module.

Every family that lets the user choose a non-linearity (``mlp``, ``resnet``, ``resmlp``, ...) looks it up
here, so the accepted names and the error message are the same everywhere.

    sigmoid(x)    = 1 / (1 + exp(-x))              saturates: derivative ≤ 1/4, the classic vanishing gradient
    tanh(x)       = (exp(x) - exp(-x)) / (exp(x) + exp(-x))   derivative ≤ 1, saturates for |x| ≫ 1
    relu(x)       = max(0, x)                      Nair & Hinton 2010; derivative 0 or 1
    leaky_relu(x) = max(0.01·x, x)                 Maas et al. 2013; never exactly flat
    gelu(x)       = x · Φ(x)                       Hendrycks & Gimpel 2016; Φ the standard normal CDF
"""

from __future__ import annotations

from typing import Callable

from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
}


def check_activation(name: str) -> None:
    """Raise a ValueError listing the accepted names when ``name`` is not a known activation."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")


def make_activation(name: str) -> nn.Module:
    """A fresh activation module for ``name`` (never in-place: residual blocks reuse their inputs)."""
    check_activation(name)
    return ACTIVATIONS[name]()
