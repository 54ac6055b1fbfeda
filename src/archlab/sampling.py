"""Images from a generative run: ``sample(run_dir, n, ...)``, dispatched on the run's task through ``SAMPLERS``.

Each entry is a dotted path ``module:function`` imported only when a run of that task is sampled, so this module
imports no model family. Every sampler returns ``[n, C, H, W]`` in [-1, 1] (CPU, float32).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

import torch

from archlab.errors import ArchlabError
from archlab.image_files import read_image, write_png  # noqa: F401  (write_png: re-exported for the CLI)
from archlab.runs import META, check_run_dir, read_json

SAMPLERS: dict[str, str] = {
    "diffusion": "archlab.sampling:sample_diffusion",
    "gan": "archlab.tasks.gan_sampling:sample_gan",
}


def _resolve(path: str) -> Callable[..., torch.Tensor]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def check_class(class_label: int | None, classes: list[str]) -> None:
    """Refuse a class outside the data set's, naming the valid ones."""
    if class_label is None:
        return
    if not 0 <= class_label < len(classes):
        listed = ", ".join(f"{i} ({name})" for i, name in enumerate(classes))
        raise ArchlabError(f"Class {class_label} is outside this run's data set, whose classes are: {listed}.")


def sample(run_dir: str | Path, n: int, *, class_label: int | None = None, steps: int | None = None,
           guidance: float | None = None, temperature: float = 1.0, seed: int = 0, eta: float = 0.0,
           sampler: str | None = None, progress: bool = False) -> torch.Tensor:
    """``n`` images from the run in ``run_dir``.

    Diffusion runs: ``steps`` DDIM steps (default: the run's evaluation sampler, ddim 50), or ``sampler="ddpm"``
    for ancestral sampling through all T steps; ``eta`` (ddim), ``guidance`` (conditional runs), ``temperature``
    (scales x_T and every added noise). GAN runs: ``temperature`` scales z. ``class_label``: conditional runs.
    """
    run_dir = check_run_dir(run_dir)
    meta = read_json(run_dir / META, "the run has not finished; train it or resume it with --resume.")
    task = meta.get("task", "classify")
    if task not in SAMPLERS:
        raise ArchlabError(f"{run_dir} is a {task} run; `sample` draws images from {', '.join(SAMPLERS)} runs. "
                           "Train one with `archlab train ddpm --data mnist` or `archlab train dcgan --data mnist`.")
    check_class(class_label, list(meta.get("classes") or []))
    if n < 1:
        raise ArchlabError(f"Asked for {n} samples; ask for at least 1.")
    if task == "diffusion":
        return sample_diffusion(run_dir, n, class_label=class_label, steps=steps, guidance=guidance,
                                temperature=temperature, seed=seed, eta=eta, sampler=sampler, progress=progress)
    unused = {"--steps": steps, "--guidance": guidance, "--sampler": sampler, "--eta": eta or None}
    given = [flag for flag, value in unused.items() if value is not None]
    if given:
        raise ArchlabError(f"{', '.join(given)} belong to diffusion sampling; a {task} run draws each image in one "
                           "pass from a latent z. Drop them (--temperature scales z).")
    return _resolve(SAMPLERS[task])(run_dir, n, class_label=class_label, temperature=temperature, seed=seed)


def sample_diffusion(run_dir: str | Path, n: int, *, class_label: int | None = None, steps: int | None = None,
                     guidance: float | None = None, temperature: float = 1.0, seed: int = 0, eta: float = 0.0,
                     sampler: str | None = None, progress: bool = False) -> torch.Tensor:
    """Samples of a diffusion run with its saved (EMA) network; see :func:`sample`."""
    from archlab.diffusion.pipeline import generate, load_diffusion

    model = load_diffusion(run_dir)
    default = model.default_sampler()
    name = sampler or ("ddim" if steps is not None else default["name"])
    if steps is None and name == default["name"]:
        steps = default.get("steps")
    labels = torch.full((n,), class_label, dtype=torch.long) if class_label is not None else None
    return generate(model, n, sampler=name, steps=steps, eta=eta, temperature=temperature, labels=labels,
                    guidance=guidance, seed=seed, progress=progress)


ENHANCEMENTS = ("inpaint", "denoise", "upscale")


def enhance(run_dir: str | Path, image: str | Path, *, inpaint: str | Path | None = None, denoise: bool = False,
            sigma: float | None = None, upscale: bool = False, steps: int | None = 50, sampler: str = "ddim",
            resample: int = 1, seed: int = 0, progress: bool = False) -> tuple[torch.Tensor, list[str]]:
    """Enhance one image with a diffusion run: fill the white part of the ``inpaint`` mask, remove Gaussian noise
    (``sigma``: its standard deviation in [0, 1] pixel units, estimated when None), or upscale 2× (14×14 → 28×28).
    Returns the image ``[1, C, H, W]`` in [-1, 1] and notes on what was done."""
    from archlab.diffusion import enhance as enhancement
    from archlab.diffusion.pipeline import load_diffusion

    chosen = [name for name, on in zip(ENHANCEMENTS, (inpaint is not None, denoise, upscale)) if on]
    if len(chosen) != 1:
        raise ArchlabError("Choose exactly one enhancement: --inpaint MASK, --denoise or --upscale"
                           + (f" (got {', '.join(chosen)})." if chosen else "."))
    model = load_diffusion(run_dir)
    picture, notes = read_image(image, invert_light=True)
    common = {"steps": steps, "sampler": sampler, "seed": seed, "progress": progress}
    if inpaint is not None:
        mask = read_image(inpaint)[0] > 0.0  # white (> mid-grey) marks the pixels to generate
        result = enhancement.inpaint(model, picture, mask, resample=resample, **common)
        return result, [*notes, f"regenerated {int(mask.sum())} of {mask.numel()} pixels (white in the mask)"]
    if denoise:
        if sigma is not None and not 0.0 <= sigma <= 1.0:
            raise ArchlabError(f"--sigma is the noise's standard deviation in [0, 1] pixel units, got {sigma}.")
        result, used = enhancement.denoise(model, picture, None if sigma is None else 2.0 * sigma, **common)
        how = "given" if sigma is not None else "estimated from the image"
        return result, [*notes, f"noise sigma {used / 2:.3f} in [0, 1] pixel units ({how}); reverse process from "
                        f"t = {model.schedule.index_for_noise_level(used)}"]
    result = enhancement.upscale(model, picture, **common)
    return result, [*notes, f"upscaled {tuple(picture.shape[-2:])} to {tuple(result.shape[-2:])}; its 2×2 means "
                            "match the input"]
