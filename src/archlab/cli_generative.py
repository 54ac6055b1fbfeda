"""CLI of the generative models: ``archlab sample`` (diffusion and GAN runs) and ``archlab enhance`` (inpainting,
denoising, 2× super-resolution with a diffusion run), and the lines ``archlab train`` adds after a diffusion run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape

from archlab import cli


def print_diffusion_summary(summary: dict[str, Any]) -> None:
    """After ``archlab train``: how the scored samples were drawn, and the class coverage."""
    settings = summary.get("diffusion") or {}
    if settings:
        steps = settings.get("steps") or "all"
        cli.console.print(f"samples scored: {settings.get('eval_samples')} by {escape(str(settings.get('sampler')))} "
                          f"({steps} steps, eta {settings.get('eta')}); grids in the run directory (samples.png, "
                          "reverse-process.png)")
    histogram = summary.get("class_histogram")
    if histogram:
        cli.console.print("class coverage: " + " ".join(f"{i}:{share:.0%}" for i, share in enumerate(histogram)))


cli.SUMMARY_PRINTERS["diffusion"] = print_diffusion_summary


def _save(images, path: Path, nrow: int) -> Path:
    from archlab.diffusion.outputs import save_grid

    return save_grid(images, path, nrow=nrow)


@cli.command(name="sample")
def sample_command(
    run_dir: Path = typer.Argument(..., help="A diffusion or GAN run directory."),
    n: int = typer.Option(64, "--n", min=1, help="How many images."),
    class_label: Optional[int] = typer.Option(None, "--class", help="Class to generate (conditional runs)."),
    steps: Optional[int] = typer.Option(None, help="Diffusion: DDIM steps (default: the run's, ddim 50)."),
    sampler: Optional[str] = typer.Option(None, help="Diffusion: ddim or ddpm (ancestral, all T steps)."),
    guidance: Optional[float] = typer.Option(None, help="Diffusion, conditional runs: classifier-free guidance scale "
                                                        "(0 unconditional, 1 conditional, >1 stronger)."),
    temperature: float = typer.Option(1.0, help="Scales the noise (diffusion: x_T and added noise; GAN: z)."),
    eta: float = typer.Option(0.0, help="DDIM: 0 deterministic … 1 as noisy as DDPM."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same images."),
    out: Path = typer.Option(Path("samples.png"), help="PNG grid to write."),
    nrow: Optional[int] = typer.Option(None, help="Images per row (default: about √n)."),
) -> None:
    """Draw images from a trained generative run and save them as a PNG grid.

    Example: archlab sample runs/ddpm-mnist/20261123-101500 --n 64 --class 7 --guidance 3 --out sevens.png
    """
    from archlab.sampling import sample

    images = sample(run_dir, n, class_label=class_label, steps=steps, guidance=guidance, temperature=temperature,
                    seed=seed, eta=eta, sampler=sampler, progress=True)
    path = _save(images, out, nrow or max(1, math.ceil(math.sqrt(n))))
    cli.console.print(f"{n} image(s) written to [bold]{escape(str(path))}[/]")


@cli.command(name="enhance")
def enhance_command(
    run_dir: Path = typer.Argument(..., help="A diffusion run directory."),
    image: Path = typer.Argument(..., help="The image (PNG/JPEG, greyscale, white digit on black)."),
    inpaint: Optional[Path] = typer.Option(None, help="Mask PNG of the image's size: white pixels are regenerated."),
    denoise: bool = typer.Option(False, "--denoise", help="Remove Gaussian noise."),
    sigma: Optional[float] = typer.Option(None, help="--denoise: noise std in [0, 1] pixel units (default: estimated)."),
    upscale: bool = typer.Option(False, "--upscale", help="2× super-resolution of a half-size image (14×14 → 28×28)."),
    steps: int = typer.Option(50, help="DDIM steps."),
    resample: int = typer.Option(1, min=1, help="--inpaint: RePaint resampling rounds per step."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path = typer.Option(Path("enhanced.png"), help="PNG to write (the result at the model's size)."),
) -> None:
    """Inpaint, denoise or upscale an image with a trained diffusion model.

    Example: archlab enhance runs/ddpm-mnist/20261123-101500 digit.png --inpaint mask.png --out filled.png
    """
    from archlab.sampling import enhance, write_png

    result, notes = enhance(run_dir, image, inpaint=inpaint, denoise=denoise, sigma=sigma, upscale=upscale,
                            steps=steps, resample=resample, seed=seed, progress=True)
    for note in notes:
        cli.console.print(f"[yellow]note:[/] {escape(note)}")
    path = write_png(result, out)
    cli.console.print(f"written to [bold]{escape(str(path))}[/]")
