"""Batched, seeded image augmentation on [0, 1] tensors (CPU or CUDA), built on kornia.

For a batch ``x`` of shape [B, C, H, W] each image independently gets, in this order:

* a random affine map: rotation uniform in [-rotate_deg, rotate_deg], shift uniform in
  [-translate, translate] x size on each axis, zoom uniform in ``scale``; zeros fill the border;
* random erasing (Zhong et al., 2017) with probability ``erase_p``: a rectangle set to 0;
* additive Gaussian noise ``x + noise_std * eps``, then clamping to [0, 1].

``Augment(x, seed)`` is a pure function of (x, seed): the random parameters are drawn inside
``torch.random.fork_rng`` after ``torch.manual_seed(seed)``, so the caller's global RNG is left untouched and a
resumed run can replay exactly the same augmentation for the same batch (see ``BatchLoader``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import kornia.augmentation as K
import torch
from torch import nn

from archlab.errors import ConfigError


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"Invalid augmentation setting: {message}.")


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; all zero / None means no augmentation at all."""

    rotate_deg: float = 0.0
    translate: float = 0.0
    scale: tuple[float, float] | None = None
    erase_p: float = 0.0
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        for field in ("rotate_deg", "translate", "erase_p", "noise_std"):
            value = getattr(self, field)
            _check(isinstance(value, (int, float)) and math.isfinite(value), f"{field} must be a number, got {value!r}")
            _check(value >= 0, f"{field} must be >= 0, got {value}")
        _check(self.rotate_deg <= 180, f"rotate_deg must be <= 180, got {self.rotate_deg}")
        _check(self.translate < 1, f"translate is a fraction of the image size and must be < 1, got {self.translate}")
        _check(self.erase_p <= 1, f"erase_p is a probability and must be <= 1, got {self.erase_p}")
        if self.scale is not None:
            pair = isinstance(self.scale, (tuple, list)) and len(self.scale) == 2
            _check(pair and all(isinstance(s, (int, float)) for s in self.scale),
                   f"scale must be a pair of numbers (low, high), got {self.scale!r}")
            low, high = (float(s) for s in self.scale)
            _check(0 < low <= high, f"scale must satisfy 0 < low <= high, got {self.scale!r}")
            object.__setattr__(self, "scale", (low, high))

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is switched on."""
        return bool(self.rotate_deg or self.translate or self.scale or self.erase_p or self.noise_std)

    @property
    def affine(self) -> bool:
        """Whether the geometric (affine) part is switched on."""
        return bool(self.rotate_deg or self.translate or self.scale)

    @classmethod
    def from_dict(cls, values: Mapping | None) -> AugmentConfig:
        """Build from a recipe mapping; ConfigError names unknown keys and bad values."""
        values = dict(values or {})
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        _check(not unknown, f"unknown key(s) {unknown}; known keys are {sorted(known)}")
        try:
            return cls(**values)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"Invalid augmentation setting: {error}.") from error

    def to_dict(self) -> dict:
        """Plain dict (for the resolved config written into a run directory)."""
        return dataclasses.asdict(self)


def _build_pipeline(config: AugmentConfig) -> nn.Sequential:
    """The kornia modules for the switched-on parts, in the documented order."""
    layers: list[nn.Module] = []
    if config.affine:
        translate = (config.translate, config.translate) if config.translate else None
        layers.append(K.RandomAffine(degrees=config.rotate_deg, translate=translate, scale=config.scale, p=1.0))
    if config.erase_p:
        layers.append(K.RandomErasing(p=config.erase_p, value=0.0))
    if config.noise_std:
        layers.append(K.RandomGaussianNoise(mean=0.0, std=config.noise_std, p=1.0))
    return nn.Sequential(*layers)


def _seed(seed: int, device: torch.device) -> None:
    """Seed the CPU generator and, for CUDA input, the generator of that one GPU (the ones fork_rng restores)."""
    torch.random.default_generator.manual_seed(seed)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


class Augment:
    """Callable ``(x [B, C, H, W] in [0, 1], seed) -> augmented x`` of the same shape, on x's device."""

    def __init__(self, config: AugmentConfig) -> None:
        self.config = config
        self.pipeline = _build_pipeline(config)

    def __repr__(self) -> str:
        return f"Augment({self.config})"

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        if not self.config.enabled:
            return x
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            _seed(seed, x.device)
            out = self.pipeline(x.float())
        return out.clamp_(0.0, 1.0)
