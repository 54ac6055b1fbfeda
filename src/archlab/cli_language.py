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
    prompt: str = typer.Option("\n", help="Text to continue (every character must occur in the training text); "
                                          "a prompt longer than the model's context is cropped to its end."),
    tokens: int = typer.Option(400, "--tokens", "--length", help="Characters to write after the prompt."),
    temperature: float = typer.Option(0.8, help="0: always the most likely character; 1: the model's distribution; "
                                                ">1: more random."),
    top_k: Optional[int] = typer.Option(None, help="Sample only among the k most likely characters."),
    top_p: Optional[float] = typer.Option(None, help="Sample only among the most likely characters holding this "
                                                     "much probability (nucleus sampling, 0 < p ≤ 1)."),
    seed: Optional[int] = typer.Option(None, help="Random seed: the same seed writes the same text."),
) -> None:
    """Continue a prompt with a trained language model, one sampled character at a time.

    Example: archlab generate runs/gpt-shakespeare/20261123-101500 --prompt "ROMEO:" --tokens 500
    --temperature 0.8 --top-p 0.9 --seed 0
    """
    from archlab.generation import generate_text

    generated = generate_text(run_dir, prompt, length=tokens, temperature=temperature, top_k=top_k, seed=seed,
                              top_p=top_p)
    for message in generated.notes:
        cli.console.print(f"[yellow]note:[/] {escape(message)}")
    cli.console.print(f"[bold]{escape(prompt)}[/]{escape(generated.text)}", highlight=False, soft_wrap=True)


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
