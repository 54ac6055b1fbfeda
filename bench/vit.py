"""ViT on MNIST and Fashion-MNIST: archlab's ViT recipes against archlab's best CNN recipes, in one run.

    python bench/vit.py                      # mnist-vit vs mnist-best, fashion-vit vs fashion-best
    python bench/vit.py --data mnist         # one data set only
    python bench/vit.py --epochs 0.02 --no-append   # smoke test: a few steps of each, nothing written

The peer is the CNN recipe of the same data set (``mnist-best`` / ``fashion-best``), trained to its own
recipe's end in the same process on the same machine: the rows compare test accuracy at each recipe's own
budget, and the ratio is the ViT's wall time over the CNN's. Times are wall seconds of ``archlab.train``
(trainer set-up, training, validation, test evaluation; data already loaded in memory). Prints a table and a
last line ``mnist_vit_acc=... mnist_cnn_acc=... fashion_vit_acc=... fashion_cnn_acc=...``, and appends dated
rows to BENCHMARKS.md unless ``--no-append``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import archlab  # noqa: E402
from common import append_rows, cpu_model  # noqa: E402

PAIRS = {  # data set → (ViT recipe, peer CNN recipe, name in the data registry)
    "mnist": ("mnist-vit", "mnist-best", "mnist"),
    "fashion": ("fashion-vit", "fashion-best", "fashion-mnist"),
}


def run_recipe(recipe: str, workdir: Path, epochs: float | None) -> dict:
    """Train ``recipe`` (its own length unless ``epochs`` is given) and time the whole call."""
    overrides = {"epochs": epochs} if epochs is not None else {}
    start = time.perf_counter()
    run = archlab.train(recipe=recipe, run_dir=workdir / recipe, report=False, progress=False, **overrides)
    seconds = time.perf_counter() - start
    summary = run.summary
    return {"recipe": recipe, "model": summary["model"], "seconds": seconds, "acc": summary["test_metrics"]["accuracy"],
            "params": summary.get("params"), "epochs": summary.get("epochs"),
            "images_per_second": summary.get("train_images_per_second")}


def describe(result: dict) -> str:
    return (f"{result['recipe']} ({result['model']}, {result['params']:,} params): {100 * result['acc']:.2f}% "
            f"in {result['seconds']:.0f} s")


def command_line(args: argparse.Namespace) -> str:
    parts = ["python bench/vit.py", f"--data {args.data}"]
    if args.epochs is not None:
        parts.append(f"--epochs {args.epochs:g}")
    return " ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=[*PAIRS, "both"], default="both")
    parser.add_argument("--epochs", type=float, default=None, help="override every recipe's length (smoke tests)")
    parser.add_argument("--no-append", action="store_true", help="do not write to BENCHMARKS.md")
    args = parser.parse_args()

    machine = cpu_model()
    chosen = list(PAIRS) if args.data == "both" else [args.data]
    results: dict[str, tuple[dict, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key in chosen:
            vit_recipe, cnn_recipe, data_name = PAIRS[key]
            archlab.load_image_data(data_name)  # parse and cache in memory now: loading is not training
            vit = run_recipe(vit_recipe, Path(tmp), args.epochs)
            cnn = run_recipe(cnn_recipe, Path(tmp), args.epochs)
            results[key] = (vit, cnn)

    print(f"machine: {machine}")
    print(f"{'recipe':<14}{'model':<6}{'params':>9}{'epochs':>8}{'img/s':>8}{'seconds':>9}{'test acc':>10}")
    for vit, cnn in results.values():
        for r in (vit, cnn):
            print(f"{r['recipe']:<14}{r['model']:<6}{r['params'] or 0:>9,}{r['epochs'] or 0:>8.2f}"
                  f"{r['images_per_second'] or 0:>8.0f}{r['seconds']:>9.1f}{100 * r['acc']:>9.2f}%")

    rows = []
    for key, (vit, cnn) in results.items():
        rows.append({
            "benchmark": f"vit on {PAIRS[key][2]}: test accuracy and wall time",
            "command": command_line(args),
            "machine": machine,
            "figure": describe(vit),
            "peer": describe(cnn),
            "ratio": f"{vit['seconds'] / cnn['seconds']:.2f}× the time, {100 * (vit['acc'] - cnn['acc']):+.2f} points",
            "notes": "each recipe to its own end; times include set-up and the test pass"
                     + (f"; every recipe cut to {args.epochs:g} epochs" if args.epochs is not None else ""),
        })
    print(" ".join(f"{key}_vit_acc={vit['acc']:.4f} {key}_cnn_acc={cnn['acc']:.4f} "
                   f"{key}_vit_s={vit['seconds']:.1f} {key}_cnn_s={cnn['seconds']:.1f}"
                   for key, (vit, cnn) in results.items()))
    if not args.no_append:
        append_rows(rows)


if __name__ == "__main__":
    main()
