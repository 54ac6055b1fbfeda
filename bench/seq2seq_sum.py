"""Sequence to sequence from real images: 2-5 MNIST digits in, the digits of their sum out (td-cnn).

    python bench/seq2seq_sum.py                      # bahdanau, luong and none, same budget; appends rows
    python bench/seq2seq_sum.py --steps 50 --no-append   # a quick try

Each variant of ``td-cnn`` (attention = bahdanau | luong | none) trains in the same run, on the same sequences
(drawn from the training images; tested on sequences of test images), for the same number of steps (batch 64, Adam, one-cycle schedule peaking at lr 5e-3). The figure
is the test exact-match accuracy of greedy decoding (the whole sum and <eos> right); always answering the most
frequent sum (14) scores about 5%.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_rows, cpu_model  # noqa: E402

import archlab  # noqa: E402

ATTENTIONS = ("bahdanau", "luong", "none")


def run(attention: str, folder: Path, args: argparse.Namespace) -> dict:
    result = archlab.train(
        "td-cnn", data="mnist", task="seq2seq", model_args={"attention": attention}, max_steps=args.steps,
        batch_size=args.batch_size, optimizer={"lr": args.lr}, schedule={"name": "one-cycle"}, eval_batch_size=1000,
        task_args={"train_sequences": args.train_sequences}, run_dir=folder / attention, report=False,
        progress=False, seed=args.seed,
    )
    summary = result.summary
    metrics = summary["test_metrics"]
    by_length = ", ".join(f"{n}: {value:.3f}" for n, value in summary.get("exact_match_by_length", {}).items())
    print(f"attention={attention}: exact match {metrics['exact_match']:.4f}, token accuracy "
          f"{metrics['token_accuracy']:.4f}, {summary['wall_seconds']:.1f} s, {summary['steps']} steps, "
          f"{summary['params']:,} params; by input length {by_length}", flush=True)
    return summary


def describe(summary: dict) -> str:
    return (f"exact match {summary['test_metrics']['exact_match']:.4f} in {summary['wall_seconds']:.1f} s "
            f"({summary['steps']} steps, {summary['params']:,} params)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-3, help="peak of the one-cycle schedule")
    parser.add_argument("--train-sequences", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--attention", nargs="+", choices=ATTENTIONS, default=list(ATTENTIONS))
    parser.add_argument("--no-append", action="store_true", help="print only; do not write BENCHMARKS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {attention: run(attention, Path(tmp), args) for attention in args.attention}
    if args.no_append:
        return
    command = f"python bench/seq2seq_sum.py --steps {args.steps} --batch-size {args.batch_size} --lr {args.lr}"
    if list(args.attention) != list(ATTENTIONS):
        command += f" --attention {' '.join(args.attention)}"
    baseline = results.get("none")
    rows = []
    for attention, summary in results.items():
        if attention == "none" and len(results) > 1:
            continue
        row = {"benchmark": f"seq2seq sum: exact-match accuracy, td-cnn attention={attention} (2-5 MNIST digits "
                            "→ digits of the sum)",
               "command": command, "machine": cpu_model(), "figure": describe(summary),
               "notes": "greedy decoding, test sequences of test images; always answering the most frequent sum: ~5%"}
        if baseline is not None and attention != "none":
            gain = summary["test_metrics"]["exact_match"] - baseline["test_metrics"]["exact_match"]
            row.update(peer=f"attention=none: {describe(baseline)}", ratio=f"{100 * gain:+.1f} points")
        rows.append(row)
    append_rows(rows)
    print(f"appended {len(rows)} row(s) to BENCHMARKS.md")


if __name__ == "__main__":
    main()
