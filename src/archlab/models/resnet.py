"""Residual networks and their plain twins: a convolutional ResNet for small images, and a residual MLP.

A residual network stacks blocks ``x_{k+1} = post(x_k + F_k(x_k))`` (He et al. 2015, "Deep residual
learning for image recognition"). Each block only has to learn a correction ``F_k`` to its input, and the
identity path carries the gradient back to the first layers unattenuated:
``dL/dx_k = dL/dx_{k+1} · (1 + dF_k/dx_k)`` instead of ``dL/dx_{k+1} · dF_k/dx_k``. Its *plain twin*
(``residual=False``) has the same layers and parameters but no additions, ``x_{k+1} = post(F_k(x_k))``;
past a few tens of layers the plain net trains worse (the "degradation problem"), and without
normalisation its gradients vanish geometrically with depth.

Registered names (family ``resnet``):

    resnet     CIFAR-style ResNet (He et al. 2015 §4.2), depth 6n+2 (basic blocks) or 9n+2 (bottleneck)
    plain      the same network with residual=False
    resmlp     residual MLP: flatten → Linear → [x + Linear(act(Linear(act(x))))] × blocks → act → Linear
    plain-mlp  the same MLP with residual=False: an ordinary deep MLP

All take ``activation``, ``init`` (``he``/``glorot``/``orthogonal``/``default``), ``init_scale`` (multiplies
every weight after initialisation) and ``checkpoint`` (activation checkpointing per block: same outputs and
gradients, a fraction of the activation memory, about one more forward pass of compute).
"""

from __future__ import annotations

from torch import Tensor, nn

from archlab.models.registry import register_model
from archlab.nn import (
    BasicBlock,
    BlockStack,
    Bottleneck,
    ResidualMLPBlock,
    check_activation,
    check_init,
    init_weights,
    make_activation,
)
from archlab.nn.residual import check_shortcut

BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


def blocks_per_stage(depth: int, block: str = "basic", stages: int = 3) -> int:
    """n such that ``depth = weight_layers(block) · stages · n + 2`` (6n+2 basic, 9n+2 bottleneck, 3 stages).

    The 2 are the stem convolution and the classifier. Other depths raise a ValueError naming the nearest
    valid ones.
    """
    if block not in BLOCKS:
        raise ValueError(f"block must be one of {sorted(BLOCKS)}, got {block!r}")
    step = BLOCKS[block].weight_layers * stages
    n, remainder = divmod(depth - 2, step)
    if n >= 1 and remainder == 0:
        return n
    below, above = step * n + 2, step * (n + 1) + 2
    nearest = f"{below} or {above}" if n >= 1 else f"{step + 2} (the smallest)"
    raise ValueError(
        f"depth {depth} is not valid for {block!r} blocks in {stages} stages: depth must be {step}n + 2 "
        f"(n ≥ 1 blocks per stage); nearest valid depth: {nearest}"
    )


def _scaled(widths: tuple[int, ...] | list[int], multiplier: float) -> list[int]:
    if not widths or any(int(w) != w or w < 1 for w in widths):
        raise ValueError(f"widths must be a non-empty list of positive integers, got {widths!r}")
    if not multiplier > 0:
        raise ValueError(f"width (a multiplier of widths) must be positive, got {multiplier!r}")
    return [max(1, round(w * multiplier)) for w in widths]


class ResNet(nn.Module):
    """CIFAR-style ResNet (He et al. 2015 §4.2), or its plain twin with ``residual=False``.

    stem 3×3 conv (widths[0] channels) → stage 1 → stage 2 → stage 3 → global average pool → linear.
    Each stage has n blocks; stages 2 and 3 start with a stride-2 block (28×28 → 14×14 → 7×7 for MNIST).
    depth = 6n + 2 with basic blocks (20, 32, 44, 56, 110, 1202 for n = 3, 5, 7, 9, 18, 200) and 9n + 2
    with bottleneck blocks (whose stages output 4× widths channels; 164 = ResNet-164 of He et al. 2016).
    ResNet-20 has 0.27 M parameters, as in the paper.

    Post-activation (``preact=False``): stem = conv → BN → act. Pre-activation (He et al. 2016): stem =
    conv, blocks BN → act → conv, and one final BN → act before pooling.

    ``shortcut`` defaults to ``"zeros"`` (option A: subsample and zero-pad the channels, no parameters, as
    He et al. used on CIFAR), so ``resnet`` and ``plain`` of one configuration have exactly the same
    parameters; ``"projection"`` adds 1×1 convolutions at the stage transitions.

    The last feature map (the input of global pooling) is the output of ``self.final`` (an Identity in the
    post-activation ordering); ``self.pool`` then ``self.classifier`` (nn.Linear) make the head.
    Parameters are registered in forward order: stem first, classifier last. ``input_size`` is accepted for a
    uniform interface: global pooling makes any input size work.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 28,
        depth: int = 20,
        block: str = "basic",
        widths: tuple[int, ...] | list[int] = (16, 32, 64),
        width: float = 1,
        batch_norm: bool = True,
        preact: bool = False,
        shortcut: str = "zeros",
        residual: bool = True,
        activation: str = "relu",
        init: str = "he",
        init_scale: float = 1.0,
        checkpoint: bool = False,
    ) -> None:
        super().__init__()
        if input_size < 1:
            raise ValueError(f"input_size must be a positive number of pixels, got {input_size}")
        check_activation(activation)
        check_init(init, init_scale)
        check_shortcut(shortcut)
        channels = _scaled(widths, width)
        n = blocks_per_stage(depth, block, len(channels))
        options = {"batch_norm": batch_norm, "preact": preact, "residual": residual,
                   "shortcut": shortcut, "activation": activation}
        self.stem = self._stem(in_channels, channels[0], batch_norm, preact, activation)
        stages, current = [], channels[0]
        for index, planes in enumerate(channels):
            blocks = []
            for i in range(n):
                stride = 2 if index > 0 and i == 0 else 1
                blocks.append(BLOCKS[block](current, planes, stride, **options))
                current = blocks[-1].out_channels
            stages.append(BlockStack(*blocks, checkpoint=checkpoint))
        self.stages = nn.Sequential(*stages)
        norm = [nn.BatchNorm2d(current)] if batch_norm else []
        self.final = nn.Sequential(*norm, make_activation(activation)) if preact else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(current, num_classes)
        init_weights(self, init, activation, init_scale)

    @staticmethod
    def _stem(in_channels: int, out_channels: int, batch_norm: bool, preact: bool, activation: str) -> nn.Sequential:
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not batch_norm)]
        if not preact:  # pre-activation blocks normalise and activate their own input
            layers += ([nn.BatchNorm2d(out_channels)] if batch_norm else []) + [make_activation(activation)]
        return nn.Sequential(*layers)

    def features(self, x: Tensor) -> Tensor:
        """The last feature map, ``(batch, channels, H/4, W/4)`` for three stages."""
        return self.final(self.stages(self.stem(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


class ResidualMLP(nn.Module):
    """Residual MLP, or a plain deep MLP with ``residual=False``.

    flatten → Linear(in, width) → [block] × B → (BN) → act → Linear(width, classes), where a block is
    ``x + W2 · act(W1 · act(x))`` (pre-activation, optional BN before each act; see ResidualMLPBlock).

    ``depth`` counts every Linear layer: 1 (input) + 2 per block + 1 (classifier), so B = (depth − 2) / 2
    and depth must be even (10 → 4 blocks, 50 → 24, 100 → 49). The plain twin is then exactly a depth-layer
    MLP with an activation after each of its depth − 1 hidden Linear layers.

    Defaults are the naive ones, on purpose: no normalisation and PyTorch's default initialisation
    (``init="default"``: U(±1/sqrt(fan_in)), biases likewise), under which a deep plain MLP's gradients
    vanish geometrically — about ×1/√6 per ReLU layer, ×1/7 per sigmoid layer — while the residual one keeps
    them within a few orders of magnitude from last layer to first.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 28,
        depth: int = 10,
        width: int = 128,
        activation: str = "relu",
        init: str = "default",
        init_scale: float = 1.0,
        batch_norm: bool = False,
        residual: bool = True,
        checkpoint: bool = False,
    ) -> None:
        super().__init__()
        if depth < 2 or depth % 2:
            nearest = f"{depth - 1} or {depth + 1}" if depth > 2 else "2 (no blocks) or 4 (one block)"
            raise ValueError(
                f"depth {depth} is not valid: depth counts the Linear layers, 1 + 2 per block + 1, so it must be "
                f"even and ≥ 2; nearest valid depth: {nearest}"
            )
        if width < 1:
            raise ValueError(f"width must be a positive number of units, got {width}")
        check_activation(activation)
        check_init(init, init_scale)
        block_options = {"activation": activation, "batch_norm": batch_norm, "residual": residual}
        self.stem = nn.Linear(in_channels * input_size * input_size, width)
        blocks = [ResidualMLPBlock(width, **block_options) for _ in range((depth - 2) // 2)]
        self.blocks = BlockStack(*blocks, checkpoint=checkpoint)
        norm = [nn.BatchNorm1d(width)] if batch_norm else []
        self.final = nn.Sequential(*norm, make_activation(activation))
        self.classifier = nn.Linear(width, num_classes)
        init_weights(self, init, activation, init_scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.final(self.blocks(self.stem(x.flatten(1)))))


_TINY_CONV = {"depth": 8, "widths": (4, 8, 8)}
_TINY_MLP = {"depth": 4, "width": 16}

register_model("resnet", family="resnet", tiny=_TINY_CONV,
               description="CIFAR-style ResNet (He 2015): depth 6n+2, 16/32/64 channels, global pooling")(ResNet)
register_model("plain", family="resnet", defaults={"residual": False}, tiny=_TINY_CONV,
               description="the resnet's plain twin: same layers and parameters, no identity additions")(ResNet)
register_model("resmlp", family="resnet", tiny=_TINY_MLP,
               description="residual MLP: x + W2·act(W1·act(x)) blocks, no normalisation, PyTorch init")(ResidualMLP)
register_model("plain-mlp", family="resnet", defaults={"residual": False}, tiny=_TINY_MLP,
               description="the resmlp's plain twin: an ordinary deep MLP, no normalisation")(ResidualMLP)
