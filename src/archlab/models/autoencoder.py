"""A plain convolutional autoencoder for 28×28 images: the baseline of reconstruction-based anomaly detection.

    z = encoder(x)            conv 3×3 stride 2 (28 → 14) → conv 3×3 stride 2 (14 → 7) → linear to ``latent_dim``
    x̂ = decoder(z)            linear → 7×7 map → transposed conv (7 → 14) → transposed conv (14 → 28) → tanh

trained to minimise |x - x̂|² (``archlab.tasks.reconstruct``). A test image unlike the training images (a
digit the network never saw) is reconstructed worse, so the reconstruction error is an anomaly score
(e.g. Sakurada and Yairi 2014, "Anomaly Detection Using Autoencoders with Nonlinear Dimensionality
Reduction"). The bottleneck ``latent_dim`` keeps the network from learning the identity. Images in [-1, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from archlab.models.registry import register_model


@register_model("autoencoder", family="autoencoder", task="reconstruct", tasks=("reconstruct",),
                tiny={"width": 4, "latent_dim": 4})
class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder 28×28 → ``latent_dim`` → 28×28 (tanh output, images in [-1, 1])."""

    def __init__(self, in_channels: int = 1, width: int = 32, latent_dim: int = 32, input_size: int = 28) -> None:
        super().__init__()
        if input_size % 4 or width < 1 or latent_dim < 1:
            raise ValueError(f"input_size must be a multiple of 4, width and latent_dim ≥ 1; got {input_size}, "
                             f"{width}, {latent_dim}")
        self.code_shape = (2 * width, input_size // 4, input_size // 4)
        flat = 2 * width * (input_size // 4) ** 2
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Flatten(), nn.Linear(flat, latent_dim),
        )
        self.decoder_input = nn.Linear(latent_dim, flat)
        self.decoder = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * width, width, 3, stride=2, padding=1, output_padding=1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, in_channels, 3, stride=2, padding=1, output_padding=1), nn.Tanh(),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.decoder_input(z).view(-1, *self.code_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
