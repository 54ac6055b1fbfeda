"""Shared helpers of the benchmark scripts: machine description, matmul peak, BENCHMARKS.md rows."""

from __future__ import annotations

import os
import platform
import time
from datetime import date
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
HEADER = (
    "| date | benchmark | command | machine | figure | peer (same run) | ratio | notes |\n"
    "|---|---|---|---|---|---|---|---|\n"
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {torch.get_num_threads()} threads"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    wanted = ("avx512_bf16", "amx_bf16", "avx512f", "avx2")
    return ",".join(flag for flag in wanted if f" {flag}" in text)


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """Achieved GFLOP/s of an n×n matmul: the practical compute peak of this machine for ``dtype``."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def machine_load() -> str:
    """The machine's load averages (1, 5, 15 minutes) now: above the core count, other work shared the CPU."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load unknown"
    return f"load {one:.1f}/{five:.1f}/{fifteen:.1f} (1/5/15 min) on {os.cpu_count()} cores when written"


def append_rows(rows: list[dict[str, str]]) -> None:
    """Append dated rows to BENCHMARKS.md (creating its table if needed); each row's notes end with the load."""
    if not BENCHMARKS.exists():
        BENCHMARKS.write_text("# Benchmarks\n\nRows are appended by the scripts in `bench/`; never edited by hand.\n\n" + HEADER)
    today = date.today().isoformat()
    load = machine_load()
    with BENCHMARKS.open("a") as handle:
        for row in rows:
            notes = "; ".join(part for part in (row.get("notes", ""), load) if part)
            cells = [today, row["benchmark"], f"`{row['command']}`", row["machine"], row["figure"],
                     row.get("peer", "—"), row.get("ratio", "—"), notes]
            handle.write("| " + " | ".join(c.replace("|", "/") for c in cells) + " |\n")
