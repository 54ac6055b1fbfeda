"""Transformer-XL vs gpt at the same size and segment length: validation loss on Shakespeare's held-out plays.

    python bench/xl_vs_gpt.py                                   # 4 × 128, segments of 64, 2000 steps each
    python bench/xl_vs_gpt.py --steps 5 --eval-windows 16 --no-append   # a smoke run

Both models have the same layers, heads and width, read segments of ``--context`` characters in batches of
``--batch-size``, and train for the same number of steps with the same optimizer (AdamW, ``--lr``, cosine
decay), the same seed and gradient clipping at 1.0:

- ``gpt``: random windows of ``context`` characters (its ordinary recipe); scored on ``--eval-windows``
  fixed windows of the held-out plays, each from an empty context (it has no memory);
- ``transformer-xl`` (memory ``mem_len = context``): ``stream=true``, ``batch_size`` streams of consecutive
  segments with the memory carried between batches; scored on the held-out plays read as ``--eval-streams``
  streams of consecutive segments (``--eval-windows`` segments in all), the memory carried: the
  "evaluated with the memory on long text" comparison. Only each stream's first segment starts without memory.

The validation loss (nats per character, validated once, after the last step) of each, its wall time and its
parameter count (XL has ``W_R``, ``u``, ``v`` per layer where gpt has a position table: within a few %). One
row: XL with gpt as the same-run peer (ratio = the loss difference).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from common import append_rows, cpu_model  # noqa: E402

import archlab  # noqa: E402


def train(model: str, args: argparse.Namespace, folder: Path) -> dict:
    size = {"layers": args.layers, "heads": args.heads, "dim": args.dim, "dropout": args.dropout}
    task_args = {"context": args.context, "max_eval_windows": args.eval_windows, "sample_length": 0}
    if model == "transformer-xl":
        model_args = {**size, "mem_len": args.context}
        task_args.update(stream=True, eval_streams=args.eval_streams)
    else:
        model_args = {**size, "context": args.context}
    torch.manual_seed(args.seed)
    run = archlab.train(model, data="shakespeare", task="language", max_steps=args.steps,
                        batch_size=args.batch_size, eval_batch_size=256, seed=args.seed, grad_clip=1.0,
                        optimizer={"name": "adamw", "lr": args.lr}, schedule={"name": "cosine"},
                        run_dir=folder / model, progress=False, report=False, accelerator=args.accelerator,
                        task_args=task_args, model_args=model_args)
    summary = run.summary
    print(f"{model}: val loss {summary['best_val']['val_loss']:.4f} nats, test {summary['test_metrics']['loss']:.4f}, "
          f"{summary['wall_seconds']:.0f} s, {summary['params']:,} params", flush=True)
    return summary


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--context", type=int, default=64, help="segment length of both models")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--eval-windows", type=int, default=1024, help="validation segments of each model")
    parser.add_argument("--eval-streams", type=int, default=16, help="transformer-xl: parallel held-out streams")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--no-append", action="store_true")
    return parser.parse_args()


def main() -> None:
    args = parse()
    with tempfile.TemporaryDirectory() as tmp:
        results = {model: train(model, args, Path(tmp)) for model in ("transformer-xl", "gpt")}
    xl, gpt = results["transformer-xl"], results["gpt"]
    print(f"\n{'model':<16}{'val nats':>10}{'test nats':>11}{'seconds':>9}{'params':>10}")
    for model, summary in results.items():
        print(f"{model:<16}{summary['best_val']['val_loss']:>10.4f}{summary['test_metrics']['loss']:>11.4f}"
              f"{summary['wall_seconds']:>9.0f}{summary['params']:>10,}")
    xl_val, gpt_val = xl["best_val"]["val_loss"], gpt["best_val"]["val_loss"]
    row = {"benchmark": f"transformer-xl vs gpt, Shakespeare val loss, segments of {args.context}",
           "command": "python bench/xl_vs_gpt.py " + " ".join(sys.argv[1:]), "machine": cpu_model(),
           "figure": f"{xl_val:.4f} nats ({xl['wall_seconds']:.0f} s, {xl['params']:,} params)",
           "peer": f"gpt {gpt_val:.4f} nats ({gpt['wall_seconds']:.0f} s, {gpt['params']:,} params)",
           "ratio": f"{xl_val - gpt_val:+.4f} nats",
           "notes": f"{args.steps} steps each, batch {args.batch_size}, {args.layers}×{args.dim}, {args.heads} heads; "
                    f"xl: mem_len {args.context}, streamed, evaluated with memory ({args.eval_streams} streams); "
                    f"gpt: random windows, evaluated per window; {args.eval_windows} val segments each"}
    if args.no_append:
        print("\n(--no-append: BENCHMARKS.md left unchanged)")
    else:
        append_rows([row])


if __name__ == "__main__":
    main()
