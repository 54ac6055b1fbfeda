"""CLI of the judge behind archlab's offline FID / KID / IS: ``archlab judge build`` and ``archlab judge show``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from archlab import cli

judge_app = typer.Typer(no_args_is_help=True, help="The judges: fixed classifiers whose features give offline "
                                                   "FID, KID, IS and class coverage.")
cli.app.add_typer(judge_app, name="judge")

SCORES = (("FID", "fid", ".2f"), ("KID", "kid_mean", ".4f"), ("IS", "inception_score", ".2f"),
          ("coverage (bits)", "coverage_entropy", ".3f"))


def reference_table(data: str, entry: dict[str, Any]) -> Table:
    """The floor (train vs test) and ceiling (noise vs test) scores recorded with a judge."""
    reference = entry.get("reference") or {}
    n = next((row.get("n") for row in reference.values()), "—")
    table = Table(title=f"{data} judge v{entry.get('version')}: reference scores against the test split (n={n})")
    table.add_column("images")
    for title, _, _ in SCORES:
        table.add_column(title, justify="right")
    labels = {"train": "training split (floor)", "noise": "uniform noise (ceiling)"}
    for key, label in labels.items():
        if key in reference:
            table.add_row(label, *(format(reference[key][name], spec) for _, name, spec in SCORES))
    return table


@cli.command(target=judge_app, name="build")
def judge_build(
    data: str = typer.Option(..., help="mnist or fashion-mnist."),
    run_dir: Optional[Path] = typer.Option(None, help="Where the judge's training run goes (default runs/judge-DATA)."),
    data_dir: Optional[Path] = typer.Option(None, help="Cache folder (default: $ARCHLAB_DATA or ~/.cache/archlab/data)."),
    samples: int = typer.Option(10_000, help="Images per reference score (train vs test, noise vs test)."),
    progress: bool = typer.Option(True, help="Show the training progress bar."),
) -> None:
    """Train the judge of a data set with its fixed recipe (recipes/judge-DATA.yaml) and store it as a versioned,
    checksummed artifact in archlab/metrics/judges/, with its test accuracy and reference scores.

    Example: archlab judge build --data mnist
    """
    from archlab.metrics.judge import JUDGES_DIR, build_judge

    built = build_judge(data, run_dir=run_dir, data_dir=data_dir, reference_samples=samples, progress=progress)
    entry = built.entry
    cli.console.print(f"[green]{data}[/] judge v{entry['version']}: test accuracy {entry['test_accuracy']:.4f}, "
                      f"{entry['num_features']} features, sha256 {entry['sha256'][:16]}…, "
                      f"written to {JUDGES_DIR / entry['file']} (training run: {built.run_dir})")
    cli.console.print(reference_table(data, entry))


@cli.command(target=judge_app, name="show")
def judge_show(data: Optional[str] = typer.Option(None, help="One data set (default: every judge).")) -> None:
    """Show the judges: version, model, test accuracy, checksum, and their reference scores (floor and ceiling).

    Example: archlab judge show --data mnist
    """
    from archlab.metrics.judge import JUDGES_DIR, judge_entry, read_index

    judges = {data: judge_entry(data)} if data else read_index()["judges"]
    if not judges:
        cli.console.print(f"No judge is recorded in {JUDGES_DIR}; build one with `archlab judge build --data mnist`.")
        return
    table = Table(title="archlab judges")
    for column in ("data", "version", "model", "features", "params", "test accuracy", "sha256", "created"):
        table.add_column(column)
    for name, entry in judges.items():
        table.add_row(name, str(entry.get("version")), str(entry.get("model")), str(entry.get("num_features")),
                      f"{entry.get('parameters', 0):,}", f"{entry.get('test_accuracy', float('nan')):.4f}",
                      str(entry.get("sha256", ""))[:16] + "…", str(entry.get("created")))
    cli.console.print(table)
    for name, entry in judges.items():
        if entry.get("reference"):
            cli.console.print(reference_table(name, entry))
