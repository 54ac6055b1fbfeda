"""Noise schedules compared: linear, quadratic, cosine and log-SNR-linear, each training the same ddpm for the
same wall budget, each judged by FID on DDIM-50 samples. The peer is the linear schedule (Ho et al. 2020).

    python bench/diffusion_schedules.py --budget 900              # 15 min of training per schedule
    python bench/diffusion_schedules.py --smoke --no-append       # seconds: tiny network, tiny sample counts

Every run is the ``mnist-ddpm`` recipe with only ``-t schedule=NAME`` changed (same seed, network, optimizer,
batch, EMA). FID/KID/IS/coverage on ``--samples`` samples (default 10,000; the FID of all four uses the same n, so
they compare). Appends dated rows to BENCHMARKS.md unless ``--no-append``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_rows, cpu_model  # noqa: E402
from diffusion_common import load, timed_scores, train_for  # noqa: E402

from archlab.diffusion.schedules import SCHEDULES  # noqa: E402

ORDER = ["linear", "quadratic", "cosine", "log-snr"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=900.0, help="training seconds per schedule")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--schedules", type=lambda s: s.split(","), default=ORDER)
    parser.add_argument("--smoke", action="store_true", help="tiny network and T = 50: checks the script only")
    parser.add_argument("--no-append", action="store_true", help="do not write to BENCHMARKS.md")
    args = parser.parse_args()
    unknown = [name for name in args.schedules if name not in SCHEDULES]
    if unknown or "linear" not in args.schedules:
        parser.error(f"schedules must include linear (the peer) and come from {', '.join(SCHEDULES)}; got {unknown}")
    samples = min(args.samples, 40) if args.smoke else args.samples
    steps = 5 if args.smoke else 50

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.schedules:
            run_dir = train_for(args.budget, Path(tmp) / name, smoke=args.smoke, schedule=name)
            model = load(run_dir)
            results[name] = timed_scores(model, samples, sampler="ddim", steps=steps)
            results[name]["steps_trained"] = json.loads((run_dir / "summary.json").read_text())["steps"]

    machine = cpu_model()
    command = (f"python bench/diffusion_schedules.py --budget {args.budget:g} --samples {args.samples} "
               f"--schedules {','.join(args.schedules)}" + (" --smoke" if args.smoke else ""))
    print(f"machine: {machine}")
    print(f"{'schedule':<11}{'steps':>7}{'FID':>9}{'KID':>9}{'IS':>7}{'coverage':>10}")
    for name, s in results.items():
        print(f"{name:<11}{s['steps_trained']:>7}{s['fid']:>9.2f}{s['kid_mean']:>9.4f}{s['inception_score']:>7.2f}"
              f"{s['coverage_entropy']:>10.2f}")
    linear = results["linear"]
    rows = [{"benchmark": "diffusion-schedules", "command": command, "machine": machine,
             "figure": f"{name}: FID {s['fid']:.2f} (DDIM {steps}, {samples} samples)",
             "peer": f"linear: FID {linear['fid']:.2f}", "ratio": f"{s['fid'] / linear['fid']:.2f}",
             "notes": f"{args.budget:g} s of training ({s['steps_trained']} steps) each; KID {s['kid_mean']:.4f}, "
                      f"IS {s['inception_score']:.2f}, coverage {s['coverage_entropy']:.2f} bits"}
            for name, s in results.items() if name != "linear"]
    print("last: " + " ".join(f"{name}={s['fid']:.2f}" for name, s in results.items()))
    if not args.no_append:
        append_rows(rows)


if __name__ == "__main__":
    main()
