"""Image enhancement with a trained diffusion model: inpainting, denoising and 2× super-resolution.

All three run the ordinary reverse process and, after every update, project x_{t_prev} onto what is known:

- **inpainting** (RePaint, Lugmayr et al. 2022): known pixels are replaced by a fresh draw of
  q(x_{t_prev} | x_0 = image), i.e. ``x = keep · (sqrt(abar) image + sqrt(1 - abar) z) + mask · x``; with
  ``resample`` > 1 each step is repeated after re-noising to x_t, so the generated region harmonises with the
  known one. At the last step abar = 1: the known pixels are the input's, exactly.
- **denoising** (as in SDEdit, Meng et al. 2022): an image with Gaussian noise of standard deviation sigma is
  x_t / sqrt(abar_t) for the t with sigma² = (1 - abar_t) / abar_t; scaled by sqrt(abar_t) it *is* x_t, and the
  reverse process from that t removes the noise. sigma can be estimated from the image (the median absolute
  diagonal Haar coefficient / 0.6745, Donoho & Johnstone 1994).
- **2× super-resolution** (ILVR, Choi et al. 2021): the low-pass part of x_{t_prev} (2×2 average, nearest
  upsampling back) is replaced by that of the noised, upsampled low-resolution input, so the output's 2×2
  averages equal the input's pixels at the end while the generated high frequencies come from the model
  (alternating projections at the end keep that true after clipping to [-1, 1]).

Images are ``[N, C, H, W]`` in [-1, 1]; masks are boolean, True where pixels are to be generated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from archlab.diffusion.pipeline import DiffusionModel, _device, make_generator
from archlab.diffusion.samplers import Denoiser, make_sampler, reverse
from archlab.errors import ArchlabError

Tensor = torch.Tensor


def _check_image(model: DiffusionModel, image: Tensor, what: str, shape: tuple[int, ...] | None = None) -> None:
    expected = shape or model.image_shape
    if image.ndim != 4 or tuple(image.shape[1:]) != tuple(expected):
        size = "×".join(map(str, expected[1:]))
        raise ArchlabError(f"The {what} must be {size} pixels with {expected[0]} channel(s) for this model, got shape "
                           f"{tuple(image.shape[1:]) if image.ndim == 4 else tuple(image.shape)}.")


def _run(model: DiffusionModel, x: Tensor, project, *, start: int | None, steps: int | None, sampler: str,
         eta: float, resample: int, generator: torch.Generator, progress: bool) -> Tensor:
    chosen = make_sampler(sampler, **({"eta": eta} if sampler == "ddim" else {}))
    plan = chosen.plan(model.schedule.timesteps, steps, start)
    network = model.network
    was_training = network.training
    network.eval()
    try:
        denoise = Denoiser(network, model.schedule, model.prediction)
        x = reverse(denoise, chosen, x, plan, generator=generator, project=project, resample=resample,
                    progress=progress)
    finally:
        network.train(was_training)
    return x.clamp(-1, 1).float().cpu()


@torch.no_grad()
def inpaint(model: DiffusionModel, image: Tensor, mask: Tensor, *, steps: int | None = 50, sampler: str = "ddim",
            eta: float = 0.0, resample: int = 1, seed: int = 0, progress: bool = False) -> Tensor:
    """Fill the pixels where ``mask`` is True; the others come back exactly as in ``image``."""
    _check_image(model, image, "image")
    if mask.shape != image.shape:
        raise ArchlabError(f"The mask must be the image's size: image {tuple(image.shape[-2:])}, mask "
                           f"{tuple(mask.shape[-2:])}. Draw the mask on a copy of the image (white = fill).")
    device = _device(model.network)
    generator = make_generator(device, seed)
    image, fill = image.to(device), mask.to(device).bool()

    def paste_known(x: Tensor, t_prev: int) -> Tensor:
        t = torch.full((x.shape[0],), t_prev, device=device)
        noise = torch.randn(x.shape, generator=generator, device=device)
        return torch.where(fill, x, model.schedule.q_sample(image, t, noise))

    x = torch.randn(image.shape, generator=generator, device=device)
    return _run(model, x, paste_known, start=None, steps=steps, sampler=sampler, eta=eta, resample=resample,
                generator=generator, progress=progress)


def estimate_noise_sigma(image: Tensor) -> float:
    """The noise standard deviation of ``image`` (same units), from its finest diagonal Haar coefficients."""
    a, b = image[..., 0::2, 0::2], image[..., 0::2, 1::2]
    c, d = image[..., 1::2, 0::2], image[..., 1::2, 1::2]
    rows, cols = min(a.shape[-2], d.shape[-2]), min(a.shape[-1], d.shape[-1])
    diagonal = (a[..., :rows, :cols] - b[..., :rows, :cols] - c[..., :rows, :cols] + d[..., :rows, :cols]) / 2
    return float(diagonal.abs().median() / 0.6745)


@torch.no_grad()
def denoise(model: DiffusionModel, noisy: Tensor, sigma: float | None = None, *, steps: int | None = 50,
            sampler: str = "ddim", eta: float = 0.0, seed: int = 0, progress: bool = False) -> tuple[Tensor, float]:
    """The clean image under ``noisy`` (``sigma``: its noise std in [-1, 1] units, estimated when None),
    and the sigma used."""
    _check_image(model, noisy, "noisy image")
    sigma = estimate_noise_sigma(noisy) if sigma is None else float(sigma)
    if sigma < 0:
        raise ArchlabError(f"The noise level must be ≥ 0, got {sigma}.")
    start = model.schedule.index_for_noise_level(sigma)
    device = _device(model.network)
    abar = float(model.schedule.alphas_cumprod[start])
    x = noisy.to(device) * abar**0.5
    if steps is not None:
        steps = min(steps, start + 1)
    result = _run(model, x, None, start=start, steps=steps, sampler=sampler, eta=eta, resample=1,
                  generator=make_generator(device, seed), progress=progress)
    return result, sigma


def _low_pass(x: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(F.avg_pool2d(x, 2), size=size, mode="nearest")


@torch.no_grad()
def upscale(model: DiffusionModel, low: Tensor, *, steps: int | None = 50, sampler: str = "ddim", eta: float = 0.0,
            seed: int = 0, progress: bool = False) -> Tensor:
    """A 2× larger image whose 2×2 averages are ``low``'s pixels (``low``: half the model's image size)."""
    channels, height, width = model.image_shape
    _check_image(model, low, "low-resolution image", (channels, height // 2, width // 2))
    device = _device(model.network)
    generator = make_generator(device, seed)
    reference = F.interpolate(low.to(device), size=(height, width), mode="nearest")

    def keep_low_pass(x: Tensor, t_prev: int) -> Tensor:
        t = torch.full((x.shape[0],), t_prev, device=device)
        noise = torch.randn(x.shape, generator=generator, device=device)
        target = model.schedule.q_sample(reference, t, noise)
        return x - _low_pass(x, (height, width)) + _low_pass(target, (height, width))

    x = torch.randn((low.shape[0], channels, height, width), generator=generator, device=device)
    x = _run(model, x, keep_low_pass, start=None, steps=steps, sampler=sampler, eta=eta, resample=1,
             generator=generator, progress=progress)
    return _within_range(x, reference.cpu(), (height, width))


def _within_range(x: Tensor, reference: Tensor, size: tuple[int, int], rounds: int = 200) -> Tensor:
    """Alternate the two projections (clip to [-1, 1]; restore the reference's low-pass part) until the image is
    in both sets (they meet: the upsampled input itself is in both), so clipping does not undo the consistency."""
    for _ in range(rounds):
        x = (x - _low_pass(x, size) + _low_pass(reference, size)).clamp(-1, 1)
    return x
