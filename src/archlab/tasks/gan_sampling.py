"""Images from a trained GAN: samples (with the truncation-style temperature), class rows, latent walks, and
``archlab eval`` of a ``gan`` run (FID, KID, IS, class coverage by the data set's judge).

Temperature scales the latent: z = T · ε, ε ~ N(0, I). T < 1 keeps samples near the centre of the latent
distribution (higher fidelity, less diversity: the truncation trick, Brock et al. 2019, in its simplest form);
T = 1 is the training distribution.

Latent walks interpolate between two draws z₀, z₁ either linearly, z = (1 − t) z₀ + t z₁, or along the great
circle (slerp, White 2016), z = sin((1 − t)Ω)/sin Ω · z₀ + sin(tΩ)/sin Ω · z₁ with cos Ω = z₀·z₁ / (|z₀||z₁|),
which keeps |z| at the typical norm of a Gaussian draw instead of shrinking it halfway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from archlab.errors import ArchlabError
from archlab.runs import SUMMARY, LoadedModel, load_model, read_json

EVAL_SAMPLES = 10_000


def _check_class(model: nn.Module, class_label: int | None, classes: Sequence[str] | None = None) -> None:
    num_classes = int(getattr(model, "num_classes", 0))
    if class_label is None:
        return
    if not num_classes:
        raise ArchlabError(f"This GAN is unconditional: it cannot be asked for class {class_label}. Drop --class, "
                           "or train a class-conditional model (cgan).")
    if not 0 <= class_label < num_classes:
        names = f" ({', '.join(f'{i}={name}' for i, name in enumerate(classes))})" if classes else ""
        raise ArchlabError(f"Class {class_label} is outside the data set: valid classes are 0..{num_classes - 1}{names}.")


def latents(count: int, latent_dim: int, *, temperature: float = 1.0, seed: int = 0,
            device: torch.device | str = "cpu") -> torch.Tensor:
    """``count`` draws z = temperature · ε from a seeded generator (the same seed gives the same z on any device)."""
    if temperature <= 0:
        raise ArchlabError(f"temperature must be > 0 (it scales z), got {temperature}.")
    generator = torch.Generator().manual_seed(seed)
    return (temperature * torch.randn(count, latent_dim, generator=generator)).to(device)


@torch.no_grad()
def generate_from(model: nn.Module, z: torch.Tensor, labels: torch.Tensor | None, batch_size: int = 1000) -> torch.Tensor:
    """G(z, labels) in eval mode, in batches (training mode restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        parts = [model(z[i:i + batch_size], labels[i:i + batch_size]) if labels is not None else model(z[i:i + batch_size])
                 for i in range(0, len(z), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(parts).float().clamp(-1, 1)


def generate(model: nn.Module, count: int, *, classes: Sequence[int] | None = None, class_label: int | None = None,
             temperature: float = 1.0, seed: int = 0, device: torch.device | str | None = None) -> torch.Tensor:
    """``count`` images (count, 1, 28, 28) in [-1, 1]. A conditional model draws ``class_label``, else cycles through
    ``classes`` (default: all of its classes) so that every class is equally represented."""
    _check_class(model, class_label)
    device = device if device is not None else next(model.parameters()).device
    z = latents(count, model.latent_dim, temperature=temperature, seed=seed, device=device)
    labels = None
    num_classes = int(getattr(model, "num_classes", 0))
    if num_classes:
        if class_label is not None:
            labels = torch.full((count,), class_label, dtype=torch.long, device=device)
        else:
            pool = torch.as_tensor(list(classes) if classes is not None else range(num_classes), device=device)
            labels = pool[torch.arange(count, device=device) % len(pool)]
    return generate_from(model, z, labels)


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of ``z0`` and ``z1`` at fractions ``t`` → [len(z0), len(t), d]."""
    cos = (z0 * z1).sum(-1) / (z0.norm(dim=-1) * z1.norm(dim=-1)).clamp_min(1e-12)
    omega = cos.clamp(-1 + 1e-7, 1 - 1e-7).acos()[:, None, None]
    t = t[None, :, None]
    return (torch.sin((1 - t) * omega) * z0[:, None] + torch.sin(t * omega) * z1[:, None]) / torch.sin(omega)


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation between rows of ``z0`` and ``z1`` at fractions ``t`` → [len(z0), len(t), d]."""
    t = t[None, :, None]
    return (1 - t) * z0[:, None] + t * z1[:, None]


WALKS = {"spherical": slerp, "linear": lerp}


def interpolate(source: str | Path | LoadedModel | nn.Module, pairs: int = 8, steps: int = 10, *,
                class_label: int | None = None, kind: str = "spherical", seed: int = 0) -> torch.Tensor:
    """Latent walks: ``pairs`` rows of ``steps`` images from G(z₀) to G(z₁) (row-major, (pairs·steps, 1, 28, 28)).

    A conditional model walks within ``class_label`` (default: row r walks within class r mod classes)."""
    if kind not in WALKS:
        raise ArchlabError(f"Unknown interpolation {kind!r}; choose one of: {', '.join(WALKS)}.")
    if pairs < 1 or steps < 2:
        raise ArchlabError(f"An interpolation needs ≥ 1 pair and ≥ 2 steps, got {pairs} and {steps}.")
    model = _model(source)
    _check_class(model, class_label)
    device = next(model.parameters()).device
    ends = latents(2 * pairs, model.latent_dim, seed=seed, device=device)
    z = WALKS[kind](ends[:pairs], ends[pairs:], torch.linspace(0, 1, steps, device=device)).reshape(-1, model.latent_dim)
    labels = None
    num_classes = int(getattr(model, "num_classes", 0))
    if num_classes:
        rows = torch.full((pairs,), class_label) if class_label is not None else torch.arange(pairs) % num_classes
        labels = rows.repeat_interleave(steps).to(device)
    return generate_from(model, z, labels)


def class_rows(model: nn.Module, per_class: int = 10, *, seed: int = 0) -> torch.Tensor:
    """A conditional model's classes as rows: class c in row c, the same ``per_class`` z in every row."""
    num_classes = int(getattr(model, "num_classes", 0))
    if not num_classes:
        raise ArchlabError("Class rows need a class-conditional model (cgan).")
    device = next(model.parameters()).device
    z = latents(per_class, model.latent_dim, seed=seed, device=device).repeat(num_classes, 1)
    labels = torch.arange(num_classes, device=device).repeat_interleave(per_class)
    return generate_from(model, z, labels)


def load_gan(run_dir: str | Path) -> LoadedModel:
    """The generator of a ``gan`` run; any other run is refused with what it is."""
    loaded = load_model(run_dir)
    task = loaded.meta.get("task")
    if task != "gan":
        raise ArchlabError(f"{run_dir} is a {task} run, not a GAN run (task gan).")
    return loaded


def _model(source: str | Path | LoadedModel | nn.Module) -> nn.Module:
    if isinstance(source, nn.Module):
        return source
    return (source if isinstance(source, LoadedModel) else load_gan(source)).model


def sample_gan(run_dir_or_loaded: str | Path | LoadedModel, n: int, *, class_label: int | None = None,
               temperature: float = 1.0, seed: int = 0) -> torch.Tensor:
    """``n`` images (n, 1, 28, 28) in [-1, 1] from a ``gan`` run (or its loaded model); ``class_label`` for a
    conditional model; ``temperature`` scales z (below 1: the truncation trick)."""
    if n < 1:
        raise ArchlabError(f"n must be ≥ 1 images, got {n}.")
    loaded = run_dir_or_loaded if isinstance(run_dir_or_loaded, LoadedModel) else load_gan(run_dir_or_loaded)
    _check_class(loaded.model, class_label, loaded.meta.get("classes"))
    return generate(loaded.model, n, classes=loaded.meta.get("train_classes"), class_label=class_label,
                    temperature=temperature, seed=seed)


def evaluate_gan(run_dir: Path, loaded: LoadedModel, data_dir: str | Path | None = None,
                 n: int = EVAL_SAMPLES, seed: int = 0) -> dict[str, Any]:
    """FID, KID, IS and class coverage of ``samples`` generated images against the test split; summary refreshed."""
    from archlab.io import atomic_write_json
    from archlab.metrics.generative import score_images

    images = sample_gan(loaded, n, seed=seed)
    scores = score_images(images, loaded.meta["data"], data_dir=data_dir, seed=seed)
    metrics = {"fid": scores["fid"], "kid_mean": scores["kid_mean"], "kid_std": scores["kid_std"],
               "inception_score": scores["inception_score"], "inception_score_std": scores["inception_score_std"],
               "coverage_entropy": scores["coverage_entropy"], "class_histogram": scores["class_histogram"],
               "n": scores["n"]}
    summary_path = Path(run_dir) / SUMMARY
    summary = read_json(summary_path, "") if summary_path.is_file() else {"model": loaded.meta["model"]}
    summary["test_metrics"] = {k: v for k, v in metrics.items() if k != "class_histogram"}
    summary["class_histogram"] = metrics["class_histogram"]
    atomic_write_json(summary_path, summary)
    return metrics


def describe_gan(metrics: dict[str, Any]) -> list[str]:
    """The lines ``archlab eval`` prints for a GAN run."""
    histogram = " ".join(f"{share:.2f}" for share in metrics.get("class_histogram") or [])
    return [f"FID {metrics['fid']:.2f}, KID {metrics['kid_mean']:.4f} ± {metrics['kid_std']:.4f}, "
            f"IS {metrics['inception_score']:.2f} ± {metrics['inception_score_std']:.2f} "
            f"({metrics['n']} samples against the test split)",
            f"class coverage {metrics['coverage_entropy']:.2f} bits of 3.32; classes: {histogram}"]
