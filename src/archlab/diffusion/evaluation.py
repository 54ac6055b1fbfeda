"""``archlab eval`` of a diffusion run: draw samples with the saved (EMA) network and score them again.

By default the run's own evaluation settings (``meta.json``: sampler, steps, eta; ``summary.json``: how many
samples) are used; ``evaluate_diffusion(..., sampler=, steps=, n=)`` re-scores with others. The scores
(FID, KID, Inception Score, class coverage against the test split, by ``archlab.metrics.generative``) replace
the run's test metrics in ``summary.json``, with the settings that produced them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from archlab.diffusion.pipeline import DiffusionModel, generate
from archlab.diffusion.schedules import NoiseSchedule
from archlab.io import atomic_write_json
from archlab.runs import SUMMARY, LoadedModel, read_json


def evaluate_diffusion(run_dir: str | Path, loaded: LoadedModel, data_dir: str | Path | None = None, *,
                       n: int | None = None, sampler: str | None = None, steps: int | None = None,
                       eta: float | None = None, guidance: float | None = None, seed: int = 0) -> dict[str, Any]:
    """Scores of ``n`` fresh samples; ``summary.json``'s test metrics are refreshed with them."""
    from archlab.metrics.generative import score_images

    run_dir = Path(run_dir)
    meta = loaded.meta
    model = DiffusionModel(loaded.model, NoiseSchedule.from_dict(meta["schedule"]), meta.get("prediction", "eps"), meta)
    default = model.default_sampler()
    summary_path = run_dir / SUMMARY
    summary = read_json(summary_path, "") if summary_path.is_file() else {"model": meta["model"]}
    n = n or int((summary.get("diffusion") or {}).get("eval_samples") or 10000)
    sampler = sampler or default["name"]
    steps = steps if steps is not None else (default.get("steps") if sampler == default["name"] else None)
    eta = float(default.get("eta", 0.0) if eta is None else eta)
    labels = torch.arange(n) % model.num_classes if model.num_classes else None
    started = time.perf_counter()
    samples = generate(model, n, sampler=sampler, steps=steps, eta=eta, labels=labels, seed=seed,
                       guidance=guidance if model.num_classes else None, progress=True)
    seconds = time.perf_counter() - started
    scores = score_images(samples, meta["data"], data_dir=data_dir, seed=seed)
    metrics = {key: value for key, value in scores.items() if key != "class_histogram"}
    metrics.update({"sampler": sampler, "steps": steps, "eta": eta, "seconds_per_sample": seconds / n})
    summary["test_metrics"] = {**(summary.get("test_metrics") or {}), **{
        k: v for k, v in scores.items() if isinstance(v, (int, float)) and k != "n"}}
    summary["class_histogram"] = scores.get("class_histogram")
    summary["diffusion"] = {"sampler": sampler, "steps": steps, "eta": eta, "eval_samples": n}
    atomic_write_json(summary_path, summary)
    return {**metrics, "class_histogram": scores.get("class_histogram")}


def describe_diffusion(metrics: dict[str, Any]) -> list[str]:
    steps = metrics.get("steps") or "all"
    return [f"{metrics.get('n')} samples by {metrics.get('sampler')} ({steps} steps, eta {metrics.get('eta')}), "
            f"{1000 * metrics.get('seconds_per_sample', 0.0):.1f} ms per sample",
            f"FID {metrics.get('fid', float('nan')):.2f}, KID {metrics.get('kid_mean', float('nan')):.4f} ± "
            f"{metrics.get('kid_std', float('nan')):.4f}, IS {metrics.get('inception_score', float('nan')):.2f}, "
            f"class coverage {metrics.get('coverage_entropy', float('nan')):.2f} bits (log2 10 = 3.32 is even)"]
