"""Character language models on Shakespeare: test bits per character of lstm-lm against same-run peers.

    python bench/char_lm.py                                  # lstm-lm vs gru-lm, 3000 steps each
    python bench/char_lm.py --accelerator gpu --steps 10000  # the same on a GPU, longer
    python bench/char_lm.py --steps 20 --hidden 32 --no-append   # a smoke run

With the defaults (2×256 LSTM, batch 64, context 128) a step took 0.8 s on one shared CPU thread, so 3000
steps are about 40 minutes per model there: prefer a GPU, or shrink --hidden/--steps on a CPU.

Each model trains with the same budget (steps, batch, context, width, Adam at --lr) on every work but the
four held-out plays, and is scored on the test plays (Macbeth, Much Ado About Nothing): bits per character =
test cross-entropy / ln 2 over fixed windows of --context characters. Peers measured in the same run: the
other models, and add-one-smoothed unigram and bigram models of the training text (the floor any
learning model must clear). Prints a table, a sample at temperature 0.5, and appends one row per model to
BENCHMARKS.md (unless --no-append).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_rows, cpu_model  # noqa: E402

import archlab  # noqa: E402


def train(model: str, args: argparse.Namespace, folder: Path) -> dict:
    run = archlab.train(
        model, data="shakespeare", task="language", max_steps=args.steps, batch_size=args.batch_size,
        eval_batch_size=256, optimizer={"lr": args.lr}, run_dir=folder / model, progress=False, report=False,
        accelerator=args.accelerator, num_threads=args.threads,
        task_args={"context": args.context, "max_eval_windows": args.eval_windows, "sample_length": 300},
        model_args={"hidden": args.hidden, "embedding_dim": args.embedding, "layers": args.layers,
                    "dropout": args.dropout})
    summary = dict(run.summary)
    summary["sample"] = archlab.generate(run.path, "Romeo.\n", length=200, temperature=0.5, seed=0)
    bits = summary["test_metrics"]["bits_per_char"]
    print(f"{model}: test {bits:.3f} bits/char, {summary['wall_seconds']:.1f} s, {summary['params']:,} params",
          flush=True)
    return summary


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lstm-lm,gru-lm", help="comma-separated; the first is the headline")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--embedding", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--eval-windows", type=int, default=1024)
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-append", action="store_true")
    return parser.parse_args()


def main() -> None:
    args = parse()
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        results = {model: train(model, args, Path(tmp)) for model in models}
    head = results[models[0]]
    baselines = head["baseline_bits_per_char"]
    print(f"\n{'model':<16}{'test bits/char':>16}{'perplexity':>12}{'seconds':>10}")
    for model, summary in results.items():
        test = summary["test_metrics"]
        print(f"{model:<16}{test['bits_per_char']:>16.3f}{test['perplexity']:>12.2f}{summary['wall_seconds']:>10.1f}")
    for name, bits in baselines.items():
        print(f"{name + ' (n-gram)':<16}{bits:>16.3f}{2 ** bits:>12.2f}{'—':>10}")
    print(f"\n{models[0]} at temperature 0.5:\nRomeo.\n{head['sample']}")
    if args.no_append:
        return
    setting = (f"{args.steps} steps, batch {args.batch_size}, context {args.context}, {args.layers}×{args.hidden}, "
               f"dropout {args.dropout}, Adam {args.lr}")
    rows = []
    for model, summary in results.items():
        bits = summary["test_metrics"]["bits_per_char"]
        peers = [f"{other} {results[other]['test_metrics']['bits_per_char']:.3f}" for other in models if other != model]
        peers += [f"{name} {value:.3f}" for name, value in baselines.items()]
        rows.append({
            "benchmark": f"Shakespeare characters, test bits/char: {model}",
            "command": " ".join(["python", "bench/char_lm.py", *sys.argv[1:]]), "machine": cpu_model(),
            "figure": f"{bits:.3f} bits/char in {summary['wall_seconds']:.1f} s ({summary['params']:,} params)",
            "peer": ", ".join(peers) + " (same run)",
            "ratio": f"{baselines['bigram'] - bits:+.3f} bits/char below the bigram model",
            "notes": setting,
        })
    append_rows(rows)
    print(f"appended {len(rows)} row(s) to BENCHMARKS.md")


if __name__ == "__main__":
    main()
