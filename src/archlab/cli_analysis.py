"""CLI commands that look inside trained networks and compare many: explain, attack, study depth.

Registered on the ``archlab`` app when ``archlab.cli`` is imported; output goes through ``cli.console`` and
``cli.errors`` (looked up at call time, so a caller can swap them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from archlab import cli
from archlab.errors import ConfigError


def _int_list(text: Optional[str]) -> Optional[list[int]]:
    if text is None:
        return None
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise ConfigError(f"{text!r} must be a comma-separated list of whole numbers, e.g. 8,20,56.") from None


def _str_list(text: Optional[str]) -> Optional[list[str]]:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


@cli.command(target=cli.study_app, name="depth")
def study_depth_command(
    preset: str = typer.Option("quick", help="quick (≤10 min on 2 CPU cores) or full (He et al.'s depths, hours on CPU)."),
    data: Optional[str] = typer.Option(None, help="mnist or fashion-mnist."),
    out: Optional[Path] = typer.Option(None, help="Study folder (default runs/study-depth/<time>); an unfinished one is continued."),
    conv_depths: Optional[str] = typer.Option(None, help="Conv depths, 6n+2: e.g. 8,20,56,110,1202 (empty string: none)."),
    mlp_depths: Optional[str] = typer.Option(None, help="MLP depths (Linear layers, even): e.g. 10,50,100."),
    conv_activations: Optional[str] = typer.Option(None, help="e.g. relu,tanh."),
    mlp_activations: Optional[str] = typer.Option(None, help="e.g. sigmoid,tanh,relu,leaky_relu,gelu."),
    conv_steps: Optional[int] = typer.Option(None, help="Training steps of each conv net."),
    mlp_steps: Optional[int] = typer.Option(None, help="Training steps of each MLP."),
    attack_images: Optional[int] = typer.Option(None, help="Test images attacked with FGSM per net (0: no attack)."),
    data_dir: Optional[Path] = typer.Option(None, help="Data cache folder."),
) -> None:
    """Train plain and residual nets at growing depth under one budget each; write one report.

    Examples:
      archlab study depth --preset quick
      archlab study depth --mlp-depths 10,50 --conv-depths 8,20 --mlp-activations sigmoid,relu
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from archlab.studies.depth import arms, default_study_dir, run_depth_study, study_config

    config = study_config(preset, data=data, conv_depths=_int_list(conv_depths), mlp_depths=_int_list(mlp_depths),
                          conv_activations=_str_list(conv_activations), mlp_activations=_str_list(mlp_activations),
                          conv_steps=conv_steps, mlp_steps=mlp_steps, attack_images=attack_images,
                          data_dir=str(data_dir) if data_dir else None)
    out_dir = out or default_study_dir()
    plan = arms(config)
    cli.console.print(f"depth study ({config.preset}): {len(plan)} networks on {config.data} → [bold]{out_dir}[/]")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=cli.console) as progress:
        task = progress.add_task(f"training {plan[0].name}", total=len(plan))

        def done(index: int, total: int, arm, result: dict[str, Any]) -> None:
            ratio = result["grad_ratio"]["first"]
            progress.console.print(f"  {arm.name:<28} test acc {cli._fmt(result['test_accuracy'])}  "
                                   f"first/last grad {'—' if ratio is None else f'{ratio:.1e}'}  "
                                   f"{cli._fmt(result['train_seconds'], '.1f')} s")
            following = f"training {plan[index + 1].name}" if index + 1 < total else "writing the report"
            progress.update(task, advance=1, description=following)

        study = run_depth_study(config, out_dir, on_arm=done)
    for line in study["findings"]:
        cli.console.print(f"• {escape(line)}")
    cli.console.print(f"report: [bold]{out_dir / 'report.html'}[/]")


@cli.command(name="explain")
def explain_command(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    image: Path = typer.Argument(..., help="An image file (PNG, JPEG...) or a .npy array of one image."),
    layer: Optional[str] = typer.Option(None, help="Grad-CAM layer by module name, e.g. stages.0 (default: last map)."),
    target_class: Optional[str] = typer.Option(None, "--class", help="Also draw Grad-CAM for this class (name/index)."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default: RUN_DIR/explain/<image stem>)."),
) -> None:
    """Show what a run's CNN sees in an image: first-layer filters, activation maps, Grad-CAM.

    Example: archlab explain runs/cnn-mnist/20261123-101500 digit.png --class 7
    """
    from archlab.analysis.explain_run import explain

    result = explain(run_dir, image, layer=layer, target_class=target_class, out_dir=out)
    for note in result.notes:
        cli.console.print(f"[yellow]note:[/] {escape(str(result.source))}: {escape(note)}")
    cli.console.print(f"{escape(str(result.source))}: predicted [bold]{escape(result.predicted)}[/] "
                  f"(p = {result.probability:.3f}); Grad-CAM at layer {escape(result.layer)}")
    for name, path in result.paths.items():
        cli.console.print(f"{name}: {escape(str(path))}")


def _parse_floats(text: str, what: str) -> list[float]:
    """``"0,0.05,0.1"`` → ``[0.0, 0.05, 0.1]``."""
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise ConfigError(f"{what} {text!r} must be numbers separated by commas, e.g. 0,0.05,0.1,0.2.") from err


@cli.command(name="attack")
def attack_command(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    method: str = typer.Option("fgsm", help="Attack: fgsm or pgd."),
    eps: str = typer.Option("0,0.05,0.1,0.2", help="L∞ radii in pixel units [0, 1], comma-separated."),
    steps: int = typer.Option(10, help="PGD steps."),
    step_size: Optional[float] = typer.Option(None, help="PGD step size in pixel units (default 2.5·ε/steps)."),
    random_start: bool = typer.Option(True, help="PGD starts at a random point of the ε-ball (seeded)."),
    seed: int = typer.Option(0, help="Seed of PGD's random start."),
    limit: int = typer.Option(1000, help="How many test images to attack (the first N)."),
    data_dir: Optional[Path] = typer.Option(None, help="Data cache folder."),
) -> None:
    """Accuracy of a run under adversarial attack (FGSM or PGD) for each ε; saves attack-<method>.json and .png.

    Example: archlab attack runs/cnn-mnist/20261123-101500 --method pgd --eps 0,0.05,0.1,0.2 --steps 10
    """
    from archlab.analysis.attack_run import attack

    result = attack(run_dir, method, _parse_floats(eps, "--eps"), steps=steps, step_size=step_size,
                    random_start=random_start, seed=seed, limit=limit, data_dir=data_dir)
    table = Table(title=f"{method.upper()} on {result.images} test images")
    for column in ("ε", "accuracy", "vs clean"):
        table.add_column(column, justify="right")
    clean = result.clean_accuracy
    for value, accuracy in zip(result.eps, result.accuracy):
        table.add_row(f"{value:g}", f"{accuracy:.4f}", "—" if clean is None else f"{accuracy - clean:+.4f}")
    cli.console.print(table)
    for name, path in result.paths.items():
        cli.console.print(f"{name}: {escape(str(path))}")
