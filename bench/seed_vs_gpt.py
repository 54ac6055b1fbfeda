"""seed-transformer (the seed listing, faithful) against gpt of the same parameter count, for the same time.

    python bench/seed_vs_gpt.py                          # 120 s of training each (about 5 minutes in all)
    python bench/seed_vs_gpt.py --budget 10 --no-append  # a smoke run

Both are character language models of archlab's Shakespeare split, trained through `archlab.train` with the same
data, context, batch, optimizer (AdamW, one-cycle) and wall-clock budget; the schedule's length is a step count
estimated from the budget and each run is stopped at the budget. The seed keeps its listing exactly (post-LN
nn.TransformerEncoder, sinusoidal positions, dropout 0.5, uniform ±0.1 init); gpt's width is chosen so that
its parameter count is the closest to the seed's. Figure: validation loss (nats/char) of gpt, the seed's as the
same-run peer.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_rows, cpu_model  # noqa: E402

import archlab  # noqa: E402
from archlab.models import create_model  # noqa: E402
from archlab.models.registry import count_parameters  # noqa: E402

VOCAB = 100  # a stand-in for sizing only: the embedding rows cost the same in both models


def matching_gpt(seed_args: dict, layers: int, heads: int) -> dict:
    """gpt arguments (dim a multiple of ``heads``) whose parameter count is the closest to the seed's."""
    target = count_parameters(create_model("seed-transformer", vocab_size=VOCAB, **seed_args))
    dims = range(heads * 2, 513, heads)
    best = min(dims, key=lambda d: abs(count_parameters(create_model(
        "gpt", vocab_size=VOCAB, layers=layers, heads=heads, dim=d)) - target))
    return {"layers": layers, "heads": heads, "dim": best}


def train(model: str, model_args: dict, args: argparse.Namespace, folder: Path) -> dict:
    run = archlab.train(model, data="shakespeare", task="language", max_time=args.budget, max_steps=args.steps,
                        batch_size=args.batch_size, eval_batch_size=256, run_dir=folder / model, progress=False,
                        report=False, num_threads=args.threads, seed=args.seed,
                        optimizer={"name": "adamw", "lr": args.lr, "betas": (0.9, 0.99)},
                        schedule={"name": "one-cycle", "warmup_fraction": 0.05}, grad_clip=1.0,
                        task_args={"context": args.context, "sample_length": 0}, model_args=model_args)
    summary = dict(run.summary)
    print(f"{model}: best val {summary['best_val']['val_loss']:.4f} nats/char, {summary['params']:,} params, "
          f"{summary['wall_seconds']:.0f} s", flush=True)
    return summary


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=120.0, help="wall-clock seconds of training per model")
    parser.add_argument("--steps", type=int, default=600, help="schedule length (a run stops at the budget first)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-append", action="store_true")
    return parser.parse_args()


def main() -> None:
    args = parse()
    seed_args = {"ninp": 200, "nhead": 2, "nhid": 200, "nlayers": 2, "dropout": 0.5}
    gpt_args = {**matching_gpt(seed_args, layers=4, heads=4), "context": args.context, "dropout": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        seed = train("seed-transformer", seed_args, args, Path(tmp))
        gpt = train("gpt", gpt_args, args, Path(tmp))
    ours, peer = gpt["best_val"]["val_loss"], seed["best_val"]["val_loss"]
    print(f"\n{'model':<20}{'val nats/char':>14}{'params':>10}{'seconds':>9}")
    for name, summary in (("gpt", gpt), ("seed-transformer", seed)):
        print(f"{name:<20}{summary['best_val']['val_loss']:>14.4f}{summary['params']:>10,}{summary['wall_seconds']:>9.0f}")
    if args.no_append:
        return
    command = "python bench/seed_vs_gpt.py" + (f" --budget {args.budget:g}" if args.budget != 120 else "")
    append_rows([{"benchmark": "seed-transformer vs gpt, equal params and time", "command": command,
                  "machine": cpu_model(), "figure": f"gpt val {ours:.3f} nats/char ({gpt['params']:,} params)",
                  "peer": f"seed-transformer val {peer:.3f} ({seed['params']:,} params)",
                  "ratio": f"{ours / peer:.3f}", "notes": f"{args.budget:g} s each, context {args.context}"}])


if __name__ == "__main__":
    main()
