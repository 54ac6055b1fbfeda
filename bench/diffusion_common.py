"""Shared parts of the diffusion benchmarks: train a ddpm run for a wall budget, draw and score samples, time them.

Not a benchmark by itself; ``ddim_steps.py`` and ``diffusion_schedules.py`` import it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import archlab
from archlab.diffusion.pipeline import DiffusionModel, generate, load_diffusion

# A few-second network and a short schedule for --smoke runs (they check the script, not the figures).
SMOKE_MODEL = {"base_channels": 8, "channel_mults": [1, 2], "heads": 2, "groups": 4}


def train_for(budget: float, run_dir: Path, *, smoke: bool, **task_args: Any) -> Path:
    """The ``mnist-ddpm`` recipe (or the smoke network) trained for ``budget`` seconds of wall time; no scoring."""
    overrides: dict[str, Any] = {"max_time": budget, "epochs": 1000, "progress": False, "report": False,
                                 "task_args": {**task_args, "eval_samples": 0}}
    if smoke:
        overrides.update(model_args=SMOKE_MODEL, max_steps=10, batch_size=32, val_size=200,
                         task_args={**overrides["task_args"], "timesteps": 50, "eval_steps": 5})
    return archlab.train(recipe="mnist-ddpm", run_dir=run_dir, **overrides).path


def timed_scores(model: DiffusionModel, n: int, *, sampler: str, steps: int | None, seed: int = 0) -> dict[str, Any]:
    """FID/KID/IS/coverage of ``n`` fresh samples, with the sampling seconds per sample."""
    from archlab.metrics.generative import score_images

    started = time.perf_counter()
    images = generate(model, n, sampler=sampler, steps=steps, seed=seed, batch_size=500)
    seconds = time.perf_counter() - started
    scores = score_images(images, model.meta.get("data", "mnist"), seed=seed)
    return {**scores, "ms_per_sample": 1000 * seconds / n, "seconds": seconds}


def load(run_dir: Path) -> DiffusionModel:
    return load_diffusion(run_dir)
