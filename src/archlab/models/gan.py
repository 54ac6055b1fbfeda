"""Generative adversarial networks for 28×28 greyscale images: ``dcgan``, ``cgan``, ``wgan-gp``, ``pggan``.

A GAN is two networks playing a game (Goodfellow et al. 2014): a generator G maps noise z ~ N(0, I) to an image,
a discriminator D scores how real an image looks, and

    min_G max_D  E_x[log D(x)] + E_z[log(1 − D(G(z)))]

Each model here holds both networks (``generator``, ``discriminator``) and nothing of training (the ``gan`` task
owns losses and updates). The contract every GAN model keeps:

    images = model(z [N, latent_dim], labels [N] or None)      (N, 1, 28, 28) in [-1, 1] (tanh)
    scores = model.discriminate(images, labels or None)        [N] raw scores (logits, or critic values)
    feats  = model.discriminator_features(images)              [N, feature_dim] (before the score layer)

and the attributes ``latent_dim``, ``num_classes`` (0: unconditional) and ``default_loss`` (the name of the task's
loss this model is meant for: ``bce``, ``wgan-gp``, ``seed``).

- ``dcgan`` (Radford et al. 2016): transposed convolutions with batch norm and ReLU in G, strided convolutions with
  LeakyReLU(0.2) in D, batch norm in D except after its first layer.
- ``cgan`` (Mirza & Osindero 2014): G reads [z, embed(y)]; D is a projection discriminator (Miyato & Koyama 2018):
  D(x, y) = ψ(φ(x)) + embed(y) · φ(x).
- ``wgan-gp`` (Gulrajani et al. 2017): the DCGAN networks with a critic without sigmoid and without batch norm (the
  gradient penalty is per sample; batch norm would couple the samples): layer norm instead, as the paper advises.
- ``pggan`` (Karras et al. 2018): progressive growing 7×7 → 14×14 → 28×28, see :class:`ProgressiveGan`.

``spectral_norm=True`` puts spectral normalisation (Miyato et al. 2018) on every layer of a discriminator:
each weight W is divided by its largest singular value (one power iteration per step), bounding D's Lipschitz
constant.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.registry import register_model

NORMS: dict[str, Callable[[int], nn.Module]] = {
    "batch": nn.BatchNorm2d,
    "layer": lambda channels: nn.GroupNorm(1, channels),  # one group: normalizes over (C, H, W) of each sample
    "none": lambda channels: nn.Identity(),
}


def _norm(name: str, channels: int) -> nn.Module:
    if name not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {name!r}")
    return NORMS[name](channels)


def _spectral(layer: nn.Module, enabled: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(layer) if enabled else layer


def gan_example(latent_dim: int, num_classes: int = 0) -> Callable[[int], tuple[torch.Tensor, ...]]:
    """``example(batch)`` for the registry: ``(z,)`` or ``(z, labels)``."""
    def example(batch: int) -> tuple[torch.Tensor, ...]:
        z = torch.randn(batch, latent_dim)
        return (z, torch.arange(batch) % num_classes) if num_classes else (z,)

    return example


class GanModel(nn.Module):
    """What every GAN model shares: the contract above. Subclasses set ``generator`` and ``discriminator``."""

    default_loss: ClassVar[str] = "bce"
    progressive: ClassVar[bool] = False  # grows during training (the task sets stage and fade-in)
    latent_dim: int
    num_classes: int = 0

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z)

    def discriminator_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.discriminator.features(images)

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.discriminator.score(self.discriminator_features(images)).squeeze(1)

    def prepare_real(self, images: torch.Tensor) -> torch.Tensor:
        """Real images as the discriminator should see them now (a growing model blurs them to its resolution)."""
        return images


class ConvGenerator(nn.Module):
    """z → Linear → (4w, 7, 7) → ConvT(4w→2w, 4, stride 2) → 14×14 → ConvT(2w→1, 4, stride 2) → 28×28 → tanh."""

    def __init__(self, in_features: int, width: int) -> None:
        super().__init__()
        self.width = width
        self.project = nn.Sequential(nn.Linear(in_features, 4 * width * 49, bias=False), nn.BatchNorm1d(4 * width * 49),
                                     nn.ReLU())
        self.body = nn.Sequential(
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.ConvTranspose2d(2 * width, 1, 4, 2, 1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z).view(-1, 4 * self.width, 7, 7))


class ConvDiscriminator(nn.Module):
    """x (1, 28, 28) → Conv(1→2w, 4, s2) → LReLU → Conv(2w→4w, 4, s2) → norm → LReLU → flatten (4w·49) → Linear → score."""

    def __init__(self, width: int, norm: str = "batch", spectral_norm: bool = False) -> None:
        super().__init__()
        self.feature_dim = 4 * width * 49
        self.body = nn.Sequential(
            _spectral(nn.Conv2d(1, 2 * width, 4, 2, 1), spectral_norm), nn.LeakyReLU(0.2),
            _spectral(nn.Conv2d(2 * width, 4 * width, 4, 2, 1), spectral_norm), _norm(norm, 4 * width),
            nn.LeakyReLU(0.2), nn.Flatten(),
        )
        self.score = _spectral(nn.Linear(self.feature_dim, 1), spectral_norm)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)


@register_model("dcgan", family="gan", task="gan", tasks=("gan",), input_kind="latent", input_shape=(100,),
                tiny={"width": 4}, example=gan_example(100))
class DCGAN(GanModel):
    """DCGAN for 28×28 images: transposed-conv generator with batch norm, strided-conv discriminator (Radford 2016)."""

    def __init__(self, latent_dim: int = 100, width: int = 32, d_norm: str = "batch", spectral_norm: bool = False) -> None:
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, 0
        self.generator = ConvGenerator(latent_dim, width)
        self.discriminator = ConvDiscriminator(width, d_norm, spectral_norm)


@register_model("wgan-gp", family="gan", task="gan", tasks=("gan",), input_kind="latent", input_shape=(100,),
                tiny={"width": 4}, example=gan_example(100))
class WganGp(DCGAN):
    """WGAN-GP (Gulrajani 2017): DCGAN networks, a critic with layer norm (no batch norm, no sigmoid), trained with
    the Wasserstein loss E[D(G(z))] − E[D(x)] + λ·E[(‖∇D(x̂)‖₂ − 1)²] and several critic steps per generator step."""

    default_loss: ClassVar[str] = "wgan-gp"

    def __init__(self, latent_dim: int = 100, width: int = 32, d_norm: str = "layer", spectral_norm: bool = False) -> None:
        super().__init__(latent_dim, width, d_norm, spectral_norm)


class ConditionalGenerator(nn.Module):
    """G(z, y) = ConvGenerator([z, embed(y)]) (Mirza & Osindero 2014)."""

    def __init__(self, num_classes: int, latent_dim: int, width: int, embed_dim: int) -> None:
        super().__init__()
        self.label_embedding = nn.Embedding(num_classes, embed_dim)
        self.body = ConvGenerator(latent_dim + embed_dim, width)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([z, self.label_embedding(labels)], dim=1))


class ProjectionDiscriminator(ConvDiscriminator):
    """D(x, y) = ψ(φ(x)) + embed(y) · φ(x) (Miyato & Koyama 2018): the class enters as an inner product."""

    def __init__(self, num_classes: int, width: int, norm: str = "batch", spectral_norm: bool = False) -> None:
        super().__init__(width, norm, spectral_norm)
        self.projection = _spectral(nn.Embedding(num_classes, self.feature_dim), spectral_norm)

    def project(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.score(features).squeeze(1) + (self.projection(labels) * features).sum(1)


@register_model("cgan", family="gan", task="gan", tasks=("gan",), input_kind="latent", input_shape=(100,),
                tiny={"width": 4, "embed_dim": 4}, example=gan_example(100, 10))
class ConditionalGan(GanModel):
    """Class-conditional DCGAN: G(z, y) reads [z, embed(y)] (Mirza & Osindero 2014); D is a projection discriminator
    D(x, y) = ψ(φ(x)) + embed_D(y) · φ(x) (Miyato & Koyama 2018), so "generate a 7" is G(z, 7)."""

    def __init__(self, num_classes: int = 10, latent_dim: int = 100, width: int = 32, embed_dim: int = 32,
                 d_norm: str = "batch", spectral_norm: bool = False) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a conditional GAN needs num_classes ≥ 2, got {num_classes}")
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.generator = ConditionalGenerator(num_classes, latent_dim, width, embed_dim)
        self.discriminator = ProjectionDiscriminator(num_classes, width, d_norm, spectral_norm)

    def _labels(self, labels: torch.Tensor | None, batch: int) -> torch.Tensor:
        if labels is None:
            raise ValueError("cgan is class-conditional: pass labels (one class index per sample)")
        if labels.shape != (batch,):
            raise ValueError(f"labels must have shape ({batch},), got {tuple(labels.shape)}")
        return labels

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(z, self._labels(labels, z.shape[0]))

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        labels = self._labels(labels, images.shape[0])
        return self.discriminator.project(self.discriminator_features(images), labels)


class PixelNorm(nn.Module):
    """Each pixel's feature vector scaled to unit mean square (Karras 2018, §4.2): keeps G's signals bounded."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class MinibatchStd(nn.Module):
    """Appends the mean over features of the across-batch standard deviation as one extra channel (Karras 2018,
    §3): the discriminator sees how varied a batch is, which discourages collapse onto one mode."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spread = x.std(dim=0, unbiased=False).mean() if x.shape[0] > 1 else x.new_zeros(())
        return torch.cat([x, spread.expand(x.shape[0], 1, *x.shape[2:])], dim=1)


def _g_block(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                         nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2), PixelNorm(),
                         nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2), PixelNorm())


def _d_block(width: int, spectral_norm: bool) -> nn.Sequential:
    return nn.Sequential(_spectral(nn.Conv2d(width, width, 3, padding=1), spectral_norm), nn.LeakyReLU(0.2),
                         _spectral(nn.Conv2d(width, width, 3, padding=1), spectral_norm), nn.LeakyReLU(0.2),
                         nn.AvgPool2d(2))


STAGES = 3  # 7×7, 14×14, 28×28


@register_model("pggan", family="gan", task="gan", tasks=("gan",), input_kind="latent", input_shape=(100,),
                tiny={"width": 4}, example=gan_example(100))
class ProgressiveGan(GanModel):
    """Progressive growing (Karras et al. 2018): train at 7×7, then add a 14×14 and a 28×28 stage, each faded in.

    At stage s (resolution 7·2^s) with fade-in weight α ∈ [0, 1] the generator's image is

        img = α · rgb(h_s) + (1 − α) · up(rgb(h_{s−1}))        h_s = block_s(h_{s−1}), h_0 = from z

    and the discriminator reads the image pooled to 7·2^s the mirror way (α on the new block, 1 − α on the path
    that skips it). Every output is upsampled (nearest) to 28×28, so the rest of archlab never sees the growth;
    ``prepare_real`` blurs real images the same way. ``stage`` and ``alpha`` are buffers: they travel with the
    weights. The ``gan`` task sets them (``set_growth``) from its schedule; a new model is fully grown.

    Deviations from the paper (28×28 is small): every stage has the same width, so one 1×1 toRGB / fromRGB serves
    every resolution (the paper has one per resolution); LeakyReLU and pixel norm, minibatch-std in D, no
    equalized learning rate.
    """

    progressive: ClassVar[bool] = True

    def __init__(self, latent_dim: int = 100, width: int = 32, spectral_norm: bool = False) -> None:
        super().__init__()
        self.latent_dim, self.num_classes, self.width = latent_dim, 0, width
        self.register_buffer("stage", torch.tensor(STAGES - 1))
        self.register_buffer("alpha", torch.tensor(1.0))
        self.generator = nn.ModuleDict({
            "stem": nn.Sequential(nn.Linear(latent_dim, width * 49), nn.LeakyReLU(0.2)),
            "stem_conv": nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2), PixelNorm()),
            "blocks": nn.ModuleList(_g_block(width) for _ in range(STAGES - 1)),
            "to_rgb": nn.Conv2d(width, 1, 1),
        })
        self.discriminator = nn.ModuleDict({
            "from_rgb": _spectral(nn.Conv2d(1, width, 1), spectral_norm),
            "blocks": nn.ModuleList(_d_block(width, spectral_norm) for _ in range(STAGES - 1)),  # [i]: 7·2^(i+1) → half
            "head": nn.Sequential(MinibatchStd(), _spectral(nn.Conv2d(width + 1, width, 3, padding=1), spectral_norm),
                                  nn.LeakyReLU(0.2), nn.Flatten()),
            "score": _spectral(nn.Linear(width * 49, 1), spectral_norm),
        })

    def set_growth(self, stage: int, alpha: float) -> None:
        if not 0 <= stage < STAGES or not 0.0 <= alpha <= 1.0:
            raise ValueError(f"stage must be in 0..{STAGES - 1} and alpha in [0, 1], got {stage}, {alpha}")
        self.stage.fill_(stage)
        self.alpha.fill_(alpha)

    def growth(self) -> tuple[int, float]:
        return int(self.stage), float(self.alpha)

    @staticmethod
    def _to_full(images: torch.Tensor) -> torch.Tensor:
        return F.interpolate(images, scale_factor=28 // images.shape[-1], mode="nearest") if images.shape[-1] < 28 else images

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        stage, alpha = self.growth()
        g = self.generator
        h = g["stem_conv"](g["stem"](z).view(-1, self.width, 7, 7))
        previous = h
        for block in g["blocks"][:stage]:
            previous, h = h, block(h)
        image = torch.tanh(g["to_rgb"](h))
        if stage > 0 and alpha < 1.0:
            image = alpha * image + (1 - alpha) * F.interpolate(torch.tanh(g["to_rgb"](previous)), scale_factor=2)
        return self._to_full(image)

    def prepare_real(self, images: torch.Tensor) -> torch.Tensor:
        stage, alpha = self.growth()
        sharp = F.avg_pool2d(images, 2 ** (STAGES - 1 - stage)) if stage < STAGES - 1 else images
        if stage > 0 and alpha < 1.0:
            sharp = alpha * sharp + (1 - alpha) * F.interpolate(F.avg_pool2d(sharp, 2), scale_factor=2)
        return self._to_full(sharp)

    def discriminator_features(self, images: torch.Tensor) -> torch.Tensor:
        stage, alpha = self.growth()
        x = F.avg_pool2d(images, 2 ** (STAGES - 1 - stage)) if stage < STAGES - 1 else images
        d = self.discriminator
        h = F.leaky_relu(d["from_rgb"](x), 0.2)
        if stage > 0:
            h = d["blocks"][stage - 1](h)
            if alpha < 1.0:
                h = alpha * h + (1 - alpha) * F.leaky_relu(d["from_rgb"](F.avg_pool2d(x, 2)), 0.2)
            for block in reversed(d["blocks"][:stage - 1]):
                h = block(h)
        return d["head"](h)

    def discriminate(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.discriminator["score"](self.discriminator_features(images)).squeeze(1)
