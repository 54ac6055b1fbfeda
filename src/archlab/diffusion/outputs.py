"""What a diffusion run leaves for its report: a sample grid, class grids by guidance scale, the reverse strip.

Files (in the run directory):
  ``samples.png``                 64 samples of the saved (EMA) network with the run's evaluation sampler
  ``class-grid-g{w}.png``         conditional runs: one row per class (8 samples each) at guidance w
  ``reverse-process.png``         8 samples (rows) at a few visited t, from x_T (left) to x_0 (right)
  ``diffusion.json``              the settings behind these files and the scores (read by the report)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from archlab.diffusion.pipeline import DiffusionModel, generate
from archlab.io import atomic_write_json

SAMPLES_PNG = "samples.png"
STRIP_PNG = "reverse-process.png"
DIFFUSION_JSON = "diffusion.json"
GUIDANCE_SCALES = (0.0, 1.0, 3.0)


def class_grid_name(guidance: float) -> str:
    return f"class-grid-g{guidance:g}.png"


def save_grid(images: torch.Tensor, path: str | Path, nrow: int) -> Path:
    """Images ``[N, 1, H, W]`` in [-1, 1] as one PNG grid, ``nrow`` per row (the shared writer, atomic)."""
    from archlab.report.image_grid import save_image_grid

    return Path(save_image_grid(images, path, nrow))


def strip_times(visited: list[int], columns: int = 8) -> list[int]:
    """``columns`` of the visited timesteps, evenly spaced, always the first (x_T) and the last (x_0, t = -1)."""
    picks = np.linspace(0, len(visited) - 1, min(columns, len(visited))).round().astype(int)
    return [visited[i] for i in sorted(set(picks.tolist()))]


def write_outputs(run_dir: Path, model: DiffusionModel, *, sampler: str, steps: int | None, eta: float,
                  seed: int, samples: torch.Tensor | None = None, scores: dict[str, Any] | None = None,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the files above (``samples``: already drawn ones to reuse for the grid) and return their record."""
    common = {"sampler": sampler, "steps": steps, "eta": eta}
    if samples is None or len(samples) < 64:
        labels = torch.arange(64) % model.num_classes if model.num_classes else None
        samples = generate(model, 64, seed=seed, labels=labels, **common)
    save_grid(samples[:64], run_dir / SAMPLES_PNG, nrow=8)
    record: dict[int, torch.Tensor] = {}
    generate(model, 8, seed=seed + 1, record=record, **common)
    visited = list(record)  # insertion order: x_T first, then each t_prev down to -1
    times = strip_times(visited)
    strip = torch.stack([record[t] for t in times], dim=1).flatten(0, 1)  # row-major: sample, then time
    save_grid(strip, run_dir / STRIP_PNG, nrow=len(times))
    info: dict[str, Any] = {**common, "seed": seed, "samples_png": SAMPLES_PNG, "strip_png": STRIP_PNG,
                            "strip_times": times, "class_grids": {}, "scores": scores or {}, **(extra or {})}
    if model.num_classes:
        labels = torch.arange(model.num_classes).repeat_interleave(8)
        for w in GUIDANCE_SCALES:
            grid = generate(model, len(labels), labels=labels, guidance=w, seed=seed + 2, **common)
            info["class_grids"][f"{w:g}"] = save_grid(grid, run_dir / class_grid_name(w), nrow=8).name
    atomic_write_json(run_dir / DIFFUSION_JSON, info)
    return info
