"""Residual blocks and their plain twins (He et al. 2015, "Deep residual learning for image recognition").

A residual block learns a correction to its input instead of a whole new representation:

    y = post(F(x) + shortcut(x))        F = the residual branch (a few conv or linear layers)

With ``residual=False`` the block is its *plain twin*: ``y = post(F(x))`` — the same layers, the same
parameters (up to shortcut projections), and no addition at all in the computation graph, so a plain and a
residual network differ in exactly one idea.

Orderings (``preact``):

    post-activation (He et al. 2015):  F = conv → BN → act → conv → BN,  post = act after the sum
    pre-activation  (He et al. 2016, "Identity mappings in deep residual networks"):
                                       F = BN → act → conv → BN → act → conv,  post = nothing

In the pre-activation ordering the shortcut always reads the block's raw input, so the path from the first
block to the last is a pure sum, ``x_L = x_l + Σ_{i=l}^{L-1} F(x_i)`` (He et al. 2016, eq. 4): the gradient
reaches every block through an identity. (Many implementations let a projection shortcut read the
pre-activated input instead; here it reads the raw input too, and has no BN of its own.)

Shortcuts when the block changes the shape (stride 2 or more channels) — identity otherwise:

    "zeros"       option A of He et al. 2015: subsample by the stride, zero-pad the new channels. No parameters,
                  so a residual net and its plain twin have exactly the same parameters.
    "projection"  option B: 1×1 conv with the block's stride (+ BN in the post-activation ordering).

``BlockStack`` runs a stack of blocks, optionally with activation checkpointing (Chen et al. 2016,
"Training deep nets with sublinear memory cost"): only each block's input is kept during the forward pass,
and the block is recomputed during the backward pass — O(blocks) small tensors instead of every
intermediate activation, for about one extra forward pass of compute.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

from archlab.nn.activations import check_activation, make_activation


class ZeroPadShortcut(nn.Module):
    """Option A shortcut: ``x[:, :, ::stride, ::stride]`` with zero channels appended up to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"the 'zeros' shortcut can only add channels ({in_channels} → {out_channels}); use 'projection'"
            )
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra_channels}"


def projection_shortcut(in_channels: int, out_channels: int, stride: int, batch_norm: bool) -> nn.Module:
    """Option B shortcut: a 1×1 convolution with the block's stride, followed by BN when ``batch_norm``."""
    conv = nn.Conv2d(in_channels, out_channels, 1, stride, bias=not batch_norm)
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels)) if batch_norm else conv


SHORTCUTS: dict[str, Callable[[int, int, int, bool], nn.Module]] = {
    "zeros": lambda c_in, c_out, stride, batch_norm: ZeroPadShortcut(c_in, c_out, stride),
    "projection": projection_shortcut,
}


def check_shortcut(kind: str) -> None:
    if kind not in SHORTCUTS:
        raise ValueError(f"shortcut must be one of {sorted(SHORTCUTS)}, got {kind!r}")


def make_shortcut(kind: str, in_channels: int, out_channels: int, stride: int, batch_norm: bool) -> nn.Module:
    """The identity when the shape is kept, else the ``kind`` shortcut from ``SHORTCUTS``."""
    check_shortcut(kind)
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return SHORTCUTS[kind](in_channels, out_channels, stride, batch_norm)


def _ordered(convs: list[nn.Conv2d], *, batch_norm: bool, preact: bool, activation: str) -> nn.Sequential:
    """Interleave ``convs`` with BN and activations in the post- or pre-activation ordering.

    post: conv → BN → act → ... → conv → BN   (the last activation comes after the sum)
    pre:  BN → act → conv → ... → BN → act → conv
    """
    layers: list[nn.Module] = []
    for i, conv in enumerate(convs):
        norm = [nn.BatchNorm2d(conv.in_channels if preact else conv.out_channels)] if batch_norm else []
        if preact:
            layers += [*norm, make_activation(activation), conv]
        else:
            layers += [conv, *norm] + ([make_activation(activation)] if i < len(convs) - 1 else [])
    return nn.Sequential(*layers)


class ConvResidualBlock(nn.Module):
    """``y = post(F(x) + shortcut(x))``, or ``y = post(F(x))`` when ``residual=False`` (the plain twin).

    Subclasses say what convolutions F holds (``_convs``) and by how much the block widens its ``planes``
    (``expansion``): the block maps ``in_channels`` to ``planes · expansion`` channels, through
    ``weight_layers`` convolutions (shortcut projections are not counted, as in the papers' depths).
    """

    expansion = 1
    weight_layers = 0

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        *,
        batch_norm: bool = True,
        preact: bool = False,
        residual: bool = True,
        shortcut: str = "zeros",
        activation: str = "relu",
    ) -> None:
        super().__init__()
        check_activation(activation)
        check_shortcut(shortcut)
        if stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride}")
        self.out_channels = planes * self.expansion
        convs = self._convs(in_channels, planes, stride, bias=not batch_norm)
        self.branch = _ordered(convs, batch_norm=batch_norm, preact=preact, activation=activation)
        self.residual = residual
        if residual:  # the plain twin has no shortcut module at all
            self.shortcut = make_shortcut(
                shortcut, in_channels, self.out_channels, stride, batch_norm=batch_norm and not preact
            )
        self.post = nn.Identity() if preact else make_activation(activation)

    def _convs(self, in_channels: int, planes: int, stride: int, bias: bool) -> list[nn.Conv2d]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        if self.residual:
            out = out + self.shortcut(x)
        return self.post(out)


class BasicBlock(ConvResidualBlock):
    """Two 3×3 convolutions (the first with the block's stride): the block of ResNet-20 … ResNet-1202."""

    expansion = 1
    weight_layers = 2

    def _convs(self, in_channels: int, planes: int, stride: int, bias: bool) -> list[nn.Conv2d]:
        return [
            nn.Conv2d(in_channels, planes, 3, stride, padding=1, bias=bias),
            nn.Conv2d(planes, planes, 3, 1, padding=1, bias=bias),
        ]


class Bottleneck(ConvResidualBlock):
    """1×1 (reduce to ``planes``) → 3×3 (with the stride) → 1×1 (expand to ``4 · planes``).

    The 3×3 convolution carries the stride (as in most later implementations; He et al. 2015 strided the
    first 1×1, which skips three quarters of the input).
    """

    expansion = 4
    weight_layers = 3

    def _convs(self, in_channels: int, planes: int, stride: int, bias: bool) -> list[nn.Conv2d]:
        return [
            nn.Conv2d(in_channels, planes, 1, bias=bias),
            nn.Conv2d(planes, planes, 3, stride, padding=1, bias=bias),
            nn.Conv2d(planes, planes * self.expansion, 1, bias=bias),
        ]


class ResidualMLPBlock(nn.Module):
    """Fully connected residual block: ``y = x + F(x)``, ``F(x) = W2 · act(W1 · act(x) + b1) + b2``.

    Pre-activation ordering (He et al. 2016) with optional BN before each activation. ``residual=False``
    gives ``y = F(x)``: stacked, the plain twin is then an ordinary MLP with an activation between every
    pair of Linear layers (a post-activation block ``x + W2·act(W1·x)`` would leave two Linear layers back to
    back in the plain twin).
    """

    def __init__(
        self, width: int, *, activation: str = "relu", batch_norm: bool = False, residual: bool = True
    ) -> None:
        super().__init__()
        check_activation(activation)
        layers: list[nn.Module] = []
        for _ in range(2):
            layers += [nn.BatchNorm1d(width)] if batch_norm else []
            layers += [make_activation(activation), nn.Linear(width, width)]
        self.branch = nn.Sequential(*layers)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        if self.residual:
            out = out + x
        return out


@contextlib.contextmanager
def _keep_batch_norm_stats(module: nn.Module) -> Iterator[None]:
    """Restore the BN running statistics of ``module`` on exit.

    Checkpointing runs a block's forward twice in a training step; without this, BN would fold the batch
    into its running mean/variance twice and the checkpointed net would drift from the plain one.
    """
    buffers = [
        buffer
        for layer in module.modules()
        if isinstance(layer, nn.modules.batchnorm._BatchNorm)
        for buffer in (layer.running_mean, layer.running_var, layer.num_batches_tracked)
        if buffer is not None
    ]
    saved = [buffer.clone() for buffer in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(buffers, saved):
                buffer.copy_(value)


def _checkpointed(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    def contexts():
        return contextlib.nullcontext(), _keep_batch_norm_stats(block)

    return torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False, context_fn=contexts)


class BlockStack(nn.Sequential):
    """Blocks applied one after another, each checkpointed when ``checkpoint`` is on.

    Checkpointing applies only when it can save memory: in training mode with autograd recording. Outputs,
    gradients and BN running statistics are the same as without it.
    """

    def __init__(self, *blocks: nn.Module, checkpoint: bool = False) -> None:
        super().__init__(*blocks)
        self.checkpoint = checkpoint

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        use_checkpoint = self.checkpoint and self.training and torch.is_grad_enabled()
        for block in self:
            x = _checkpointed(block, x) if use_checkpoint else block(x)
        return x

    def extra_repr(self) -> str:
        return f"checkpoint={self.checkpoint}"
