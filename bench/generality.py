"""Faithfulness and generality: the seed listing trained by archlab, and the recipes on Fashion-MNIST.

    python bench/generality.py              # about 12 minutes on 2 cores
    python bench/generality.py --quick      # 1 seed-cnn epoch instead of 10 (no rows appended)

1. ``seed-cnn`` with the seed's own hyper-parameters (recipe ``seed-cnn``: batch 64, Adam 1e-3, inputs in
   [-1, 1], 10 epochs) through archlab's engine: target ≥99.1% test accuracy. Peer in the same run: one
   epoch of the seed listing's own loop (per-sample transforms), so the ratio isolates what archlab's
   in-memory batches and engine save on the very same model and hyper-parameters.
2. ``cnn`` on Fashion-MNIST with the MNIST recipes unchanged: target ≥92% within 2 minutes
   (recipe mnist-best), peer: recipe mnist-fast in the same run.
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
    args = parser.parse_args()
    machine = cpu_model()
    archlab.load_image_data("mnist")
    archlab.load_image_data("fashion-mnist")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        seed_epochs = 1 if args.quick else 10
        faithful = timed_train(work, "seed-cnn", recipe="seed-cnn", epochs=seed_epochs)
        print(f"seed-cnn via archlab, {seed_epochs} epochs: {faithful['acc']:.4f} in {faithful['seconds']:.1f} s")
        fashion_best = timed_train(work, "fashion-best", recipe="mnist-best", data="fashion-mnist")
        print(f"cnn, mnist-best recipe on fashion-mnist: {fashion_best['acc']:.4f} in {fashion_best['seconds']:.1f} s")
        fashion_fast = timed_train(work, "fashion-fast", recipe="mnist-fast", data="fashion-mnist")
        print(f"cnn, mnist-fast recipe on fashion-mnist: {fashion_fast['acc']:.4f} in {fashion_fast['seconds']:.1f} s")
    seed = run_seed_loop_in_subprocess(target=2.0, max_epochs=1)  # one epoch of the listing's own loop
    seed_epoch = seed["epochs"][0]["train_seconds"]
    archlab_epoch = faithful["summary"]["wall_seconds"] / faithful["summary"]["epochs"]

    print()
    print(f"seed-cnn, 10 epochs ≥99.1%: {'met' if faithful['acc'] >= 0.991 else 'MISSED'} ({faithful['acc']:.4f}); "
          f"epoch {archlab_epoch:.1f} s in archlab vs {seed_epoch:.1f} s in the seed loop "
          f"({seed_epoch / archlab_epoch:.1f}× faster)")
    print(f"fashion-mnist ≥92% within 120 s: "
          f"{'met' if fashion_best['acc'] >= 0.92 and fashion_best['seconds'] <= 120 else 'MISSED'} "
          f"({fashion_best['acc']:.4f} in {fashion_best['seconds']:.1f} s)")
    if args.quick:
        return
    append_rows([
        {"benchmark": "seed-cnn, seed hyper-parameters, 10 epochs (target ≥99.1%)",
         "command": "python bench/generality.py", "machine": machine,
         "figure": f"test acc {faithful['acc']:.4f}; {archlab_epoch:.1f} s/epoch",
         "peer": f"seed listing's loop: {seed_epoch:.1f} s/epoch (same model, same hyper-parameters)",
         "ratio": f"{seed_epoch / archlab_epoch:.1f}× faster per epoch",
         "notes": f"{faithful['seconds']:.0f} s in all"},
        {"benchmark": "cnn on Fashion-MNIST, recipe mnist-best unchanged (target ≥92% in ≤120 s)",
         "command": "python bench/generality.py", "machine": machine,
         "figure": f"{fashion_best['acc']:.4f} in {fashion_best['seconds']:.1f} s",
         "peer": f"recipe mnist-fast: {fashion_fast['acc']:.4f} in {fashion_fast['seconds']:.1f} s",
         "ratio": f"{fashion_best['seconds'] / fashion_fast['seconds']:.1f}× the time, "
                  f"{(fashion_best['acc'] - fashion_fast['acc']) * 100:+.2f} points",
         "notes": ""},
    ])
    print("appended 2 rows to BENCHMARKS.md")


if __name__ == "__main__":
    main()
