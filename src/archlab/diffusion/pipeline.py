"""Generating images with a trained denoising network: network + schedule + sampler, put together per call.

``generate`` draws x_T ~ N(0, temperature² I) and runs a sampler's plan down to x_0, in batches, under
``torch.no_grad()``, on the network's device; the seed fixes every random draw. ``load_diffusion`` rebuilds the
three objects from a run directory alone (``meta.json`` holds the schedule, the prediction and the default
sampler), so ``archlab sample`` / ``enhance`` / ``eval`` need nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archlab.diffusion.samplers import Denoiser, make_sampler, reverse
from archlab.diffusion.schedules import NoiseSchedule
from archlab.errors import ArchlabError

Tensor = torch.Tensor


@dataclass
class DiffusionModel:
    """A trained denoising network with its schedule and prediction kind (and the run's meta, when loaded)."""

    network: nn.Module
    schedule: NoiseSchedule
    prediction: str = "eps"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return int(getattr(self.network, "num_classes", 0) or 0)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.meta.get("image_shape", (1, 28, 28)))

    @property
    def classes(self) -> list[str]:
        return list(self.meta.get("classes") or [str(i) for i in range(self.num_classes)])

    def default_sampler(self) -> dict[str, Any]:
        return dict(self.meta.get("sampler") or {"name": "ddim", "steps": 50, "eta": 0.0})


def load_diffusion(run_dir: str | Path) -> DiffusionModel:
    """The run's network (its saved weights: the EMA ones), schedule and prediction; refused for other tasks."""
    from archlab.runs import load_model

    loaded = load_model(run_dir)
    meta = loaded.meta
    if meta.get("task") != "diffusion" or "schedule" not in meta:
        raise ArchlabError(f"{run_dir} is a {meta.get('task', 'classify')} run, not a diffusion one: only a diffusion "
                           "run can denoise, inpaint or upscale. Train one with `archlab train ddpm --data mnist`.")
    return DiffusionModel(loaded.model, NoiseSchedule.from_dict(meta["schedule"]), meta.get("prediction", "eps"), meta)


def _device(network: nn.Module) -> torch.device:
    parameter = next(network.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def make_generator(device: torch.device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


def generate(model: DiffusionModel, n: int, *, sampler: str = "ddim", steps: int | None = 50, eta: float = 0.0,
             temperature: float = 1.0, labels: Tensor | None = None, guidance: float | None = None, seed: int = 0,
             batch_size: int = 500, record: dict[int, Tensor] | None = None, progress: bool = False) -> Tensor:
    """``n`` samples ``[n, C, H, W]`` in [-1, 1] (CPU, float32).

    ``labels`` ([n]) picks each sample's class (conditional networks); ``guidance`` w mixes the conditional and
    unconditional predictions. ``record`` collects the batch-concatenated x_t at each visited t (reverse strip).
    """
    if n < 1:
        raise ArchlabError(f"Asked for {n} samples; ask for at least 1.")
    if temperature <= 0:
        raise ArchlabError(f"The temperature scales the noise and must be > 0, got {temperature}.")
    options = {"eta": eta} if sampler == "ddim" else ({} if not eta else {"eta": eta})
    chosen = make_sampler(sampler, **options)
    plan = chosen.plan(model.schedule.timesteps, steps)
    network, device = model.network, _device(model.network)
    Denoiser(network, model.schedule, model.prediction, labels[:1] if labels is not None else None, guidance)
    generator = make_generator(device, seed)
    was_training = network.training
    network.eval()
    outputs, records = [], []
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                count = min(batch_size, n - start)
                batch_labels = None if labels is None else labels[start:start + count].to(device)
                denoise = Denoiser(network, model.schedule, model.prediction, batch_labels, guidance)
                x = temperature * torch.randn((count, *model.image_shape), generator=generator, device=device)
                trace: dict[int, Tensor] | None = {} if record is not None else None
                x = reverse(denoise, chosen, x, plan, temperature=temperature, generator=generator, record=trace,
                            progress=progress)
                outputs.append(x.clamp(-1, 1).float().cpu())
                if trace is not None:
                    records.append(trace)
    finally:
        network.train(was_training)
    if record is not None and records:
        for t in records[0]:
            record[t] = torch.cat([r[t] for r in records])
    return torch.cat(outputs)
