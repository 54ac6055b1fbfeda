"""Row-wise MNIST with recurrent nets: the seed LSTM listing as written vs archlab's mnist-rows recipe.

    python bench/rnn_rows.py

Both read each image as 28 time steps of 28 pixels and train in the same run on the same machine. Target
for archlab's recipe: ≥98.8% test accuracy. The seed runs its own recipe (batch 64, Adam 1e-3, 10 epochs,
no normalization, no clipping).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_rows, cpu_model  # noqa: E402

import archlab  # noqa: E402

TARGET = 0.988


def run(recipe: str, folder: Path) -> dict:
    result = archlab.train(recipe=recipe, run_dir=folder / recipe, report=False, progress=False)
    summary = result.summary
    print(f"{recipe}: test acc {result.test_accuracy:.4f}, {summary['wall_seconds']:.1f} s, "
          f"{summary['epochs']:.0f} epochs, {summary['params']:,} params", flush=True)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ours = run("mnist-rows", Path(tmp))
        seed = run("seed-lstm", Path(tmp))
    acc, seed_acc = ours["test_metrics"]["accuracy"], seed["test_metrics"]["accuracy"]
    verdict = "met" if acc >= TARGET else "MISSED"
    print(f"target ≥{TARGET:.1%}: {verdict}")
    if args.no_append:
        return
    append_rows([{
        "benchmark": "row-wise MNIST, recurrent: mnist-rows recipe (2-layer GRU 128)",
        "command": "python bench/rnn_rows.py", "machine": cpu_model(),
        "figure": f"test acc {acc:.4f} in {ours['wall_seconds']:.1f} s ({ours['epochs']:.0f} epochs, {ours['params']:,} params)",
        "peer": f"seed-lstm as written: {seed_acc:.4f} in {seed['wall_seconds']:.1f} s ({seed['epochs']:.0f} epochs, "
                f"{seed['params']:,} params)",
        "ratio": f"{seed['wall_seconds'] / ours['wall_seconds']:.2f}× less time, {100 * (acc - seed_acc):+.2f} points",
        "notes": f"target ≥{TARGET:.1%}: {verdict}",
    }])
    print("appended 1 row to BENCHMARKS.md")


if __name__ == "__main__":
    main()
