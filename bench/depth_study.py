"""Run the depth study (plain vs residual at growing depth) and append its numbers to BENCHMARKS.md.

    python bench/depth_study.py                  # the quick preset (target: ≤10 minutes on 2 CPU cores)
    python bench/depth_study.py --preset full    # He et al.'s depths; hours on a CPU

Each row compares a residual net with its plain twin trained in the same run, under the same budget:
test accuracy, and the first/last-layer gradient-norm ratio at the first logged step. References
(He et al. 2015, CIFAR-10; not reproducible offline here): plain-110 error >60%, ResNet-110 6.43%,
ResNet-1202 7.93%; first/last ratio measured elsewhere on a CPU: 10-layer plain sigmoid MLP ~2e-8,
50-layer plain ReLU MLP ~3e-18, ~2e-2 with residual connections.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_rows, cpu_model  # noqa: E402

from archlab.studies.depth import pairs, run_depth_study, study_config  # noqa: E402

QUICK_TARGET_S = 600


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick", choices=["quick", "full"])
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--out", type=Path, help="Study folder (default: a temporary folder)")
    parser.add_argument("--conv-depths", help="Override the preset's conv depths, e.g. 110 (empty: none)")
    parser.add_argument("--mlp-depths", help="Override the preset's MLP depths, e.g. 10,50 (empty: none)")
    parser.add_argument("--conv-steps", type=int, help="Override the preset's conv training steps")
    parser.add_argument("--no-append", action="store_true", help="Print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()

    depths = lambda text: None if text is None else [int(d) for d in text.split(",") if d.strip()]  # noqa: E731
    config = study_config(args.preset, data=args.data, conv_depths=depths(args.conv_depths),
                          mlp_depths=depths(args.mlp_depths), conv_steps=args.conv_steps)
    custom = any(v is not None for v in (args.conv_depths, args.mlp_depths, args.conv_steps))
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "study"
        start = time.perf_counter()
        study = run_depth_study(config, out, on_arm=lambda i, n, arm, r: print(
            f"[{i + 1}/{n}] {arm.name:<28} acc {r['test_accuracy']:.4f}  first/last {fmt_ratio(r['grad_ratio']['first'])}"
            f"  {r['train_seconds']:.1f} s", flush=True))
        seconds = time.perf_counter() - start
    print("\n".join(study["findings"]))
    print(f"total {seconds:.0f} s")
    if args.no_append:
        return
    machine = cpu_model()
    command = shlex.join(["python", "bench/depth_study.py", *sys.argv[1:]])
    rows = []
    for plain, residual in pairs(study["results"]):
        steps = config.conv_steps if plain["family"] == "conv" else config.mlp_steps
        acc_p, acc_r = plain["test_accuracy"], residual["test_accuracy"]
        grad_p, grad_r = plain["grad_ratio"]["first"], residual["grad_ratio"]["first"]
        rows.append({
            "benchmark": f"depth study: {plain['family']} depth {plain['depth']} {plain['activation']}, {args.data}, "
                         f"{steps} steps",
            "command": command, "machine": machine,
            "figure": f"residual test acc {acc_r:.4f}; first/last grad ratio {fmt_ratio(grad_r)}",
            "peer": f"plain twin test acc {acc_p:.4f}; first/last grad ratio {fmt_ratio(grad_p)}",
            "ratio": f"{acc_r / acc_p:.2f}× accuracy" if acc_p else "—",
            "notes": f"train {residual['train_seconds']:.0f} s vs {plain['train_seconds']:.0f} s; "
                     f"plain diagnoses: {', '.join(plain['diagnoses']) or 'none'}",
        })
    robustness = study["findings"][-1]
    quick = args.preset == "quick" and not custom
    target = f"target ≤{QUICK_TARGET_S} s: {'met' if seconds <= QUICK_TARGET_S else 'MISSED'}" if quick else "custom plan"
    rows.append({"benchmark": f"depth study {args.preset}: whole study, {len(study['results'])} nets", "command": command,
                 "machine": machine, "figure": f"{seconds:.0f} s", "peer": "—", "ratio": "—",
                 "notes": f"{target}; {robustness}"})
    append_rows(rows)
    print(f"appended {len(rows)} rows to BENCHMARKS.md")


if __name__ == "__main__":
    main()
