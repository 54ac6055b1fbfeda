"""The weight-initialisation registry: how the weights of Conv/Linear layers are drawn before training.

Each scheme keeps the scale of signals roughly constant from layer to layer, for a given activation:

    he          W ~ N(0, gain² / fan_in)               He et al. 2015, "Delving deep into rectifiers"
    glorot      W ~ N(0, gain² · 2 / (fan_in + fan_out)) Glorot & Bengio 2010
    orthogonal  W = gain · Q, Q a random orthogonal matrix (conv kernels flattened to out × rest)
                                                        Saxe et al. 2014
    default     PyTorch's own: W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), biases likewise — what one gets
                without thinking about it (its variance, 1/(3·fan_in), shrinks ReLU signals by √6 per layer)

``gain`` is ``torch.nn.init.calculate_gain`` of the activation: 1 (sigmoid), 5/3 (tanh), √2 (relu),
√(2 / (1 + 0.01²)) (leaky_relu, slope 0.01). PyTorch defines no gain for GELU; GELU behaves like ReLU away
from 0, so it takes ReLU's gain. Biases are set to zero by every scheme except ``default``.

``init_weights(..., scale=s)`` multiplies every weight by ``s`` afterwards: ``s > 1`` is a deliberately
bad initialisation, used to provoke exploding gradients.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from archlab.nn.activations import check_activation

# The torch.nn.init non-linearity (and its parameter) whose gain fits each registered activation.
NONLINEARITY: dict[str, tuple[str, float | None]] = {
    "sigmoid": ("sigmoid", None),
    "tanh": ("tanh", None),
    "relu": ("relu", None),
    "leaky_relu": ("leaky_relu", 0.01),  # nn.LeakyReLU's default negative slope
    "gelu": ("relu", None),  # no gain defined for GELU in torch; ReLU's is the nearest
}


def activation_gain(activation: str) -> float:
    """The standard deviation multiplier that keeps signal scale through ``activation``."""
    check_activation(activation)
    name, param = NONLINEARITY[activation]
    return nn.init.calculate_gain(name, param)


def _he(weight: torch.Tensor, activation: str) -> None:
    name, param = NONLINEARITY[activation]
    nn.init.kaiming_normal_(weight, a=param or 0.0, mode="fan_in", nonlinearity=name)


def _glorot(weight: torch.Tensor, activation: str) -> None:
    nn.init.xavier_normal_(weight, gain=activation_gain(activation))


def _orthogonal(weight: torch.Tensor, activation: str) -> None:
    nn.init.orthogonal_(weight, gain=activation_gain(activation))


INIT_SCHEMES: dict[str, Callable[[torch.Tensor, str], None] | None] = {
    "he": _he,
    "glorot": _glorot,
    "orthogonal": _orthogonal,
    "default": None,  # keep the weights PyTorch drew when the layer was built
}

WEIGHTED_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)


def check_init(scheme: str, scale: float = 1.0) -> None:
    """Raise a ValueError saying what is accepted when ``scheme`` or ``scale`` is invalid."""
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"init must be one of {sorted(INIT_SCHEMES)}, got {scheme!r}")
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"init_scale must be a positive finite number (1.0 = the scheme as published), got {scale!r}")


@torch.no_grad()
def init_weights(module: nn.Module, scheme: str = "he", activation: str = "relu", scale: float = 1.0) -> nn.Module:
    """Initialise every Conv/Linear weight inside ``module`` with ``scheme``, then multiply it by ``scale``.

    Biases become zero unless the scheme is ``default``. Normalisation layers keep γ = 1, β = 0.
    Returns ``module``.
    """
    check_init(scheme, scale)
    check_activation(activation)
    draw = INIT_SCHEMES[scheme]
    for layer in module.modules():
        if not isinstance(layer, WEIGHTED_LAYERS):
            continue
        if draw is not None:
            draw(layer.weight, activation)
            if layer.bias is not None:
                layer.bias.zero_()
        if scale != 1.0:
            layer.weight.mul_(scale)
    return module


def transformer_init(module: nn.Module) -> None:
    """The GPT-2 / BERT initialisation, for ``model.apply``: Linear and Embedding weights N(0, 0.02²), Linear
    biases 0 (LayerNorm keeps its 1 / 0)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
