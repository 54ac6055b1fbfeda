"""Convolutional networks for small images, built from one configurable class.

``ConvNet`` computes ``logits = head(stage_n(... stage_1(stem(x))))`` where the stem is one convolution
(kernel ``stem_kernel``, stride ``stem_stride``) and each stage is a block (a plain conv, or an
Inception-style block) followed by a 2× downsampling (max-pool, or a stride-2 convolution). Each conv is
followed by batch norm (Ioffe & Szegedy, 2015) when ``batch_norm`` is on, then ReLU.

The registered variants change one idea each: kernel size and stride (``cnn-stride``), dilated
convolutions that widen the receptive field without pooling (``cnn-dilated``, Yu & Koltun 2016),
Inception blocks with parallel 1×1/3×3/5×5/pool branches (``cnn-inception``, Szegedy et al. 2015), and
batch norm off (``cnn-nobn``).

The default ``cnn`` was chosen by measurement on a 2-core CPU (see BENCHMARKS.md): a 5×5 stride-2 stem
halves the resolution at once (the input is mostly background), so the expensive 3×3 convolutions run at
14×14 and 7×7; it reaches 99% MNIST test accuracy in about one and a half epochs.
"""

from __future__ import annotations

import torch
from torch import nn

from archlab.models.registry import register_model


def conv_bn_relu(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    stride: int = 1,
    dilation: int = 1,
    batch_norm: bool = True,
) -> nn.Sequential:
    """Conv → (BatchNorm) → ReLU with 'same' padding for odd kernels (the conv has no bias under BN)."""
    padding = dilation * (kernel_size // 2)
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation=dilation, bias=not batch_norm)
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class InceptionBlock(nn.Module):
    """Parallel 1×1, 3×3, 5×5 and pool→1×1 branches, concatenated on channels (GoogLeNet, 2015).

    The 3×3 and 5×5 branches first reduce channels with a 1×1 conv, which is what makes the block cheap.
    ``out_channels`` is split between the four branches (the 3×3 branch takes the remainder).
    """

    def __init__(self, in_channels: int, out_channels: int, *, batch_norm: bool = True, dilation: int = 1) -> None:
        super().__init__()
        quarter = max(out_channels // 4, 1)
        reduce = max(in_channels // 2, 1)
        branch3 = out_channels - 3 * quarter
        self.branch1 = conv_bn_relu(in_channels, quarter, 1, batch_norm=batch_norm)
        self.branch3 = nn.Sequential(
            conv_bn_relu(in_channels, reduce, 1, batch_norm=batch_norm),
            conv_bn_relu(reduce, branch3, 3, dilation=dilation, batch_norm=batch_norm),
        )
        self.branch5 = nn.Sequential(
            conv_bn_relu(in_channels, reduce, 1, batch_norm=batch_norm),
            conv_bn_relu(reduce, quarter, 5, dilation=dilation, batch_norm=batch_norm),
        )
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1), conv_bn_relu(in_channels, quarter, 1, batch_norm=batch_norm)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], dim=1)


class ConvNet(nn.Module):
    """stem conv → [block → 2× downsample] per stage → flatten → dropout → linear classifier."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 28,
        channels: tuple[int, ...] | list[int] = (32, 32, 64),
        stem_kernel: int = 5,
        stem_stride: int = 2,
        kernel_size: int = 3,
        dilation: int = 1,
        block: str = "conv",
        convs_per_stage: int = 1,
        downsample: str = "pool",
        batch_norm: bool = True,
        dropout: float = 0.0,
        crop: int = 0,
    ) -> None:
        super().__init__()
        channels = list(channels)
        if not 0 <= crop <= input_size:
            raise ValueError(f"crop must be 0 (off) or a size up to input_size={input_size}, got {crop}")
        # A centre crop inside the model: MNIST-like digits sit in the central 20×20 of a 28×28 frame, so
        # the border is background, and every later layer's cost scales with the area it sees.
        self.crop = crop
        input_size = crop or input_size
        if len(channels) < 1:
            raise ValueError("channels needs at least one entry (the stem's width)")
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {sorted(BLOCKS)}, got {block!r}")
        if downsample not in ("pool", "stride", "none"):
            raise ValueError(f"downsample must be 'pool', 'stride' or 'none', got {downsample!r}")
        if kernel_size % 2 == 0 or stem_kernel % 2 == 0:
            raise ValueError("kernel sizes must be odd so that padding keeps the spatial size")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.stem = conv_bn_relu(in_channels, channels[0], stem_kernel, stride=stem_stride, batch_norm=batch_norm)
        stages = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            stages.append(
                self._stage(c_in, c_out, block, convs_per_stage, kernel_size, dilation, downsample, batch_norm)
            )
        self.stages = nn.Sequential(*stages)
        self.dropout = nn.Dropout(dropout)
        with torch.no_grad():
            features = self.stages(self.stem(torch.zeros(1, in_channels, input_size, input_size))).numel()
        self.classifier = nn.Linear(features, num_classes)

    @staticmethod
    def _stage(c_in, c_out, block, convs, kernel_size, dilation, downsample, batch_norm) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i in range(convs):
            layers.append(BLOCKS[block](c_in if i == 0 else c_out, c_out, kernel_size, dilation, batch_norm))
        if downsample == "pool":
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        elif downsample == "stride":
            layers.append(conv_bn_relu(c_out, c_out, 3, stride=2, batch_norm=batch_norm))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.crop:
            top, left = (x.shape[-2] - self.crop) // 2, (x.shape[-1] - self.crop) // 2
            x = x[..., top : top + self.crop, left : left + self.crop]
        features = self.stages(self.stem(x))
        # Flatten in (H, W, C) order. The result is the same function of the input whatever the memory
        # format, but under channels_last this is a free view whose gradient keeps the channels_last
        # layout; flattening in (C, H, W) order would send a channels-first gradient back into the conv
        # stack, and mixed layouts make every elementwise backward kernel several times slower.
        features = features.permute(0, 2, 3, 1).flatten(1)
        return self.classifier(self.dropout(features))


BLOCKS = {
    "conv": lambda c_in, c_out, k, d, bn: conv_bn_relu(c_in, c_out, k, dilation=d, batch_norm=bn),
    "inception": lambda c_in, c_out, k, d, bn: InceptionBlock(c_in, c_out, batch_norm=bn, dilation=d),
}

_TINY = {"channels": (4, 8)}

register_model("cnn", family="cnn", tiny=_TINY,
               description="fast CPU CNN: 5x5/2 stem, conv+pool stages, batch norm")(ConvNet)
register_model(
    "cnn-wide",
    family="cnn",
    defaults={"channels": (32, 64, 128), "convs_per_stage": 2, "dropout": 0.2},
    tiny=_TINY,
    description="wider, deeper CNN (2 convs per stage, dropout) for best accuracy",
)(ConvNet)
register_model(
    "cnn-stride",
    family="cnn",
    defaults={"stem_kernel": 3, "stem_stride": 1, "channels": (16, 32, 64), "downsample": "stride"},
    tiny=_TINY,
    description="3x3 stem at stride 1, stride-2 convolutions instead of pooling",
)(ConvNet)
register_model(
    "cnn-dilated",
    family="cnn",
    defaults={"channels": (32, 32, 64), "dilation": 2},
    tiny=_TINY,
    description="dilated 3x3 convolutions (dilation 2): wider receptive field, same cost",
)(ConvNet)
register_model(
    "cnn-inception",
    family="cnn",
    defaults={"channels": (32, 64, 96), "block": "inception"},
    tiny={"channels": (4, 8)},
    description="Inception blocks: parallel 1x1/3x3/5x5/pool branches",
)(ConvNet)
register_model("cnn-nobn", family="cnn", defaults={"batch_norm": False}, tiny=_TINY,
               description="the cnn without batch norm (to show what it buys)")(ConvNet)
