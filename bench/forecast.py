"""Forecasting: the recurrent network's test error next to each baseline's, on each bundled series.

    python bench/forecast.py                 # train and append one row per series to BENCHMARKS.md
    python bench/forecast.py --no-append --steps 50 --series co2   # a quick check, nothing written
    python bench/forecast.py --horizon 12 --series elnino,sunspots   # multi-step: errors at lead 12

Each series: an LSTM forecaster (hidden 32, one step ahead) trained for a fixed number of optimizer steps on the
temporal training part (70 %), the scaler fitted there, the best checkpoint by validation loss (15 %), scored on
the last 15 % beside the last value, the seasonal naive and an AR(p) (order by AIC) on the same origins.
co2 trends upward, so its network reads differenced inputs (``differences=True``); the others read levels.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_rows, cpu_model  # noqa: E402

import archlab  # noqa: E402

SERIES = {  # name: model arguments beyond hidden
    "co2": {"differences": True},
    "sunspots": {},
    "elnino": {},
    "seattle-temps": {},
}


def run(name: str, steps: int, folder: Path, horizon: int = 1) -> dict:
    started = time.perf_counter()
    result = archlab.train("lstm-forecast", data=name, task_args={"horizon": horizon}, batch_size=32, max_steps=steps,
                           model_args={"hidden": 32, **SERIES[name]}, optimizer={"lr": 3e-3},
                           run_dir=folder / name, progress=False, report=False, monitor={"every_n_steps": 0})
    wall = time.perf_counter() - started
    rows = {row["model"]: row for row in result.summary["forecast"]["rows"] if row["horizon"] == horizon}
    line = ", ".join(f"{model} {row['MAE']:.4g}" for model, row in rows.items() if model != "mean")
    print(f"{name}: test MAE at lead {horizon}: {line} ({wall:.1f} s)", flush=True)
    return {"rows": rows, "wall": wall, "summary": result.summary, "horizon": horizon}


def row_for(name: str, steps: int, outcome: dict, command: str) -> dict[str, str]:
    rows = outcome["rows"]
    network = rows.pop("network")
    baselines = {model: row for model, row in rows.items() if model != "mean"}
    best = min(baselines, key=lambda model: baselines[model]["MAE"])
    return {
        "benchmark": (f"forecasting {name}, " + ("one step ahead" if outcome["horizon"] == 1 else
                      f"{outcome['horizon']} steps ahead (errors over leads 1–{outcome['horizon']})")
                      + f": lstm-forecast (hidden 32), {steps} steps"),
        "command": command, "machine": cpu_model(),
        "figure": f"network test MAE {network['MAE']:.4g} / RMSE {network['RMSE']:.4g} / MAPE {network['MAPE']:.3g}% "
                  f"in {outcome['wall']:.1f} s",
        "peer": "; ".join(f"{model} MAE {row['MAE']:.4g} / RMSE {row['RMSE']:.4g} / MAPE {row['MAPE']:.3g}%"
                          for model, row in baselines.items()),
        "ratio": f"{network['MAE'] / baselines[best]['MAE']:.2f}× the MAE of the best baseline ({best})",
        "notes": f"{network['windows']} test origins; same origins for all; baselines fitted on the training part",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps per series")
    parser.add_argument("--series", default=",".join(SERIES), help="comma-separated series names")
    parser.add_argument("--horizon", type=int, default=1, help="forecast this many steps ahead")
    parser.add_argument("--no-append", action="store_true", help="print only; write nothing to BENCHMARKS.md")
    args = parser.parse_args()
    names = [name for name in args.series.split(",") if name]
    unknown = sorted(set(names) - set(SERIES))
    if unknown:
        parser.error(f"unknown series {unknown}; choose from {', '.join(SERIES)}")
    command = "python bench/forecast.py" + (f" --steps {args.steps}" if args.steps != 1500 else "")
    if args.series != ",".join(SERIES):
        command += f" --series {args.series}"
    if args.horizon != 1:
        command += f" --horizon {args.horizon}"
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row_for(name, args.steps, run(name, args.steps, Path(tmp), args.horizon), command) for name in names]
    if args.no_append:
        return
    append_rows(rows)
    print(f"appended {len(rows)} row(s) to BENCHMARKS.md")


if __name__ == "__main__":
    main()
