"""Faithfulness and generality: the seed listing trained by archlab, and the recipes on Fashion-MNIST.

    python bench/generality.py              # about 12 minutes on 2 cores
    python bench/generality.py --quick      # 1 seed-cnn epoch instead of 10 (no rows appended)

1. ``seed-cnn`` with the seed's own hyper-parameters (recipe ``seed-cnn``: batch 64, Adam 1e-3, inputs in
   [-1, 1], 10 epochs) through archlab's engine: target ≥99.1% test accuracy. Peer in the same run: one
   epoch of the seed listing's own loop (per-sample transforms), so the ratio isolates what archlab's
   in-memory batches and engine save on the very same model and hyper-parameters.
2. ``cnn`` on Fashion-MNIST: target ≥92% within 2 minutes with recipe ``fashion-best``; peers in the same
   run: the MNIST recipes unchanged (mnist-best, mnist-fast) on Fashion-MNIST.

    python bench/generality.py --part fashion   # only part 2 (about 3 minutes)
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
from seed_loop import run_seed_loop_in_subprocess  # noqa: E402


def timed_train(workdir: Path, name: str, **settings) -> dict:
    start = time.perf_counter()
    run = archlab.train(run_dir=workdir / name, report=False, progress=False, **settings)
    return {"seconds": time.perf_counter() - start, "acc": run.test_accuracy, "summary": run.summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 seed-cnn epoch, nothing appended")
    parser.add_argument("--part", choices=("all", "seed", "fashion"), default="all")
    args = parser.parse_args()
    rows = []
    if args.part in ("all", "seed"):
        rows += seed_part(args.quick)
    if args.part in ("all", "fashion"):
        rows += fashion_part()
    if rows and not args.quick:
        append_rows(rows)
        print(f"appended {len(rows)} rows to BENCHMARKS.md")


def seed_part(quick: bool) -> list[dict]:
    archlab.load_image_data("mnist")
    with tempfile.TemporaryDirectory() as tmp:
        seed_epochs = 1 if quick else 10
        faithful = timed_train(Path(tmp), "seed-cnn", recipe="seed-cnn", epochs=seed_epochs)
        print(f"seed-cnn via archlab, {seed_epochs} epochs: {faithful['acc']:.4f} in {faithful['seconds']:.1f} s")
    seed = run_seed_loop_in_subprocess(target=2.0, max_epochs=1)  # one epoch of the listing's own loop
    seed_epoch = seed["epochs"][0]["train_seconds"]
    archlab_epoch = faithful["summary"]["wall_seconds"] / faithful["summary"]["epochs"]

    print(f"seed-cnn, 10 epochs ≥99.1%: {'met' if faithful['acc'] >= 0.991 else 'MISSED'} ({faithful['acc']:.4f}); "
          f"epoch {archlab_epoch:.1f} s in archlab vs {seed_epoch:.1f} s in the seed loop "
          f"({seed_epoch / archlab_epoch:.1f}× faster)")
    return [{"benchmark": "seed-cnn, seed hyper-parameters, 10 epochs (target ≥99.1%)",
             "command": "python bench/generality.py --part seed", "machine": cpu_model(),
             "figure": f"test acc {faithful['acc']:.4f}; {archlab_epoch:.1f} s/epoch",
             "peer": f"seed listing's loop: {seed_epoch:.1f} s/epoch (same model, same hyper-parameters)",
             "ratio": f"{seed_epoch / archlab_epoch:.1f}× faster per epoch", "notes": f"{faithful['seconds']:.0f} s in all"}]


def fashion_part() -> list[dict]:
    archlab.load_image_data("fashion-mnist")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in ("fashion-best", "mnist-best", "mnist-fast"):
            results[recipe] = timed_train(Path(tmp), recipe, recipe=recipe, data="fashion-mnist")
            print(f"cnn, recipe {recipe} on fashion-mnist: {results[recipe]['acc']:.4f} "
                  f"in {results[recipe]['seconds']:.1f} s")
    best, peer, fast = results["fashion-best"], results["mnist-best"], results["mnist-fast"]
    met = best["acc"] >= 0.92 and best["seconds"] <= 120
    print(f"fashion-mnist ≥92% within 120 s: {'met' if met else 'MISSED'} ({best['acc']:.4f} in {best['seconds']:.1f} s)")
    return [{"benchmark": "cnn on Fashion-MNIST, recipe fashion-best (target ≥92% in ≤120 s)",
             "command": "python bench/generality.py --part fashion", "machine": cpu_model(),
             "figure": f"{best['acc']:.4f} in {best['seconds']:.1f} s",
             "peer": f"MNIST recipe mnist-best unchanged: {peer['acc']:.4f} in {peer['seconds']:.1f} s",
             "ratio": f"{(best['acc'] - peer['acc']) * 100:+.2f} points, {best['seconds'] / peer['seconds']:.2f}× the time",
             "notes": f"mnist-fast unchanged: {fast['acc']:.4f} in {fast['seconds']:.1f} s"}]


if __name__ == "__main__":
    main()
