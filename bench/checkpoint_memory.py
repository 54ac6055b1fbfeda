"""Activation checkpointing: peak memory and time of one ResNet training step, with and without it.

    python bench/checkpoint_memory.py                   # resnet-1202 and resnet-110, batch 32 (~3 min, 1 thread)
    python bench/checkpoint_memory.py --depths 110 --threads 2 --no-append

A training step is: forward, cross-entropy, backward, on a random batch of 1×28×28 images, after a one-image
warm-up step (lazy library initialisation is not the step's cost). Every figure comes from a fresh
subprocess, so no allocator cache or earlier peak is inherited:

- tensor memory (the headline figure): the peak of the bytes held by PyTorch's CPU allocator during one
  step, relative to its start — activations kept for backward, gradients, temporaries — read from the
  running "Total Allocated" counter that torch.profiler (``profile_memory=True``) records at every
  allocation and free. Exact, and independent of the C allocator's caching.
- resident memory: the growth of the process's peak resident set over the timed steps, ``ru_maxrss`` after
  them minus the resident set just before them (``/proc/self/statm``) — what the machine has to provide,
  allocator cache and fragmentation included.
- time: the best of ``--steps`` steps, in the child that measures resident memory; the profiled step is
  not timed. Children run single-threaded by default (``--threads``): on a shared 2-core machine a
  multi-threaded step slows down erratically, by up to 10×, whenever another process holds a core.

Prints a table and appends one row per depth to BENCHMARKS.md, the peer being the same depth without
checkpointing, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from common import append_rows, cpu_model  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from archlab.models import create_model  # noqa: E402

MIB = 2**20


def resident_bytes() -> int:
    """The current resident set size of this process."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def peak_resident_bytes() -> int:
    """The peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _training_step(depth: int, checkpoint: bool, batch_size: int):
    """A built model and a function running one training step on the first ``batch`` images, timed."""
    torch.manual_seed(0)
    model = create_model("resnet", depth=depth, checkpoint=checkpoint).train()
    images, labels = torch.randn(batch_size, 1, 28, 28), torch.arange(batch_size) % 10

    def step(batch: int = batch_size) -> float:
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(images[:batch]), labels[:batch]).backward()
        return time.perf_counter() - start

    step(batch=1)  # warm-up
    return step


def measure_tensor_peak(depth: int, checkpoint: bool, batch_size: int, steps: int) -> dict:
    """Peak bytes held by PyTorch's CPU allocator during one profiled step, from the profiler's trace."""
    step = _training_step(depth, checkpoint, batch_size)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        step()
    with tempfile.TemporaryDirectory() as folder:
        trace_path = Path(folder) / "trace.json"
        profiler.export_chrome_trace(str(trace_path))
        events = json.loads(trace_path.read_text())["traceEvents"]
    allocated = [e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]"]
    return {"tensor_peak_mib": max(allocated) / MIB, "tensor_end_mib": allocated[-1] / MIB}


def measure_time_and_rss(depth: int, checkpoint: bool, batch_size: int, steps: int) -> dict:
    """Wall seconds of ``steps`` training steps (the best counts) and the resident-set growth over them."""
    step = _training_step(depth, checkpoint, batch_size)
    before = resident_bytes()
    times = [step() for _ in range(steps)]
    growth = (peak_resident_bytes() - before) / MIB
    return {"step_s": min(times), "all_steps_s": times, "rss_growth_mib": growth, "threads": torch.get_num_threads()}


MEASUREMENTS = {"memory": measure_tensor_peak, "time": measure_time_and_rss}


def measure_in_subprocess(kind: str, depth: int, checkpoint: bool, batch_size: int, steps: int) -> dict:
    numbers = (depth, int(checkpoint), batch_size, steps, torch.get_num_threads())
    command = [sys.executable, __file__, "--child", kind, *map(str, numbers)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure_all(depth: int, checkpoint: bool, batch_size: int, steps: int) -> dict:
    results: dict = {}
    for kind in MEASUREMENTS:
        results.update(measure_in_subprocess(kind, depth, checkpoint, batch_size, steps))
    return results


def row(depth: int, batch_size: int, steps: int, with_ckpt: dict, without: dict, machine: str) -> dict[str, str]:
    def figures(r: dict) -> str:
        memory = f"{r['tensor_peak_mib']:.0f} MiB tensor peak ({r['rss_growth_mib']:.0f} MiB RSS)"
        return f"{memory}; step {r['step_s']:.2f} s"

    malloc = os.environ.get("MALLOC_MMAP_THRESHOLD_", "glibc default")
    return {
        "benchmark": f"resnet-{depth} training-step memory, activation checkpointing (batch {batch_size}, 1×28×28)",
        "command": "python bench/checkpoint_memory.py",
        "machine": machine,
        "figure": figures(with_ckpt),
        "peer": f"no checkpointing: {figures(without)}",
        "ratio": ratio_text(with_ckpt, without),
        "notes": f"per-block torch.utils.checkpoint; fresh subprocess per figure, 1-image warm-up; tensor peak = "
                 f"max 'Total Allocated' of torch.profiler over 1 step; RSS = ru_maxrss − RSS before over "
                 f"{steps} steps (MALLOC_MMAP_THRESHOLD_={malloc}); time = best of {steps}",
    }


def ratio_text(with_ckpt: dict, without: dict) -> str:
    tensors = without["tensor_peak_mib"] / with_ckpt["tensor_peak_mib"]
    rss = without["rss_growth_mib"] / with_ckpt["rss_growth_mib"]
    slower = with_ckpt["step_s"] / without["step_s"]
    return f"{tensors:.1f}× less tensor memory ({rss:.1f}× RSS), {slower:.2f}× the time"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", type=int, nargs="+", default=[1202, 110])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per configuration (the best counts)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in each measurement")
    parser.add_argument("--no-append", action="store_true", help="do not write to BENCHMARKS.md")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *numbers = args.child
        depth, checkpoint, batch_size, steps, threads = map(int, numbers)
        torch.set_num_threads(threads)
        print(json.dumps(MEASUREMENTS[kind](depth, bool(checkpoint), batch_size, steps)))
        return
    torch.set_num_threads(args.threads)

    machine = cpu_model()
    print(f"machine: {machine}; batch {args.batch_size} of 1×28×28; every figure from a fresh subprocess")
    print(f"{'model':<14}{'checkpoint':>12}{'tensor peak MiB':>17}{'RSS growth MiB':>16}{'best step s':>13}  steps s")
    rows = []
    for depth in args.depths:
        results = {}
        for checkpoint in (False, True):
            r = results[checkpoint] = measure_all(depth, checkpoint, args.batch_size, args.steps)
            steps = ", ".join(f"{t:.2f}" for t in r["all_steps_s"])
            print(f"{'resnet-' + str(depth):<14}{str(checkpoint):>12}{r['tensor_peak_mib']:>17.0f}"
                  f"{r['rss_growth_mib']:>16.0f}{r['step_s']:>13.2f}  {steps}", flush=True)
        rows.append(row(depth, args.batch_size, args.steps, results[True], results[False], machine))
        print(f"resnet-{depth} with checkpointing: {rows[-1]['ratio']}")
    if not args.no_append:
        append_rows(rows)
        print(f"appended {len(rows)} rows to BENCHMARKS.md")


if __name__ == "__main__":
    main()
