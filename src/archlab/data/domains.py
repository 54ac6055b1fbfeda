"""Image domains for unpaired translation: a real data set, optionally transformed on the fly.

A *domain* is a source image data set (MNIST, Fashion-MNIST) and a pure function of its uint8 images:

    mnist          the digits as they are
    mnist-thick    the digits dilated by a 3×3 maximum filter: thick(x)[i, j] = max over |di|,|dj| ≤ 1 of x[i+di, j+dj]
    fashion-mnist  the clothes as they are

The transformed images are computed in memory when the data are loaded and never stored. Two domains of
one run draw their training (and validation) images from *disjoint halves* of the source training split
(a seeded permutation: the first half feeds domain A, the second domain B), so that no digit of A has its
own thick twin in B: the pairs a translation model sees are truly unpaired, as CycleGAN assumes
(Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks").
The test split of each domain is its source's whole official test split, transformed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from archlab.data.splits import TensorSplit, load_image_data
from archlab.errors import ConfigError


def dilate(images: torch.Tensor, size: int = 3) -> torch.Tensor:
    """Grey-level morphological dilation of uint8 images [N, C, H, W] by a ``size``×``size`` square (same shape)."""
    if size % 2 != 1 or size < 1:
        raise ConfigError(f"the dilation size must be an odd number ≥ 1, got {size}")
    thick = F.max_pool2d(images.float(), size, stride=1, padding=size // 2)
    return thick.to(images.dtype)


@dataclass(frozen=True)
class Domain:
    """One image domain: its source data set and the transform of its uint8 images (None: as they are)."""

    name: str
    source: str
    description: str
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        return images if self.transform is None else self.transform(images)


DOMAINS: dict[str, Domain] = {}


def register_domain(domain: Domain) -> Domain:
    if domain.name in DOMAINS:
        raise ValueError(f"domain {domain.name!r} registered twice")
    DOMAINS[domain.name] = domain
    return domain


register_domain(Domain("mnist", "mnist", "MNIST digits as they are"))
register_domain(Domain("mnist-thick", "mnist", "MNIST digits dilated by a 3×3 maximum filter (thick strokes)",
                       dilate))
register_domain(Domain("fashion-mnist", "fashion-mnist", "Fashion-MNIST clothes as they are"))


def get_domain(name: str) -> Domain:
    if name not in DOMAINS:
        raise ConfigError(f"Unknown image domain {name!r}. Known domains: {', '.join(sorted(DOMAINS))}.")
    return DOMAINS[name]


@dataclass
class DomainPair:
    """The splits of two domains A and B; A's and B's training (and validation) images are disjoint."""

    domain_a: Domain
    domain_b: Domain
    train_a: TensorSplit
    train_b: TensorSplit
    val_a: TensorSplit
    val_b: TensorSplit
    test_a: TensorSplit
    test_b: TensorSplit


def halves(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint sorted index sets covering range(n) (sizes ⌊n/2⌋ and ⌈n/2⌉), from a seeded permutation."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[: n // 2].sort().values, order[n // 2 :].sort().values


def _transformed(split: TensorSplit, domain: Domain) -> TensorSplit:
    return TensorSplit(domain.apply(split.images), split.labels)


def load_domain_pair(domain_a: str, domain_b: str, data_dir: str | Path | None = None, val_size: int = 5000,
                     seed: int = 0) -> DomainPair:
    """Domains A and B from disjoint halves of their sources' training (and validation) splits."""
    a, b = get_domain(domain_a), get_domain(domain_b)
    if a.name == b.name:
        raise ConfigError(f"domain_a and domain_b are both {a.name!r}; translation needs two different domains "
                          f"(e.g. domain_a=mnist domain_b=mnist-thick). Known: {', '.join(sorted(DOMAINS))}.")
    data_a = load_image_data(a.source, data_dir, val_size, seed)
    data_b = data_a if b.source == a.source else load_image_data(b.source, data_dir, val_size, seed)
    parts = {}
    for split in ("train", "val"):
        split_a, split_b = getattr(data_a, split), getattr(data_b, split)
        # Different sources are split the same way, so each domain sees half of its own images either way.
        first, _ = halves(len(split_a), seed)
        _, second = halves(len(split_b), seed)
        parts[f"{split}_a"] = _transformed(split_a.subset(first), a)
        parts[f"{split}_b"] = _transformed(split_b.subset(second), b)
    return DomainPair(a, b, test_a=_transformed(data_a.test, a), test_b=_transformed(data_b.test, b), **parts)
