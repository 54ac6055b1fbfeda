"""The GAN table on MNIST: every GAN model under one equal wall budget, scored by the MNIST judge.

    python bench/gan_table.py                              # 5 models × 300 s, 10,000 samples each (~30 min)
    python bench/gan_table.py --budget 600 --models dcgan cgan
    python bench/gan_table.py --budget 5 --samples 500 --no-append     # smoke test (~2 min), nothing written

Each model trains from its recipe (``mnist-<model>``: seed-gan exactly as its listing) for ``--budget`` seconds of
training (``max_time``; epochs set high so that time ends every run), then its test pass scores ``--samples``
generated images against the MNIST test split: FID, KID, IS and class coverage on the judge's features. The peer
of every row is ``seed-gan`` measured in the same run; ratio = seed-gan's FID / the model's FID (the goal: ≥ 3×
for the best model). Prints a table and a last line ``<model>_fid=...`` for each, and appends dated rows to
BENCHMARKS.md unless ``--no-append``.
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

MODELS = ("seed-gan", "dcgan", "cgan", "wgan-gp", "pggan")
PEER = "seed-gan"


def run_model(model: str, budget: float, samples: int, workdir: Path) -> dict:
    """Train ``mnist-<model>`` for ``budget`` seconds and score ``samples`` images; the whole call is timed."""
    start = time.perf_counter()
    run = archlab.train(recipe=f"mnist-{model}", max_time=budget, epochs=1000, run_dir=workdir / model,
                        task_args={"eval_samples": samples, "val_samples": min(2000, samples)},
                        report=False, progress=False)
    summary = run.summary
    test = summary["test_metrics"]
    return {"model": model, "fid": test["fid"], "kid": test["kid_mean"], "kid_std": test["kid_std"],
            "is": test["inception_score"], "coverage": test["coverage_entropy"], "steps": summary["steps"],
            "epochs": summary["epochs"], "train_seconds": summary["wall_seconds"], "params": summary["params"],
            "seconds": time.perf_counter() - start, "warnings": len(summary.get("gan_warnings") or [])}


def describe(r: dict) -> str:
    return (f"{r['model']:<9} FID {r['fid']:7.2f}  KID {r['kid']:.4f}±{r['kid_std']:.4f}  IS {r['is']:5.2f}  "
            f"coverage {r['coverage']:.2f} bits  ({r['steps']} steps, {r['epochs']:.2f} epochs in "
            f"{r['train_seconds']:.0f} s, {r['params']:,} params, {r['warnings']} warnings)")


def command_line(args: argparse.Namespace) -> str:
    return f"python bench/gan_table.py --budget {args.budget:g} --samples {args.samples} --models {' '.join(args.models)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds per model (default 300)")
    parser.add_argument("--samples", type=int, default=10_000, help="generated images scored per model")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--no-append", action="store_true", help="print only; do not write BENCHMARKS.md")
    args = parser.parse_args()
    models = [PEER] + [m for m in args.models if m != PEER]  # the peer always runs, first
    results = {}
    with tempfile.TemporaryDirectory(prefix="gan-table-") as tmp:
        for model in models:
            results[model] = run_model(model, args.budget, args.samples, Path(tmp))
            print(describe(results[model]), flush=True)
    peer = results[PEER]
    machine = cpu_model()
    rows = []
    for model, r in results.items():
        ratio = peer["fid"] / r["fid"] if r["fid"] > 0 else float("inf")
        rows.append({"benchmark": f"GAN table, MNIST: {model} FID at {args.budget:g} s",
                     "command": command_line(args), "machine": machine,
                     "figure": (f"FID {r['fid']:.2f}, KID {r['kid']:.4f}, IS {r['is']:.2f}, coverage {r['coverage']:.2f} "
                                f"bits ({args.samples} samples, {r['steps']} steps)"),
                     "peer": f"seed-gan FID {peer['fid']:.2f}", "ratio": f"{ratio:.2f}× lower FID",
                     "notes": f"recipe mnist-{model}; {r['epochs']:.2f} epochs; judge: archlab MNIST judge"})
    best = min(results.values(), key=lambda r: r["fid"])
    print(f"best: {best['model']} FID {best['fid']:.2f} = {peer['fid'] / best['fid']:.2f}× lower than seed-gan "
          f"({peer['fid']:.2f}); goal ≥ 3×")
    print(" ".join(f"{m.replace('-', '_')}_fid={r['fid']:.3f}" for m, r in results.items()))
    if not args.no_append:
        append_rows(rows)


if __name__ == "__main__":
    main()
