"""Cheaper Transformers, measured: bf16 training, dynamic int8 inference, magnitude pruning — speed, size, loss.

    python bench/cheaper_transformers.py                     # trains gpt (shakespeare-gpt recipe, --steps) twice
    python bench/cheaper_transformers.py --run RUN_DIR       # the inference part on an existing language run

1. Training precision: the same gpt run for --steps steps in float32 and in bf16 autocast, same seed:
   steps per second and validation loss (the float32 run is the peer).
2. Inference on the float32 run's weights, on the same validation windows of the held-out plays: validation
   loss (nats), latency of one forward pass at batch 1 and batch 64 (median of --repeats), size on disk:
   float32 (the peer), dynamic int8 Linear layers, unstructured magnitude pruning at 25/50/75 %, neuron and
   head pruning at 25/50 % (no fine-tuning after pruning: the raw cost). Pruned weights are zeros in dense
   tensors, so their size and speed do not change: that is reported, not hidden.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import append_rows, cpu_model  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import archlab  # noqa: E402
from archlab.config import load_recipe  # noqa: E402
from archlab.errors import ConfigError  # noqa: E402
from archlab.export import (dynamic_int8, prune_heads, prune_neurons, prune_unstructured,  # noqa: E402
                            serialized_bytes, sparsity)
from archlab.runs import load_model  # noqa: E402
from archlab.tasks.language import FixedWindows, load_corpus  # noqa: E402


def train(folder: Path, precision: str, steps: int) -> archlab.Run:
    settings = {**load_recipe("shakespeare-gpt"), "max_steps": steps, "max_time": None, "precision": precision}
    return archlab.train(run_dir=folder / precision, report=False, progress=False, **settings)


def validation_loss(model: torch.nn.Module, windows: FixedWindows) -> float:
    total, count = 0.0, 0
    with torch.inference_mode():
        for inputs, targets in windows:
            logits = model(inputs)[0]
            total += float(F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="sum"))
            count += targets.numel()
    return total / count


def latency_ms(model: torch.nn.Module, batch: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        for _ in range(3):  # warm-up: allocator, caches, lazy kernel choices
            model(batch)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            model(batch)
            times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def variants(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    made = {"float32": model, "dynamic int8": dynamic_int8(model)}
    for amount in (0.25, 0.5, 0.75):
        made[f"unstructured {amount:.0%}"] = prune_unstructured(model, amount)
    for amount in (0.25, 0.5):
        for name, prune in (("neurons", prune_neurons), ("heads", prune_heads)):
            try:
                made[f"{name} {amount:.0%}"] = prune(model, amount)
            except ConfigError as error:
                print(f"skipped {name} pruning: {error}")
    return made


def inference_table(run_dir: Path, repeats: int) -> list[dict]:
    loaded = load_model(run_dir)
    context = int(loaded.meta.get("context", 64))
    data = load_corpus(loaded.meta["data"], context=context)
    windows = FixedWindows(data.val, context, 256, 64)
    one = next(iter(FixedWindows(data.val, context, 1, 1)))[0]
    many = next(iter(windows))[0]
    results = []
    for name, model in variants(loaded.model.eval()).items():
        row = {"variant": name, "val_loss": validation_loss(model, windows), "bytes": serialized_bytes(model),
               "ms_1": latency_ms(model, one, repeats), "ms_64": latency_ms(model, many, repeats),
               "sparsity": sparsity(model) if name != "dynamic int8" else None}
        print(f"{name:16s} val loss {row['val_loss']:.4f} ({row['val_loss'] / math.log(2):.3f} bits/char), "
              f"{row['bytes'] / 1e6:.2f} MB, batch 1 {row['ms_1']:.2f} ms, batch 64 {row['ms_64']:.1f} ms", flush=True)
        results.append(row)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="an existing language run (skips the training part)")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    command = " ".join(["python", "bench/cheaper_transformers.py", *sys.argv[1:]])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run
        if run_dir is None:
            fp32, bf16 = train(Path(tmp), "32", args.steps), train(Path(tmp), "bf16-mixed", args.steps)
            speed = {name: run.summary["steps"] / run.summary["wall_seconds"] for name, run in (("32", fp32), ("bf16", bf16))}
            loss = {name: run.summary["best_val"]["val_loss"] for name, run in (("32", fp32), ("bf16", bf16))}
            print(f"training: float32 {speed['32']:.2f} steps/s, val loss {loss['32']:.4f}; "
                  f"bf16 {speed['bf16']:.2f} steps/s, val loss {loss['bf16']:.4f}", flush=True)
            rows.append({"benchmark": f"gpt training precision (shakespeare-gpt recipe, {args.steps} steps)",
                         "command": command, "machine": cpu_model(),
                         "figure": f"bf16-mixed: {speed['bf16']:.2f} steps/s, val loss {loss['bf16']:.4f}",
                         "peer": f"float32: {speed['32']:.2f} steps/s, val loss {loss['32']:.4f}",
                         "ratio": f"{speed['bf16'] / speed['32']:.2f}× the speed", "notes": "same seed and steps"})
            run_dir = fp32.path
        table = inference_table(run_dir, args.repeats)
    base = table[0]
    for row in table[1:]:
        rows.append({
            "benchmark": f"gpt inference, {row['variant']} (no fine-tuning)", "command": command, "machine": cpu_model(),
            "figure": f"val loss {row['val_loss']:.4f}, {row['bytes'] / 1e6:.2f} MB, {row['ms_1']:.2f} ms at batch 1, "
                      f"{row['ms_64']:.1f} ms at batch 64" + (f", sparsity {row['sparsity']:.2f}" if row["sparsity"] else ""),
            "peer": f"float32: val loss {base['val_loss']:.4f}, {base['bytes'] / 1e6:.2f} MB, {base['ms_1']:.2f} ms, "
                    f"{base['ms_64']:.1f} ms",
            "ratio": f"{base['ms_1'] / row['ms_1']:.2f}× speed at batch 1, {base['ms_64'] / row['ms_64']:.2f}× at 64, "
                     f"{row['bytes'] / base['bytes']:.2f}× size, {row['val_loss'] - base['val_loss']:+.4f} nats",
            "notes": "validation windows of the held-out plays; latency: median of repeats",
        })
    if args.no_append:
        return
    append_rows(rows)
    print(f"appended {len(rows)} row(s) to BENCHMARKS.md")


if __name__ == "__main__":
    main()
