"""CLI of unpaired translation and anomaly detection: ``archlab translate RUN_DIR IMAGE`` and
``archlab anomaly RUN_DIR``, and the lines ``archlab train`` prints after a translation run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
import typer
from rich.markup import escape
from rich.table import Table

from archlab import cli
from archlab.image_files import read_image
from archlab.errors import ConfigError


def print_translate_summary(summary: dict[str, Any]) -> None:
    """After ``archlab train``: the translation figures beside their references."""
    metrics, reference = summary.get("test_metrics", {}), summary.get("translation_reference", {})
    if "fid" not in metrics:
        return
    domains = summary.get("domains", {})
    table = Table(title=f"translation {domains.get('a', 'A')} → {domains.get('b', 'B')} (test)")
    for column in ("figure", "value", "reference"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    table.add_row("FID of G_AB(a) vs real B", f"{metrics['fid']:.3f}", f"{reference.get('reference_fid', float('nan')):.3f}")
    table.add_row("cycle error |G_BA(G_AB(a)) - a|₁", f"{metrics.get('cycle_a', float('nan')):.4f}", "0")
    table.add_row("judge accuracy on G_BA(G_AB(a))", f"{metrics.get('content_cycle_acc', float('nan')):.4f}", "")
    if "content_translation_acc" in metrics:
        table.add_row("judge accuracy on G_AB(a)", f"{metrics['content_translation_acc']:.4f}",
                      f"{reference.get('reference_content_acc', float('nan')):.4f}")
    cli.console.print(table)


cli.SUMMARY_PRINTERS["translate"] = print_translate_summary


@cli.command(name="translate")
def translate_command(
    run_dir: Path = typer.Argument(..., help="A translation run (archlab train cyclegan --data mnist)."),
    image: Path = typer.Argument(..., help="A 28×28 greyscale PNG/JPEG or .npy array of the source domain."),
    direction: str = typer.Option("ab", help="ab: domain A → B (e.g. thin → thick); ba: B → A."),
    out: Path = typer.Option(Path("translated.png"), help="PNG written: the image, its translation, and back."),
) -> None:
    """Translate one image with a CycleGAN run; save the image, its translation and the round trip side by side.

    Example: archlab translate runs/cyclegan-mnist/20261123-101500 digit.png --direction ab --out thick.png
    """
    from archlab.report.image_grid import save_image_grid
    from archlab.tasks.translate_eval import DIRECTIONS, translate_images, translation_model

    if direction not in DIRECTIONS:
        raise ConfigError(f"Unknown --direction {direction!r}: use ab (domain A → B) or ba (B → A).")
    loaded = translation_model(run_dir)
    shape = tuple(loaded.meta.get("input_shape", (1, 28, 28)))[1:]
    x, notes = read_image(image, shape, invert_light=True)
    there = translate_images(loaded, x, direction)
    back = translate_images(loaded, there, "ba" if direction == "ab" else "ab")
    save_image_grid(torch.cat([x, there, back]), out, nrow=3, scale=4)
    source, target = (("domain_a", "domain_b") if direction == "ab" else ("domain_b", "domain_a"))
    for line in notes:
        cli.console.print(f"note: {escape(line)}")
    cli.console.print(f"{escape(loaded.meta.get(source, '?'))} → {escape(loaded.meta.get(target, '?'))} → back: "
                      f"[bold]{escape(str(out))}[/]")


@cli.command(name="anomaly")
def anomaly_command(
    run_dir: Path = typer.Argument(..., help="A GAN run trained without one class (--task gan -t holdout_class=K)."),
    holdout: Optional[int] = typer.Option(None, help="The held-out class (default: the run's holdout_class)."),
    baseline: Optional[Path] = typer.Option(None, help="An autoencoder run (--task reconstruct, same holdout_class)."),
    n: int = typer.Option(1000, min=2, help="Test images scored (a seeded random subset of the test split)."),
    steps: int = typer.Option(200, min=1, help="Adam steps of the latent search per image."),
    lr: float = typer.Option(0.05, help="Learning rate of the latent search."),
    lam: float = typer.Option(0.1, help="Weight λ of the discriminator-feature term (0.1 in AnoGAN)."),
    seed: int = typer.Option(0, help="Seed of the subset and of the starting z."),
    data_dir: Optional[Path] = typer.Option(None, help="Data cache folder."),
) -> None:
    """ROC-AUC of "is the held-out class" on test images: discriminator score, AnoGAN latent search, and an
    autoencoder's reconstruction error; written to RUN_DIR/anomaly.json.

    Example: archlab anomaly runs/dcgan-mnist/20261123-101500 --baseline runs/autoencoder-mnist/20261123-102000
    """
    from archlab.analysis.anomaly import LatentSearch, score_runs

    result = score_runs(run_dir, holdout=holdout, baseline=baseline, n=n, data_dir=data_dir,
                        search=LatentSearch(steps=steps, lr=lr, lam=lam, seed=seed))
    table = Table(title=f"held-out class {result.holdout}: {result.positives} of {result.n} test images")
    for column in ("score", "ROC-AUC", "seconds"):
        table.add_column(column, justify="left" if column == "score" else "right")
    for name, auc in result.auc.items():
        seconds = result.seconds.get(name)
        table.add_row(name, f"{auc:.4f}", "—" if seconds is None else f"{seconds:.1f}")
    cli.console.print(table)
    for line in result.notes:
        cli.console.print(f"note: {escape(line)}")
