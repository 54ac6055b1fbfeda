"""E-mail spam (SpamAssassin): the spam-gru recipe against a bag-of-words peer, trained in the same run.

    python bench/spam.py

Both models see the same stratified splits, the same vocabulary (fitted on the training split) and the
same first 300 words of each message, for the same number of epochs. Reported: the spam class's F1 on the
test split, macro F1, accuracy, and the time to train.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_rows, cpu_model  # noqa: E402

import archlab  # noqa: E402
from archlab.config import load_recipe  # noqa: E402


def run(folder: Path, name: str, **overrides) -> dict:
    settings = {**load_recipe("spam-gru"), **{k: v for k, v in overrides.items() if v is not None}}
    result = archlab.train(run_dir=folder / name, report=False, progress=False, **settings)
    s = result.summary
    print(f"{name}: spam F1 {s['per_class']['spam']['f1']:.4f}, macro F1 {s['test_metrics']['f1']:.4f}, "
          f"acc {s['test_metrics']['accuracy']:.4f}, {s['wall_seconds']:.1f} s, {s['params']:,} params", flush=True)
    return s


def describe(s: dict) -> str:
    return (f"spam F1 {s['per_class']['spam']['f1']:.4f} (macro F1 {s['test_metrics']['f1']:.4f}, "
            f"acc {s['test_metrics']['accuracy']:.4f}) in {s['wall_seconds']:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=None, help="override the recipe's epochs (smoke tests)")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gru = run(Path(tmp), "gru", epochs=args.epochs)
        bow = run(Path(tmp), "bow", model="bow", model_args={"embedding_dim": 64}, epochs=args.epochs,
                  grad_clip=0.0)
    if args.no_append:
        return
    gru_f1, bow_f1 = gru["per_class"]["spam"]["f1"], bow["per_class"]["spam"]["f1"]
    append_rows([{
        "benchmark": "e-mail spam (SpamAssassin test split, 1,209 messages): spam-gru recipe (GRU 64, packed, attention pooling)",
        "command": "python bench/spam.py" + (f" --epochs {args.epochs}" if args.epochs else ""),
        "machine": cpu_model(), "figure": describe(gru),
        "peer": f"bag-of-words (mean embedding → linear), same splits and epochs: {describe(bow)}",
        "ratio": f"{gru['wall_seconds'] / bow['wall_seconds']:.1f}× the time, spam F1 {100 * (gru_f1 - bow_f1):+.2f} points",
        "notes": f"{gru['epochs']:.0f} epochs; {gru['params']:,} vs {bow['params']:,} params",
    }])
    print("appended 1 row to BENCHMARKS.md")


if __name__ == "__main__":
    main()
