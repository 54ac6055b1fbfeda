"""Adversarial robustness: how much does accuracy fall when every pixel may move by at most ε?

The attacks work in **pixel space**: images in [0, 1], and ε in the same units (ε = 0.1 lets every pixel
move by a tenth of the grey range). The model sees normalized inputs, so it is wrapped in
:class:`PixelSpace`, which normalizes inside ``forward``; ε then means the same for every run whatever its
normalization, and the adversarial images stay valid images (clipped to [0, 1]).

- **FGSM**, the fast gradient sign method (Goodfellow, Shlens & Szegedy, "Explaining and Harnessing
  Adversarial Examples", ICLR 2015): one step to the corner of the L∞ ball where the loss grows fastest to
  first order, ``x' = clip(x + ε sign(∇_x L(f(x), y)), 0, 1)``.
- **PGD**, projected gradient descent (Madry et al., "Towards Deep Learning Models Resistant to Adversarial
  Attacks", ICLR 2018): from a random start in the ball (optional), ``k`` steps
  ``x ← Π_{‖x' − x‖∞ ≤ ε}(x + α sign(∇_x L))`` then clip to [0, 1]; α defaults to ``2.5 ε / k`` (the
  paper's choice, so the steps can cross the ball). As robustness evaluations usually do, a sample counts
  as broken as soon as one iterate fools the model, and that iterate is its adversarial example.

``robust_accuracy`` is the number to compare architectures by: accuracy under attack, per ε.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archlab.analysis.tracing import evaluating, model_device
from archlab.errors import ConfigError


class PixelSpace(nn.Module):
    """``model((pixels − mean) / std)``: the model as a function of pixels in [0, 1].

    ``mean`` and ``std`` are numbers or one value per channel (the run's normalization).
    """

    def __init__(self, model: nn.Module, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        super().__init__()
        self.model = model
        device = model_device(model)
        self.register_buffer("mean", _per_channel(mean, device), persistent=False)
        self.register_buffer("std", _per_channel(std, device), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model((pixels - self.mean) / self.std)


def _per_channel(value: float | Sequence[float], device: torch.device) -> torch.Tensor:
    """A number or one value per channel, shaped [1, C, 1, 1] to broadcast over a batch of images."""
    return torch.as_tensor(value, dtype=torch.float32, device=device).reshape(1, -1, 1, 1)


@dataclass(frozen=True)
class AttackSettings:
    """Settings of the iterative attacks (FGSM ignores them)."""

    steps: int = 10
    step_size: float | None = None  # α in pixel units; None: 2.5 ε / steps (Madry et al.)
    random_start: bool = True
    seed: int = 0


def _loss_gradient(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``∇_x`` of the summed cross-entropy at ``pixels``, and the logits there (parameters' .grad untouched)."""
    with torch.enable_grad():
        x = pixels.detach().clone().requires_grad_(True)
        logits = model(x)
        (gradient,) = torch.autograd.grad(F.cross_entropy(logits.float(), labels, reduction="sum"), x)
    return gradient, logits.detach()


def fgsm(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, eps: float, settings: AttackSettings,
         generator: torch.Generator) -> torch.Tensor:
    """``clip(x + ε sign(∇_x L), 0, 1)``: one signed gradient step (Goodfellow et al. 2015)."""
    gradient, _ = _loss_gradient(model, pixels, labels)
    return (pixels + eps * gradient.sign()).clamp(0, 1)


def pgd(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, eps: float, settings: AttackSettings,
        generator: torch.Generator) -> torch.Tensor:
    """``settings.steps`` projected signed-gradient steps inside the L∞ ball of radius ε (Madry et al. 2018)."""
    step = settings.step_size if settings.step_size is not None else 2.5 * eps / settings.steps
    low, high = (pixels - eps).clamp(0, 1), (pixels + eps).clamp(0, 1)
    adversarial = pixels.clone()
    if settings.random_start:
        noise = torch.rand(pixels.shape, generator=generator, dtype=torch.float32).to(pixels)
        adversarial = torch.min(torch.max(pixels + (2 * noise - 1) * eps, low), high)
    best = adversarial.clone()
    fooled = torch.zeros(len(pixels), dtype=torch.bool, device=pixels.device)
    for _ in range(settings.steps):
        gradient, logits = _loss_gradient(model, adversarial, labels)
        newly = (logits.argmax(1) != labels) & ~fooled
        best[newly] = adversarial[newly]
        fooled |= newly
        adversarial = torch.min(torch.max(adversarial + step * gradient.sign(), low), high)
    # Samples no iterate has fooled so far take the last one (which may fool the model, or not).
    best[~fooled] = adversarial[~fooled]
    return best


Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor, float, AttackSettings, torch.Generator], torch.Tensor]
ATTACKS: dict[str, Attack] = {"fgsm": fgsm, "pgd": pgd}


def check_attack(method: str, eps_list: Sequence[float], steps: int = 1,
                 step_size: float | None = None) -> list[float]:
    """Validate the method name, the ε values (pixel units, in [0, 1]), the steps and the step size; return ε."""
    if method not in ATTACKS:
        raise ConfigError(f"Unknown attack method {method!r}; choose one of {', '.join(ATTACKS)}.")
    eps = [float(value) for value in eps_list]
    if not eps:
        raise ConfigError("Give at least one ε, e.g. 0,0.05,0.1,0.2.")
    bad = [value for value in eps if not 0.0 <= value <= 1.0]
    if bad:
        raise ConfigError(f"ε must be in [0, 1] (pixel units: 0.1 = a tenth of the grey range); got {bad}.")
    if steps < 1:
        raise ConfigError(f"steps must be at least 1, got {steps}.")
    if step_size is not None and not step_size > 0:
        raise ConfigError(f"step_size must be > 0 (pixel units), got {step_size}; leave it out for 2.5·ε/steps.")
    return eps


def to_pixels(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 images (0..255) or float pixels in [0, 1], ``[N, C, H, W]`` or ``[N, H, W]`` → float [N, C, H, W]."""
    images = torch.as_tensor(images)
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4:
        raise ConfigError(f"images must be [N, C, H, W] or [N, H, W]; got shape {tuple(images.shape)}.")
    if images.dtype == torch.uint8:
        return images.float() / 255
    images = images.float()
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ConfigError("float images must be pixels in [0, 1] (not normalized): pass uint8 images or "
                          "divide by 255; the attack applies the model's mean/std itself.")
    return images


def perturb(pixel_model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, method: str, eps: float,
            settings: AttackSettings, generator: torch.Generator) -> torch.Tensor:
    """Adversarial pixels for one batch; ε = 0 returns the clean pixels themselves (no attack is run)."""
    if eps == 0:
        return pixels
    return ATTACKS[method](pixel_model, pixels, labels, eps, settings, generator).detach()


def robust_accuracy(model: nn.Module, images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray,
                    method: str = "fgsm", eps_list: Sequence[float] = (0.0, 0.05, 0.1, 0.2),
                    mean: float | Sequence[float] = 0.0, std: float | Sequence[float] = 1.0, *,
                    steps: int = 10, step_size: float | None = None, random_start: bool = True, seed: int = 0,
                    batch_size: int = 256) -> dict[float, float]:
    """Accuracy under attack, ``{ε: accuracy}``, for a classifier of normalized images.

    ``images`` are uint8 (0..255) or float pixels in [0, 1] (never normalized: ``mean``/``std`` are the
    model's normalization, applied inside); ``labels`` are class indices; ``method`` is ``"fgsm"`` or
    ``"pgd"`` (``steps``, ``step_size``, ``random_start``, ``seed`` are PGD's); ε is in pixel units. The
    model runs in eval mode (its modes are restored afterwards). ε = 0 is the clean accuracy exactly.

    Example: ``robust_accuracy(model, test.images[:1000], test.labels[:1000], "pgd", [0, 0.1], 0.13, 0.31)``
    """
    eps = check_attack(method, eps_list, steps, step_size)
    pixels, labels = to_pixels(images), torch.as_tensor(labels).long()
    if len(pixels) != len(labels) or len(pixels) == 0:
        raise ConfigError(f"Need as many labels as images, at least one; got {len(pixels)} images and "
                          f"{len(labels)} labels.")
    settings = AttackSettings(steps, step_size, random_start, seed)
    generator = torch.Generator().manual_seed(seed)
    pixel_model = PixelSpace(model, mean, std)
    device = model_device(model)
    correct = dict.fromkeys(eps, 0)
    with evaluating(model):
        for start in range(0, len(pixels), batch_size):
            x, y = pixels[start : start + batch_size].to(device), labels[start : start + batch_size].to(device)
            for value in correct:
                adversarial = perturb(pixel_model, x, y, method, value, settings, generator)
                with torch.no_grad():
                    correct[value] += int((pixel_model(adversarial).argmax(1) == y).sum())
    return {value: count / len(pixels) for value, count in correct.items()}


@dataclass
class AdversarialExamples:
    """A few images before and after the attack, pixels in [0, 1], with the model's predictions."""

    clean: torch.Tensor
    adversarial: torch.Tensor
    labels: torch.Tensor
    clean_pred: torch.Tensor
    adversarial_pred: torch.Tensor
    eps: float


def adversarial_examples(model: nn.Module, images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray,
                         method: str, eps: float, mean: float | Sequence[float], std: float | Sequence[float], *,
                         settings: AttackSettings = AttackSettings()) -> AdversarialExamples:
    """Attack a handful of images (one batch) and return clean / adversarial pixels and predictions, on CPU."""
    check_attack(method, [eps], settings.steps, settings.step_size)
    pixel_model, device = PixelSpace(model, mean, std), model_device(model)
    x, y = to_pixels(images).to(device), torch.as_tensor(labels).long().to(device)
    with evaluating(model):
        adversarial = perturb(pixel_model, x, y, method, eps, settings, torch.Generator().manual_seed(settings.seed))
        with torch.no_grad():
            clean_pred, adversarial_pred = pixel_model(x).argmax(1), pixel_model(adversarial).argmax(1)
    return AdversarialExamples(x.cpu(), adversarial.cpu(), y.cpu(), clean_pred.cpu(), adversarial_pred.cpu(), eps)
