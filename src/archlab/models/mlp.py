"""Multi-layer perceptron: the fully connected baseline every image model is compared with.

``logits = W_L · act(... act(W_1 · flatten(x) + b_1) ...) + b_L``, with optional batch norm and dropout
after each hidden layer (Rumelhart, Hinton & Williams 1986; dropout: Srivastava et al. 2014).
"""

from __future__ import annotations

import torch
from torch import nn

from archlab.models.registry import register_model
from archlab.nn import check_activation, make_activation


@register_model("mlp", family="mlp", tiny={"hidden": (16,)},
                description="fully connected baseline: 784-512-256-10, dropout")
class MLP(nn.Module):
    """Fully connected classifier: flatten → [linear → (BN) → act → dropout] × hidden → linear."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        input_size: int = 28,
        hidden: tuple[int, ...] | list[int] = (512, 256),
        activation: str = "relu",
        batch_norm: bool = False,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        check_activation(activation)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        widths = [in_channels * input_size * input_size, *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers.append(nn.Linear(w_in, w_out))
            if batch_norm:
                layers.append(nn.BatchNorm1d(w_out))
            layers += [make_activation(activation), nn.Dropout(dropout)]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
