"""Sequential (pixel-by-pixel) and permuted MNIST with ~70k-parameter RNN, LSTM and GRU, under a time budget.

    python bench/rnn_pixels.py [--seconds 120] [--views pixels,permuted] [--cells lstm,gru,rnn]

Each image is read as 784 steps of one pixel (``view=pixels``) or in one fixed random order
(``view=permuted``). Hidden sizes give about 70k parameters, as in Bai, Kolter & Koltun 2018 (Table 1,
10 epochs: LSTM 87.2 / 85.7, GRU 96.2 / 87.3, vanilla RNN 21.5 / 25.3 on sequential / permuted MNIST).
A 2-core CPU cannot train 10 epochs of 784-step sequences in a benchmark's time, so every net gets the same
wall-clock budget; each row gives the accuracy reached, the epochs it took and the time, and compares
with the LSTM trained in the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_rows, cpu_model  # noqa: E402

import archlab  # noqa: E402

HIDDEN = {"lstm": 130, "gru": 150, "rnn": 260}  # ≈70k parameters with one input feature and 10 classes
PAPER = {("lstm", "pixels"): 87.2, ("lstm", "permuted"): 85.7, ("gru", "pixels"): 96.2, ("gru", "permuted"): 87.3,
         ("rnn", "pixels"): 21.5, ("rnn", "permuted"): 25.3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="training budget of each net")
    parser.add_argument("--views", default="pixels,permuted")
    parser.add_argument("--cells", default="lstm,gru,rnn")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for view in args.views.split(","):
            for cell in args.cells.split(","):
                run = archlab.train(cell, run_dir=Path(tmp) / f"{cell}-{view}", report=False, progress=False,
                                    model_args={"view": view, "hidden": HIDDEN[cell]}, epochs=10, batch_size=128,
                                    optimizer={"name": "adam", "lr": 1e-3}, max_time=args.seconds, val_size=1000)
                s = run.summary
                results[(cell, view)] = s
                print(f"{cell:<5} {view:<9} acc {run.test_accuracy:.4f} after {s['epochs']:.2f} epochs in "
                      f"{s['wall_seconds']:.0f} s ({s['params']:,} params)", flush=True)
    if args.no_append:
        return
    rows = []
    for (cell, view), s in results.items():
        peer = results.get(("lstm", view))
        acc = s["test_metrics"]["accuracy"]
        peer_acc = peer["test_metrics"]["accuracy"] if peer else None
        rows.append({
            "benchmark": f"{view} MNIST (784 steps), {cell}, {s['params']:,} params, {args.seconds:.0f} s budget",
            "command": f"python bench/rnn_pixels.py --seconds {args.seconds:g}", "machine": cpu_model(),
            "figure": f"test acc {acc:.4f} after {s['epochs']:.2f} epochs ({s['wall_seconds']:.0f} s)",
            "peer": "—" if peer is None or cell == "lstm" else f"lstm, same budget: {peer_acc:.4f}",
            "ratio": "—" if peer is None or cell == "lstm" else f"{acc / peer_acc:.2f}× the LSTM's accuracy",
            "notes": f"Bai et al. 2018 after 10 epochs: {PAPER[(cell, view)]}% (not reached here: budget-bound)",
        })
    append_rows(rows)
    print(f"appended {len(rows)} rows to BENCHMARKS.md")


if __name__ == "__main__":
    main()
