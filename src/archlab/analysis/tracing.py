"""Look at what the modules of a network compute, through forward hooks that never outlive the call.

A forward hook is a function PyTorch calls with ``(module, inputs, output)`` each time a module finishes its
forward pass. The helpers here register hooks for the length of one ``with`` block and remove them in a
``finally``, put the model in eval mode for that block and restore each module's own mode afterwards, so a
caller's model comes back exactly as it was handed over (no hooks, same modes, same ``requires_grad``).

Hooks fire when a module *finishes*, so inner modules fire before the containers that hold them: "the last
module whose output is a feature map" is therefore the outermost container producing the last feature map
(e.g. ``stages`` of a ConvNet), which holds the same tensor as its last inner layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from archlab.errors import ConfigError


@dataclass(frozen=True)
class Traced:
    """One module's output seen on a dry run: its qualified name and the output's shape."""

    name: str
    shape: tuple[int, ...]

    @property
    def is_feature_map(self) -> bool:
        """A 4-D ``[B, C, H, W]`` output with more than one spatial position (something a map can show)."""
        return len(self.shape) == 4 and self.shape[2] * self.shape[3] > 1


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode inside the block; restore every submodule's training flag afterwards."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes.items():
            module.training = training


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model that has neither)."""
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


def as_batch(x: torch.Tensor, what: str = "x") -> torch.Tensor:
    """``[C, H, W]`` → ``[1, C, H, W]``; ``[B, C, H, W]`` unchanged; anything else is a ConfigError."""
    if x.ndim == 3:
        return x.unsqueeze(0)
    if x.ndim != 4:
        raise ConfigError(f"{what} must be an image [C, H, W] or a batch [B, C, H, W], got shape {tuple(x.shape)}.")
    return x


@contextmanager
def hooked(model: nn.Module, hooks: dict[str, object]) -> Iterator[None]:
    """Register ``{module name: forward hook}`` for the block; every hook is removed on the way out."""
    modules = dict(model.named_modules())
    handles = []
    try:
        for name, hook in hooks.items():
            handles.append(modules[name].register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


def trace(model: nn.Module, x: torch.Tensor) -> list[Traced]:
    """Every submodule's output shape on one no-grad forward pass of ``x``, in the order the hooks fired.

    Modules called more than once appear once per call; outputs that are not tensors are skipped.
    """
    seen: list[Traced] = []

    def record(name: str):
        def hook(module, inputs, output):
            if isinstance(output, torch.Tensor):
                seen.append(Traced(name, tuple(output.shape)))
        return hook

    names = [name for name, _ in model.named_modules() if name]
    with evaluating(model), torch.no_grad(), hooked(model, {name: record(name) for name in names}):
        model(x.to(model_device(model)))
    return seen


def feature_map_layers(model: nn.Module, x: torch.Tensor) -> list[str]:
    """Names of the modules whose output is a feature map (4-D, spatial size > 1), in firing order."""
    return list(dict.fromkeys(t.name for t in trace(model, x) if t.is_feature_map))


def last_feature_map_layer(model: nn.Module, x: torch.Tensor) -> str:
    """The last module to output a feature map: the default layer of Grad-CAM and CAM."""
    layers = feature_map_layers(model, x)
    if not layers:
        raise ConfigError(
            f"{type(model).__name__} has no layer whose output is a feature map [B, C, H, W] with H×W > 1, "
            "so there is nothing to draw as a map: Grad-CAM and CAM need a convolutional network."
        )
    return layers[-1]


def check_layer(model: nn.Module, x: torch.Tensor, layer: str) -> str:
    """``layer`` if it names a module that outputs a feature map, else a ConfigError listing those that do."""
    layers = feature_map_layers(model, x)
    if layer not in layers:
        raise ConfigError(
            f"Unknown layer {layer!r} for {type(model).__name__} (or its output is not a feature map "
            f"[B, C, H, W] with H×W > 1). Layers that output feature maps: {', '.join(layers) or 'none'}."
        )
    return layer
