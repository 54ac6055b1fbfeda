"""Sparse vs dense causal attention: memory and time per training step by context length, and the loss cost.

    python bench/sparse_attention.py                      # CPU (or the GPU if there is one): 256 → 4096, then gpt
    python bench/sparse_attention.py --lengths 256,512 --repeats 1 --train-steps 5 --no-append   # a smoke run

Part 1 — one attention call, forward + backward (``archlab.nn.causal_attention`` on q, k, v of shape
[batch, heads, T, head_dim] that require gradients), for each context length T and each pattern:

- dense:   ``F.scaled_dot_product_attention(is_causal=True)``;
- local:   a sliding window of ``--window`` positions (blocks of the window: O(T · window));
- strided: Child et al.'s merged strided pattern with stride ``--stride`` (0: the power of two nearest √T);
- dense-unfused (reference only): the textbook ``softmax(QKᵀ/√d + causal mask) V`` written out, which
  materialises the T × T scores and weights — what a masked (not blocked) implementation of a sparse pattern
  would cost. Plain ``dense`` is *not* T × T in memory with PyTorch ≥ 2: its fused kernels (flash attention,
  on CPU too) keep O(T) per head for the backward pass, so against it the sparse patterns win time (O(T·w)
  against O(T²) work) rather than memory; the memory column shows both.

Time: the median of ``--repeats`` timed steps after one warm-up. Memory: on a GPU the peak allocated during
the step (``torch.cuda.max_memory_allocated``, the inputs excluded); on a CPU, where PyTorch keeps no peak
counter, the bytes the step keeps for its backward pass (every distinct tensor saved by autograd, counted once
through ``torch.autograd.graph.saved_tensors_hooks``), which is what grows with T; the label says which.

Part 2 — the loss cost: ``gpt`` (4 layers × 128, 4 heads) trained on Shakespeare with each pattern for the
same number of steps (``--train-steps``, same seed and batches) at one context (``--train-context``, window
and stride as given), validation loss in nats over the same held-out windows (validated once, at the end),
with each run's wall time. Rows: each sparse pattern with dense as the same-run peer (ratio = time
or memory relative to dense; for the loss, the difference in nats).
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

import torch  # noqa: E402
from common import append_rows, cpu_model  # noqa: E402

import archlab  # noqa: E402
from archlab.nn import causal_attention, pattern_mask  # noqa: E402

PATTERNS = ("dense", "local", "strided")
REFERENCE = "dense-unfused"


def stride_for(length: int, stride: int) -> int:
    return stride or 2 ** round(math.log2(math.sqrt(length)))


def saved_bytes(step) -> int:
    """Bytes of the distinct tensors autograd keeps for the backward pass of ``step()``."""
    seen: dict[tuple[int, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        seen[(tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes())] = \
            tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step()
    return sum(seen.values())


def measure(pattern: str, length: int, args: argparse.Namespace, device: torch.device) -> dict:
    shape = (args.batch, args.heads, length, args.head_dim)
    q, k, v = (torch.randn(shape, device=device, requires_grad=True) for _ in range(3))
    options = {"pattern": pattern, "window": args.window, "stride": stride_for(length, args.stride)}
    mask = pattern_mask("dense", length, length, device=device) if pattern == REFERENCE else None

    def step() -> None:
        if mask is None:
            causal_attention(q, k, v, **options).sum().backward()
        else:
            scores = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).masked_fill(~mask, float("-inf"))
            (torch.softmax(scores, dim=-1) @ v).sum().backward()

    step()  # warm-up
    times = []
    for _ in range(args.repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        memory, label = torch.cuda.max_memory_allocated() - before, "peak allocated (GPU)"
    else:
        memory, label = saved_bytes(step), "saved for backward (CPU)"
    return {"ms": 1000 * statistics.median(times), "mb": memory / 2**20, "memory_kind": label, **options}


def speed_table(args: argparse.Namespace, device: torch.device, machine: str, command: str) -> list[dict]:
    rows = []
    print(f"{'T':>6}{'pattern':>15}{'stride':>8}{'ms/step':>10}{'MB':>10}{'× dense time':>14}{'× dense MB':>12}")
    for length in args.lengths:
        names = (*PATTERNS, REFERENCE) if length <= args.unfused_max else PATTERNS
        results = {pattern: measure(pattern, length, args, device) for pattern in names}
        dense = results["dense"]
        for pattern, result in results.items():
            print(f"{length:>6}{pattern:>15}{result['stride']:>8}{result['ms']:>10.2f}{result['mb']:>10.1f}"
                  f"{result['ms'] / dense['ms']:>14.2f}{result['mb'] / dense['mb']:>12.2f}", flush=True)
            if pattern == "dense":
                continue
            setting = {"local": f"window {args.window}", "strided": f"stride {result['stride']}",
                       REFERENCE: "softmax(QKᵀ+mask)V written out"}[pattern]
            rows.append({
                "benchmark": f"sparse attention: {pattern} ({setting}) vs dense, T={length}, fwd+bwd of one call",
                "command": command, "machine": machine,
                "figure": f"{result['ms']:.2f} ms/step, {result['mb']:.1f} MB {result['memory_kind']}",
                "peer": f"dense {dense['ms']:.2f} ms/step, {dense['mb']:.1f} MB",
                "ratio": f"{result['ms'] / dense['ms']:.2f}× time, {result['mb'] / dense['mb']:.2f}× memory",
                "notes": f"batch {args.batch}, heads {args.heads}, head_dim {args.head_dim}, float32, median of "
                         f"{args.repeats}"})
    return rows


def loss_table(args: argparse.Namespace, machine: str, command: str) -> list[dict]:
    losses = {}
    with tempfile.TemporaryDirectory() as folder:
        for pattern in PATTERNS:
            torch.manual_seed(0)
            run = archlab.train(
                "gpt", data="shakespeare", task="language", max_steps=args.train_steps,
                batch_size=args.train_batch, eval_batch_size=128, optimizer={"name": "adamw", "lr": 1e-3},
                run_dir=Path(folder) / pattern, progress=False, report=False, eval_test=False,
                task_args={"context": args.train_context, "max_eval_windows": args.eval_windows, "sample_length": 0},
                model_args={"context": args.train_context, "layers": 4, "heads": 4, "dim": 128, "dropout": 0.0,
                            "attention": pattern, "window": args.window,
                            "stride": stride_for(args.train_context, args.stride)})
            losses[pattern] = (run.summary["best_val"]["val_loss"], run.summary["wall_seconds"])
            print(f"gpt {pattern:>8}: val loss {losses[pattern][0]:.4f} nats after {args.train_steps} steps "
                  f"in {losses[pattern][1]:.0f} s", flush=True)
    dense, dense_seconds = losses["dense"]
    return [{"benchmark": f"gpt validation loss, {pattern} vs dense attention, context {args.train_context}",
             "command": command, "machine": machine, "figure": f"{loss:.4f} nats ({seconds:.0f} s)",
             "peer": f"dense {dense:.4f} nats ({dense_seconds:.0f} s)", "ratio": f"{loss - dense:+.4f} nats",
             "notes": f"{args.train_steps} steps each; 4×128 gpt, batch {args.train_batch}, window "
                      f"{args.window}, stride {stride_for(args.train_context, args.stride)}, AdamW 1e-3"}
            for pattern, (loss, seconds) in losses.items() if pattern != "dense"]


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="256,512,1024,2048,4096")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=32)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--stride", type=int, default=0, help="0: the power of two nearest √T")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--unfused-max", type=int, default=2048,
                        help="longest T of the dense-unfused reference (its T×T scores: 4·B·H·T² bytes, twice)")
    parser.add_argument("--train-steps", type=int, default=1000, help="0 skips part 2")
    parser.add_argument("--train-context", type=int, default=256)
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--eval-windows", type=int, default=256)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    args.lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    return args


def main() -> None:
    args = parse()
    device = torch.device(args.device)
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    command = "python bench/sparse_attention.py " + " ".join(sys.argv[1:])
    rows = speed_table(args, device, machine, command.strip())
    if args.train_steps > 0:
        rows += loss_table(args, cpu_model(), command.strip())
    if args.no_append:
        print("\n(--no-append: BENCHMARKS.md left unchanged)")
    else:
        append_rows(rows)


if __name__ == "__main__":
    main()
