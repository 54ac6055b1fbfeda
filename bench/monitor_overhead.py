"""What the gradient-flow monitor costs: mnist-fast with the monitor as shipped vs with it off, same run.

    python bench/monitor_overhead.py [--repeats 3]

"On" is the recipe as shipped (per-layer norms, update ratios and dead units every 50 steps, the NaN/Inf
check every step); "off" sets monitor.every_n_steps=0 and check_finite=false. Runs alternate on/off so
machine drift hits both alike; the figure is the median training-loop time of each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_rows, cpu_model  # noqa: E402

import archlab  # noqa: E402

SETTINGS = {"on": {}, "off": {"monitor": {"every_n_steps": 0, "check_finite": False}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {"on": [], "off": []}
    accuracy: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory() as tmp:
        archlab.train("cnn", recipe="mnist-fast", run_dir=Path(tmp) / "warmup", report=False, progress=False, max_steps=20)
        for i in range(args.repeats):
            for mode, overrides in SETTINGS.items():
                run = archlab.train("cnn", recipe="mnist-fast", run_dir=Path(tmp) / f"{mode}-{i}", report=False,
                                    progress=False, **overrides)
                seconds[mode].append(run.summary["wall_seconds"])
                accuracy[mode].append(run.test_accuracy)
                print(f"{mode} #{i + 1}: {run.summary['wall_seconds']:.2f} s, acc {run.test_accuracy:.4f}", flush=True)
    on, off = statistics.median(seconds["on"]), statistics.median(seconds["off"])
    print(f"median: monitor on {on:.2f} s, off {off:.2f} s, ratio {on / off:.3f}")
    if args.no_append:
        return
    append_rows([{
        "benchmark": "gradient-flow monitor overhead, mnist-fast training loop",
        "command": "python bench/monitor_overhead.py", "machine": cpu_model(),
        "figure": f"monitor on: {on:.2f} s (median of {args.repeats}; acc {statistics.median(accuracy['on']):.4f})",
        "peer": f"monitor off: {off:.2f} s (acc {statistics.median(accuracy['off']):.4f})",
        "ratio": f"{on / off:.3f}× the time",
        "notes": "on = every 50 steps per-layer norms, update ratios, dead units; NaN/Inf check every step",
    }])
    print("appended 1 row to BENCHMARKS.md")


if __name__ == "__main__":
    main()
