"""CLI of the language task: ``archlab generate`` and the language part of ``archlab train``'s summary.

Registered on the ``archlab`` app when ``archlab.cli`` is imported; output goes through ``cli.console``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from archlab import cli


@cli.command(name="generate")
def generate_command(
    run_dir: Path = typer.Argument(..., help="The run directory of a language model (trained with --task language)."),
    prompt: str = typer.Option("\n", help="Text to continue (every character must occur in the training text)."),
    length: int = typer.Option(400, help="Characters to write after the prompt."),
    temperature: float = typer.Option(0.8, help="0: always the most likely character; 1: the model's distribution; "
                                                ">1: more random."),
    top_k: Optional[int] = typer.Option(None, help="Sample only among the k most likely characters."),
    seed: Optional[int] = typer.Option(None, help="Random seed: the same seed writes the same text."),
) -> None:
    """Continue a prompt with a trained language model, one sampled character at a time.

    Example: archlab generate runs/lstm-lm-shakespeare/20261123-101500 --prompt "ROMEO:" --length 400
    --temperature 0.8 --top-k 20 --seed 0
    """
    from archlab.generation import generate

    text = generate(run_dir, prompt, length=length, temperature=temperature, top_k=top_k, seed=seed)
    cli.console.print(f"[bold]{escape(prompt)}[/]{escape(text)}", highlight=False, soft_wrap=True)


def _bits(value: Any) -> str:
    return cli._fmt(value, ".3f")


def print_language_summary(summary: dict[str, Any]) -> None:
    """Test bits per character and perplexity of a language run, next to the n-gram baselines."""
    test = summary.get("test_metrics") or {}
    best = summary.get("best_val") or {}
    baselines = summary.get("baseline_bits_per_char") or {}
    best_loss = best.get("val_loss")
    table = Table(title="language model", show_header=False)
    rows = [("test bits / char", _bits(test.get("bits_per_char"))),
            ("test perplexity", cli._fmt(test.get("perplexity"), ".2f")),
            ("test next-char accuracy", cli._fmt(test.get("accuracy"))),
            ("best val bits / char", _bits(best_loss / math.log(2) if isinstance(best_loss, (int, float)) else None))]
    rows += [(f"{name} baseline bits / char", _bits(value)) for name, value in baselines.items()]
    for name, value in rows:
        table.add_row(name, value)
    cli.console.print(table)


cli.SUMMARY_PRINTERS["language"] = print_language_summary
